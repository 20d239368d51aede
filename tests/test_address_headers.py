"""Address headers of mail the assistant sends name exactly the intended mailboxes, whatever
the display names hold: read back from the SMTP sink with a strict parser.

A counterpart's name comes from a stranger's header and an owner's from the config; one like
``jane@x, Prof ...`` must stay one display name however the header folds, or a reply-all
would reach the address written in the name."""

from __future__ import annotations

import email
import email.header
import email.utils
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default

import pytest

from mailhelper.compose.render import _name_words
from tests.rig.assistant import OWNER, RigAssistant

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
EVE = "eve@counterpart.test"
HOSTILE = [
    "jane@victim.test, Prof",
    "jane@victim.test, Prof and a title long enough that the To header has to fold somewhere",
    '"Quoted" \\ back, slash mallory@evil.test; group: <x@evil.test> and a long enough tail',
    "Jörg, Müller <mallory@evil.test>, über einen sehr langen Namen, der gefaltet werden muss",
    "Zoë =?utf-8?q?not_a_word?= <mallory@evil.test>",
]
OWNER_NAME = 'Sam, "Boss" <boss@evil.test>, Rivera with a long title to fold the Cc header'


def _encoded(name: str, address: str) -> str:
    """``name <address>`` as a correct header value on one line (the rig's own message
    builder folds with the very defect under test)."""
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return email.utils.formataddr((name, address), charset="utf-8").replace("\n", "")


def _ask(rig: RigAssistant, name: str) -> bytes:
    return (
        f"From: Sam Rivera <{OWNER}>\r\n"
        f"To: {_encoded(name, EVE)}\r\n"
        f"Cc: {rig.address}\r\n"
        "Subject: Intro to Acme?\r\n"
        "Date: Mon, 07 Dec 2026 09:00:00 +0000\r\n"
        "Message-ID: <hostile-name-ask@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hi, could you introduce me to someone at Acme?\r\n"
    ).encode()


def _mailboxes(message: EmailMessage, header: str) -> list[tuple[str, str]]:
    """(display name, address) of each mailbox in ``header``, by two parsers that must
    agree on the addresses: the strict header registry, with no defect allowed, and the
    RFC 2047 decoder of the legacy API for the names (it joins adjacent encoded words as
    RFC 2047 section 6.2 says; the registry adds a space between them)."""
    raw = message.as_bytes()
    strict = email.message_from_bytes(raw, policy=default)[header]
    if strict is None:
        return []
    assert not strict.defects, (header, strict.defects)
    assert all(group.display_name is None for group in strict.groups)
    addresses = [a.addr_spec for a in strict.addresses]
    legacy = str(email.message_from_bytes(raw)[header])
    pairs = email.utils.getaddresses([legacy.replace("\r\n", "").replace("\n", "")])  # unfold
    assert [address for _, address in pairs] == addresses, (header, legacy)
    names = [str(email.header.make_header(email.header.decode_header(n))) for n, _ in pairs]
    return list(zip(names, addresses, strict=True))


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_display_name_stays_one_mailbox_in_every_header(
    rig_assistant: RigAssistant, name: str,
) -> None:
    rig = rig_assistant
    rig.configure({
        "owners": [{"name": OWNER_NAME, "email": OWNER}],
        "schedules": {"ask": {"follow_up": ["3 days"], "nudge_counterpart": ["1 day"]}},
    })
    rig.deliver(_ask(rig, name))
    rig.poll(T0)
    rig.poll(T0 + timedelta(days=1, hours=1))
    sent = rig.sent()
    [nudge] = [m for m in sent if m["X-Mailhelper-Action"] == "nudge"]
    assert _mailboxes(nudge, "To") == [(name, EVE)]
    assert _mailboxes(nudge, "Cc") == [(OWNER_NAME, OWNER)]
    assert [a for _, a in _mailboxes(nudge, "Reply-To")] == [OWNER, rig.address]
    for message in sent:
        raw = message.as_bytes()
        assert all(len(line) <= 78 for line in raw.split(b"\n\n")[0].splitlines()
                   if line[:1].isspace() or line.split(b":")[0].lower() in
                   (b"to", b"cc", b"from", b"reply-to"))
        for header in ("From", "To", "Cc", "Reply-To"):
            for _, address in _mailboxes(message, header):
                assert "evil.test" not in address and "victim.test" not in address
    envelopes = {r for envelope in rig.sink.envelopes() for r in envelope.rcpt_tos}
    assert envelopes <= {EVE, OWNER}


def test_a_name_that_looks_like_an_encoded_word_is_quoted_not_left_bare() -> None:
    """Its characters are all atext, but bare it would be decoded (RFC 2047 section 5)."""
    assert _name_words("=?utf-8?q?Boss?= Sam") == ['"=?utf-8?q?Boss?=', 'Sam"']
    assert _name_words("Sam Rivera") == ["Sam", "Rivera"]
