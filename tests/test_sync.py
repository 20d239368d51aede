"""Reading the inbox against the real Dovecot: nothing lost, nothing read twice.

A backlog is read in one poll in bounded batches, each message acted on once and flagged, never
marked seen; a poll with no news costs a SELECT and nothing more (counted on the wire by a
relay in front of Dovecot); a restart, a UIDVALIDITY change and a second copy of one message
read nothing twice. Every poll runs on an explicit ``--now`` and every message has a Date.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

import pytest
from imapclient import IMAPClient

from mailhelper.mail.mailbox import HANDLED_FLAG, Mailbox, content_key
from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.imapproxy import ImapProxy
from tests.rig.mailboxes import connect, make_message, read_folder, recreate_folder

DAY = "Mon, 07 Dec 2026 09:00:00 +0000"
T0 = "2026-12-07T10:00:00+00:00"
T1 = "2026-12-07T11:00:00+00:00"
T2 = "2026-12-07T12:00:00+00:00"

#: What a poll with no new mail may send, besides logging in and out.
NO_NEWS = {"SELECT", "EXAMINE", "STATUS", "UID SEARCH", "SEARCH"}
SESSION = {"CAPABILITY", "LOGIN", "AUTHENTICATE", "LOGOUT", "ID", "NOOP", "ENABLE"}


@pytest.fixture
def proxy(rig_assistant: RigAssistant) -> Iterator[ImapProxy]:
    """The assistant talks to Dovecot through a recording relay (plain IMAP on loopback)."""
    with ImapProxy(rig_assistant.dovecot.host, rig_assistant.dovecot.port) as relay:
        rig_assistant.configure({"imap": {"port": relay.port, "security": "none"},
                                 "confirm": False})
        yield relay


# -- building mail ---------------------------------------------------------------------------


def ask(n: int) -> bytes:
    """Owner's ask number ``n``, the assistant in Bcc (so any assistant address fits)."""
    return make_message(f"{OWNER_NAME} <{OWNER}>", f"Person {n} <p{n}@example.org>",
                        f"Intro number {n}?", f"Hi {n}, could you introduce me to Acme?\n",
                        message_id=f"<ask-{n}@example.com>", date=DAY)


def reply(n: int) -> bytes:
    """Person ``n``'s answer to ask ``n``, a copy reaching the assistant."""
    return make_message(f"Person {n} <p{n}@example.org>", f"{OWNER_NAME} <{OWNER}>",
                        f"Re: Intro number {n}?", "Happy to help, cc'ing Acme now.\n",
                        message_id=f"<reply-{n}@example.org>",
                        in_reply_to=f"<ask-{n}@example.com>", references=f"<ask-{n}@example.com>",
                        date="Tue, 08 Dec 2026 09:00:00 +0000")


def stranger(n: int) -> bytes:
    return make_message(f"Stranger {n} <s{n}@example.net>", "info@example.com",
                        f"Great offer {n}", "Buy now.\n" + "x" * 2000,
                        message_id=f"<stranger-{n}@example.net>", date=DAY)


def backlog(asks: int, replies: int, strangers: int) -> list[bytes]:
    """Asks first (replies refer to them), then strangers and replies interleaved."""
    rest: list[bytes] = []
    for n in range(max(replies, strangers)):
        if n < strangers:
            rest.append(stranger(n))
        if n < replies:
            rest.append(reply(n))
    return [ask(n) for n in range(asks)] + rest


def deliver_many(assistant: RigAssistant, messages: Sequence[bytes], folder: str = "INBOX") -> None:
    """APPEND many messages over one connection (MULTIAPPEND, RFC 3502)."""
    with connect(assistant.dovecot, assistant.account) as client:
        for start in range(0, len(messages), 250):
            client.multiappend(folder, list(messages[start : start + 250]))


def state(assistant: RigAssistant) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{assistant.state}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


def acted_on(assistant: RigAssistant) -> dict[str, int]:
    """How many events each message caused (each message acts at most once)."""
    with state(assistant) as db:
        rows = db.execute("SELECT message_id, count(*) AS n FROM events "
                          "WHERE message_id IS NOT NULL GROUP BY message_id").fetchall()
    return {row["message_id"]: row["n"] for row in rows}


