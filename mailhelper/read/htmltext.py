"""HTML mail bodies as readable plain text, on the stdlib :mod:`html.parser` only.

The text keeps what later stages read: line breaks where a browser would break, paragraphs as
blank lines, and ``<blockquote>`` (and Yahoo's quote container) as ``>``-quoted lines, so that
:func:`mailhelper.read.replytext.strip_reply` treats quoted HTML exactly like quoted plain text::

    >>> html_to_text("<p>Hi<br>there</p><blockquote>old<br>mail</blockquote>")
    'Hi\\nthere\\n\\n> old\\n> mail'

It never raises: broken markup yields whatever text could be read.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Elements whose content is never shown.
_HIDDEN = frozenset({"head", "script", "style", "title", "template", "svg", "object", "xml"})
#: Elements that start and end a line.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "center", "dd", "details", "dialog", "dir", "div",
        "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "main",
        "menu", "nav", "ol", "section", "summary", "table", "tr", "ul", "caption", "tbody",
        "thead", "tfoot",
    }
)
#: Elements that stand apart from their neighbours by a blank line.
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})
#: Containers that some webmails use instead of <blockquote> for the quoted original.
_QUOTE_CLASS = re.compile(r"yahoo_quoted", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
#: Beyond this, the rest of the HTML is ignored: no mail's readable text needs more, and it
#: bounds the time the (linear) conversion takes.
MAX_HTML_CHARS = 1_000_000
#: What ends a comment, a CDATA-like marked section and an MS Office ``<![if ...]>`` section,
#: as html.parser (``_markupbase``) looks for them.
_COMMENT_CLOSE = re.compile(r"--\s*>")
_SECTION_CLOSE = re.compile(r"]\s*]\s*>")
_MS_SECTION_CLOSE = re.compile(r"]\s*>")
_SECTION_NAME = re.compile(r"[a-zA-Z][-_.a-zA-Z0-9]*")
#: Quote marks written before a line at most: deeper quotes are shown at this depth. Without
#: a cap, 400 KB of ``<br><blockquote>`` writes 25,000 lines of up to 25,000 ``>`` each
#: (300 million characters); real threads stop far short of it.
MAX_QUOTE_DEPTH = 50


def html_to_text(html: str) -> str:
    """Readable text of an HTML document or fragment; blockquotes become ``> `` lines.

    >>> html_to_text('<div>Hello</div><div><br></div><div>Jane</div>')
    'Hello\\n\\nJane'
    """
    converter = _Converter()
    try:
        converter.feed(_neutralised(html[:MAX_HTML_CHARS]))
        converter.close()
    except Exception:  # html.parser is lenient, but an AssertionError on odd declarations
        pass  # has been seen in the wild; the text read so far is still the best answer.
    return converter.text()


def _neutralised(html: str) -> str:
    """``html`` with every ``<`` after its last ``>`` escaped as ``&lt;``.

    No markup can end there, so html.parser would show each of them as text anyway; but it
    finds that out by scanning to the end of the input once per ``<``, and again for the
    ``>`` that is not there, which makes 1 MB of ``<a <a <a`` take hours. Escaped, they are
    the same text, read in one pass.

        >>> _neutralised("<b>x</b> <a <a")
        '<b>x</b> &lt;a &lt;a'
    """
    last = html.rfind(">")
    tail = html[last + 1 :]
    return html[: last + 1] + tail.replace("<", "&lt;") if "<" in tail else html


class _Closes:
    """Where the last comment and marked-section ends of one buffer start, so that an
    unterminated ``<!--`` or ``<![CDATA[`` is known as such at once, not by a scan to the end
    of the buffer for each of them (which is quadratic on ``<!--x>`` repeated)."""

    def __init__(self, buffer: str) -> None:
        self.buffer = buffer
        self.comment = _last_start(_COMMENT_CLOSE, buffer)
        self.section = _last_start(_SECTION_CLOSE, buffer)
        self.ms_section = _last_start(_MS_SECTION_CLOSE, buffer)


def _last_start(pattern: re.Pattern[str], text: str) -> int:
    # Each match ends at its own ">" (the only ">" it holds), so matches never overlap and
    # finditer sees them all: a search from ``p`` finds one if and only if p <= the last start.
    last = -1
    for found in pattern.finditer(text):
        last = found.start()
    return last


class _Converter(HTMLParser):
    """The line model below, fed by html.parser; the two ``parse_*`` overrides only answer
    "not terminated" early, in O(1), where html.parser would answer the same after a scan."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._closes = _Closes("")
        self.lines: list[str] = []
        self.buffer: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.depth = 0  # blockquote nesting of the text being read
        self.div_quotes: list[bool] = []  # for each open <div>: did it open a quote?
        self.blank_pending = False
        self.blank_depth = 0
        self.word_lines: list[bool] = []  # for each open <p>: is it a Word line?

    # -- linear time on unterminated markup ---------------------------------------------------
    def _closes_now(self) -> _Closes:
        # html.parser keeps the unread rest in ``rawdata`` and replaces it between feed() and
        # close(): at most two scans per document.
        if self._closes.buffer is not self.rawdata:
            self._closes = _Closes(self.rawdata)
        return self._closes

    def parse_comment(self, i: int, report: bool = True) -> int:
        if i + 4 > self._closes_now().comment:
            return -1  # no "-->" after it: what the parent would find by scanning
        return super().parse_comment(i, report)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        found = _SECTION_NAME.match(self.rawdata, i + 3)
        name = found.group().lower() if found else ""
        closes = self._closes_now()
        if name in ("temp", "cdata", "ignore", "include", "rcdata"):
            last = closes.section
        elif name in ("if", "else", "endif"):
            last = closes.ms_section
        else:
            last = len(self.rawdata)  # the parent's own answer (an error) for anything else
        if i + 3 > last:
            return -1
        return super().parse_marked_section(i, report)

    # -- the line model -------------------------------------------------------------------
    def _prefix(self) -> str:
        return ">" * min(self.depth, MAX_QUOTE_DEPTH) + " " if self.depth else ""

    def _emit(self, text: str) -> None:
        if self.blank_pending and self.lines and self.lines[-1].strip("> "):
            # The blank belongs to the outer of the two texts it separates.
            self.lines.append(">" * min(self.blank_depth, self.depth, MAX_QUOTE_DEPTH))
        self.blank_pending = False
        self.lines.append(self._prefix() + text if text else self._prefix().rstrip())

    def _flush(self, force: bool = False) -> None:
        """Ends the current line; ``force`` emits it even when empty (a ``<br>``)."""
        text = "".join(self.buffer).replace("\xa0", " ").strip()
        self.buffer = []
        if text or force:
            self._emit(text)

    def _paragraph(self) -> None:
        self._flush()
        self.blank_pending = bool(self.lines)
        self.blank_depth = self.depth

    # -- parser callbacks -----------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
            return
        if self.hidden:
            return
        if "@" in tag:  # an unescaped <jane@example.com> in the text, not an element
            self.handle_data(f"<{tag}>")
        elif tag == "br":
            self._flush(force=True)
        elif tag == "blockquote":
            self._flush()
            self.depth += 1
        elif tag == "div":
            self._flush()
            css = " ".join(v or "" for k, v in attrs if k in ("class", "id"))
            quote = bool(_QUOTE_CLASS.search(css))
            self.div_quotes.append(quote)
            self.depth += quote
        elif tag in _PARAGRAPH:
            # Word (Outlook) writes every line as <p class=MsoNormal> with no margin.
            word = tag == "p" and any(
                k == "class" and v and "msonormal" in v.lower() for k, v in attrs
            )
            if tag == "p":
                self.word_lines.append(word)
            if word:
                self._flush()
            else:
                self._paragraph()
            self.pre += tag == "pre"
        elif tag == "li":
            self._flush()
            self.buffer.append("- ")
        elif tag == "hr":
            self._flush()
            self._emit("----")
        elif tag in ("td", "th"):
            if self.buffer:
                self.buffer.append(" ")
        elif tag in _BLOCK:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":  # <div/> opens nothing
            self._flush()
        else:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
            return
        if self.hidden:
            return
        if tag == "blockquote":
            self._flush()
            self.depth = max(0, self.depth - 1)
        elif tag == "div":
            self._flush()
            if self.div_quotes and self.div_quotes.pop():
                self.depth = max(0, self.depth - 1)
        elif tag == "p" and self.word_lines and self.word_lines.pop():
            self._flush(force=bool(self.buffer))  # an &nbsp; line is Word's blank line
        elif tag in _PARAGRAPH:
            self._paragraph()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag in _BLOCK or tag == "li":
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            first, *rest = data.replace("\r\n", "\n").split("\n")
            self.buffer.append(first)
            for line in rest:
                self._flush(force=True)
                self.buffer.append(line)
            return
        text = _SPACES.sub(" ", data)
        if not self.buffer or self.buffer[-1].endswith(" "):
            text = text.lstrip(" ")
        if text:
            self.buffer.append(text)

    def text(self) -> str:
        self._flush()
        lines = [line.rstrip() for line in self.lines]
        return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")
