"""Property: no address that is not literally the address part of a From/To/Cc field becomes a
counterpart, whatever the display names hold (addresses, angle brackets, quotes, mailto,
commas, comments, "on behalf of").

Decoys live at victims.test; real addresses never do, so the property reads: no victims.test
address ever comes out. Fields are written both as RFC 5322 wants (in real headers, and in a
forward block as a client that quotes names prints them) and as clients print forwards
(names unquoted).
"""

from __future__ import annotations

import string
from datetime import UTC, datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhelper.decide.classify import Context, classify
from mailhelper.decide.events import NewThread
from mailhelper.model.addresses import mailboxes
from mailhelper.model.settings import Settings
from mailhelper.model.values import ActionKind, Address, Thread
from mailhelper.read.forwards import find_inline_forward
from mailhelper.read.parse import address_list, parse_mail

SETTINGS = Settings(owners=(Address("sam@example.com"),), assistant=Address("helper@example.com"))
NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

DECOYS = st.sampled_from(["jane.doe@victims.test", "Jane.Doe@Victims.TEST", "ceo@victims.test",
                          "x@mail.victims.test"])
PIECES = st.one_of(
    st.text(alphabet=string.ascii_letters + " .'-", min_size=1, max_size=8),
    st.text(alphabet="éüøЖ中 ", min_size=1, max_size=3),
    DECOYS,
    DECOYS.map(lambda d: f"<{d}>"),
    DECOYS.map(lambda d: f"[mailto:{d}]"),
    DECOYS.map(lambda d: f"<mailto:{d}>"),
    DECOYS.map(lambda d: f"mailto:{d}"),
    DECOYS.map(lambda d: f"({d})"),
    DECOYS.map(lambda d: f"{d}<mailto:{d}>"),
    DECOYS.map(lambda d: f'"{d}"'),
    DECOYS.map(lambda d: d.replace("@", " @ ")),
    st.sampled_from(['"', ",", ";", ":", "(", ")", "<", ">", "[", "]", "\\", "@",
                     " on behalf of ", " im Auftrag von ", "=?utf-8?q?x?=", "\t"]),
)
NAMES = st.lists(PIECES, max_size=6).map(lambda pieces: "".join(pieces).strip())
REAL = st.from_regex(r"[a-z][a-z0-9._+-]{0,10}[a-z0-9]@(example|evil|acme)\.(org|test|com)",
                     fullmatch=True).filter(lambda a: ".." not in a and not a.startswith("sam@"))
MAILBOXES = st.lists(st.tuples(NAMES, REAL), min_size=1, max_size=3)


def rfc(name: str, address: str) -> str:
    """The mailbox as RFC 5322 writes it (the name quoted where it must be)."""
    local, _, domain = address.partition("@")
    return str(HeaderAddress(display_name=name, username=local, domain=domain))


def assert_only_real(found: set[str], real: set[str]) -> None:
    assert not {a for a in found if "victims.test" in a.lower()}, found
    assert found <= {a.lower() for a in real}, (found, real)


class NoThreads:
    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        return None

    def sent_mail(self, message_ids: tuple[str, ...]) -> tuple[int | None, ActionKind] | None:
        return None

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None:
        return None

    def threads_by_subject(self, subject: str) -> tuple[Thread, ...]:
        return ()

    def tapped_mail(
        self, token: str, owner: str
    ) -> tuple[str, tuple[int | None, ActionKind]] | None:
        return None

    def person_for(self, address: str) -> str | None:
        return None


def counterparts_of(raw: bytes) -> set[str]:
    event = classify(parse_mail(raw), Context(SETTINGS, NoThreads(), NOW))
    return {c.email for c in event.counterparts} if isinstance(event, NewThread) else set()