def fetched_uids(lines: Sequence[str], item: str = "BODY.PEEK[]") -> list[list[int]]:
    """The UIDs each ``UID FETCH <set> (<item>)`` line asked for, one list per command."""
    batches = []
    for line in lines:
        words = line.split()
        if len(words) > 4 and words[1:3] == ["UID", "FETCH"] and f"({item})" in line:
            uids: list[int] = []
            for part in words[3].split(","):
                low, _, high = part.partition(":")
                uids += range(int(low), int(high or low) + 1)
            batches.append(uids)
    return batches


# -- tests -------------------------------------------------------------------------------------


def test_a_backlog_of_1000_is_read_in_batches_each_acted_on_once(
    rig_assistant: RigAssistant, proxy: ImapProxy
) -> None:
    mail = backlog(asks=400, replies=300, strangers=300)
    assert len(mail) == 1000
    deliver_many(rig_assistant, mail)

    rig_assistant.poll(T0)

    # Bodies came in bounded batches, every message once.
    batches = fetched_uids(proxy.lines())
    assert sorted(uid for batch in batches for uid in batch) == list(range(1, 1001))
    assert len(batches) >= 5 and max(len(batch) for batch in batches) <= 200
    assert "1000 new message(s)" in rig_assistant.last_output
    # Each message acted on exactly once.
    acts = acted_on(rig_assistant)
    assert len(acts) == 1000 and set(acts.values()) == {1}
    threads = rig_assistant.status()
    assert len(threads) == 400
    assert sum(t["state"] == "answered" for t in threads) == 300
    assert rig_assistant.sent() == []  # confirm: false; thank-you drafts are due in 2 hours
    # All flagged handled, none marked seen by the reading.
    flags = rig_assistant.flags()
    assert len(flags) == 1000
    assert all(HANDLED_FLAG in f and b"\\Seen" not in f for f in flags)


def test_a_poll_with_no_news_costs_one_select_whatever_the_mailbox_size(
    rig_assistant: RigAssistant, proxy: ImapProxy
) -> None:
    deliver_many(rig_assistant, [ask(0)])
    rig_assistant.poll(T0)
    proxy.reset()
    rig_assistant.poll(T1)
    small = proxy.commands()

    deliver_many(rig_assistant, backlog(asks=150, replies=0, strangers=100)[1:])
    rig_assistant.poll(T1)
    proxy.reset()
    rig_assistant.poll(T2)
    large = proxy.commands()

    assert small == large, (small, large)
    work = [c for c in large if c not in SESSION]
    assert work and set(work) <= NO_NEWS and len(work) <= 2, large
    assert sum(c.endswith("SEARCH") for c in work) <= 1

    # A fresh process with the same state reads nothing again either.
    proxy.reset()
    done = rig_assistant.poll_process("2026-12-07T13:00:00+00:00")
    assert done.returncode == 0, done.stderr
    assert proxy.commands() == large
    assert set(acted_on(rig_assistant).values()) == {1}


def without_message_id(raw: bytes) -> bytes:
    """``raw`` with its Message-ID field removed (some senders and scripts omit it)."""
    lines = raw.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(b"message-id:"))


def test_a_uidvalidity_change_rereads_the_folder_and_acts_on_nothing_twice(
    rig_assistant: RigAssistant,
) -> None:
    bare = without_message_id(ask(2))
    deliver_many(rig_assistant, [ask(0), reply(0), ask(1), bare, stranger(0)])
    rig_assistant.poll(T0)
    receipts = rig_assistant.sent()
    assert len(receipts) == 3  # ask 0, ask 1 and the ask without a Message-ID
    before = acted_on(rig_assistant)
    assert len(before) == 5 and set(before.values()) == {1}

    old, new = recreate_folder(rig_assistant.dovecot, rig_assistant.account, "INBOX")
    deliver_many(rig_assistant, [ask(3)])
    rig_assistant.poll(T1)

    log = rig_assistant.last_output
    assert f"UIDVALIDITY changed ({old} -> {new})" in log
    assert "5 message(s) handled before" in log
    assert "6 new message(s)" in log
    after = acted_on(rig_assistant)
    assert set(after) == set(before) | {"ask-3@example.com"} and set(after.values()) == {1}
    assert len(rig_assistant.sent()) == 4  # one more receipt: ask 3's
    assert len(rig_assistant.status()) == 4
    flags = rig_assistant.flags()
    assert len(flags) == 6 and all(HANDLED_FLAG in f and b"\\Seen" not in f for f in flags)

    rig_assistant.poll("2026-12-07T11:30:00+00:00")  # before the thank-you draft is due
    assert acted_on(rig_assistant) == after and len(rig_assistant.sent()) == 4


