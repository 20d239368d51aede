"""The reply text read as it always was: :func:`strip_reply` and :func:`history_start` against
the line-by-line implementation they replaced, kept here as the reference.

Why the reference is kept: the module's implementation skips, for speed, the lines on which
none of its tests can fire (most lines of a mail hold no colon, no ``>`` and no dash). That
skipping must never change an answer; the reference runs every test on every line, so any
line the skipping wrongly passes over shows as a difference on the texts generated here,
which are rich in what the tests look for: quoted and lazily quoted lines, attributions
wrapped over one to three lines, signatures, dashed Zoho/Yahoo attributions, Outlook header
blocks in several languages, full-width colons, CRLF and lone CR, invisible characters, very
long lines, and texts beyond :data:`MAX_LINES` lines.

The reference calls the module's own line classifiers (``attribution_at``,
``header_block_at``, the markers): only the scan over the lines was rewritten.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailhelper.read import replytext
from mailhelper.read.replytext import (
    _INVISIBLE,
    _MOBILE_SIGNATURE,
    _RULE,
    _SIGNATURE,
    FORWARD_MARKER,
    MAX_LINES,
    ORIGINAL_MARKER,
    UNDERSCORES,
    _footer_follows,
    attribution_at,
    header_block_at,
    is_quoted,
    quote_follows,
    strip_reply,
)

# -- the reference: strip_reply as it read every line ---------------------------------------


def reference_strip_reply(text: str) -> str:
    text = text.translate(_INVISIBLE).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n", MAX_LINES)[:MAX_LINES]
    end = reference_history_start(lines)
    kept: list[str] = []
    index = 0
    while index < end:
        line = lines[index]
        if is_quoted(line) or _reference_lazy_quote(lines, index):
            index += 1
            continue
        span = attribution_at(lines, index)
        if span:
            index += span
            continue
        kept.append(line.rstrip())
        index += 1
    return _reference_tidy(_reference_without_signature(kept))


def reference_history_start(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if not line.strip() or is_quoted(line):
            continue
        if FORWARD_MARKER.match(line) or ORIGINAL_MARKER.match(line):
            return index
        if UNDERSCORES.match(line) and _footer_follows(lines, index):
            return index
        if header_block_at(lines, index):
            return index
        span = attribution_at(lines, index)
        if span and not quote_follows(lines, index + span):
            return index
    return len(lines)


def _reference_lazy_quote(lines: list[str], index: int) -> bool:
    if index == 0 or index + 1 >= len(lines) or not lines[index].strip():
        return False
    before, after = lines[index - 1], lines[index + 1]
    return is_quoted(before) and before.strip(" >") != "" and is_quoted(after)


def _reference_without_signature(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if _SIGNATURE.match(line):
            lines = lines[:index]
            break
    end = len(lines)
    while end and (not lines[end - 1].strip() or _RULE.match(lines[end - 1])
                   or _MOBILE_SIGNATURE.match(lines[end - 1].strip())):
        end -= 1
    return lines[:end]


def _reference_tidy(lines: list[str]) -> str:
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n\s*\n(?:\s*\n)+", "\n\n", text).strip()


# -- generated texts ------------------------------------------------------------------------

_WORDS = ["Hi", "Jane", "thanks", "the", "plan", "9:00", "at", "—", "-", "--", ">", ":", "：",
          "wrote", "schrieb", "a écrit", "jane@acme.com", "<jane@acme.com>", "On", "Am", "Le",
          "2026", "Tue,", "1", "Dec", "mailing list", "__________", "*", "\t", " "]
_LINES = [
    "", " ", "\t", "Thanks, will do!", "Sure — see you at 10:00.", "Note: bring the deck",
    "Here is what I need:", "Could you:", "> Can you?", ">", "> ", "   > deep", "    > four",
    ">> older", "> > older", "\u00a0> nbsp", "-- ", "--", "---", "-- \u00a0", "Bob",
    "Sent from my iPhone", "Get Outlook for iOS", "Von meinem iPhone gesendet", "____", "===",
    "On Tue, 1 Dec 2026, Jane <jane@acme.com> wrote:", "On Tue, 1 Dec 2026, Jane",
    "<jane@acme.com> wrote:", "wrote:", ">:", "> :", "Am 01.12.2026 um 09:00 schrieb Jane:",
    "Le mar. 1 déc. 2026 à 09:00, Jane <jane@acme.com> a écrit :",
    "2026年12月1日(火) 9:00 田中太郎 <taro@example.com>：",
    "Op 12 december 2016 19:05 schreef Jane <",
    "jane@x.org>:", "On your remote host you can run:", "Hi,",
    "---- On Wed, 24 Feb 2021 14:02:50 +0530 x@y.com wrote ----",
    "--- On Wed, 24 Feb 2021, Jane <x@y.com> writes ---", "-----Original Message-----",
    "-------- Oprindelig besked --------", "---------- Forwarded message ---------",
    "---------- Forwarded message --------- From: Jane <j@x.org> Date: Tue",
    "Begin forwarded message:", "Début du message réexpédié :", "________________________________",
    "____________________", "Team mailing list", "From: Jane Doe [mailto:jane@acme.com]",
    "*From:* Jane Doe", "Sent: Tuesday, December 1, 2026 9:00 AM", "To: Bob", "Cc: Team",
    "Subject: Help", "Subject:\tHelp", "Von: Jane Doe", "Gesendet: Dienstag, 1. Dezember 2026",
    "An: Bob", "Betreff: Hilfe", "De : Jane", "Envoyé : mardi", "À : Bob", "Objet : Aide",
    "差出人：田中", "送信日時：2026年12月1日", "宛先：ボブ", "件名：お願い", "От: Джейн",
    "Отправлено: вторник", "Кому: Боб", "Тема: Помощь", "\ufeffFrom: Jane", "Fr\u200bom: Jane",
    "\u200eOn Tue, 1 Dec 2026, Jane wrote:", "x" * 2100 + ":", "y" * 70 + ": after 60",
    "word " * 100 + "wrote:",
]
_line = st.one_of(
    st.sampled_from(_LINES),
    st.lists(st.sampled_from(_WORDS), max_size=12).map(" ".join),
    st.text(alphabet=st.sampled_from(":：->_ \t\u00a0\u200b\ufeffaO1@."), max_size=12),
)
_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def _texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(_line, max_size=40))
    ends = draw(st.lists(_ENDS, min_size=len(lines), max_size=len(lines)))
    return "".join(line + end for line, end in zip(lines, ends, strict=True)) + draw(_line)


@given(_texts())
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example("Thanks, will do!\n\nOn Tue, 1 Dec 2026, Jane <j@x.org> wrote:\n> Can you?")
@example("Hi\n> a\nlazy\n> b\nOn Tue, 1 Dec 2026, Jane\n<j@x.org>\n>:\n> c\nok")
def test_strip_reply_reads_as_the_reference(text: str) -> None:
    assert strip_reply(text) == reference_strip_reply(text)


@given(st.lists(_line, max_size=40))
@settings(max_examples=1500, deadline=None)
def test_history_start_finds_what_the_reference_finds(lines: list[str]) -> None:
    assert replytext.history_start(lines) == reference_history_start(lines)


@given(st.lists(_line, min_size=1, max_size=6), st.integers(-20, 20), _texts())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_near_and_beyond_max_lines_reads_as_the_reference(block: list[str], more: int,
                                                          tail: str) -> None:
    """About :data:`MAX_LINES` lines (a block repeated), the history possibly beyond."""
    text = "\n".join(block * (MAX_LINES // len(block) + more)) + "\n" + tail
    assert strip_reply(text) == reference_strip_reply(text)


def test_a_long_text_with_history_past_max_lines_reads_as_the_reference() -> None:
    text = "a: b\n> q\n" * (MAX_LINES // 2) + "-----Original Message-----\nFrom: x\n"
    assert strip_reply(text) == reference_strip_reply(text) != ""
