"""``--log-format json``: the lines about a message, an action and a cycle carry structured
fields, read here from a real poll through Dovecot and the SMTP sink."""

from __future__ import annotations

import json
import logging
from typing import Any

from mailhelper.cli import main as cli
from mailhelper.model import logfields
from tests.rig.assistant import RigAssistant

NOW = "2026-12-07T09:00:00+00:00"


def _entries(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def test_a_real_poll_logs_message_action_and_cycle_fields(rig_assistant: RigAssistant) -> None:
    asked = rig_assistant.ask().strip("<>")
    code, _, err = rig_assistant.cli("poll", "--once", "--now", NOW, "--log-format", "json")
    assert code == 0, err
    entries = _entries(err)
    sent = rig_assistant.sent()
    assert sent, "the ask is answered with a receipt"

    [read] = [e for e in entries if e.get("message_id") == asked and "action" not in e]
    assert read["folder"] == "INBOX"
    assert isinstance(read["uid"], int) and read["uid"] > 0
    assert isinstance(read["thread"], int)

    lines_sent = [e for e in entries if e["message"].startswith("sent ")]
    assert len(lines_sent) == len(sent)
    for entry, mail in zip(lines_sent, sent, strict=True):
        assert entry["message_id"] == str(mail["Message-ID"]).strip().strip("<>")
        assert entry["action_kind"] and entry["action"]
        assert entry["thread"] == read["thread"]
        headers = str(mail["To"]) + str(mail["Cc"] or "")
        assert entry["recipients"] and all(r in headers for r in entry["recipients"])

    [summary] = [e for e in entries if e["message"].startswith("cycle at")]
    assert summary["counts"] == {"read": 1, "duplicates": 0, "errors": 0, "sent": len(sent),
                                 "held": 0, "retried": 0, "failed": 0}

    # The second poll finds the same message again only as a duplicate, with its folder.
    code, _, err = rig_assistant.cli("poll", "--once", "--now", "2026-12-07T09:05:00+00:00",
                                     "--log-format", "json", "--verbose")
    assert code == 0
    [summary] = [e for e in _entries(err) if e["message"].startswith("cycle at")]
    assert summary["counts"]["read"] == 0 and summary["counts"]["sent"] == 0


def test_text_logs_do_not_change_with_fields() -> None:
    record = logging.LogRecord("mailhelper", logging.INFO, __file__, 1, "<%s> read", ("a@b",),
                               None)
    plain = cli._TerminalFormatter("%(levelname)s %(message)s").format(record)
    for name, value in logfields.message(message_id="a@b", uid=3, folder="INBOX").items():
        setattr(record, name, value)  # as ``extra=`` does
    assert cli._TerminalFormatter("%(levelname)s %(message)s").format(record) == plain
    entry = json.loads(cli._JsonFormatter().format(record))
    assert (entry["message_id"], entry["uid"], entry["folder"]) == ("a@b", 3, "INBOX")