def test_the_same_message_delivered_twice_acts_once(rig_assistant: RigAssistant) -> None:
    original = ask(0)
    # A Bcc copy: the same message with the delivering server's trace fields on top.
    bcc_copy = (b"Return-Path: <sam@example.com>\r\nDelivered-To: helper@example.com\r\n"
                b"Received: from mx.example.com by imap.example.com; " + DAY.encode() + b"\r\n"
                + original)
    bare = without_message_id(ask(1))
    redelivered = b"Received: from relay2.example.com; " + DAY.encode() + b"\r\n" + bare
    assert content_key(bare) == content_key(redelivered)
    deliver_many(rig_assistant, [original, bare, bcc_copy])
    rig_assistant.poll(T0)
    assert "1 message(s) handled before" in rig_assistant.last_output
    deliver_many(rig_assistant, [original, redelivered])
    rig_assistant.poll(T1)
    assert "2 message(s) handled before" in rig_assistant.last_output

    assert sorted(t["subject"] for t in rig_assistant.status()) == ["Intro number 0?",
                                                                    "Intro number 1?"]
    receipts = rig_assistant.sent()
    assert len(receipts) == 2
    assert ["number 0" in str(r["Subject"]) for r in receipts] == [True, False]
    with state(rig_assistant) as db:
        assert db.execute("SELECT count(*) FROM processed").fetchone()[0] == 2
    assert all(HANDLED_FLAG in f for f in rig_assistant.flags())


def test_handled_mail_moves_to_the_processed_folder_when_one_is_set(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"imap": {"processed_folder": "Processed"}, "confirm": False})
    deliver_many(rig_assistant, [ask(0), stranger(0), reply(0)])
    rig_assistant.poll(T0)

    assert rig_assistant.folder("INBOX") == []
    moved = read_folder(rig_assistant.dovecot, rig_assistant.account, "Processed")
    assert [raw for _uid, _flags, raw in moved] == [ask(0), stranger(0), reply(0)]
    assert all(HANDLED_FLAG in flags and b"\\Seen" not in flags for _uid, flags, _raw in moved)
    [thread] = rig_assistant.status()
    assert thread["state"] == "answered"

    deliver_many(rig_assistant, [ask(1)])
    rig_assistant.poll(T1)
    assert len(rig_assistant.folder("Processed")) == 4
    assert set(acted_on(rig_assistant).values()) == {1}



def test_fetch_bounds_each_batch_in_count_and_bytes_and_keeps_uid_order(
    rig_assistant: RigAssistant, proxy: ImapProxy,
) -> None:
    """The Mailbox alone on a real connection: small limits show the batching rules."""
    mail = [stranger(n) for n in range(7)]  # about 2.2 KB each ...
    mail[3] = stranger(3).replace(b"Buy now.", b"Buy now." + b"y" * 20_000)  # ... but one
    deliver_many(rig_assistant, mail)
    client = IMAPClient(rig_assistant.dovecot.host, proxy.port, ssl=False, timeout=10)
    client.login(rig_assistant.account.username, rig_assistant.account.password)
    with client:
        box = Mailbox(client, batch_size=4, max_message_bytes=10_000, batch_bytes=5_000)
        folder = box.select("INBOX", readonly=True)
        uids = box.new_uids(folder, 0)
        proxy.reset()
        before: list[int] = []  # the FETCH commands sent when the hook ran (a lease renewal)
        box.before_fetch = lambda: before.append(
            sum("FETCH" in line for line in proxy.lines()))
        got = list(box.fetch(uids))
        fetches = [" ".join(line.split()[3:]) for line in proxy.lines() if "FETCH" in line]
        assert box.new_uids(folder, max(uids)) == []

    assert fetches == [
        "1,2,3,4 (RFC822.SIZE)", "1,2 (BODY.PEEK[])", "3 (BODY.PEEK[])",
        "4 (BODY.PEEK[HEADER])", "5,6,7 (RFC822.SIZE)", "5,6 (BODY.PEEK[])", "7 (BODY.PEEK[])"]
    assert before == list(range(7))  # once before each FETCH
    assert [m.uid for m in got] == uids == list(range(1, 8))
    assert [m.too_large for m in got] == [False, False, False, True, False, False, False]
    assert [m.raw for m in got if not m.too_large] == mail[:3] + mail[4:]
    big = got[3]
    assert big.size == len(mail[3])
    assert big.raw == mail[3].partition(b"\r\n\r\n")[0] + b"\r\n\r\n"  # the header only


