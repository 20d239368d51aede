"""The fast reading of the two FETCH answers (mailhelper/mail/fetchparse.py) gives what
imapclient's parser gives, on a real server's answers and on every answer shape, and steps
aside for any answer it does not know."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response

from mailhelper.mail import fetchparse
from tests.rig.assistant import RigAssistant
from tests.rig.mailboxes import connect, make_message

# -- against imapclient's parser, on answers as imaplib hands them over ----------------------


def _imapclient_bodies(data: list[Any]) -> dict[int, bytes]:
    parsed = parse_fetch_response(data or [None])
    return {uid: items[b"BODY[]"] for uid, items in parsed.items()
            if isinstance(items.get(b"BODY[]"), bytes)}


def _imapclient_sizes(data: list[Any]) -> dict[int, int]:
    parsed = parse_fetch_response(data or [None])
    return {uid: int(items[b"RFC822.SIZE"]) for uid, items in parsed.items()
            if b"RFC822.SIZE" in items}


def _body_answer(entries: list[tuple[int, int, bytes]]) -> list[Any]:
    """``* seq FETCH (UID uid BODY[] {n}`` literal ``)`` for each entry, as imaplib splits it."""
    data: list[Any] = []
    for seq, uid, raw in entries:
        data += [(b"%d (UID %d BODY[] {%d}" % (seq, uid, len(raw)), raw), b")"]
    return data


raw_mail = st.binary(max_size=300)
entries = st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 2**32 - 1), raw_mail),
                   max_size=6)


@settings(max_examples=300, deadline=None)
@given(entries)
def test_the_plain_body_answer_is_read_as_imapclient_reads_it(
    found: list[tuple[int, int, bytes]],
) -> None:
    data = _body_answer(found)
    assert fetchparse.fast_bodies(data) == _imapclient_bodies(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 2**32 - 1),
                          st.integers(0, 10**9)), max_size=6))
def test_the_plain_size_answer_is_read_as_imapclient_reads_it(
    found: list[tuple[int, int, int]],
) -> None:
    data = [b"%d (UID %d RFC822.SIZE %d)" % entry for entry in found]
    assert fetchparse.fast_sizes(data) == _imapclient_sizes(data)


#: Answers of another shape than the plain one, each still valid IMAP.
OTHER_BODY_ANSWERS: list[list[Any]] = [
    [(b"1 (BODY[] {3}", b"abc"), b" UID 7)"],                      # UID after the body
    [(b"1 (UID 7 FLAGS (\\Seen) BODY[] {3}", b"abc"), b")"],     # another item first
    [b'1 (UID 7 BODY[] "abc")'],                                  # a quoted string
    [b"1 (UID 7 BODY[] NIL)"],                                    # NIL
    [(b"1 (UID 7 BODY[] {3}", b"abc"), b")", b"2 (FLAGS (\\Seen))"],  # unsolicited flags
    [b"2 (FLAGS (\\Deleted))", (b"1 (UID 7 BODY[] {3}", b"abc"), b")"],
    [(b"1 (uid 7 body[] {3}", b"abc"), b")"],                     # lower case
    [(b"1 (UID 7 BODY[] {4}", b"abc"), b")"],                     # a short literal
]

OTHER_SIZE_ANSWERS: list[list[Any]] = [
    [b"1 (RFC822.SIZE 12 UID 7)"],
    [b"1 (UID 7 RFC822.SIZE 12 FLAGS (\\Seen))"],
    [b"1 (UID 7 RFC822.SIZE 12)", b"3 (FLAGS (\\Seen))"],
    [b"1 (uid 7 rfc822.size 12)"],
]


def test_any_other_body_answer_goes_to_imapclients_parser() -> None:
    for data in OTHER_BODY_ANSWERS:
        assert fetchparse.fast_bodies(data) is None, data


def test_any_other_size_answer_goes_to_imapclients_parser() -> None:
    for data in OTHER_SIZE_ANSWERS:
        assert fetchparse.fast_sizes(data) is None, data


@settings(max_examples=300, deadline=None)
@given(entries, st.data())
def test_a_changed_answer_is_read_the_same_or_not_at_all(
    found: list[tuple[int, int, bytes]], draw: st.DataObject,
) -> None:
    """Bytes of the plain answer changed at random: the fast reading either refuses it or
    reads what imapclient reads (never something else)."""
    data = _body_answer(found)
    if not data:
        return
    at = draw.draw(st.integers(0, len(data) - 1))
    item = data[at]
    line = item[0] if isinstance(item, tuple) else item
    cut = draw.draw(st.integers(0, len(line)))
    noise = draw.draw(st.binary(min_size=1, max_size=4))
    changed = line[:cut] + noise + line[cut + 1:]
    data[at] = (changed, item[1]) if isinstance(item, tuple) else changed
    fast = fetchparse.fast_bodies(data)
    if fast is None:
        return
    try:
        expected = _imapclient_bodies(data)
    except Exception:  # imapclient refuses it: the fast reading must too
        raise AssertionError(f"read an answer imapclient refuses: {data!r}") from None
    assert fast == expected


# -- against Dovecot --------------------------------------------------------------------------


def _odd_mail() -> list[bytes]:
    """Mail whose bytes look like IMAP syntax, 8-bit, or end without a line break."""
    return [
        make_message("A <a@example.org>", "b@example.com", "Braces {12}", "x {3}\r\n)\r\n"),
        make_message("A <a@example.org>", "b@example.com", "Paren (UID 9 BODY[] {1}",
                     "(UID 1 BODY[] {99}\n)\n* 3 FETCH (FLAGS (\\Seen))\n"),
        "From: Zoë <z@example.org>\r\nSubject: café\r\n\r\nnaïve \xff".encode("latin-1"),
        b"Subject: no line break at the end\r\n\r\nlast",
        b"Subject: empty body\r\n\r\n",
    ]


def test_dovecots_answers_take_the_fast_way_and_read_as_imapclient_reads_them(
    rig_assistant: RigAssistant,
) -> None:
    mail = _odd_mail()
    with connect(rig_assistant.dovecot, rig_assistant.account) as client:
        client.multiappend("INBOX", mail)
        client.select_folder("INBOX", readonly=True)
        uids = sorted(client.search(["ALL"]))
        asked = [*uids, max(uids) + 50]  # one UID that is not there
        before = dict(fetchparse.taken)
        bodies = fetchparse.bodies(client, asked)
        sizes = fetchparse.sizes(client, asked)
        assert fetchparse.taken["fast"] == before["fast"] + 2
        assert fetchparse.taken["parser"] == before["parser"]
        expected_bodies = {uid: items[b"BODY[]"]
                           for uid, items in client.fetch(asked, [b"BODY.PEEK[]"]).items()}
        expected_sizes = {uid: items[b"RFC822.SIZE"]
                          for uid, items in client.fetch(asked, [b"RFC822.SIZE"]).items()}
        flags = client.get_flags(uids)
    assert bodies == expected_bodies
    assert sizes == expected_sizes
    assert sorted(bodies) == uids
    assert all(b"\\Seen" not in f for f in flags.values())  # PEEK: nothing marked seen
