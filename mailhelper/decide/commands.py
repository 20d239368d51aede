"""Commands by reply: the owner answers any mail from the assistant with one word.

SPEC.md "How a person uses it", 5. The command is the first line of the reply that is neither
empty nor quoted; its first word decides, case-insensitive, and the rest of the line and every
later line are ignored::

    >>> from zoneinfo import ZoneInfo
    >>> london = ZoneInfo("Europe/London")
    >>> now = datetime(2026, 11, 30, 14, 37, tzinfo=london)
    >>> parse_command("Done, thanks!\\n\\nOn Mon, Jane wrote:\\n> ...", now, london).name
    'done'
    >>> parse_command("snooze: 3 days", now, london).until.isoformat()
    '2026-12-03T14:37:00+00:00'

Rules where a reply could mean more than one thing:

* **The first word decides.** ``done? not sure`` is ``done``, ``cancel that, snooze 2 days`` is
  ``cancel``. The SPEC says the rest of the line is ignored, and a rule the owner can predict
  beats a guess at what a hesitant line meant. ``not done`` is no command (its first word is
  ``not``); the owner can always reply again.
* The word must stand alone: ``sending`` or ``done-ish`` are not ``send`` or ``done``.
  Trailing punctuation (``Done!``, ``done.``), a colon (``snooze: 3 days``), leading spaces,
  a byte-order mark, zero-width spaces and Markdown emphasis (``**done**``) are tolerated.
* ``snooze`` needs a time ahead of ``now`` (:func:`mailhelper.decide.timewords.read_when`, the same
  grammar as the tags, counting from ``now`` to the minute, in the owner's zone). The longest
  readable start of the rest counts, so ``snooze 3 days please`` works. Without a time, or with
  one that cannot be taken, it is ``unknown``, which gets the list of commands in answer;
  ``problem`` then says why (``snooze 2026-01-05``: that date has passed).
* Lines quoted with ``>`` are skipped, so a bottom-posted reply (attribution, quote, command)
  is read. Reading stops at an Outlook-style boundary (``-----Original Message-----``, a
  ``From:`` header block, a line of underscores), at a signature (``-- ``), and at an
  attribution line (``On ... wrote:``, also in German, French, Spanish, Italian, Dutch and
  Portuguese) not followed by ``>`` lines: below those lies the assistant's own mail unquoted,
  with its list of commands, and an empty reply must not run ``done`` from it. An empty reply
  is ``unknown``.
* ``send`` followed by words is the owner's own letter (:attr:`Command.text`): the rest of the
  ``send`` line and the lines below it, up to the quoted history, an attribution or a
  signature (``-- ``, "Sent from my phone"), with the owner's line breaks kept::

      >>> parse_command("send Hi Jane,\\n\\nThe 2nd works.\\n-- \\nSam", now, london).text
      'Hi Jane,\\n\\nThe 2nd works.'

* On the digest, each line names an item by its number (:func:`parse_numbered`):
  ``send 2``, ``done 3``, ``cancel 1``, ``snooze 4 3 days``, one per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import Literal

from mailhelper.decide.pause import pause_problem
from mailhelper.decide.timewords import DateOrder, read_when

CommandName = Literal["done", "send", "snooze", "decline", "cancel", "status", "help", "pause",
                      "resume", "unknown"]

#: One line per command, for the templates (receipts, reminders, the answer to ``help``),
#: then the words that go on a digest's lines and on an ask's first line.
COMMANDS_HELP = """\
done            the matter is settled: no more reminders (a thank-you still comes when due)
send            send the draft in this mail, or your own words on the lines below "send"
snooze <when>   remind me later: snooze 3 days, snooze monday, snooze 2026-12-01
decline         you did not take the offer up: I will still help you thank them
cancel          stop tracking this thread (a repeat: every time) and send nothing more
status          reply with the digest: open asks, offers, thanks due, favours to return
pause <when>    nothing goes out for you until then: pause until 6 April, pause 2 weeks
resume          end a pause: what it held comes the next morning
help            this list
<word> <N>      on the digest, the item's number after it: send 2, done 3, cancel 1
expect <N>      on an ask's first line: the yeses you expect, against those that come
every <when>    a repeat (address, subject or first line): every monday, every 3 months
note to self    a mail to me alone comes back to you then: helper+3days@"""

_SIMPLE: frozenset[str] = frozenset({"done", "send", "decline", "cancel", "status", "help",
                                     "resume"})
#: The word before a pause's end, in the languages the time grammar reads: "pause until
#: monday", "Pause bis 6. April", "pause jusqu'au 6 avril", "pause hasta el 6 de abril".
_UNTIL = re.compile(r"^(?:until|till|til|up\s+to|bis(?:\s+(?:zum|zur|am))?|jusqu['’]?\s*(?:au|à|a)"
                    r"|jusqu['’]?|hasta(?:\s+el)?)\b[\s:]*", re.IGNORECASE)

# Where the owner's own words end and the quoted original begins.
_ATTRIBUTION = re.compile(
    r"^(?:on\b.*\bwrote|am\b.*\bschrieb|le\b.*\ba\s+écrit|el\b.*\bescribió"
    r"|il\b.*\bha\s+scritto|op\b.*\bschreef|em\b.*\bescreveu)\s*:?\s*$",
    re.IGNORECASE,
)
_BOUNDARY = re.compile(
    r"^(?:-{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht|"
    r"message d'origine)\s*-{2,}|_{8,}|-- ?|(?:from|von|de|from\s*:)\s*:.*)$",
    re.IGNORECASE,
)
_INVISIBLE = str.maketrans({"\ufeff": None, "\u200b": None, "\u200e": None, "\u200f": None,
                            "\u00a0": " "})
# A hyphen glues words ("done-ish"); a dash with or without spaces separates ("done—thanks").
_FIRST_WORD = re.compile(r"^([a-z]+)(?=$|[\s.!?,:;)–—])[\s.!?,:;)\-–—]*(.*)$")
# "Sent from my iPhone", "Sent from Outlook for Android", "Envoyé de mon iPhone": a phone's
# sign-off, never part of the owner's letter.
_SENT_FROM = re.compile(r"^(?:sent from (?:my )?|envoyé de (?:mon )?|von meinem |"
                        r"enviado desde (?:mi )?|get outlook for )\S.{0,60}$", re.IGNORECASE)
_SEND_WORD = re.compile(r"^send(?=$|[\s.!?,:;)–—])[\s.!?,:;)\-–—]*", re.IGNORECASE)
#: The most words of a snooze time tried: "monday 9 am" is three, "el 3 de abril a las 10:30"
#: seven.
_MAX_WHEN_WORDS = 8


@dataclass(frozen=True)
class Command:
    """An owner's command. ``line`` is the line it was read from, as written (stripped);
    ``until`` is set for ``snooze`` and ``pause`` only; ``problem`` says why a ``snooze`` or
    ``pause`` whose time cannot be taken is ``unknown``."""

    name: CommandName
    until: datetime | None
    line: str
    problem: str | None = None
    #: ``send`` only: the owner's own words, to go instead of the draft ("" for the draft).
    text: str = ""


def parse_command(reply_text: str, now: datetime, zone: tzinfo, *,
                  default_time: time = time(9),
                  date_order: DateOrder | None = None) -> Command:
    """The command in the owner's reply (see the module docstring for the rules). Never raises.

        >>> from datetime import UTC
        >>> now = datetime(2026, 12, 1, 9, tzinfo=UTC)
        >>> parse_command("Thanks, will do", now, UTC)
        Command(name='unknown', until=None, line='Thanks, will do', problem=None, text='')
    """
    line = _command_line(reply_text)
    if line is None:
        return Command("unknown", None, "")
    match = _FIRST_WORD.match(line.lower().strip("*_~ \t"))
    if match is None:
        return Command("unknown", None, line)
    word, rest = match[1], match[2]
    if word == "send":
        return Command("send", None, line, text=own_words(reply_text))
    if word in _SIMPLE:
        return Command(word, None, line)  # type: ignore[arg-type]  # checked just above
    if word == "pause":
        return _pause(rest, line, now, zone, default_time, date_order)
    if word == "snooze":
        until, problem = _snooze_until(rest, now, zone, default_time, date_order)
        # In UTC: same-zone datetimes compare by wall time, wrong in the autumn overlap.
        if until is not None and until.astimezone(UTC) > now.astimezone(UTC):
            return Command("snooze", until, line)
        return Command("unknown", None, line,
                       problem or f'I could not read a time in "{line}" (try "snooze 3 days")')
    return Command("unknown", None, line)


def _pause(rest: str, line: str, now: datetime, zone: tzinfo, default_time: time,
           date_order: DateOrder | None) -> Command:
    """``pause <when>``: ``until`` is the pause's end; an end that cannot be taken (none, in
    the past, more than a year ahead: :func:`mailhelper.decide.pause.pause_problem`) is ``unknown``
    with the reason."""
    when = _UNTIL.sub("", rest.strip("*_~ \t"))
    until, problem = _snooze_until(when, now, zone, default_time, date_order)
    if until is not None:
        problem = pause_problem(until, now)
        if problem is None:
            return Command("pause", until, line)
    return Command("unknown", None, line,
                   problem or f'I could not read when the pause ends in "{line}" '
                              '(try "pause until monday" or "pause 2 weeks")')


def _own_lines(reply_text: str) -> list[str] | None:
    """The owner's own lines, from the command line on, right-stripped; None when there is
    no command line. They end where :func:`_command_line` would stop reading (quoted text,
    an attribution, an Outlook-style boundary, a signature) or at a phone's sign-off."""
    lines = [raw.rstrip() for raw in reply_text.translate(_INVISIBLE).splitlines()]
    first = _command_index(lines)
    if first is None:
        return None
    own = [lines[first].strip()]
    for index in range(first + 1, len(lines)):
        line = lines[index].strip()
        if (line.startswith(">") or _BOUNDARY.match(line) or _SENT_FROM.match(line)
                or _attribution_span([x.strip() for x in lines], index)):
            break
        own.append(lines[index])
    while own and not own[-1].strip():
        own.pop()
    return own


