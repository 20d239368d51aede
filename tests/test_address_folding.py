"""Addresses are compared in one form everywhere (:func:`mailhelper.model.addresses.fold`): ASCII
letters lower-cased, a non-ASCII domain as IDNA, non-ASCII letters of a local part kept.
``str.lower()`` differs on both, so an owner or a counterpart written one way in the config
or a header and another way in the state would be refused, or let through twice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mailhelper.cli.config import parse_settings
from mailhelper.compose.render import _parse_people, _unique
from mailhelper.engine.outbox import allowed_recipients
from mailhelper.model.settings import Settings
from mailhelper.model.values import Action, ActionKind, Address, Kind, Thread, ThreadState
from mailhelper.state.store import Store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CONFIG = """\
owners: [{name: Sam, email: Sam@Bücher.Example}, {name: Jörg, email: JÖRG@Example.DE}]
assistant: {name: Sam's assistant, email: Helper@Bücher.Example}
imap: {host: imap.example.com}
smtp: {host: smtp.example.com}
"""


def _settings() -> Settings:
    return parse_settings(CONFIG, "config.yaml", environ={"HOME": "/home/sam"})


def test_owners_and_the_assistant_are_stored_as_mail_addresses_are_compared() -> None:
    settings = _settings()
    assert [o.email for o in settings.owners] == ["sam@xn--bcher-kva.example",
                                                  "jÖrg@example.de"]
    assert settings.assistant.email == "helper@xn--bcher-kva.example"


def test_the_recipient_check_compares_folded_addresses(tmp_path: Path) -> None:
    settings = _settings()
    store = Store.open(tmp_path / "state.db", "xn--bcher-kva.example")
    counterpart = Address("jÖhn@example.de", "John")  # as the reading stores it
    with store.transaction():
        store.save_thread(Thread(
            id=1, kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro",
            owner=settings.owners[0], counterparts=(counterpart,), created=T0,
            root_message_id="root@example.org", last_owner_activity=T0))
    nudge = Action(key="t1/nudge/1", kind=ActionKind.NUDGE, due=T0, thread_id=1,
                   recipients=(counterpart,))
    # The envelope as a header gives it, and the owners as a person types them.
    assert allowed_recipients(store, settings, nudge, ["JÖHN@Example.DE"]) is None
    receipt = Action(key="t1/receipt", kind=ActionKind.RECEIPT, due=T0, thread_id=1,
                     recipients=(Address("SAM@bücher.example"), Address("jÖrg@EXAMPLE.de")))
    assert allowed_recipients(store, settings, receipt) is None
    stranger = Action(key="t1/nudge/2", kind=ActionKind.NUDGE, due=T0, thread_id=1,
                      recipients=(Address("jöhn@example.de"),))  # another mailbox (RFC 5321)
    assert allowed_recipients(store, settings, stranger) is not None
    store.close()


def test_rendering_dedups_and_reads_people_in_the_folded_form() -> None:
    people = _parse_people("Sam <SAM@Bücher.Example>, JÖRG@example.DE")
    assert [p.email for p in people] == ["sam@xn--bcher-kva.example", "jÖrg@example.de"]
    assert len(_unique([Address("sam@bücher.example"), Address("SAM@xn--bcher-kva.example")])) == 1
