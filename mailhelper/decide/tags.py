"""The tag on an owner's mail: what kind of thread it starts (ask or offer) and any timing.

SPEC.md "How a person uses it", 3. A tag is read from, in this order, and the first place that
holds a tag decides the kind; when it names no time, a time from a later place is used
(``helper+offer@`` with a first line ``remind monday 9am``):

1. **plus-address**: ``helper+offer@``, ``helper+ask@``, ``helper+5d@``, ``helper+offer+2d@``,
   ``helper+monday@``, ``helper+next-monday@`` among To, Cc, Bcc and Delivered-To, where the
   part before the ``+`` and the domain are the assistant's. Everything after the ``+`` was
   meant as a tag, so what cannot be read is reported in ``unknown`` (``helper+blah@``).
2. **subject**: ``[offer]``, ``[5d]``, ``[offer 2d]``, ``[ask, follow up friday]`` anywhere in
   the subject, and ``#offer`` (a hash tag takes a tag word only: ``#3d printing`` is not a
   reminder). Subjects carry brackets of their own (``[EXTERNAL]``, list names), so a bracket
   or hash word that is not a tag is ignored, unless it is one word that looks like a misspelt
   tag (``[ofer]``, ``#aks``, ``[3 dyas]``): that is reported in ``unknown``.
3. **first body line** (the owner's own words above any forward): ``offer``, ``Ask.``,
   ``follow up in 5 days``, ``remind monday 9am``, ``offer, follow up in 2 days``. The whole
   line must read as a tag; prose (``Hi Jane, could you...``) is no tag and no error. On this
   line a time needs a tag word or ``follow up``/``remind`` before it (a mail may well open
   with ``Tomorrow``), and a line ending in ``?`` is a question, not a tag.

A tag is tag words (``tags.ask``, ``tags.offer`` from the config, case-insensitive), the filler
``follow up``/``remind (me)``/``reminder``, and at most one time phrase
(:func:`mailhelper.decide.timewords.read_when`), in parts separated by ``,`` ``;`` ``+`` `` - ``
``:`` or ``and``. A tag naming both kinds is not understood.

    >>> from zoneinfo import ZoneInfo
    >>> from mailhelper.model.settings import Tags
    >>> london = ZoneInfo("Europe/London")
    >>> now = datetime(2026, 11, 30, 9, tzinfo=london)
    >>> mail = Mail("m1", cc=(Address("helper+offer+2d@example.com"),))
    >>> reading = read_tag(mail, Address("helper@example.com"), Tags(), now, london)
    >>> reading.kind, reading.tag, reading.when.day, reading.source
    (<Kind.OFFER: 'offer'>, 'offer+2d', 2, 'plus')
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, tzinfo
from typing import Literal

from mailhelper.decide.timewords import DateOrder, describe, mentions_time, read_repeat, read_when
from mailhelper.model.kinds import KINDS
from mailhelper.model.settings import Tags
from mailhelper.model.values import Address, Kind, Mail

Source = Literal["plus", "subject", "first_line"]


@dataclass(frozen=True)
class TagReading:
    """What the tag said. All None when the mail carries no tag.

    ``tag`` is the tag as found (``offer+2d``, ``[offer]``, ``follow up in 5 days``), also when
    it could not be understood; ``unknown`` is then set to what the owner is told about
    (``helper+blah@``, ``[ofer]``), ``problem`` to the sentence they are told, and
    ``kind``/``when`` hold whatever part was understood. ``whens`` holds every time of several
    tagged addresses (``helper+3days@`` and ``helper+1week@``), earliest first; ``when`` is the
    first of them. ``repeat`` is the RRULE of a repeat (``every monday``,
    :func:`mailhelper.decide.timewords.read_repeat`); ``when`` is then its first occurrence.
    """

    kind: Kind | None = None
    tag: str | None = None
    when: datetime | None = None
    source: Source | None = None
    unknown: str | None = None
    problem: str | None = None
    whens: tuple[datetime, ...] = ()
    repeat: str | None = None


NO_TAG = TagReading()

# Separators between the parts of one tag: "offer, follow up in 2 days", "offer+2d".
_PARTS = re.compile(r"\s*(?:[,;+|&]|\s[-–—]\s|:(?=\s|$)|\band\b)\s*")
_FILLER = re.compile(
    r"^(?:please\s+|bitte\s+|merci\s+de\s+)?(?:follow[\s-]?up|remind(?:\s+me)?|reminder"
    r"|nudge(?:\s+me)?|erinnere?(?:\s+mich)?|erinnerung|wiedervorlage|rappelle(?:[\s-]moi)?"
    r"|rappel|relance(?:[\s-]moi)?|recu[ée]rdame|recordatorio|recordar(?:me)?"
    # A repeating ask: "check in every 3 months", "keep in touch every month".
    r"|check[\s-]?in|keep\s+in\s+touch)(?:\s+|$)"
)
# A bracket that opens like a time and speaks of time ("[in 1 mnth]", "[next tusday 9am]") was
# meant as one; "[In progress]" or "[Next steps]" are not.
_TIME_OPENING = re.compile(r"^(?:in|next|every|dans|en|um|tomorrow|today)\b", re.IGNORECASE)
_BRACKET = re.compile(r"\[([^\[\]]{1,60})\]")
# "#offer", but not "C#", "&#39;" or "##".
_HASH = re.compile(r"(?<![\w#&])#([^\W_][\w-]{0,30})")
_UNIT_WORDS = ("minutes", "minute", "hours", "hour", "days", "day", "weeks", "week")
# Only the match matters when stripping a subject, not the moment: any fixed clock will do.
_REFERENCE_NOW = datetime(2000, 1, 3, tzinfo=UTC)


@dataclass(frozen=True)
class _Meaning:
    kind: Kind | None
    when: datetime | None
    problem: str | None = None
    repeat: str | None = None


@dataclass(frozen=True)
class _Clock:
    """What reading a time needs: the clock, the owner's zone and default time, date order."""

    now: datetime
    zone: tzinfo
    default_time: time = time(9)
    date_order: DateOrder | None = None


