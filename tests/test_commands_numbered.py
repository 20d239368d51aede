"""`send` with the owner's own words, and the digest's numbered commands (pure parsing)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailhelper.decide.commands import own_words, parse_command, parse_numbered

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("reply", "words"), [
    ("send", ""),
    ("Send!", ""),
    ("send\n\nOn Mon, 7 Dec 2026, Sam's assistant <helper@example.com> wrote:\n> send  send it",
     ""),
    ("send Hi Bob, Saturday works.", "Hi Bob, Saturday works."),
    ("send: Hi Bob,\n\nSaturday works.\nBring the van.\n\n-- \nSam Rivera\n555 0100",
     "Hi Bob,\n\nSaturday works.\nBring the van."),
    ("send\nHi Jane,\n  - a list\n  - kept as written\n\nSent from my iPhone\n",
     "Hi Jane,\n  - a list\n  - kept as written"),
    ("send\nThanks José!\n\nOn Mon, Sam's assistant wrote:\n> Hi Sam,\n> the draft",
     "Thanks José!"),
    ("send\nThanks!\n-----Original Message-----\nFrom: helper@example.com\n", "Thanks!"),
    ("> quoted first\nsend Thanks a lot", "Thanks a lot"),
])
def test_own_words_after_send(reply: str, words: str) -> None:
    command = parse_command(reply, NOW, UTC)
    assert command.name == "send"
    assert command.text == words == own_words(reply)


def test_a_word_that_merely_starts_with_send_is_not_send() -> None:
    assert parse_command("sending it now", NOW, UTC).name == "unknown"


def test_numbered_lines_each_name_an_item() -> None:
    lines = parse_numbered("send 2\nDone 3.\n\ncancel #1\nsnooze 4 3 days\ndecline 5\n"
                           "\nOn Mon, Sam's assistant wrote:\n> done 9", NOW, UTC)
    assert [(c.name, c.number, c.problem) for c in lines] == [
        ("send", 2, None), ("done", 3, None), ("cancel", 1, None), ("snooze", 4, None),
        ("decline", 5, None)]
    assert lines[3].until == datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("line", "problem"), [
    ("done", 'which item? Write its number after the command, e.g. "done 2"'),
    ("snooze 4", 'I could not read a time in "snooze 4" (try "snooze 4 3 days")'),
    ("snooze 4 whenever", 'I could not read a time in "snooze 4 whenever" '
                          '(try "snooze 4 3 days")'),
    ("thanks 2", "not a command I know (send, done, snooze, decline or cancel, then the "
                 "item's number)"),
    ("done two", 'which item? Write its number after the command, e.g. "done 2"'),
])
def test_a_line_that_cannot_be_read_says_why_and_names_no_command(line: str,
                                                                   problem: str) -> None:
    [command] = parse_numbered(line, NOW, UTC)
    assert command.name == "unknown" and command.problem == problem


def test_a_bad_line_does_not_stop_the_good_ones() -> None:
    lines = parse_numbered("done 1\nfrobnicate 2\nsend 3", NOW, UTC)
    assert [c.name for c in lines] == ["done", "unknown", "send"]
