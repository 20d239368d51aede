"""Bare e-mail addresses: comparing them, and whether one can be written to.

Three questions, all pure:

- :func:`fold` is the one way addresses are compared and stored: only ASCII letters change
  case, and a non-ASCII domain is written in its IDNA form (so that ``bob@bücher.example``
  from mail and the counterpart stored for it are one address). ``str.lower()`` would also
  fold non-ASCII letters into ASCII ones: ``Kate@example.com``, written with the Kelvin
  sign U+212A, would match an owner's ``kate@example.com``.
- :func:`mailboxes` reads a list of mailboxes (a header value, or a line a client printed) so
  that only the address part of a mailbox is ever taken as an address: an address inside a
  quoted display name never is, and a mailbox that shows two different addresses is
  ambiguous, so the list is not read at all rather than guessed at.
- :func:`check` says whether an address taken from mail can be put in a header and an SMTP
  envelope as it is, and gives its canonical form; it is asked once, where an address from
  mail becomes someone the assistant would write to (a thread's counterpart), so that an
  address that cannot be composed never gets as far as a due mail.

    >>> fold("Jane.Doe@Example.ORG"), fold("Kate@EXAMPLE.com")
    ('jane.doe@example.org', 'Kate@example.com')
    >>> check("Jane@Example.org")
    Checked(email='jane@example.org', problem=None)
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import NamedTuple

#: RFC 5321 section 4.5.3.1.1: a local part is at most 64 octets.
MAX_LOCAL = 64
#: RFC 5321 section 4.5.3.1.3 (a path of 256 octets, with its angle brackets) and RFC 3696
#: errata 1690: an address is at most 254 octets.
MAX_ADDRESS = 254
#: RFC 1035 section 2.3.4: a label is at most 63 octets, a name at most 253 characters.
MAX_LABEL = 63
MAX_DOMAIN = 253

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
#: RFC 5322 section 3.2.3 ``atext``: the characters of a dot-atom local part.
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
#: RFC 5890 section 2.3.1 LDH label (letters, digits, hyphen; no hyphen at either end).
_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
#: A mailbox list is read up to this many entries (far more than any mail that is not mass
#: mail has; the rest of a longer list is not read, which keeps a hostile list linear and cheap).
MAX_ENTRIES = 20_000
#: An entry of more quoted strings, comments, brackets and words than this is no mailbox.
MAX_PIECES = 200
#: At most this many comma-separated parts make one display name ("Doe, Jane, Dr.").
MAX_NAME_PARTS = 4
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: An address standing alone in text. The look-behind makes a match start only where a run of
#: address characters starts: without it, a long run with no "@" costs quadratic time.
BARE_ADDRESS = re.compile(
    r"(?<![\w.+'!#$%&*/=?^`{|}~-])[\w.+'!#$%&*/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*"
)
_QUOTED = re.compile(r'((?:[^"\\]|\\.)*)"?', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_COMMENT_TEXT = re.compile(r"[^()\\]+")
_BARRIER = "\x00"  # stands for a quoted string among plain words: no address spans it
_AROUND_AT_OR_DOT = re.compile(r"[ \t]*([@.])[ \t]*")
_INNER_COMMENT = re.compile(r"\([^()]*\)")
#: Comments nested deeper than this inside an angle address are not taken out.
MAX_COMMENT_DEPTH = 5
#: A run of plain text in a mailbox list: up to the next separator, quote, comment or bracket.
_PLAIN = re.compile(r'[^,;:"(<]+')
#: What may stand between angle brackets (or alone in a comment) as an address; whether mail
#: can go to it is :func:`check`'s question, asked where an address becomes a recipient.
_ENCLOSED_ADDRESS = re.compile(r"[^\s<>()\[\]\",;:@\\]+@[^\s<>()\[\]\",;:@\\]+")


def fold(email: str) -> str:
    """``email`` as addresses are stored and compared: ASCII letters lower-cased, a non-ASCII
    domain in IDNA form when it has one (RFC 5891; DNS compares no other way), nothing else
    changed. Non-ASCII letters of the local part keep their case, so a non-ASCII local part
    never becomes an ASCII one.

    >>> fold("JÖHN@Example.DE"), fold("Bob@Bücher.Example")
    ('jÖhn@example.de', 'bob@xn--bcher-kva.example')
    """
    local, at, domain = email.translate(_ASCII_LOWER).rpartition("@")
    if at and not domain.isascii():
        # IDNA 2003 (the stdlib codec), as the resolvers that will look the name up do; a
        # domain with no IDNA form is kept as it is, and check() refuses it.
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("idna").decode("ascii").translate(_ASCII_LOWER)
    return f"{local}{at}{domain}"


class Checked(NamedTuple):
    """The verdict on one address: ``email`` in canonical form (ASCII lower case, a non-ASCII
    domain as its IDNA A-labels), and ``problem`` None when it can be written to, else why not,
    as a phrase that completes "left out because ...". ``email`` is the input, folded, when
    there is a problem."""

    email: str
    problem: str | None


def check(email: str) -> Checked:
    """Whether mail can go to ``email``, and its canonical form.

    Writable means it fits an RFC 5321 envelope and an RFC 5322 header without SMTPUTF8: one
    ``@``; a dot-atom local part of ASCII at most 64 octets; a domain of letter-digit-hyphen
    labels of 1 to 63 octets, at most 253 in all (a non-ASCII domain is kept when it has an
    IDNA encoding, and written in it); at most 254 octets in all. Quoted local parts and
    address literals (``[192.0.2.1]``) are refused: no mail client offers them to people.

    >>> check("a..b@example.org").problem
    'its local part "a..b" is not a valid dot-atom (RFC 5322)'
    >>> check("x@foo_bar.test").problem
    'its domain label "foo_bar" may hold only letters, digits and hyphens (RFC 1035)'
    >>> check("jöhn@example.de").problem
    'its local part "jöhn" is not ASCII, and mail to it needs SMTPUTF8'
    >>> check("x" * 65 + "@example.org").problem
    'its local part is 65 octets long, over the limit of 64 (RFC 5321)'
    >>> check("jane@Bücher.example")
    Checked(email='jane@xn--bcher-kva.example', problem=None)
    >>> check("bell\\x07@example.org").problem
    'it holds a control character'
    """
    folded = fold(email)
    if _CONTROL.search(email) or any(c.isspace() for c in email):
        return Checked(folded, "it holds a control character" if _CONTROL.search(email)
                       else "it holds a space")
    if email.count("@") != 1:
        return Checked(folded, "it does not have exactly one @")
    local, domain = folded.split("@")
    if not local.isascii():
        return Checked(folded, f'its local part "{local}" is not ASCII, and mail to it needs '
                               "SMTPUTF8")
    if not local or not all(_ATOM.fullmatch(atom) for atom in local.split(".")):
        return Checked(folded, f'its local part "{local}" is not a valid dot-atom (RFC 5322)')
    if len(local) > MAX_LOCAL:
        return Checked(folded, f"its local part is {len(local)} octets long, over the limit "
                               f"of {MAX_LOCAL} (RFC 5321)")
    ascii_domain, problem = _domain(domain)
    if problem is not None:
        return Checked(folded, problem)
    address = f"{local}@{ascii_domain}"
    if len(address) > MAX_ADDRESS:
        return Checked(folded, f"it is {len(address)} octets long, over the limit of "
                               f"{MAX_ADDRESS} (RFC 5321)")
    return Checked(address, None)


def _domain(domain: str) -> tuple[str, str | None]:
    """(the domain in ASCII, None) or (``domain``, why it cannot be written to)."""
    if not domain:
        return domain, "it has no domain"
    if domain.startswith("["):
        return domain, "its domain is an address literal"
    name = domain[:-1] if domain.endswith(".") else domain
    if not name.isascii():  # fold() found no IDNA form for it
        return domain, f'its domain "{domain}" has no IDNA encoding'
    if len(name) > MAX_DOMAIN:
        return domain, f"its domain is {len(name)} octets long, over the limit of {MAX_DOMAIN}"
    for label in name.split("."):
        if not label:
            return domain, f'its domain "{domain}" has an empty label'
        if len(label) > MAX_LABEL:
            return domain, (f"its domain label \"{label[:20]}…\" is {len(label)} octets long, "
                            f"over the limit of {MAX_LABEL} (RFC 1035)")
        if not _LDH_LABEL.fullmatch(label):
            return domain, (f'its domain label "{label}" may hold only letters, digits and '
                            "hyphens (RFC 1035)")
    return name, None


# -- lists of mailboxes ---------------------------------------------------------------------


@dataclass
class Entry:
    """One entry of a mailbox list, between commas, semicolons or a group's colon."""

    parts: list[tuple[bool, str]] = field(default_factory=list)  # (quoted?, text), in order
    angles: list[str] = field(default_factory=list)  # what stood between < and >
    comments: list[str] = field(default_factory=list)  # what stood between ( and )
    #: Not read to a clean end: a quote, comment or bracket never closed, or more pieces than
    #: any mailbox has (:data:`MAX_PIECES`).
    unreadable: bool = False
    #: Ended by a colon: the display name of a group (RFC 5322 section 3.4), not a mailbox.
    group: bool = False

    def addresses(self) -> dict[str, str]:
        """Every address the entry shows outside its quoted strings, folded, to as written:
        in angle brackets, alone in a comment ("Bob (b@x)", as some clients print), or in
        its plain words (as an addr-spec may be written with comments and folding white space
        around its "@" and dots, RFC 5322 section 4.4, when there are no angle brackets)."""
        found: dict[str, str] = {}
        for text in [*map(_without_cfws, self.angles), *(c.strip() for c in self.comments)]:
            if _ENCLOSED_ADDRESS.fullmatch(text):
                found.setdefault(fold(text), text)
        for text in [self._plain(), *self.comments]:
            for match in BARE_ADDRESS.finditer(text):
                found.setdefault(fold(match.group(0)), match.group(0))
        return found

    def name(self, email: str = "") -> str:
        """The display name: quoted strings and words less ``email``, else a comment."""

        def without_email(text: str) -> str:
            return BARE_ADDRESS.sub(lambda m: "" if fold(m.group(0)) == email else m.group(0),
                                    text)

        if self.angles or any(fold(c.strip()) == email for c in self.comments):
            words = [text if quoted else without_email(text) for quoted, text in self.parts]
        else:  # the plain words are the address itself, perhaps split by comments
            words = [text for quoted, text in self.parts if quoted]
            words.append(without_email(self._plain()).replace(_BARRIER, " "))
        name = " ".join(" ".join(words).split())
        if not name.strip("\"'*,;: ") and self.comments and not BARE_ADDRESS.search(
                " ".join(self.comments)):
            name = " ".join(" ".join(self.comments).split())
        return name

    def _plain(self) -> str:
        """The unquoted words, with quoted strings as barriers; without angle brackets, run
        together where comments or folding split an address ("sam(Sam)@example.com")."""
        text = "".join(_BARRIER if quoted else text for quoted, text in self.parts)
        return text if self.angles else _AROUND_AT_OR_DOT.sub(r"\1", text)