def read_tag(mail: Mail, assistant: Address, tags: Tags, now: datetime, zone: tzinfo, *,
             default_time: time = time(9), date_order: DateOrder | None = None) -> TagReading:
    """The tag of ``mail`` (see the module docstring for the places and the grammar).

    ``now`` is the clock that relative times (``5d``, ``monday``) count from, in ``zone`` (the
    owner's), with ``default_time`` for a day named without a time. Never raises. A tag meant
    as a time that cannot be taken (a date past, ``3/4`` without ``date_order``, a first line
    ``remind me blursday``) comes back with ``unknown`` and ``problem`` set: never dropped.

        >>> from zoneinfo import ZoneInfo
        >>> from mailhelper.model.settings import Tags
        >>> utc = ZoneInfo("UTC")
        >>> mail = Mail("m1", subject="Intro to Acme", text="Offer, follow up in 2 days\\n\\nHi")
        >>> r = read_tag(mail, Address("helper@example.com"), Tags(), datetime(2026, 1, 5, 9,
        ...              tzinfo=utc), utc)
        >>> r.kind.value, r.when.isoformat(), r.source
        ('offer', '2026-01-07T09:00:00+00:00', 'first_line')
    """
    words = _tag_words(tags)
    clock = _Clock(now, zone, default_time, date_order)
    readings: list[TagReading] = []
    plus = _plus_tags(mail.recipients, assistant)
    if plus:
        readings.append(_merge_plus([_read_plus(tag, shown, words, clock)
                                     for tag, shown in plus]))
    subject = _read_subject(mail.subject, words, clock)
    if subject is not None:
        readings.append(subject)
    readings.append(_read_first_line(mail.text, words, clock))
    first = readings[0]
    if first.when is None and first.tag is not None:
        # helper+offer@ with "remind monday 9am" on the first line: the kind comes from the
        # first place, a time the first place does not give from the next one that does.
        later = next((r for r in readings[1:] if r.when is not None and not r.unknown), None)
        if later is not None:
            return replace(first, when=later.when, whens=later.whens or _one(later.when),
                           repeat=later.repeat)
        unread = next((r for r in readings[1:] if r.unknown), None)
        if unread is not None and not first.unknown:
            # helper+offer@ with "remind me blursday": the kind is clear, the time is not.
            return replace(first, unknown=unread.unknown, problem=unread.problem)
    if first.when is not None and not first.whens:
        return replace(first, whens=(first.when,))
    return first


def _one(when: datetime | None) -> tuple[datetime, ...]:
    return () if when is None else (when,)


