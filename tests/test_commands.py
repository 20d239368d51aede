"""Commands by reply: the first non-quoted line of the owner's answer, first word decides."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.decide.commands import COMMANDS_HELP, Command, parse_command

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 30, 14, 37, 21, tzinfo=LONDON)  # a Monday


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON, fold=fold)


def command(text: str, now: datetime = NOW) -> Command:
    return parse_command(text, now, LONDON)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("done", "done"), ("Done!", "done"), ("done.", "done"), ("DONE", "done"),
        ("   done", "done"), ("\ufeffdone", "done"), ("\u200bDone", "done"),
        ("**done**", "done"), ("Done, thanks a lot", "done"), ("done - thanks", "done"),
        ("done—thanks", "done"), ("done? not sure", "done"),  # the first word decides
        ("send", "send"), ("Send it please", "send"), ("send.", "send"),
        ("decline", "decline"), ("Decline, but thank them", "decline"),
        ("cancel", "cancel"), ("Cancel!", "cancel"), ("cancel that, snooze 2 days", "cancel"),
        ("status", "status"), ("Status?", "status"),
        ("help", "help"), ("Help?", "help"), ("HELP me", "help"),
    ],
)
def test_each_command_and_its_variants(text: str, name: str) -> None:
    result = command(text)
    assert (result.name, result.until, result.line) == (name, None, text.strip("\ufeff\u200b "))


@pytest.mark.parametrize(
    "text",
    [
        "", "   \n\n", "Thanks, will do", "not done yet", "I'm done", "sending now",
        "done-ish", "undone", "helpful", "statuses", "Sent from my iPhone", "?", "👍",
        "snooze", "snooze blah", "snooze: ", "snooze 2026-01-01",  # past: nothing to snooze to
        "snoozing 3 days",
    ],
)
def test_anything_else_is_unknown(text: str) -> None:
    result = command(text)
    assert (result.name, result.until) == ("unknown", None)


def test_unknown_keeps_the_line_for_the_answer() -> None:
    assert command("Thanks, will do\nSam").line == "Thanks, will do"


@pytest.mark.parametrize(
    ("text", "until"),
    [
        ("snooze 3 days", london(2026, 12, 3, 14, 37)),  # from now, to the minute
        ("Snooze: 3 days", london(2026, 12, 3, 14, 37)),
        ("snooze for a week", london(2026, 12, 7, 14, 37)),
        ("snooze 2h", london(2026, 11, 30, 16, 37)),
        ("snooze monday", london(2026, 12, 7, 9, 0)),
        ("snooze until Friday 3pm", london(2026, 12, 4, 15, 0)),
        ("snooze 2026-12-01", london(2026, 12, 1, 9, 0)),
        ("snooze 3 business days", london(2026, 12, 3, 14, 37)),
        ("snooze 3 days please", london(2026, 12, 3, 14, 37)),  # the longest readable start
        ("snooze dec 3, thanks!", london(2026, 12, 3, 9, 0)),
        ("SNOOZE next week", london(2026, 12, 7, 9, 0)),
    ],
)
def test_snooze_names_a_time_ahead(text: str, until: datetime) -> None:
    result = command(text)
    assert (result.name, result.until) == ("snooze", until)


def test_snooze_counts_from_when_the_command_is_read() -> None:
    later = london(2026, 12, 2, 10, 5)
    assert command("snooze 2 days", later).until == london(2026, 12, 4, 10, 5)


class TestQuotedText:
    def test_quoted_lines_are_skipped(self) -> None:
        assert command("> Your ask to Jane is unanswered.\n>\n\ndone").name == "done"

    def test_an_empty_reply_above_the_quote_is_no_command(self) -> None:
        text = "\n\nOn Mon, 30 Nov 2026 at 09:00, Sam's assistant wrote:\n> done  the matter ...\n"
        assert command(text) == Command("unknown", None, "")

    def test_a_bottom_posted_reply_is_read(self) -> None:
        text = "On Mon, 30 Nov 2026, Sam's assistant wrote:\n> Reminder...\n\nsnooze friday"
        assert command(text).until == london(2026, 12, 4, 9, 0)

    def test_a_wrapped_attribution_line(self) -> None:
        text = ("On Mon, 30 Nov 2026 at 09:00, Sam's assistant <\n"
                "helper@example.com> wrote:\n> Reminder\n\ndone")
        assert command(text).name == "done"

    @pytest.mark.parametrize("text", [
        # Clients that do not quote with ">" leave the assistant's own mail, with its list of
        # commands, as plain text under the reply: none of it may be read as a command.
        "On Mon, 30 Nov 2026, Sam's assistant wrote:\ndone  the matter is settled",
        "-----Original Message-----\nFrom: Sam's assistant\n\ndone",
        "________________________________\nFrom: Sam's assistant\nSent: Monday\n\ndone",
        "From: Sam's assistant <helper@example.com>\nSent: Monday\n\ndone",
        "Am Montag, 30. November 2026 schrieb Sam's assistant:\ndone",
        "Le lundi 30 novembre 2026, Sam's assistant a écrit :\ndone",
        "-- \nSam Rivera\ndone",
    ])
    def test_the_unquoted_original_is_never_read(self, text: str) -> None:
        assert command(text).name == "unknown"

    def test_the_rest_after_the_command_is_ignored(self) -> None:
        assert command("done\ncancel\nsnooze 3 days").name == "done"


def test_the_help_text_has_a_line_per_command() -> None:
    lines = COMMANDS_HELP.splitlines()
    assert [line.split()[0] for line in lines] == [
        "done", "send", "snooze", "decline", "cancel", "status", "pause", "resume", "help",
        "<word>", "expect", "every", "note"]
    # Every example in the help text is itself understood.
    for example in ("snooze 3 days", "snooze monday", "snooze 2026-12-01", "pause until 6 April",
                    "pause 2 weeks", "done 3", "cancel 1"):
        assert example in COMMANDS_HELP
        name = example.split()[0]
        assert parse_command(example, datetime(2026, 11, 1, tzinfo=UTC), UTC).name == name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_command_never_raises(text: str) -> None:
    result = command(text)
    assert result.name in ("done", "send", "snooze", "decline", "cancel", "status", "help",
                           "unknown")
    assert (result.until is not None) == (result.name == "snooze")
