"""Mail words reach a terminal without the power to move, clear or retitle it (ECMA-48)."""

from __future__ import annotations

import io
import json

import pytest

from mailhelper.compose.terminal import TerminalStream, for_terminal, json_for_terminal, one_line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x1b[2Jb", "ab"),                       # CSI: clear the screen
        ("a\x1b[38;5;196mb\x1b[0m", "ab"),         # CSI with parameters
        ("a\x9b2Jb", "ab"),                        # 8-bit CSI
        ("a\x1b]0;title\x07b", "ab"),              # OSC ended by BEL
        ("a\x1b]8;;http://evil.test\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),  # OSC 8 link
        ("a\x1bPq#0;2;0;0;0\x1b\\b", "ab"),        # DCS (sixel) ended by ST
        ("a\x1bcb", "ab"),                         # RIS: reset the terminal
        ("a\x1b", "a"),                            # a lone ESC at the end
        ("a\rb\x08c\x00d\x7fe\x85f", "abcdef"),    # CR, BS, NUL, DEL, NEL
        ("one\ntwo\tthree", "one\ntwo three"),     # the output's own line feeds stay
        ("Jöhn — “quoted” 日本", "Jöhn — “quoted” 日本"),
    ],
)
def test_for_terminal(text: str, expected: str) -> None:
    assert for_terminal(text) == expected


def test_one_line_joins_every_kind_of_line_break() -> None:
    assert one_line("a\r\nb\nc\rd\u2028e\x0bf") == "a b c d e f"


def test_json_keeps_its_value_and_loses_the_raw_controls() -> None:
    value = {"subject": "a\x1b[2J\x9b31m\x7fb"}
    text = json_for_terminal(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == value
    assert not any(0x00 <= ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in text)


def test_the_stream_cleans_what_is_written() -> None:
    inner = io.StringIO()
    stream = TerminalStream(inner)
    stream.write("Subject: \x1b[2JIntro\n")
    stream.flush()
    assert inner.getvalue() == "Subject: Intro\n"