def subject_without_tag(subject: str, tags: Tags | None = None) -> str:
    """The subject for display, without the tags :func:`read_tag` would read in it.

    Brackets and hash words that are not tags (``[EXTERNAL]``, a misspelt ``[ofer]``) stay.
    ``tags`` defaults to the default tag words (``ask``, ``offer``).

        >>> subject_without_tag("Fwd: [offer] Intro to Acme #ask")
        'Fwd: Intro to Acme'
        >>> subject_without_tag("[EXTERNAL] Intro to Acme [5d]")
        '[EXTERNAL] Intro to Acme'
    """
    words = _tag_words(tags or Tags())
    clock = _Clock(_REFERENCE_NOW, UTC)

    def bracket(match: re.Match[str]) -> str:
        meaning = _interpret([match[1]], words, clock)
        return " " if meaning is not None and meaning.problem is None else match[0]

    def hashtag(match: re.Match[str]) -> str:
        return " " if match[1].lower() in words else match[0]

    text = _HASH.sub(hashtag, _BRACKET.sub(bracket, subject))
    text = " ".join(text.split())
    # "Intro to Acme - [offer]" would otherwise keep a dangling dash.
    return re.sub(r"(?:\s+[-–—|:])+$", "", text).strip()


def _tag_words(tags: Tags) -> dict[str, Kind]:
    words: dict[str, Kind] = {}
    for kind, spec in KINDS.items():
        if spec.tag_words is None:
            continue
        configured: tuple[str, ...] = getattr(tags, spec.tag_words)
        for word in configured:
            normal = " ".join(word.lower().split())
            if normal:
                words.setdefault(normal, kind)
    return words


def _plus_tags(recipients: Iterable[Address], assistant: Address) -> list[tuple[str, str]]:
    """(tag, local part as shown) of each recipient that is the assistant plus a tag, in
    header order (To, Cc, Bcc, then the envelope), each tag once.

    Matching on the assistant's whole local part followed by ``+`` also covers an assistant
    that itself lives at a plus address (``sam+helper@``, tag ``sam+helper+offer@``).
    """
    own_local, _, own_domain = assistant.email.lower().rpartition("@")
    found: dict[str, str] = {}
    for address in recipients:
        local, _, domain = address.email.lower().rpartition("@")
        if domain == own_domain and local.startswith(own_local + "+"):
            tag = local[len(own_local) + 1:]
            if tag.strip("+"):
                found.setdefault(tag, local)
    return list(found.items())


def _merge_plus(readings: Sequence[TagReading]) -> TagReading:
    """Several tagged addresses on one mail: each names a time; the kinds must agree."""
    if len(readings) == 1:
        return readings[0]
    unread = next((r for r in readings if r.unknown), None)
    if unread is not None:
        return unread
    tag = ", ".join(r.tag or "" for r in readings)
    kinds = {r.kind for r in readings if r.kind is not None}
    if len(kinds) > 1:
        return TagReading(None, tag, None, "plus", unknown=tag,
                          problem=f"the tagged addresses ({tag}) name both an ask and an offer")
    if any(r.repeat for r in readings):
        return TagReading(None, tag, None, "plus", unknown=tag,
                          problem=f"the tagged addresses ({tag}) name a repeat and another "
                                  f"time: a repeat goes alone")
    whens = tuple(sorted({r.when for r in readings if r.when is not None}))
    return TagReading(next(iter(kinds), None), tag, whens[0] if whens else None, "plus",
                      whens=whens)


def _read_plus(tag: str, shown: str, words: dict[str, Kind], clock: _Clock) -> TagReading:
    parts = [part for part in tag.split("+") if part]
    meaning = _interpret(parts, words, clock, spaced=True)
    if meaning is None or meaning.problem is not None:
        partial = _partial(parts, words, clock)
        why = (f'the time in "{shown}@" cannot be used: {meaning.problem}'
               if meaning is not None and meaning.problem else None)
        return TagReading(partial.kind, tag, partial.when, "plus", unknown=f"{shown}@",
                          problem=why)
    return TagReading(meaning.kind, tag, meaning.when, "plus", repeat=meaning.repeat)


def _partial(parts: Sequence[str], words: dict[str, Kind], clock: _Clock) -> _Meaning:
    """What the readable parts of an unreadable plus tag say: ``offer`` in ``offer+blah``."""
    readable = [m for part in parts if (m := _interpret([part], words, clock, spaced=True))
                and m.problem is None]
    kinds = {m.kind for m in readable if m.kind}
    whens = [m.when for m in readable if m.when]
    return _Meaning(kinds.pop() if len(kinds) == 1 else None, whens[0] if len(whens) == 1 else None)