def _without_cfws(text: str) -> str:
    """An angle address without comments and white space (RFC 5322 section 4.4 lets both
    stand around its "@" and dots): "sam @ example.com" and "sam(Sam)@example.com" are
    sam@example.com."""
    for _ in range(MAX_COMMENT_DEPTH):
        if "(" not in text:
            break
        text = _INNER_COMMENT.sub("", text)
    return "".join(text.split())


def entries(text: str) -> list[Entry]:
    """``text`` cut into entries at commas, semicolons and colons outside quoted strings,
    comments and angle brackets (RFC 5322 sections 3.2.4 and 3.2.2, backslash escapes
    included; a colon ends a group's name, section 3.4); at most :data:`MAX_ENTRIES`."""
    found = [Entry()]
    position = 0
    while position < len(text):
        char = text[position]
        entry = found[-1]
        if len(entry.parts) + len(entry.angles) + len(entry.comments) >= MAX_PIECES:
            entry.unreadable = True
            break
        if char in ",;:":
            if entry.parts or entry.angles or entry.comments:  # ",,,," makes no entries
                entry.group = char == ":"
                if len(found) >= MAX_ENTRIES:
                    break
                found.append(Entry())
            position += 1
        elif char == '"':
            content, position, closed = _quoted(text, position + 1)
            entry.parts.append((True, content))
            entry.unreadable |= not closed
        elif char == "(":
            content, position, closed = _comment(text, position + 1)
            entry.comments.append(content)
            entry.unreadable |= not closed
        elif char == "<":
            end = text.find(">", position + 1)
            entry.unreadable |= end < 0
            end = len(text) if end < 0 else end
            entry.angles.append(text[position + 1 : end])
            entry.unreadable |= "<" in entry.angles[-1]  # "x< <a@b>": brackets in brackets
            position = end + 1
        else:
            plain = _PLAIN.match(text, position)
            stop = plain.end() if plain else position + 1
            entry.parts.append((False, text[position:stop]))
            position = stop
    return found


