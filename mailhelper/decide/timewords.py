"""Time phrases as owners write them, one grammar for every place: ``5d``, ``monday 9am``,
``dec 3``, ``april3rdAt1300``, ``in 3 Tagen``, ``lundi à 9h``, ``el lunes a las 9``.

    >>> from zoneinfo import ZoneInfo
    >>> london = ZoneInfo("Europe/London")
    >>> now = datetime(2026, 11, 30, 14, 37, tzinfo=london)  # a Monday afternoon
    >>> describe(parse_when("thursday", now, london), london)
    'Thu 3 Dec, 09:00'
    >>> describe(parse_when("in 3 days", now, london), london)
    'Thu 3 Dec, 14:37'
    >>> describe(parse_when("weds930am", now, london), london)
    'Wed 2 Dec, 09:30'
    >>> parse_when("could you introduce me", now, london) is None
    True
    >>> read_when("2026-01-15", now, london).problem
    'Thu 15 Jan, 09:00 has already passed'

The plus-address (``helper+monday9am@``), a subject tag (``[in 1 month]``), a first body line
(``remind me monday at 9``) and ``snooze`` all read through :func:`read_when`. The clock is
always passed in; nothing here reads the system time. The rules, where people could mean more
than one thing:

* **Glued forms** (FollowUpThen's, and what phones autocomplete): letters and digits are split
  (``aug15``, ``21jan2027``, ``5months``), words run together are split into known words
  (``nextweek``, ``3businessdays``, ``1stbusinessday``), ``at`` separates (``april3rdAt1300``),
  and a time of day reads ``9am``, ``930am``, ``9.30am``, ``14:30``, ``15h30``, ``9 Uhr``,
  ``at 9`` and ``at 1530``.
* **A duration** (``5d``, ``in 5 days``, ``3 business days``, ``1 month``, ``in a fortnight``)
  counts from ``now`` to the minute; days, weeks, months and years keep the wall-clock time
  (``in 3 days at 9am`` sets it). Months and years are calendar arithmetic that clamps:
  31 January + 1 month is 28 (or 29) February.
* **A day without a time of day** is at ``default_time`` (09:00 unless configured).
  ``morning`` is 09:00, ``noon`` 12:00, ``afternoon`` 14:00, ``evening``, ``this evening`` and
  ``tonight`` 18:00, ``end of day`` 17:00. Midnight is refused (which day's?).
* **A weekday** (``monday``, ``next monday``, ``this monday``) is the next such day strictly
  after today: ``monday`` said on a Monday means next week's. ``next week`` is next Monday,
  ``next month`` the 1st of next month, ``end of the month`` its last day, ``Nth business
  day`` the Nth working day of this month, or of next month when this month's has gone.
* **A time of day alone** (``3pm``) is today, or tomorrow when it has passed today.
  A day and month without a year (``dec 3``) is its next occurrence still ahead.
* **A date or moment already past** (``2026-01-15`` in March, ``today 9am`` at noon) is
  refused, and :attr:`WhenReading.problem` says why.
* **A numeric date** like ``3/4`` is refused as ambiguous unless ``date_order`` is ``dmy`` or
  ``mdy`` (or only one reading is a date: ``15/4``). Dotted dates need a year or a final
  dot (``3.4.2027``, ``15.4.``); ``9.30`` is a time.
* **German, French and Spanish** words for the common forms read the same: ``in 3 Tagen``,
  ``Montag 9 Uhr``, ``übermorgen``, ``dans 3 jours``, ``lundi à 9h``, ``demain matin``,
  ``en 3 días``, ``el lunes a las 9``, ``pasado mañana``.
* Wall times go through :func:`resolve_wall_time`: a time in the spring-forward gap moves on by
  the length of the gap, a time in the autumn overlap is its first (summer-time) occurrence.
* Anything more than :data:`HORIZON` ahead is refused as not meant (``5000 days``).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Literal

from mailhelper.decide.digest_schedule import next_digest
from mailhelper.model.duration import Duration, DurationError, resolve_wall_time

#: The furthest ahead a phrase may name; further is a typo, not a plan (and would overflow).
HORIZON = timedelta(days=3660)

#: Longer text is prose, not a time phrase; the cap also keeps the work small.
_MAX_CHARS = 80

DateOrder = Literal["dmy", "mdy"]


@dataclass(frozen=True)
class WhenReading:
    """What a phrase says about time: ``moment`` when it names one still ahead; ``problem``
    when it clearly tries to name one but cannot be taken (the sentence the owner is told);
    both None when the text is no time phrase at all."""

    moment: datetime | None = None
    problem: str | None = None


NOT_A_TIME = WhenReading()


class _Refused(Exception):
    """A phrase that names a time which cannot be taken; the message says why."""


_WEEKDAYS: dict[str, int] = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "weds": 2, "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}
_MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_NAMED_TIMES: dict[str, time] = {
    "morning": time(9), "noon": time(12), "midday": time(12), "afternoon": time(14),
    "evening": time(18), "tonight": time(18), "eod": time(17),
}
#: Units a duration may count in, canonical name -> (Duration unit or calendar unit).
_UNITS: dict[str, str] = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds",
    "seconds": "seconds", "m": "minutes", "min": "minutes", "mins": "minutes",
    "minute": "minutes", "minutes": "minutes", "h": "hours", "hr": "hours", "hrs": "hours",
    "hour": "hours", "hours": "hours", "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
    "fortnight": "fortnights", "fortnights": "fortnights",
    "mo": "months", "mos": "months", "mon": "months", "month": "months", "months": "months",
    "y": "years", "yr": "years", "yrs": "years", "year": "years", "years": "years",
}
_NUMBER_WORDS: dict[str, str] = {
    "a": "1", "an": "1", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
    "twelve": "12", "couple": "2",
    # German, French, Spanish
    "ein": "1", "eine": "1", "einer": "1", "einem": "1", "einen": "1", "zwei": "2",
    "drei": "3", "vier": "4", "funf": "5", "sechs": "6", "sieben": "7", "acht": "8",
    "neun": "9", "zehn": "10", "un": "1", "une": "1", "deux": "2", "trois": "3",
    "quatre": "4", "cinq": "5", "sept": "7", "huit": "8", "neuf": "9", "dix": "10",
    "uno": "1", "una": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6",
    "siete": "7", "ocho": "8", "nueve": "9", "diez": "10",
}
_ORDINAL_WORDS: dict[str, str] = {
    "first": "1th", "third": "3th", "fourth": "4th", "fifth": "5th", "last": "lastth",
    "premier": "1th", "premiere": "1th", "primer": "1th", "primero": "1th", "erster": "1th",
    "ersten": "1th", "erste": "1th",
}
#: Several words meaning one thing, longest first; read before the single words below.
_PHRASES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("day", "after", "tomorrow"): ("overmorrow",),
    ("end", "of", "the", "day"): ("eod",), ("end", "of", "day"): ("eod",),
    ("this", "evening"): ("today", "evening"), ("this", "morning"): ("today", "morning"),
    ("this", "afternoon"): ("today", "afternoon"), ("from", "now"): (),
    ("weeks", "time"): ("weeks",), ("days", "time"): ("days",),
    ("working", "days"): ("business", "days"), ("working", "day"): ("business", "day"),
    ("quinze", "jours"): ("1", "fortnight"), ("quince", "dias"): ("1", "fortnight"),
    ("vierzehn", "tagen"): ("1", "fortnight"), ("vierzehn", "tage"): ("1", "fortnight"),
    ("jours", "ouvres"): ("business", "days"), ("jours", "ouvrables"): ("business", "days"),
    ("jour", "ouvre"): ("business", "day"), ("jour", "ouvrable"): ("business", "day"),
    ("dias", "habiles"): ("business", "days"), ("dias", "laborables"): ("business", "days"),
    ("dia", "habil"): ("business", "day"), ("dia", "laborable"): ("business", "day"),
    ("apres", "demain"): ("overmorrow",), ("pasado", "manana"): ("overmorrow",),
    ("apres", "midi"): ("afternoon",), ("por", "la", "manana"): ("morning",),
    ("por", "la", "tarde"): ("afternoon",), ("por", "la", "noche"): ("evening",),
    ("a", "las"): ("at",), ("a", "la"): ("at",), ("que", "viene"): ("next",),
    ("dentro", "de"): ("in",), ("ce", "soir"): ("today", "evening"),
    ("esta", "noche"): ("today", "evening"), ("esta", "tarde"): ("today", "afternoon"),
    ("heute", "abend"): ("today", "evening"), ("heute", "nachmittag"): ("today", "afternoon"),
    ("heute", "morgen"): ("today", "morning"), ("ce", "matin"): ("today", "morning"),
    ("cet", "apres", "midi"): ("today", "afternoon"), ("morgen", "fruh"): ("tomorrow", "morning"),
}
#: One foreign (or variant) word -> canonical English words.
_WORDS: dict[str, tuple[str, ...]] = {
    # English variants
    "tmrw": ("tomorrow",), "tmr": ("tomorrow",), "tomorow": ("tomorrow",), "tmrrw": ("tomorrow",),
    "coming": ("next",), "upcoming": ("next",), "midnight": ("midnight",),
    "businessday": ("business", "day"), "businessdays": ("business", "days"),
    "bd": ("business", "days"), "bds": ("business", "days"),
    "weekend": ("saturday",), "oclock": (),
    # German
    "tag": ("day",), "tage": ("days",), "tagen": ("days",), "woche": ("week",),
    "wochen": ("weeks",), "monat": ("month",), "monate": ("months",), "monaten": ("months",),
    "monats": ("month",), "jahr": ("year",), "jahre": ("years",), "jahren": ("years",),
    "stunde": ("hour",), "stunden": ("hours",), "minuten": ("minutes",),
    "werktag": ("business", "day"), "werktage": ("business", "days"),
    "werktagen": ("business", "days"), "arbeitstagen": ("business", "days"),
    "arbeitstage": ("business", "days"), "montag": ("monday",), "dienstag": ("tuesday",),
    "mittwoch": ("wednesday",), "donnerstag": ("thursday",), "freitag": ("friday",),
    "samstag": ("saturday",), "sonnabend": ("saturday",), "sonntag": ("sunday",),
    "januar": ("january",), "februar": ("february",), "marz": ("march",), "mai": ("may",),
    "juni": ("june",), "juli": ("july",), "oktober": ("october",), "dezember": ("december",),
    "heute": ("today",), "morgen": ("tomorrow",), "ubermorgen": ("overmorrow",),
    "fruh": ("morning",), "morgens": ("morning",), "vormittag": ("morning",),
    "mittag": ("noon",), "mittags": ("noon",), "nachmittag": ("afternoon",),
    "abend": ("evening",), "abends": ("evening",), "nachste": ("next",),
    "nachsten": ("next",), "nachster": ("next",), "kommende": ("next",),
    "kommenden": ("next",), "ende": ("end",), "um": ("at",), "uhr": ("uhr",),
    "diese": ("this",), "diesen": ("this",), "dieser": ("this",),
    # French
    "dans": ("in",), "jour": ("day",), "jours": ("days",), "semaine": ("week",),
    "semaines": ("weeks",), "mois": ("month",), "ans": ("years",), "annee": ("year",),
    "annees": ("years",), "heure": ("hour",), "heures": ("hours",), "lundi": ("monday",),
    "mardi": ("tuesday",), "mercredi": ("wednesday",), "jeudi": ("thursday",),
    "vendredi": ("friday",), "samedi": ("saturday",), "dimanche": ("sunday",),
    "janvier": ("january",), "fevrier": ("february",), "mars": ("march",), "avril": ("april",),
    "juin": ("june",), "juillet": ("july",), "aout": ("august",), "septembre": ("september",),
    "octobre": ("october",), "novembre": ("november",), "decembre": ("december",),
    "aujourdhui": ("today",), "demain": ("tomorrow",), "matin": ("morning",),
    "midi": ("noon",), "soir": ("evening",), "prochain": ("next",), "prochaine": ("next",),
    "fin": ("end",), "ce": ("this",), "cette": ("this",),
    # Spanish
    "en": ("in",), "dia": ("day",), "dias": ("days",), "semana": ("week",),
    "semanas": ("weeks",), "mes": ("month",), "meses": ("months",), "ano": ("year",),
    "anos": ("years",), "hora": ("hour",), "horas": ("hours",), "minutos": ("minutes",),
    "lunes": ("monday",), "martes": ("tuesday",), "miercoles": ("wednesday",),
    "jueves": ("thursday",), "viernes": ("friday",), "sabado": ("saturday",),
    "domingo": ("sunday",), "enero": ("january",), "febrero": ("february",),
    "marzo": ("march",), "abril": ("april",), "mayo": ("may",), "junio": ("june",),
    "julio": ("july",), "agosto": ("august",), "septiembre": ("september",),
    "setiembre": ("september",), "octubre": ("october",), "noviembre": ("november",),
    "diciembre": ("december",), "hoy": ("today",), "manana": ("tomorrow",),
    "tarde": ("afternoon",), "noche": ("evening",), "mediodia": ("noon",),
    "proximo": ("next",), "proxima": ("next",), "este": ("this",), "esta": ("this",),
}
#: Words that carry no meaning here: "in 3 days", "on the 3rd of December", "am Montag".
_NOISE = frozenset({
    "in", "on", "the", "of", "for", "until", "till", "til", "by", "later", "around", "about",
    "le", "la", "les", "l", "du", "des", "de", "el", "los", "las", "am", "der", "die", "das",
    "den", "dem", "vers", "hacia", "please", "time",
})
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th", "er", "e", "eme", "o", "te", "ten"})
_Ahead = Callable[[date], bool]
_DAY_WORDS = frozenset({*_WEEKDAYS, "today", "tomorrow", "overmorrow"})

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:z|[+-]\d{2}:?\d{2})?$"
)
_ISO_DATE = re.compile(r"(?<![\d§])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d])")
_AMPM = re.compile(r"(?<![\d§:.])(\d{1,2})(?:[:.h]?(\d{2}))?\s*([ap])\.?\s?m\b\.?")
_CLOCK = re.compile(r"(?<![\d§:./])(\d{1,2})[:h](\d{2})(?![\d:])(?:\s*uhr\b)?")
_DOTTED_CLOCK = re.compile(r"(?<![\d§:./])(\d{1,2})\.(\d{2})(?:\s*uhr\b)?(?![\d.])")
_NUMERIC_DATE = re.compile(
    r"(?<![\d§])(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?(?![\d/])"
    r"|(?<![\d§])(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})?(?![\d.])"
    r"|(?<![\d§.])(\d{1,2})\.(\d)(?![\d.])"
)
_TOKEN = re.compile(r"§\S+|[a-z]+|\d+")


def read_when(text: str, now: datetime, zone: tzinfo, *, default_time: time = time(9),
              date_order: DateOrder | None = None) -> WhenReading:
    """What ``text`` says about time (see the module docstring); never raises.

    ``now`` must be aware; the moment comes back in ``zone``.

        >>> from zoneinfo import ZoneInfo
        >>> ny = ZoneInfo("America/New_York")
        >>> read_when("monday 14:30", datetime(2026, 3, 4, 10, tzinfo=ny), ny).moment
        datetime.datetime(2026, 3, 9, 14, 30, tzinfo=zoneinfo.ZoneInfo(key='America/New_York'))
        >>> read_when("3/4", datetime(2026, 3, 4, 10, tzinfo=ny), ny).problem
        '"3/4" could be 3 April or March 4: write the month as a word (or set date_order)'
    """
    if now.tzinfo is None or not isinstance(text, str) or len(text) > _MAX_CHARS:
        return NOT_A_TIME
    try:
        moment = _read(text, now, zone, default_time, date_order)
    except _Refused as refusal:
        return WhenReading(None, str(refusal))
    except (ValueError, OverflowError):
        # Out-of-range dates (feb 30, year 9999 + a week) are simply not a time.
        return NOT_A_TIME
    if moment is None:
        return NOT_A_TIME
    if _utc(moment) - _utc(now) > HORIZON:
        return WhenReading(None, "that is more than ten years ahead")
    if _utc(moment) <= _utc(now):
        return WhenReading(None, f"{describe(moment, zone, now)} has already passed")
    return WhenReading(moment.astimezone(zone))


def parse_when(text: str, now: datetime, zone: tzinfo, *, default_time: time = time(9),
               date_order: DateOrder | None = None) -> datetime | None:
    """The moment ``text`` names, still ahead of ``now``, in ``zone``; None if it names none
    (or names one that cannot be taken: :func:`read_when` says why)."""
    return read_when(text, now, zone, default_time=default_time, date_order=date_order).moment


def mentions_time(text: str) -> bool:
    """Whether ``text`` has a number or a word of time (a weekday, month, unit, ``noon``): the
    sign that words which do not read as a time were still meant as one.

        >>> mentions_time("in 1 mnth"), mentions_time("In progress")
        (True, False)
    """
    plain = _plain(text[:_MAX_CHARS])
    if re.search(r"\d", plain):
        return True
    words = _translate(_TOKEN.findall(plain))
    return any(w in _WEEKDAYS or w in _MONTHS or w in _UNITS or w in _NAMED_TIMES
               or w in ("tomorrow", "today", "overmorrow", "midnight") for w in words)


def describe(dt: datetime, zone: tzinfo, now: datetime | None = None) -> str:
    """The moment as a receipt says it, in ``zone``: ``Thu 3 Dec, 09:00``.

    Names are English whatever the system locale. With ``now`` given, a moment in another
    year than ``now``'s shows its year: ``Fri 3 Dec 2027, 09:00``.

        >>> from datetime import UTC
        >>> describe(datetime(2026, 12, 3, 9, tzinfo=UTC), UTC)
        'Thu 3 Dec, 09:00'
    """
    local = dt.astimezone(zone)
    year = ""
    if now is not None and now.astimezone(zone).year != local.year:
        year = f" {local.year}"
    return (f"{_DAY_NAMES[local.weekday()]} {local.day} {_MONTH_NAMES[local.month - 1]}{year}, "
            f"{local:%H:%M}")


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months, clamped to the month's last day.

        >>> add_months(date(2027, 1, 31), 1)
        datetime.date(2027, 2, 28)
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


# -- reading ---------------------------------------------------------------------------------


def _read(text: str, now: datetime, zone: tzinfo, default_time: time,
          date_order: DateOrder | None) -> datetime | None:
    plain = _plain(text)
    if _ISO_DATETIME.match(plain):
        parsed = datetime.fromisoformat(plain.upper().replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed.astimezone(zone)
        return resolve_wall_time(parsed, zone)
    tokens = _tokens(plain, date_order)
    if not tokens:
        return None
    tokens = _times_of_day(tokens)
    clock, rest = _take_clock(tokens)
    local_now = now.astimezone(zone)
    today = local_now.date()

    duration = _duration(rest)
    if duration is not None:
        return _after(duration, clock, rest, now, zone)

    if not rest:
        if clock is None:
            return None
        return _next_clock(today, clock, now, zone)
    if rest == ["today"]:
        if clock is None:
            return None  # "today" alone names no moment
        return resolve_wall_time(datetime.combine(today, clock), zone)

    the_time = clock or default_time
    day = _day(rest, today, local_now, zone, the_time, bool(clock))
    if day is None:
        return None
    return resolve_wall_time(datetime.combine(day, the_time), zone)


def _plain(text: str) -> str:
    """Lower case, accents off (``März`` -> ``marz``), single spaces, outer punctuation off."""
    lowered = text.replace("\ufeff", "").replace("ß", "ss").lower()
    folded = "".join(c for c in unicodedata.normalize("NFKD", lowered)
                      if not unicodedata.combining(c))
    plain = " ".join(folded.split()).strip(" !?;,")
    # A final dot ends a sentence ("in 3 days."), but not a dotted date ("15.4.").
    return re.sub(r"(?<=[a-z])\.+$", "", plain).strip(" .") if not re.search(
        r"\d\.\d{1,2}\.$", plain) else plain


def _tokens(phrase: str, date_order: DateOrder | None) -> list[str]:
    """Canonical English tokens; times of day become ``§Thhmm``, dates ``§Dyyyymmdd``."""
    text = _ISO_DATE.sub(lambda m: f" §D{int(m[1]):04d}{int(m[2]):02d}{int(m[3]):02d} ", phrase)
    text = _AMPM.sub(_ampm_token, text)
    text = _CLOCK.sub(lambda m: _clock_token(int(m[1]), int(m[2])), text)
    text = _NUMERIC_DATE.sub(lambda m: _numeric_date_token(m, date_order), text)
    text = _DOTTED_CLOCK.sub(lambda m: _clock_token(int(m[1]), int(m[2])), text)
    text = text.replace("'", "").replace("\u2019", "").replace("@", " at ")
    raw = _TOKEN.findall(text)
    words: list[str] = []
    for token in raw:
        if token[0].isalpha() and not _known(token):
            words.extend(_segment(token) or (token,))
        else:
            words.append(token)
    words = _ordinals(words)
    words = _translate(words)
    return [w for w in words if w not in _NOISE]


def _ampm_token(match: re.Match[str]) -> str:
    hour, minute = int(match[1]), int(match[2] or 0)
    if not 1 <= hour <= 12 or minute > 59:
        return " §X "
    return _clock_token(hour % 12 + (12 if match[3] == "p" else 0), minute)


def _clock_token(hour: int, minute: int) -> str:
    if hour > 23 or minute > 59:
        return " §X "
    return f" §T{hour:02d}{minute:02d} "


def _numeric_date_token(match: re.Match[str], date_order: DateOrder | None) -> str:
    first = int(match[1] or match[4] or match[7])
    second = int(match[2] or match[5] or match[8])
    year = match[3] or match[6]
    year_part = "" if year is None else f"{int(year) + (2000 if len(year) == 2 else 0):04d}"
    written = match[0]
    if match[4] is not None or match[7] is not None:
        order: DateOrder | None = "dmy"  # a dotted date is European
    elif date_order is not None:
        order = date_order
    elif first > 12 >= second:
        order = "dmy"
    elif second > 12 >= first:
        order = "mdy"
    elif first == second:
        order = "dmy"
    else:
        return f" §A{written} "
    day, month = (first, second) if order == "dmy" else (second, first)
    return f" §N{day:02d}{month:02d}{year_part} "


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    return frozenset({
        *_WEEKDAYS, *_MONTHS, *_NAMED_TIMES, *_UNITS, *_NUMBER_WORDS, *_ORDINAL_WORDS,
        *_WORDS, *_NOISE, *_ORDINAL_SUFFIXES, *(w for p in _PHRASES for w in p),
        "today", "tomorrow", "overmorrow", "next", "this", "end", "at", "business", "after",
        "month", "week", "year", "midnight", "every", "weekday", "weekdays", "other",
    })


def _known(word: str) -> bool:
    return word in _vocabulary()


def _segment(word: str) -> tuple[str, ...] | None:
    """``nextweek`` -> (next, week): the split into known words with the fewest pieces, each
    of at least two letters; None when there is none."""
    if len(word) > 30:
        return None
    best: list[tuple[str, ...] | None] = [None] * (len(word) + 1)
    best[0] = ()
    for end in range(2, len(word) + 1):
        for start in range(0, end - 1):
            before = best[start]
            piece = word[start:end]
            if before is None or not _known(piece):
                continue
            candidate = (*before, piece)
            current = best[end]
            if current is None or len(candidate) < len(current):
                best[end] = candidate
    return best[len(word)]


def _ordinals(words: list[str]) -> list[str]:
    """``3 rd`` -> ``3th``, ``first`` -> ``1th``: an ordinal is a number ending in ``th``."""
    out: list[str] = []
    for word in words:
        if word in _ORDINAL_SUFFIXES and out and out[-1].isdigit():
            out[-1] += "th"
        elif word in _ORDINAL_WORDS:
            out.append(_ORDINAL_WORDS[word])
        else:
            out.append(word)
    return out


def _translate(words: list[str]) -> list[str]:
    """Phrases, then single words, to canonical English; number words before a unit."""
    out: list[str] = []
    index = 0
    longest = max(len(p) for p in _PHRASES)
    while index < len(words):
        for size in range(longest, 1, -1):
            phrase = tuple(words[index:index + size])
            if len(phrase) == size and phrase in _PHRASES:
                out.extend(_PHRASES[phrase])
                index += size
                break
        else:
            word = words[index]
            following = words[index + 1] if index + 1 < len(words) else ""
            following = _WORDS.get(following, (following,))[0] if following else ""
            if word in _NUMBER_WORDS and (following in _UNITS or following == "business"):
                out.append(_NUMBER_WORDS[word])
            elif word == "an" and out and out[-1].isdigit():
                out.append("years")  # French "dans 1 an"
            elif word == "a" and (following.isdigit() or following.startswith("§")):
                out.append("at")  # French "à 9h"
            else:
                out.extend(_WORDS.get(word, (word,)))
            index += 1
    return out


def _times_of_day(tokens: list[str]) -> list[str]:
    """``at 9``, ``at 9 h``, ``9 uhr``, ``at 1530``, ``monday 9h``, ``tomorrow 1530`` ->
    ``§T``; then ``at`` has done its work and goes."""
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        after = tokens[index + 2] if index + 2 < len(tokens) else ""
        previous = out[-1] if out else ""
        if token == "at" and following.isdigit():
            out.append(_bare_clock(following))
            index += 3 if after in ("h", "uhr") else 2
            continue
        if token.isdigit() and following in ("h", "uhr") and (
                following == "uhr" or previous in _DAY_WORDS or previous == "at"):
            if previous == "at":
                out.pop()
            out.append(_bare_clock(token))
            index += 2
            continue
        if token.isdigit() and len(token) in (3, 4) and previous in _DAY_WORDS:
            out.append(_bare_clock(token))
            index += 1
            continue
        out.append(token)
        index += 1
    # "at" has done its work; a stray "uhr" ("9.30 Uhr" read as a clock already) says no more.
    return [t for t in out if t not in ("at", "uhr")]


def _bare_clock(digits: str) -> str:
    if len(digits) <= 2:
        return _clock_token(int(digits), 0).strip()
    return _clock_token(int(digits[:-2]), int(digits[-2:])).strip()


def _take_clock(tokens: list[str]) -> tuple[time | None, list[str]]:
    clocks = [t for t in tokens if t.startswith(("§T", "§X")) or t in _NAMED_TIMES
              or t == "midnight"]
    rest = [t for t in tokens if t not in clocks]
    if not clocks:
        return None, rest
    if len(clocks) > 1:
        raise _Refused("it names two times of day")
    token = clocks[0]
    if token == "§X":
        raise _Refused("its time of day is out of range (00:00 to 23:59)")
    if token == "midnight":
        raise _Refused("midnight could be either side of the day: write 23:59 or 00:01")
    if token in _NAMED_TIMES:
        if token == "tonight":
            rest = rest or ["today"]
        return _NAMED_TIMES[token], rest
    return time(int(token[2:4]), int(token[4:6])), rest


def _next_clock(today: date, clock: time, now: datetime, zone: tzinfo) -> datetime:
    moment = resolve_wall_time(datetime.combine(today, clock), zone)
    if _utc(moment) <= _utc(now):
        moment = resolve_wall_time(datetime.combine(today + timedelta(days=1), clock), zone)
    return moment


@dataclass(frozen=True)
class _Span:
    amount: int
    unit: str  # a _UNITS value
    business: bool = False


def _duration(rest: list[str]) -> _Span | None:
    """``3 days``, ``3 business days``, ``1 fortnight``, ``fortnight``; None if not one."""
    words = list(rest)
    if words and words[0] in _UNITS and words[0] in ("fortnight", "week", "month", "year"):
        words = ["1", *words] if words[0] == "fortnight" else words
    if len(words) < 2 or not words[0].isdigit():
        return None
    amount = int(words[0])
    if words[1] == "business" and len(words) == 3 and _UNITS.get(words[2]) == "days":
        return _Span(amount, "days", business=True)
    if len(words) == 2 and words[1] in _UNITS:
        return _Span(amount, _UNITS[words[1]])
    return None


def _after(span: _Span, clock: time | None, rest: list[str], now: datetime,
           zone: tzinfo) -> datetime:
    if span.amount <= 0:
        raise _Refused(f'"{" ".join(rest)}" is no time from now')
    if span.unit in ("months", "years"):
        months = span.amount * (12 if span.unit == "years" else 1)
        if months > 120:
            raise _Refused("that is more than ten years ahead")
        local = now.astimezone(zone)
        day = add_months(local.date(), months)
        wall = datetime.combine(day, clock or local.time().replace(second=0, microsecond=0))
        return resolve_wall_time(wall, zone)
    amount, unit = span.amount, span.unit
    if unit == "fortnights":
        amount, unit = amount * 2, "weeks"
    try:
        duration = Duration.parse(f"{amount} {'business ' if span.business else ''}{unit}")
    except DurationError as exc:
        raise _Refused(str(exc)) from None
    moment = duration.after(now, zone)
    if duration.unit != "seconds":
        moment = moment.replace(second=0, microsecond=0)
    if clock is None:
        return moment
    if duration.unit not in ("days", "weeks"):
        raise _Refused(f'"{duration}" and a time of day do not go together')
    return resolve_wall_time(datetime.combine(moment.date(), clock), zone)


def _day(rest: list[str], today: date, local_now: datetime, zone: tzinfo, clock: time,
         clock_given: bool) -> date | None:
    """The date a day phrase names (the time of day matters where ``dec 3`` may be today)."""
    if len(rest) == 2 and rest[1] == "next":
        rest = ["next", rest[0]]  # "lundi prochain", "la semana que viene"
    words = tuple(rest)
    now = local_now

    def ahead(day: date) -> bool:
        return _utc(resolve_wall_time(datetime.combine(day, clock), zone)) > _utc(now)

    if words == ("today",):
        return today
    if words == ("tomorrow",):
        return today + timedelta(days=1)
    if words == ("overmorrow",):
        return today + timedelta(days=2)
    if words in (("next", "week"), ("week", "after"), ("start", "next", "week")):
        return today + timedelta(days=7 - today.weekday())
    if words == ("next", "month"):
        return add_months(today.replace(day=1), 1)
    if words == ("next", "year"):
        return date(today.year + 1, 1, 1)
    if words[-1:] == ("month",) and words[:1] == ("end",) and words[1:-1] in ((), ("this",),
                                                                          ("next",)):
        start = add_months(today.replace(day=1), 1 if words[1:-1] == ("next",) else 0)
        last = _month_end(start)
        if words[1:-1] != ("next",) and not ahead(last):
            last = _month_end(add_months(start, 1))
        return last
    if words in (("end", "week"), ("end", "this", "week")):
        friday = today + timedelta(days=(4 - today.weekday()) % 7)
        return friday if ahead(friday) else friday + timedelta(days=7)
    if len(words) in (1, 2) and words[-1] in _WEEKDAYS and words[:-1] in ((), ("next",),
                                                                         ("this",)):
        days = (_WEEKDAYS[words[-1]] - today.weekday() - 1) % 7 + 1
        return today + timedelta(days=days)
    business = _business_day(words, today, ahead)
    if business is not None:
        return business
    return _calendar_date(words, today, ahead)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _business_day(words: tuple[str, ...], today: date, ahead: _Ahead) -> date | None:
    """``1th business day``, ``lastth business day next month``, ``2th business day march``."""
    if len(words) < 3 or not words[0].endswith("th") or words[1:3] != ("business", "day"):
        return None
    which = words[0][:-2]
    if not (which.isdigit() or which == "last"):
        return None
    tail = words[3:]
    if tail in ((), ("month",), ("this", "month")):
        starts = [today.replace(day=1), add_months(today.replace(day=1), 1)]
    elif tail == ("next", "month"):
        starts = [add_months(today.replace(day=1), 1)]
    elif len(tail) == 1 and tail[0] in _MONTHS:
        month = _MONTHS[tail[0]]
        first = date(today.year, month, 1)
        starts = [first, date(today.year + 1, month, 1)]
    else:
        return None
    for start in starts:
        days = [start + timedelta(days=i) for i in range(_month_end(start).day)]
        working = [d for d in days if d.weekday() < 5]
        if which == "last":
            candidate = working[-1]
        else:
            number = int(which)
            if not 1 <= number <= len(working):
                raise _Refused(f"{_MONTH_NAMES[start.month - 1]} {start.year} has "
                               f"{len(working)} business days, not {number}")
            candidate = working[number - 1]
        if ahead(candidate):
            return candidate
    return None


def _calendar_date(words: tuple[str, ...], today: date, ahead: _Ahead) -> date | None:
    """``dec 3``, ``3 december 2027``, ``the 15th``, ``2026-12-01``, ``3/4`` (see date_order)."""
    weekday = None
    if words and words[0] in _WEEKDAYS and len(words) > 1:
        weekday, words = _WEEKDAYS[words[0]], words[1:]
    found = _date_parts(words, today)
    if found is None:
        return None
    day_of_month, month, year = found
    if year is not None:
        result = date(year, month, day_of_month) if month else None
        if result is None:
            return None
    elif month is None:
        # "the 15th": the next 15th still ahead.
        start = today.replace(day=1)
        result = None
        for step in range(0, 14):
            first = add_months(start, step)
            if day_of_month <= _month_end(first).day:
                candidate = first.replace(day=day_of_month)
                if ahead(candidate):
                    result = candidate
                    break
        if result is None:
            return None
    else:
        result = None
        # The next 29 February can be up to eight years away.
        for year_ahead in range(today.year, today.year + 9):
            try:
                candidate = date(year_ahead, month, day_of_month)
            except ValueError:
                continue
            if ahead(candidate):
                result = candidate
                break
        if result is None:
            return None
    if weekday is not None and result.weekday() != weekday:
        raise _Refused(f"{_DAY_NAMES[result.weekday()]} {result.day} "
                       f"{_MONTH_NAMES[result.month - 1]} {result.year} is not a "
                       f"{_DAY_NAMES[weekday]}")
    return result


def _date_parts(words: tuple[str, ...], today: date) -> tuple[int, int | None, int | None] | None:
    """(day, month or None, year or None) of a calendar date, or None when it is none."""
    if len(words) == 1 and words[0].startswith("§D"):
        token = words[0]
        return int(token[8:10]), int(token[6:8]), int(token[2:6])
    if len(words) == 1 and words[0].startswith("§A"):
        written = words[0][2:]
        first, second = written.split("/")[:2]
        raise _Refused(f'"{written}" could be {int(first)} {_long_month(int(second))} or '
                       f"{_long_month(int(first))} {int(second)}: write the month as a word "
                       f"(or set date_order)")
    if len(words) == 1 and words[0].startswith("§N"):
        token = words[0]
        year = int(token[6:10]) if len(token) > 6 else None
        return int(token[2:4]), int(token[4:6]), year
    if len(words) == 1 and words[0].endswith("th") and words[0][:-2].isdigit():
        return int(words[0][:-2]), None, None
    year = None
    if len(words) == 3 and words[2].isdigit() and len(words[2]) == 4:
        year, words = int(words[2]), words[:2]
    if len(words) != 2:
        return None
    first, second = words
    if first in _MONTHS and _day_number(second) is not None:
        return _day_number(second) or 0, _MONTHS[first], year
    if second in _MONTHS and _day_number(first) is not None:
        return _day_number(first) or 0, _MONTHS[second], year
    return None


def _day_number(word: str) -> int | None:
    digits = word[:-2] if word.endswith("th") else word
    if digits.isdigit() and 1 <= int(digits) <= 31 and len(digits) <= 2:
        return int(digits)
    return None


def _long_month(number: int) -> str:
    return calendar.month_name[number] if 1 <= number <= 12 else str(number)


def _utc(moment: datetime) -> datetime:
    """For comparing: Python compares two datetimes with the same tzinfo by wall time alone,
    which gets the two 01:30s of an autumn night wrong."""
    return moment.astimezone(UTC)


# -- repeats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepeatReading:
    """What a repeat phrase says: ``rule`` (an RFC 5545 RRULE, one line, without DTSTART) and
    its ``first`` occurrence still ahead; ``problem`` when it clearly means a repeat that
    cannot be taken (``every 0 days``); all None when the text is no repeat phrase."""

    rule: str | None = None
    first: datetime | None = None
    problem: str | None = None


NOT_A_REPEAT = RepeatReading()

#: RRULE weekday codes, Monday first (RFC 5545 section 3.3.10).
_DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WORKING_DAYS = "MO,TU,WE,TH,FR"
# "every", "jeden", "alle 2 Wochen", "chaque", "tous les", "cada", "todos los"; English
# "every" may be glued to what follows (FollowUpThen's "everymonday9am", "every2weeks").
_EVERY = re.compile(
    r"^(?:every(?=[\s\d-]|[a-z])|(?:each|jeden|jede|jedes|jeder|alle|chaque|cada)(?=[\s\d])"
    r"|(?:tous|toutes)(?:\s+les)?(?=[\s\d])|(?:todos|todas)(?:\s+(?:los|las))?(?=[\s\d]))[\s-]*"
)
# One word for "every <unit>": "daily", "wöchentlich", "mensuel", "semanal".
_EVERY_UNIT: dict[str, str] = {
    "daily": "day", "taglich": "day", "quotidien": "day", "quotidienne": "day",
    "diario": "day", "diaria": "day", "weekly": "week", "wochentlich": "week",
    "hebdomadaire": "week", "semanal": "week", "monthly": "month", "monatlich": "month",
    "mensuel": "month", "mensuelle": "month", "mensual": "month", "yearly": "year",
    "annually": "year", "jahrlich": "year", "annuel": "year", "annuelle": "year",
    "anual": "year",
}
_PERIODS = {"days": "DAILY", "weeks": "WEEKLY", "months": "MONTHLY", "years": "YEARLY"}


def read_repeat(text: str, now: datetime, zone: tzinfo, *, default_time: time = time(9),
                date_order: DateOrder | None = None) -> RepeatReading:
    """The repeat ``text`` names (``every monday``, ``everymonday9am``, ``every 2 weeks``,
    ``every first monday``, ``jeden Montag``, ``alle 2 Wochen``, ``chaque lundi``, ``tous les
    mois``), as an RRULE with its time of day pinned (``BYHOUR``, ``BYMINUTE``: the time
    given, else ``default_time``) and, where the phrase names no day, the day it is said on
    (``every 2 weeks`` said on a Thursday: ``BYDAY=TH``). Never raises.

    A month day past the 28th is kept as the month's last day where a month is shorter
    (``BYMONTHDAY=28,29,30,31;BYSETPOS=-1`` for the 31st). The first occurrence is strictly
    after ``now``, and never on the day it is said for a rule on that very weekday or month
    day (``every monday`` said on a Monday starts next week, as a weekday alone does), see
    :func:`first_occurrence`. Repeats come at most once a day.

        >>> from zoneinfo import ZoneInfo
        >>> london = ZoneInfo("Europe/London")
        >>> now = datetime(2026, 11, 30, 14, 37, tzinfo=london)  # a Monday afternoon
        >>> reading = read_repeat("everymonday9am", now, london)
        >>> reading.rule, describe(reading.first, london)
        ('FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0', 'Mon 7 Dec, 09:00')
        >>> read_repeat("every 0 days", now, london).problem
        '"every 0 days" never comes: write a number from 1'
    """
    if now.tzinfo is None or not isinstance(text, str) or len(text) > _MAX_CHARS:
        return NOT_A_REPEAT
    try:
        rule = _repeat_rule(text, now, zone, default_time, date_order)
    except _Refused as refusal:
        return RepeatReading(None, None, str(refusal))
    except (ValueError, OverflowError):
        return NOT_A_REPEAT
    if rule is None:
        return NOT_A_REPEAT
    first = first_occurrence(rule, now, zone)
    if first is None or _utc(first) - _utc(now) > HORIZON:
        return RepeatReading(None, None, "its first time is more than ten years ahead")
    return RepeatReading(rule, first)


def first_occurrence(rule: str, start: datetime, zone: tzinfo) -> datetime | None:
    """The first occurrence of a repeat started at ``start`` (its phase counts from that
    day): strictly after ``start``, and after that whole day when the rule is on that day's
    own weekday or month day alone (``BYDAY=MO`` started on a Monday, ``BYMONTHDAY=3`` on
    the 3rd): "every monday" said on a Monday means from next week, like "monday".

        >>> from zoneinfo import ZoneInfo
        >>> utc = ZoneInfo("UTC")
        >>> first_occurrence("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
        ...                  datetime(2026, 11, 30, 8, tzinfo=utc), utc).isoformat()
        '2026-12-07T09:00:00+00:00'
    """
    local = start.astimezone(zone)
    parts = _rule_parts(rule)
    after = start
    day = local.date()
    if (parts.get("BYDAY") == _DAY_CODES[day.weekday()]
            or parts.get("BYMONTHDAY") == str(day.day)
            or (parts.get("BYMONTHDAY", "").startswith("28,") and parts.get("BYSETPOS") == "-1"
                and day.day >= 28)):
        after = max(start, resolve_wall_time(
            datetime.combine(day + timedelta(days=1), time(0)), zone) - timedelta(seconds=1))
    return next_occurrence(rule, after, zone, start)


def next_occurrence(rule: str, after: datetime, zone: tzinfo, start: datetime) -> datetime | None:
    """The first occurrence of ``rule`` strictly after ``after``, for a repeat started at
    ``start`` (the rule's phase: ``INTERVAL=2`` counts from that day), in ``zone``,
    DST-correct: the wall time stays (09:00 in winter and in summer). None: no more."""
    # The digest's rule engine is the one for every RRULE: naive wall times, then zoned.
    return next_digest(rule, after, zone, start)


def describe_repeat(rule: str) -> str:
    """A repeat in words, as a receipt and the status say it.

        >>> describe_repeat("FREQ=WEEKLY;INTERVAL=2;BYDAY=TH;BYHOUR=9;BYMINUTE=0")
        'every 2 weeks on Thursday at 09:00'
        >>> describe_repeat("FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=30")
        'the first Monday of every month at 09:30'
    """
    parts = _rule_parts(rule)
    interval = int(parts.get("INTERVAL", "1"))
    freq = parts.get("FREQ", "")
    days = parts.get("BYDAY", "")
    clock = f" at {int(parts.get('BYHOUR', '0')):02d}:{int(parts.get('BYMINUTE', '0')):02d}"
    every = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}.get(
        freq, freq.lower())
    period = f"every {interval} {every}s" if interval > 1 else f"every {every}"
    month_day = parts.get("BYMONTHDAY", "")
    if month_day.startswith("28,") and parts.get("BYSETPOS") == "-1":
        month_day = f"{month_day.rsplit(',', 1)[1]} (or the month's last day)"
    if month_day:
        number = month_day.split(" ", 1)[0]
        month_day = _nth(int(number)) + month_day[len(number):]
    if freq == "DAILY":
        return period + clock
    if freq == "WEEKLY" and days == _WORKING_DAYS and interval == 1:
        return "every weekday" + clock
    if freq == "WEEKLY":
        names = " and ".join(_LONG_DAYS[_DAY_CODES.index(d)] for d in days.split(",") if d)
        return (f"every {names}" if interval == 1 else f"{period} on {names}") + clock
    if freq == "MONTHLY" and days == _WORKING_DAYS and parts.get("BYSETPOS"):
        which = int(parts["BYSETPOS"])
        nth = "last" if which == -1 else _nth(which)
        return f"the {nth} business day of {period}" + clock
    if freq == "MONTHLY" and days:
        match = re.fullmatch(r"([+-]?\d)([A-Z]{2})", days)
        if match:
            which = int(match[1])
            nth = "last" if which == -1 else ("first", "second", "third", "fourth",
                                                "fifth")[which - 1]
            return f"the {nth} {_LONG_DAYS[_DAY_CODES.index(match[2])]} of {period}" + clock
    if freq == "MONTHLY" and month_day:
        return f"{period} on the {month_day}" + clock
    if freq == "YEARLY" and parts.get("BYMONTH") and month_day:
        month = calendar.month_name[int(parts["BYMONTH"])]
        return f"{period} on {month} {month_day}" + clock
    return period + clock


def _nth(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(
        number % 10, "th")
    return f"{number}{suffix}"


def _rule_parts(rule: str) -> dict[str, str]:
    return {key.upper(): value for key, _, value in
            (part.partition("=") for part in rule.strip().split(";")) if key}


def _repeat_rule(text: str, now: datetime, zone: tzinfo, default_time: time,
                 date_order: DateOrder | None) -> str | None:
    plain = _plain(text)
    plain = re.sub(r"\b(" + "|".join(_EVERY_UNIT) + r")\b",
                   lambda m: f"every {_EVERY_UNIT[m[1]]}", plain)
    match = _EVERY.match(plain)
    if match is None:
        return None
    said = f'"{" ".join(text.split())}"'
    # "lundis", "mondays", "premiers": a plural the vocabulary knows as a singular.
    words = [w[:-1] if w.isalpha() and not _known(w) and _known(w[:-1]) else w
             for w in plain[match.end():].split()]
    tokens = _times_of_day(_tokens(" ".join(words), date_order))
    clock, rest = _take_clock(tokens)
    local = now.astimezone(zone)
    today = local.date()
    interval = 1
    if rest[:1] == ["other"]:
        interval, rest = 2, rest[1:]
    elif rest[:1] and rest[0].isdigit():
        interval, rest = int(rest[0]), rest[1:]
        if interval == 0:
            raise _Refused(f"{said} never comes: write a number from 1")
        if not rest:
            return None
    elif rest[:1] == ["fortnight"]:
        interval, rest = 2, ["weeks", *rest[1:]]
    if rest[:1] and rest[0] in _UNITS and rest[0] not in _WEEKDAYS:  # "mon" is Monday
        unit = _UNITS[rest[0]]
        if unit in ("seconds", "minutes", "hours"):
            raise _Refused(f"{said} is too often: a repeat comes at most once a day")
        if unit == "fortnights":
            interval, unit = interval * 2, "weeks"
        parts = _period_parts(unit, rest[1:], today)
        if parts is None:
            return None
        freq = _PERIODS[unit]
    elif not rest:
        if clock is None:
            return None
        freq, parts = "DAILY", ""  # "every morning", "every evening at 6"
    else:
        found = _day_parts(rest)
        if found is None:
            return None
        freq, parts = found
        if freq == "MONTHLY" and interval > 1:
            raise _Refused(f"{said}: write it as \"every {interval} months on ...\"")
    if interval > 1 and freq == "WEEKLY" and parts == f"BYDAY={_WORKING_DAYS}":
        raise _Refused(f"{said}: weekdays repeat every week")
    the_time = clock or default_time
    head = f"FREQ={freq}" + (f";INTERVAL={interval}" if interval > 1 else "")
    return f"{head}{';' if parts else ''}{parts};BYHOUR={the_time.hour};BYMINUTE={the_time.minute}"


def _month_day(day: int) -> str:
    """``BYMONTHDAY`` for a day of the month; past the 28th, clamped to a shorter month's
    last day (RFC 5545 would skip the months without it)."""
    if day <= 28:
        return f"BYMONTHDAY={day}"
    return f"BYMONTHDAY={','.join(str(d) for d in range(28, day + 1))};BYSETPOS=-1"


def _period_parts(unit: str, tail: list[str], today: date) -> str | None:
    """The BY parts of ``every N <unit>`` with what follows it: nothing (the day it is said
    on), weekdays (``every 2 weeks on monday``) or a day of the month."""
    days = [w for w in tail if w in _WEEKDAYS]
    if unit == "days":
        return "" if not tail else None
    if unit == "weeks":
        if len(days) != len(tail):
            return None
        codes = [_DAY_CODES[_WEEKDAYS[d]] for d in days] or [_DAY_CODES[today.weekday()]]
        return "BYDAY=" + ",".join(dict.fromkeys(codes))
    if unit == "months":
        if not tail:
            return _month_day(today.day)
        if len(tail) == 1 and tail[0].endswith("th") and tail[0][:-2].isdigit() and (
                1 <= int(tail[0][:-2]) <= 31):
            return _month_day(int(tail[0][:-2]))
        return None
    if unit == "years" and not tail:
        clamp = _month_day(today.day) if today.month == 2 else f"BYMONTHDAY={today.day}"
        return f"BYMONTH={today.month};{clamp}"
    return None


def _day_parts(rest: list[str]) -> tuple[str, str] | None:
    """(FREQ, BY parts) of a repeat named by its days: ``monday``, ``monday friday``,
    ``weekday``, ``business day``, ``first monday (month)``, ``15th``, ``1st business
    day``."""
    words = [w for w in rest if w != "month"] if rest[-1:] == ["month"] else list(rest)
    if words in (["weekday"], ["weekdays"], ["business", "day"], ["business", "days"]):
        return "WEEKLY", f"BYDAY={_WORKING_DAYS}"
    if words and all(w in _WEEKDAYS for w in words):
        codes = dict.fromkeys(_DAY_CODES[_WEEKDAYS[w]] for w in words)
        return "WEEKLY", "BYDAY=" + ",".join(codes)
    if not words or not words[0].endswith("th"):
        return None
    which_text = words[0][:-2]
    if which_text == "last":
        which = -1
    elif which_text.isdigit():
        which = int(which_text)
    else:
        return None
    tail = words[1:]
    if len(tail) == 1 and tail[0] in _WEEKDAYS and (which == -1 or 1 <= which <= 5):
        return "MONTHLY", f"BYDAY={which}{_DAY_CODES[_WEEKDAYS[tail[0]]]}"
    if tail in (["business", "day"], ["business", "days"]) and (which == -1
                                                                  or 1 <= which <= 20):
        return "MONTHLY", f"BYDAY={_WORKING_DAYS};BYSETPOS={which}"
    if not tail and 1 <= which <= 31:
        return "MONTHLY", _month_day(which)
    return None