def _read_subject(subject: str, words: dict[str, Kind], clock: _Clock) -> TagReading | None:
    found: list[tuple[int, str, _Meaning]] = []
    attempts: list[tuple[int, str]] = []
    refused: list[tuple[int, str, str]] = []
    for match in _BRACKET.finditer(subject):
        meaning = _interpret([match[1]], words, clock)
        if meaning is not None and meaning.problem is not None:
            refused.append((match.start(), match[0], meaning.problem))
        elif meaning is not None:
            found.append((match.start(), match[0], meaning))
        elif _looks_like_a_tag(match[1], words) or (
                _TIME_OPENING.match(match[1].strip()) and mentions_time(match[1])):
            attempts.append((match.start(), match[0]))
    for match in _HASH.finditer(subject):
        kind = words.get(match[1].lower())
        if kind is not None:
            found.append((match.start(), match[0], _Meaning(kind, None)))
        elif _looks_like_a_tag(match[1], words, times=False):
            attempts.append((match.start(), match[0]))
    if refused:
        _, raw, why = min(refused)
        return TagReading(None, raw, None, "subject", unknown=raw,
                          problem=f'the time in the subject tag "{raw}" cannot be used: {why}')
    if found:
        found.sort(key=lambda item: item[0])
        text = " ".join(raw for _, raw, _ in found)
        merged = _merge([meaning for _, _, meaning in found])
        if merged is None:
            return TagReading(None, text, None, "subject", unknown=text)
        return TagReading(merged.kind, text, merged.when, "subject", repeat=merged.repeat)
    if attempts:
        attempts.sort()
        raw = attempts[0][1]
        return TagReading(None, raw, None, "subject", unknown=raw,
                          problem=_not_read(f"the subject tag {raw}", raw[1:-1], words, clock))
    return None


def _read_first_line(text: str, words: dict[str, Kind], clock: _Clock) -> TagReading:
    line = next((line.strip() for line in text.replace("\ufeff", "").splitlines()
                 if line.strip()), "")
    # A tag is a few words; a long line is prose and not worth the regexes.
    if not line or len(line) > 100 or line.endswith("?"):
        return NO_TAG
    meaning = _interpret([line], words, clock, bare_time=False)
    if meaning is not None and meaning.problem is None:
        return TagReading(meaning.kind, line, meaning.when, "first_line",
                          repeat=meaning.repeat)
    # "remind me blursday", "erinnere mich am 3/4": meant as a time instruction, so it is
    # reported, never dropped. Other prose is no tag and no error.
    lowered = " ".join(line.lower().split())
    filler = _FILLER.match(lowered)
    rest = lowered[filler.end():].strip(" .!:") if filler else ""
    # "Follow up on the intro we discussed" opens many a mail: only words that speak of
    # time ("remind me blursday at 9am", "erinnere mich nächsten Dienstag früh") were meant
    # as a time instruction.
    if not rest or not mentions_time(rest):
        return NO_TAG
    if meaning is not None and meaning.problem is not None:
        why = f'the time in your first line "{line}" cannot be used: {meaning.problem}'
    else:
        why = _not_read(f'your first line "{line}"', rest, words, clock)
    return TagReading(None, line, None, "first_line", unknown=line, problem=why)


def _not_read(what: str, text: str, words: dict[str, Kind], clock: _Clock) -> str:
    """The sentence for a tag meant as a time that cannot be read, with the closest reading:
    the longest run of its words that does name a time."""
    sentence = f"I could not read the time in {what}"
    tokens = text.strip(" .!:").split()[:10]
    for size in range(len(tokens), 0, -1):
        for start in range(0, len(tokens) - size + 1):
            span = " ".join(tokens[start:start + size])
            reading = read_when(span, clock.now, clock.zone, default_time=clock.default_time,
                                date_order=clock.date_order)
            if reading.moment is not None:
                return (f'{sentence}; the closest I can make of it is "{span}", '
                        f"{describe(reading.moment, clock.zone, clock.now)}")
    return sentence


def _interpret(chunks: Sequence[str], words: dict[str, Kind], clock: _Clock, *,
               spaced: bool = False, bare_time: bool = True) -> _Meaning | None:
    """The meaning of a whole tag, or None unless every part of it is understood.

    ``spaced``: also try ``-``, ``_`` and ``.`` as spaces (a plus address has no spaces, but
    ``2026-12-01`` keeps its dashes, so the part as written is tried first).
    ``bare_time``: a time phrase alone is a tag (not so on a first body line).
    A part that names a time which cannot be taken gives a meaning with ``problem`` set.
    """
    parts = [part for chunk in chunks for part in _PARTS.split(chunk.strip().rstrip(".!"))
             if part.strip()]
    if not bare_time and not spaced and not any(_introduces(part, words) for part in parts):
        # Without a tag word or "follow up"/"remind" a first line is never a tag (see
        # _interpret_parts), whatever time it names: most mail opens "Hi Jane," and this
        # answers for it without the time reader's regular expressions.
        return None
    return _interpret_parts(parts, words, clock, spaced=spaced, bare_time=bare_time)


