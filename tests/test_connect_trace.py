"""imaplib's protocol trace is formatted only when someone reads it: IMAPClient turns it on
for every connection, and imaplib formats each line (a ``repr`` of every fetched message,
twice) before the logger drops it."""

from __future__ import annotations

import logging

import pytest

from mailhelper.cli.config import load_settings
from mailhelper.mail.connect import open_imap
from tests.rig.assistant import RigAssistant


def _fetch_all(rig: RigAssistant) -> list[str]:
    """Open a connection as the assistant does, fetch every message of INBOX, and return the
    trace lines imaplib handed to its logger while fetching."""
    client = open_imap(load_settings(rig.config_path).imap)
    traced: list[str] = []
    imap = client._imap
    shown = imap._mesg
    imap._mesg = lambda line: (traced.append(line), shown(line))
    try:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search(["ALL"]), [b"BODY.PEEK[]"])
        assert len(fetched) == 2 and all(b"BODY[]" in v for v in fetched.values())
    finally:
        client.logout()
    return traced


def test_with_the_trace_unlogged_no_fetched_message_is_formatted(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.ask(subject="Intro to Acme?")
    rig_assistant.ask(subject="Intro to Bolt?")
    assert not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG)
    assert _fetch_all(rig_assistant) == []


def test_a_debug_logger_still_gets_the_whole_trace(
    rig_assistant: RigAssistant, caplog: pytest.LogCaptureFixture,
) -> None:
    rig_assistant.ask(subject="Intro to Acme?")
    rig_assistant.ask(subject="Intro to Bolt?")
    caplog.set_level(logging.DEBUG, logger="imapclient.imaplib")
    traced = _fetch_all(rig_assistant)
    assert any("Intro to Bolt?" in line for line in traced)
    assert any("Intro to Bolt?" in r.getMessage() for r in caplog.records
               if r.name == "imapclient.imaplib")