def mailboxes(text: str) -> list[tuple[str, str]] | None:
    """(address, display name) of each mailbox in ``text``, addresses folded, names as written
    (quotes and escapes removed, not RFC 2047 decoded); None when an entry shows two different
    addresses outside its quoted name, as ``Prof. Jane <jane@x.org> <eve@y.org>``, when a
    group's name shows one, or when a quote, comment or bracket is never closed or an entry
    is too long to be a mailbox (:data:`MAX_PIECES`): which address is the mailbox cannot be known,
    and a guess would let a stranger's display name choose whom the assistant writes to.
    Entries with no address are dropped; a name-only entry just before an entry with a name
    and an address is the start of that name ("Doe, Jane <j@x.org>").

    >>> mailboxes('"Prof. Jane <jane@x.org>" <Eve@Y.org>, (Bob) bob@z.org, undisclosed:;')
    [('eve@y.org', 'Prof. Jane <jane@x.org>'), ('bob@z.org', 'Bob')]
    >>> mailboxes('Prof. Jane <jane@x.org> <eve@y.org>') is None
    True
    >>> mailboxes('Doe, Jane <jane@x.org>; jane@x.org <jane@x.org>')
    [('jane@x.org', 'Doe, Jane')]
    """
    found: dict[str, str] = {}
    pending: list[str] = []  # name-only entries: "Doe" of "Doe, Jane <j@x>"
    for entry in entries(text):
        addresses = entry.addresses()
        if len(addresses) > 1 or entry.unreadable or (entry.group and addresses):
            return None
        if addresses and any(_without_cfws(angle) and not _ENCLOSED_ADDRESS.fullmatch(
                _without_cfws(angle)) for angle in entry.angles):
            return None  # "jane@x <Jane>": the brackets hold no address, the name does
        if entry.group:
            pending = []
            continue
        if not addresses:
            name = entry.name()
            # A name with commas has a few parts; keeping only the last ones keeps a run of
            # thousands of name-only entries linear.
            keep = pending[-(MAX_NAME_PARTS - 1) :]
            pending = [*keep, name] if name and not entry.angles else []
            continue
        [email] = addresses
        name = entry.name(email)
        if pending and name and (entry.angles or entry.comments):
            name = ", ".join([*pending, name])
        pending = []
        found.setdefault(email, name)
    return list(found.items())


def _quoted(text: str, position: int) -> tuple[str, int, bool]:
    """The content of a quoted string from ``position`` to its closing quote (escapes
    undone), where it ends, and whether it was closed."""
    match = _QUOTED.match(text, position)
    assert match is not None  # the pattern matches the empty string
    return _QUOTED_PAIR.sub(r"\1", match.group(1)), match.end(), match.end() > match.end(1)


def _comment(text: str, position: int) -> tuple[str, int, bool]:
    """The content of a (possibly nested) comment from ``position``, where it ends, and
    whether it was closed."""
    out: list[str] = []
    depth = 1
    while position < len(text):
        run = _COMMENT_TEXT.match(text, position)
        if run:
            out.append(run.group(0))
            position = run.end()
            continue
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            out.append(text[position + 1])
            position += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return "".join(out), position + 1, True
        out.append(char)
        position += 1
    return "".join(out), position, False