@PROPERTY
@given(MAILBOXES)
def test_address_headers_yield_only_the_address_parts(boxes: list[tuple[str, str]]) -> None:
    value = ", ".join(rfc(name, address) for name, address in boxes)
    assert_only_real({a.email for a in address_list(value)}, {a for _n, a in boxes})
    assert_only_real({a for a, _n in mailboxes(value) or ()}, {a for _n, a in boxes})


@PROPERTY
@given(MAILBOXES)
def test_an_owners_ask_has_only_the_address_parts_as_counterparts(
    boxes: list[tuple[str, str]],
) -> None:
    # Written out by hand: the stdlib's generator drops the quotes of a long display name
    # when it folds the header, which would test the generator, not the reading.
    to = ", ".join(rfc(name, address) for name, address in boxes[:1])
    cc = ", ".join([*(rfc(n, a) for n, a in boxes[1:]), "helper@example.com"])
    raw = (f"From: Sam <sam@example.com>\r\nTo: {to}\r\nCc: {cc}\r\nSubject: Intro\r\n"
           "Message-ID: <ask@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "\r\nCould you help?\r\n").encode()
    assert_only_real(counterparts_of(raw), {a for _n, a in boxes})


def _forward(from_line: str, to_line: str = "Sam <sam@example.com>") -> str:
    return (f"FYI\n\n---------- Forwarded message ---------\nFrom: {from_line}\n"
            f"Subject: Intro\nTo: {to_line}\n\nCould you help?")


@PROPERTY
@given(NAMES, REAL, st.booleans())
def test_a_forwarded_from_line_names_its_address_part_or_nobody(
    name: str, address: str, quoted: bool,
) -> None:
    """A client that quotes the name (RFC 5322), or one that prints it as it is (Gmail)."""
    line = rfc(name, address) if quoted else f"{name} <{address}>"
    if "\n" in line or "\r" in line:
        return
    found = find_inline_forward(_forward(line), "Fwd: Intro")
    sender = found.from_ if found is not None else None
    assert_only_real({sender.email} if sender else set(), {address})


@PROPERTY
@given(NAMES, REAL)
def test_an_owners_forward_has_only_the_address_part_as_counterpart(
    name: str, address: str,
) -> None:
    message = EmailMessage()
    message["From"] = "Sam <sam@example.com>"
    message["To"] = "helper@example.com"
    message["Subject"] = "Fwd: Intro"
    message["Message-ID"] = "<fwd@example.com>"
    message.set_content(_forward(f"{name} <{address}>"))
    assert_only_real(counterparts_of(message.as_bytes()), {address})


@PROPERTY
@given(MAILBOXES)
def test_the_owners_own_forwarded_mail_names_only_the_address_parts(
    boxes: list[tuple[str, str]],
) -> None:
    """Sam forwards mail he wrote: the people on its To line, as his client quoted them."""
    to_line = ", ".join(rfc(name, address) for name, address in boxes)
    if "\n" in to_line:
        return
    message = EmailMessage()
    message["From"] = "Sam <sam@example.com>"
    message["To"] = "helper@example.com"
    message["Subject"] = "Fwd: Intro"
    message["Message-ID"] = "<fwd@example.com>"
    message.set_content(_forward("Sam <sam@example.com>", to_line))
    assert_only_real(counterparts_of(message.as_bytes()), {a for _n, a in boxes})


@PROPERTY
@given(NAMES, REAL)
def test_a_message_forwarded_as_attachment_names_only_its_address_part(
    name: str, address: str,
) -> None:
    inner = (f"From: {rfc(name, address)}\r\nTo: Sam <sam@example.com>\r\nSubject: Intro\r\n"
             "Message-ID: <orig@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "\r\nCould you help?\r\n")
    raw = ("From: Sam <sam@example.com>\r\nTo: helper@example.com\r\nSubject: Fwd: Intro\r\n"
           "Message-ID: <fwd@example.com>\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
           "Content-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n"
           f"Content-Type: message/rfc822\r\n\r\n{inner}--b--\r\n").encode()
    assert_only_real(counterparts_of(raw), {address})
