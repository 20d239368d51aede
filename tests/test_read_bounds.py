"""No stranger's mail can stall the reading or eat the memory: every stage that handles
untrusted content is linear (or capped) in its input.

The timed checks run in a child process (:mod:`tests.rig.reading`) with a generous timeout,
and fail only on CPU time (``time.process_time``) over 2 s for one message, so a busy shared
machine cannot make them flaky; the figures in the comments were measured before each fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailhelper.htmltext import MAX_QUOTE_DEPTH, html_to_text
from tests.rig.reading import read_in_child

#: CPU seconds one message may take to read, and the child's peak RSS, in MB.
CPU_LIMIT = 2.0
RSS_LIMIT = 200.0

# -- the HTML converter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<b>x</b> <a <a", "x <a <a"),
        ("<p>a</p><!--x>b<!--y>", "a\n\n<!--x>b<!--y>"),
        ("<p>a<![CDATA[x>b", "a<![CDATA[x>b"),
        ("Hi <a b=", "Hi <a b="),
    ],
)
def test_unterminated_markup_is_shown_as_text_as_before(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_quotes_deeper_than_the_cap_are_shown_at_the_cap() -> None:
    text = html_to_text("<blockquote>" * 3 + "three" + "<blockquote>" * 100 + "deep")
    assert text.splitlines() == [">>> three", ">" * MAX_QUOTE_DEPTH + " deep"]


#: A megabyte of each: before the fix, html.parser rescanned to the end of the input for each
#: unterminated ``<`` (20 KB of ``<a `` took 3.7 s, 40 KB 15 s: an hour for 1 MB), and deep
#: quotes wrote a line of up to 25,000 ``>`` per line (400 KB: 312 million characters, 907 MB).
HTML_BOMBS = {
    "unclosed tags": "<a " * 350_000,
    "unclosed tags, one > at the end": "<a " * 350_000 + ">",
    "unclosed self-closing": "<a/" * 350_000,
    "unfinished attributes": "<a b=" * 200_000,
    "unclosed comments with >": "<!--x>" * 170_000 + ">",
    "unclosed CDATA with >": "<![cdata[x>" * 90_000 + ">",
    "unclosed end tags": "</a " * 250_000,
    "deep quotes": "<br><blockquote>" * 62_500,
    "deep Yahoo quotes": "<div class=yahoo_quoted>x" * 40_000,
}


def test_a_megabyte_of_hostile_html_is_converted_in_linear_time(tmp_path: Path) -> None:
    cases = []
    for name, html in HTML_BOMBS.items():
        path = tmp_path / f"{len(cases)}.html"
        path.write_text(html)
        cases.append((name, path))
    results = read_in_child(cases, timeout=180, what="html")
    slow = {n: r.cpu for n, r in results.items() if r.cpu > CPU_LIMIT}
    assert not slow, f"over {CPU_LIMIT} s of CPU: {slow}"
    assert max(r.peak_mb for r in results.values()) < RSS_LIMIT, results
