"""The pause arithmetic (mailhelper.decide.pause) on a fixed clock: the release, the refusals, and
which held mails a release supersedes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailhelper.decide.commands import parse_command
from mailhelper.decide.pause import (
    MAX_PAUSE,
    new_pause,
    pause_problem,
    release_time,
    resumed,
)
from mailhelper.decide.release import superseded
from mailhelper.model.settings import OwnerTime, QuietHours, SendingSettings, Settings
from mailhelper.model.values import (
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Thread,
    ThreadState,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SAM = Address("sam@example.com", "Sam Rivera")
JANE = Address("jane@example.org", "Jane Doe")
BOB = Address("bob@example.net", "Bob Lee")
ANYTIME = SendingSettings(business_days=False, quiet_hours=None)
WINDOW = SendingSettings(business_days=True, quiet_hours=QuietHours(time(20), time(8)))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class TestRelease:
    @pytest.mark.parametrize(("end", "release"), [
        # Ends after the default time: the next morning.
        ("2026-12-17T14:37:00+00:00", "2026-12-18T09:00:00+00:00"),
        # Ends at the default time ("pause until monday"): then.
        ("2026-12-07T09:00:00+00:00", "2026-12-07T09:00:00+00:00"),
        # Ends before the default time: that morning.
        ("2026-12-07T06:00:00+00:00", "2026-12-07T09:00:00+00:00"),
    ])
    def test_the_first_default_time_at_or_after_the_end(self, end: str, release: str) -> None:
        got = release_time(datetime.fromisoformat(end), LONDON, time(9), ANYTIME)
        assert got.isoformat() == release

    def test_the_sending_window_moves_a_saturday_release_to_monday(self) -> None:
        friday_evening = datetime(2026, 12, 4, 18, tzinfo=LONDON)
        got = release_time(friday_evening, LONDON, time(9), WINDOW)
        assert got == datetime(2026, 12, 7, 9, tzinfo=LONDON)
        # A default time in the quiet hours: when the window opens.
        got = release_time(friday_evening, LONDON, time(7), WINDOW)
        assert got == datetime(2026, 12, 7, 8, tzinfo=LONDON)

    def test_in_the_owners_zone_and_across_the_spring_change(self) -> None:
        # New York springs forward on Sun 8 Mar 2026: 09:00 EDT is 13:00 UTC, not 14:00.
        end = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)
        got = release_time(end, NEW_YORK, time(9), ANYTIME)
        assert got.astimezone(UTC) == utc("2026-03-08T13:00:00")

    def test_an_owners_default_time(self) -> None:
        got = release_time(datetime(2026, 12, 7, 9, 30, tzinfo=BERLIN), BERLIN, time(7, 30),
                           ANYTIME)
        assert got == datetime(2026, 12, 8, 7, 30, tzinfo=BERLIN)


class TestRefusals:
    NOW = datetime(2026, 12, 3, 14, 37, tzinfo=UTC)

    def test_an_end_that_passed(self) -> None:
        assert pause_problem(self.NOW, self.NOW) == "that time has already passed"
        assert pause_problem(self.NOW - timedelta(minutes=1), self.NOW) is not None

    def test_at_most_a_year(self) -> None:
        assert pause_problem(self.NOW + MAX_PAUSE, self.NOW) is None
        problem = pause_problem(self.NOW + MAX_PAUSE + timedelta(minutes=1), self.NOW)
        assert problem == "a pause lasts at most a year: pick an end no later than 4 Dec 2027"

    @pytest.mark.parametrize(("line", "end"), [
        ("pause until 6 April", "2027-04-06T09:00:00+01:00"),
        ("Pause bis 6. April", "2027-04-06T09:00:00+01:00"),
        ("pause jusqu'au 6 avril", "2027-04-06T09:00:00+01:00"),
        ("pause 2 weeks", "2026-12-17T14:37:00+00:00"),
        ("pause until monday", "2026-12-07T09:00:00+00:00"),
        ("Pause: for a fortnight, thanks", "2026-12-17T14:37:00+00:00"),
    ])
    def test_the_command_reads_the_end_in_the_owners_zone(self, line: str, end: str) -> None:
        command = parse_command(line, self.NOW, LONDON)
        assert command.name == "pause"
        assert command.until is not None and command.until.isoformat() == end

    @pytest.mark.parametrize(("line", "problem"), [
        ("pause 2 years", "a pause lasts at most a year"),
        ("pause until 2026-12-01", "has already passed"),
        ("pause", "I could not read when the pause ends"),
        ("pause for a bit", "I could not read when the pause ends"),
    ])
    def test_refused_commands_say_why(self, line: str, problem: str) -> None:
        command = parse_command(line, self.NOW, LONDON)
        assert command.name == "unknown" and command.problem is not None
        assert problem in command.problem

    def test_resume_is_a_command(self) -> None:
        assert parse_command("Resume, I'm back", self.NOW, LONDON).name == "resume"


def settings(**extra: object) -> Settings:
    return Settings(owners=(SAM,), assistant=Address("helper@example.com"), sending=ANYTIME,
                    **extra)  # type: ignore[arg-type]


class TestPauseValues:
    NOW = datetime(2026, 12, 3, 14, 37, tzinfo=UTC)

    def test_a_new_pause_and_a_longer_one_keep_the_start(self) -> None:
        first = new_pause(SAM.email, self.NOW + timedelta(days=7), self.NOW, settings())
        assert first.since == self.NOW
        assert first.release == utc("2026-12-11T09:00:00")
        later = self.NOW + timedelta(days=2)
        second = new_pause(SAM.email, later + timedelta(days=14), later, settings(), first)
        assert second.since == self.NOW and second.release == utc("2026-12-20T09:00:00")

    def test_resume_releases_the_next_morning_in_the_owners_zone(self) -> None:
        owners = settings(owner_times=(OwnerTime(SAM.email, NEW_YORK, time(8)),))
        pause = new_pause(SAM.email, self.NOW + timedelta(days=30), self.NOW, owners)
        back = resumed(pause, datetime(2026, 12, 5, 15, tzinfo=UTC), owners)
        assert back.until == datetime(2026, 12, 5, 15, tzinfo=UTC)
        assert back.release == datetime(2026, 12, 6, 8, tzinfo=NEW_YORK)
        assert pause.holds(back.until) and not back.holds(back.release)


def ask(created: datetime, **extra: object) -> Thread:
    values: dict[str, object] = {"counterparts": (JANE,), **extra}
    return Thread(id=1, kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro to Acme",
                  owner=SAM, created=created, root_message_id="ask@example.com",
                  last_owner_activity=created, **values)  # type: ignore[arg-type]


class TestSuperseded:
    """An ask on Mon 7 Dec 09:00 UTC: reminders Thu 10 and Mon 14 Dec, closing note Mon 21."""

    CREATED = utc("2026-12-07T09:00:00")

    def test_one_reminder_in_the_pause_is_not_superseded(self) -> None:
        skipped, _ = superseded(ask(self.CREATED), (), settings(), utc("2026-12-12T09:00:00"))
        assert skipped == []

    def test_two_reminders_in_the_pause_send_the_second(self) -> None:
        skipped, after = superseded(ask(self.CREATED), (), settings(), utc("2026-12-16T09:00:00"))
        assert [a.key.rsplit("/", 1)[-1] for a in skipped] == ["1"]
        assert skipped[0].status is ActionStatus.SKIPPED
        assert after.state is ThreadState.OPEN

    def test_a_pause_past_the_closing_note_sends_only_the_closing_note(self) -> None:
        skipped, after = superseded(ask(self.CREATED), (), settings(), utc("2027-01-04T09:00:00"))
        assert [a.kind for a in skipped] == [ActionKind.FOLLOW_UP, ActionKind.FOLLOW_UP]
        assert after.state is ThreadState.OPEN  # the closing note goes, and expires it then

    def test_a_thank_you_is_never_superseded(self) -> None:
        answered = ask(self.CREATED, counterparts=(JANE, BOB),
                       answers=(Answer(JANE.email, utc("2026-12-08T10:00:00"), True),))
        skipped, _ = superseded(answered, (), settings(), utc("2026-12-16T09:00:00"))
        # Bob is silent: his reminders are superseded down to one; Jane's thank-you draft
        # stays, whatever its time.
        assert [a.kind for a in skipped] == [ActionKind.FOLLOW_UP]
        assert all(a.kind is not ActionKind.THANK_YOU_DRAFT for a in skipped)