def own_words(reply_text: str) -> str:
    """The words the owner wrote after ``send`` (the rest of its line, then the next lines),
    quoted history and signature stripped, their line breaks kept; "" for a bare ``send``.

        >>> own_words("Send: Hi Bob,\\nSaturday suits me.\\n\\nOn Mon, X wrote:\\n> hi")
        'Hi Bob,\\nSaturday suits me.'
    """
    lines = _own_lines(reply_text)
    if not lines:
        return ""
    first = _SEND_WORD.sub("", lines[0].strip("*_~ \t"), count=1).strip()
    text = "\n".join([first, *lines[1:]]) if first else "\n".join(lines[1:])
    return text.strip("\n").rstrip()


def _command_line(reply_text: str) -> str | None:
    """The first line of the owner's own words, or None when there is none.

    Quoted lines are skipped, so a bottom-posted reply (attribution, ``>`` lines, then the
    command) is read too. But what follows an Outlook-style boundary, or an attribution not
    followed by ``>`` lines, is the original mail unquoted: the assistant's own mail lists
    the commands, so reading on there could run ``done`` from an empty reply. Stop instead.
    """
    lines = [raw.strip() for raw in reply_text.translate(_INVISIBLE).splitlines()]
    index = _command_index(lines)
    return None if index is None else lines[index]