def _interpret_parts(parts: Sequence[str], words: dict[str, Kind], clock: _Clock, *,
                     spaced: bool, bare_time: bool) -> _Meaning | None:
    """:func:`_interpret` of a tag already split into its non-blank parts."""
    meanings: list[_Meaning] = []
    introduced = False  # a tag word or "follow up"/"remind" came with the time
    for part in parts:
        read = _interpret_part(part, words, clock)
        if read is None and spaced:
            read = _interpret_part(" ".join(re.sub(r"[-_.]", " ", part).split()),
                                   words, clock)
        if read is None:
            return None
        meanings.append(read[0])
        introduced = introduced or read[1]
    problem = next((m.problem for m in meanings if m.problem), None)
    if problem is not None:
        return _Meaning(None, None, problem) if bare_time or introduced else None
    merged = _merge(meanings)
    if merged is None or (merged.kind is None and merged.when is None):
        return None
    if not bare_time and not introduced:
        return None
    return merged


def _opening(part: str, words: dict[str, Kind]) -> tuple[Kind | None, bool, str]:
    """(kind, introduced, rest) of a tag's part: its tag word's kind, whether it opens with a
    tag word or ``follow up``/``remind``, and the rest, the time it may name."""
    rest = " ".join(part.lower().split()).strip(" .!:")
    kind = None
    for word in sorted(words, key=len, reverse=True):
        if rest == word or rest.startswith(word + " "):
            kind, rest = words[word], rest[len(word):].strip()
            break
    filler = _FILLER.match(rest)
    if filler:
        rest = rest[filler.end():]
    return kind, kind is not None or filler is not None, rest


def _introduces(part: str, words: dict[str, Kind]) -> bool:
    return _opening(part, words)[1]


def _interpret_part(part: str, words: dict[str, Kind],
                    clock: _Clock) -> tuple[_Meaning, bool] | None:
    """(meaning, introduced) of ``offer``, ``offer 2d``, ``follow up in 5 days``, ``5d``.

    ``introduced``: the part has a tag word or ``follow up``/``remind``, not just a time.
    """
    kind, introduced, rest = _opening(part, words)
    if not rest:
        # Filler alone ("follow up") says nothing, but it is part of a tag and harmless.
        return (_Meaning(kind, None), True) if introduced else None
    reading = read_when(rest, clock.now, clock.zone, default_time=clock.default_time,
                        date_order=clock.date_order)
    if reading.problem is not None:
        return _Meaning(kind, None, reading.problem), introduced
    if reading.moment is not None:
        return _Meaning(kind, reading.moment), introduced
    repeat = read_repeat(rest, clock.now, clock.zone, default_time=clock.default_time,
                         date_order=clock.date_order)
    if repeat.problem is not None:
        return _Meaning(kind, None, repeat.problem), introduced
    if repeat.rule is not None:
        return _Meaning(kind, repeat.first, repeat=repeat.rule), introduced
    return None


def _merge(meanings: Sequence[_Meaning]) -> _Meaning | None:
    """One kind and one time (or repeat) at most; ``ask`` with ``offer``, or two times, is
    not a tag."""
    kinds = {m.kind for m in meanings if m.kind is not None}
    whens = [m.when for m in meanings if m.when is not None]
    repeats = [m.repeat for m in meanings if m.repeat is not None]
    if len(kinds) > 1 or len(whens) > 1 or len(repeats) > 1:
        return None
    return _Meaning(next(iter(kinds), None), whens[0] if whens else None,
                    repeat=repeats[0] if repeats else None)


def _looks_like_a_tag(text: str, words: dict[str, Kind], *, times: bool = True) -> bool:
    """A single word near a tag word (``ofer``, ``aks``) or a misspelt duration (``3 dyas``).

    Only single words count: "[Ask the experts]" is a list name, not a bad tag. A word that
    contains a tag word (``[task]``, ``[offers]``) is another word, not a misspelling.
    """
    candidate = text.strip().lower()
    if not candidate or (" " in candidate and not re.fullmatch(r"\d{1,4} [a-z]+", candidate)):
        return False
    # 0.66 lets in a swapped or changed letter of a three-letter word: "aks", "asc".
    close = difflib.get_close_matches(candidate, list(words), n=1, cutoff=0.66)
    if close and close[0] not in candidate:
        return True
    duration = re.fullmatch(r"\d{1,4}\s*([a-z]{3,})", candidate)
    return bool(times and duration and difflib.get_close_matches(
        duration[1], _UNIT_WORDS, n=1, cutoff=0.7))