def test_a_new_state_file_leaves_mail_handled_by_the_old_one_alone(
    rig_assistant: RigAssistant,
) -> None:
    deliver_many(rig_assistant, [ask(1), ask(2)])
    rig_assistant.poll("2026-12-07T09:00:00+00:00")
    assert len(rig_assistant.sent()) == 2  # the receipts

    # The state file is lost (a new machine, a wiped volume); the mailbox keeps its flags.
    for path in rig_assistant.state.parent.glob(rig_assistant.state.name + "*"):
        path.unlink()
    deliver_many(rig_assistant, [ask(3)])
    rig_assistant.poll("2026-12-08T09:00:00+00:00")

    assert "flagged as handled by an earlier one are left alone" in rig_assistant.last_output
    sent = [str(m["Message-ID"]) for m in rig_assistant.sent()]
    assert len(sent) == 3 and len(set(sent)) == 3, "no receipt was sent again"
    assert [t["subject"] for t in rig_assistant.status()] == ["Intro number 3?"]
    assert all(HANDLED_FLAG in flags for flags in rig_assistant.flags())


def test_mail_that_arrives_after_a_cycle_is_news_before_idle(
    rig_assistant: RigAssistant,
) -> None:
    """The daemon asks ``has_news`` between a cycle and IDLE; Dovecot answers a UID SEARCH from
    the view before a newly appended message and announces it only afterwards, so a search
    alone says "nothing" and IDLE would then wait until its renewal."""
    rig = rig_assistant
    rig.deliver(stranger(0))
    with connect(rig.dovecot, rig.account) as client:
        box = Mailbox(client)
        folder = box.select("INBOX")
        assert box.new_uids(folder, 0) == [1]  # the cycle reads UID 1
        assert not box.has_news(1)  # nothing else came

        rig.deliver(stranger(1))  # after the cycle's last command, before IDLE
        assert box.has_news(1)

        folder = box.select("INBOX")  # the next cycle's look (a NOOP on the kept folder)
        assert box.new_uids(folder, 1) == [2]
        rig.deliver(stranger(2))
        client.search(["UID", "3:*"])  # a command of the cycle swallows the announcement
        assert box.has_news(2)

        folder = box.select("INBOX")
        assert box.new_uids(folder, 2) == [3]
        assert not box.has_news(3)
        client.idle()  # mail after the check is IDLE's to announce
        try:
            rig.deliver(stranger(3))
            responses = client.idle_check(timeout=5)
        finally:
            client.idle_done()
        assert any(r[1:2] == (b"EXISTS",) for r in responses if isinstance(r, tuple))


def test_many_uids_are_flagged_and_moved_in_ranges_and_bounded_commands(
    rig_assistant: RigAssistant, proxy: ImapProxy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A settling names a second's worth of messages or more: runs go as ranges, and the
    lone UIDs left go in commands whose UID set keeps the bound (here 12 octets)."""
    from mailhelper.mail import uidset

    monkeypatch.setattr(uidset, "MAX_SET_OCTETS", 12)
    deliver_many(rig_assistant, [stranger(n) for n in range(30)])
    client = IMAPClient(rig_assistant.dovecot.host, proxy.port, ssl=False, timeout=10)
    client.login(rig_assistant.account.username, rig_assistant.account.password)
    with client:
        box = Mailbox(client)
        box.select("INBOX", readonly=False)
        proxy.reset()
        box.mark_handled(list(range(1, 21)))  # one run
        box.mark_handled([21, 23, 25, 27, 29])  # lone UIDs: "21,23,25,27" is 11 octets
        box.move([22, 24, 26, 28, 30], "Elsewhere")
        sets = [line.split()[3] for line in proxy.lines()
                if line.split()[2:3] in (["STORE"], ["MOVE"])]
        flagged = {int(uid) for uid, data in client.get_flags(client.search("ALL")).items()
                   if HANDLED_FLAG in data}
        remaining = client.search("ALL")

    assert sets == ["1:20", "21,23,25,27", "29", "22,24,26,28", "30"]
    assert flagged == set(range(1, 21)) | {21, 23, 25, 27, 29}
    assert sorted(remaining) == [*range(1, 22), 23, 25, 27, 29]
    assert len(read_folder(rig_assistant.dovecot, rig_assistant.account, "Elsewhere")) == 5