def _command_index(lines: list[str]) -> int | None:
    """The index of the command line in ``lines`` (see :func:`_command_line`)."""
    stripped = [line.strip() for line in lines]
    index = 0
    while index < len(stripped):
        line = stripped[index]
        if not line or line.startswith(">"):
            index += 1
            continue
        if _BOUNDARY.match(line):
            return None
        span = _attribution_span(stripped, index)
        if span:
            following = next((later for later in stripped[index + span:] if later), "")
            if not following.startswith(">"):
                return None
            index += span
            continue
        return index
    return None


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines the attribution starting at ``index`` takes (0: none there).

    Mail clients wrap a long one: ``On Mon, 30 Nov 2026 at 09:00, Sam's assistant <`` then
    ``helper@example.com> wrote:``.
    """
    for span in (1, 2, 3):
        if index + span > len(lines):
            break
        if _ATTRIBUTION.match(" ".join(lines[index:index + span])):
            return span
    return 0


def _snooze_until(rest: str, now: datetime, zone: tzinfo, default_time: time,
                  date_order: DateOrder | None) -> tuple[datetime | None, str | None]:
    """(moment, None) for the longest readable start of ``rest`` (``3 days please`` -> three
    days from now); (None, why) when the longest start naming a time cannot be taken."""
    words = rest.strip("*_~ \t").split()[:_MAX_WHEN_WORDS]
    for end in range(len(words), 0, -1):
        reading = read_when(" ".join(words[:end]), now, zone, default_time=default_time,
                            date_order=date_order)
        # The longest start that names a time decides: "1 march 2026" in June is refused,
        # not read as "1 march" of next year.
        if reading.moment is not None or reading.problem is not None:
            return reading.moment, reading.problem
    return None, None


#: The commands a digest item takes by its number.
NUMBERED: frozenset[str] = frozenset({"done", "send", "snooze", "decline", "cancel"})
_NUMBERED_LINE = re.compile(r"^([a-z]+)[\s:]+#?(\d{1,4})\b[\s.!?,:;)\-–—]*(.*)$")


@dataclass(frozen=True)
class NumberedCommand:
    """One line of a reply to the digest: a command for the item numbered ``number``.
    ``problem`` set means the line could not be read: nothing is done for it."""

    name: CommandName
    number: int | None
    line: str
    until: datetime | None = None
    problem: str | None = None


def parse_numbered(reply_text: str, now: datetime, zone: tzinfo, *,
                   default_time: time = time(9),
                   date_order: DateOrder | None = None) -> tuple[NumberedCommand, ...]:
    """Every command line of a reply to the digest, in order: ``send 2``, ``done 3``,
    ``cancel 1``, ``snooze 4 3 days``, ``decline 5``, one per line, up to the quoted
    history or signature. Empty lines are skipped; any other line that is not such a
    command comes back with a ``problem`` (and is not acted on).

        >>> from datetime import UTC
        >>> now = datetime(2026, 12, 7, 9, tzinfo=UTC)
        >>> [(c.name, c.number) for c in parse_numbered("send 2\\nDone 3.\\n", now, UTC)]
        [('send', 2), ('done', 3)]
        >>> parse_numbered("snooze 4 3 days", now, UTC)[0].until.isoformat()
        '2026-12-10T09:00:00+00:00'
        >>> parse_numbered("done", now, UTC)[0].problem
        'which item? Write its number after the command, e.g. "done 2"'
    """
    lines = _own_lines(reply_text) or []
    commands = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        lowered = line.lower().strip("*_~ \t")
        match = _NUMBERED_LINE.match(lowered)
        if match is None or match[1] not in NUMBERED:
            word = _FIRST_WORD.match(lowered)
            if word is not None and word[1] in NUMBERED:
                commands.append(NumberedCommand(
                    "unknown", None, line,
                    problem=f'which item? Write its number after the command, e.g. '
                            f'"{word[1]} 2"'))
            else:
                commands.append(NumberedCommand(
                    "unknown", None, line,
                    problem="not a command I know (send, done, snooze, decline or cancel, "
                            "then the item's number)"))
            continue
        name, number, rest = match[1], int(match[2]), match[3]
        if name != "snooze":
            commands.append(NumberedCommand(name, number, line))  # type: ignore[arg-type]
            continue
        until, problem = _snooze_until(rest, now, zone, default_time, date_order)
        if until is not None and until.astimezone(UTC) > now.astimezone(UTC):
            commands.append(NumberedCommand("snooze", number, line, until))
        else:
            commands.append(NumberedCommand(
                "unknown", number, line,
                problem=problem or f'I could not read a time in "{line}" '
                                   f'(try "snooze {number} 3 days")'))
    return tuple(commands)
