"""Names as people write them: a display name and an address -> the name to greet.

Pure. A letter opens with the name a person goes by, never with a title or a surname put
first by an address book, and never with a guess made from ``info@``::

    >>> read_name("Dr. Priya Raman", "priya@uni.example").greeting
    'Priya'
    >>> read_name("Dr. Raman", "raman@uni.example").greeting
    'Dr. Raman'
    >>> jane = read_name("Okafor, Jane", "jane@x.org")
    >>> jane.full, jane.greeting
    ('Jane Okafor', 'Jane')
    >>> read_name("JANE DOE", "jd@x.org").greeting
    'Jane'
    >>> read_name("", "jane.park@x.org").greeting, read_name("", "info@x.org").greeting
    ('Jane', '')
    >>> read_name("王小明", "wang@x.cn").greeting
    '王小明'

An empty ``greeting`` means no name can be told: the letter opens with "Hello," instead.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Titles (lower case, without a final dot) read before a name. Kept for formal address
#: ("Dr. Raman"), never used as a first name. English, German, French, Spanish, Italian and
#: Portuguese forms; "m" only counts with its dot ("M. Dupont"), a bare "M" is an initial.
TITLES = frozenset({
    "dr", "prof", "professor", "mr", "mrs", "ms", "miss", "mx", "sir", "dame", "lord", "lady",
    "rev", "revd", "herr", "frau", "hr", "fr", "mme", "mlle", "monsieur", "madame",
    "mademoiselle", "me", "sr", "sra", "srta", "dra", "don", "doña", "dona", "dott", "dott.ssa",
    "ing", "mag", "univ.-prof",
})
#: Titles that are a title only when written with a dot after them.
_DOTTED_ONLY = frozenset({"m", "me", "fr", "hr", "ing", "mag"})
#: Letters and degrees after a name ("Jane Doe, PhD", "John Smith Jr.").
SUFFIXES = frozenset({
    "jr", "sr", "ii", "iii", "iv", "phd", "md", "mba", "msc", "bsc", "ma", "ba", "esq", "dds",
    "cpa", "pe", "rn", "dphil", "mp", "obe", "mbe", "cbe", "frs",
})
#: Words that name a role or a machine, not a person: "Acme Support", ``info@``, ``noreply@``.
ROLE_WORDS = frozenset({
    "info", "information", "sales", "support", "team", "help", "helpdesk", "desk", "service",
    "services", "office", "admin", "administrator", "contact", "contacts", "hello", "hi",
    "noreply", "no-reply", "donotreply", "do-not-reply", "reply", "mail", "email", "mailer",
    "mailer-daemon", "postmaster", "webmaster", "hostmaster", "abuse", "billing", "accounts",
    "accounting", "finance", "marketing", "newsletter", "news", "notifications", "notification",
    "alerts", "jobs", "careers", "hr", "press", "media", "enquiries", "inquiries", "reception",
    "orders", "bookings", "booking", "customer", "customers", "customerservice", "feedback",
    "security", "privacy", "legal", "it", "ops", "dev", "devs", "root", "system", "bot",
    "community", "events", "school", "studio", "shop", "store", "the",
})
_QUOTES = "\"'“”‘’„‚«»‹›`´"
#: Scripts written without spaces between given name and family name: the whole name is
#: the name to use ("王小明", "山田太郎", "김민준").
_UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")
_DROPPED = frozenset({"So", "Sk", "Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")


@dataclass(frozen=True)
class Name:
    """What a display name says about a person.

    ``full``: the name as a sentence writes it ("Jane Okafor", "Dr. Priya Raman"; "" when
    there is none). ``given``: the first name ("" when it cannot be told). ``formal``: the
    title and family name ("Dr. Raman"; "" without a title). ``greeting``: what "Hi …,"
    takes: the given name, else the formal name, else "".
    """

    full: str = ""
    given: str = ""
    formal: str = ""

    @property
    def greeting(self) -> str:
        return self.given or self.formal


def _clean(text: str) -> str:
    """Quotes, emoji, symbols, control characters and bracketed notes removed; spaces folded.

    >>> _clean('"Jane 🙂 Doe" (Acme)')
    'Jane Doe'
    """
    text = _BRACKETS.sub(" ", text)
    kept: list[str] = []
    dropped = True
    for i, char in enumerate(text):
        category = unicodedata.category(char)
        inner = (char in "'’" and 0 < i < len(text) - 1 and text[i - 1].isalpha()
                 and text[i + 1].isalpha())  # O'Neil, D’Angelo: part of the name
        # A combining mark after a dropped symbol is its variation selector or skin tone.
        dropped = ((char in _QUOTES and not inner) or category in _DROPPED
                   or (category == "Mn" and dropped))
        kept.append(" " if dropped else char)
    return " ".join("".join(kept).split()).strip(" ,;:-|/")


def _unspaced(text: str) -> bool:
    return any(
        unicodedata.name(char, "").startswith(_UNSPACED_SCRIPTS) for char in text if char.isalpha()
    )


def _bare(token: str) -> str:
    return token.lower().rstrip(".")


def _is_title(token: str) -> bool:
    bare = _bare(token)
    if bare in _DOTTED_ONLY:
        return token.endswith(".")
    return bare in TITLES


def _is_initial(token: str) -> bool:
    letters = token.replace(".", "").replace("-", "")
    return len(letters) == 1 and letters.isalpha()


def _cased(token: str) -> str:
    """An ALL-CAPS word in the case people write names: ``O'NEIL`` -> ``O'Neil``."""
    letters = [c for c in token if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return "-".join(part[:1] + part[1:].lower() if "'" not in part else
                        "'".join(p[:1] + p[1:].lower() for p in part.split("'"))
                        for part in token.split("-"))
    return token


def _is_role(words: list[str]) -> bool:
    return any(_bare(w) in ROLE_WORDS for w in words)


def read_name(display: str, email: str = "") -> Name:
    """The :class:`Name` in a display name, or in the address's local part when the display
    name says nothing (empty, or an address itself). See the module docstring for examples.

    >>> read_name("Prof. Dr. Hans Müller", "hm@x.de")
    Name(full='Prof. Dr. Hans Müller', given='Hans', formal='Prof. Dr. Müller')
    >>> read_name("Sra. García", "g@x.es").greeting
    'Sra. García'
    >>> read_name("Acme Support", "help@acme.example").greeting
    ''
    """
    text = _clean(display)
    if not text or "@" in text:
        return _from_address(email)
    if _unspaced(text):
        return Name(full=text, given=text)
    parts = [part.strip() for part in text.split(",")]
    while len(parts) > 1 and all(_bare(w) in SUFFIXES for w in parts[-1].split()):
        parts.pop()  # "Jane Doe, PhD", "Doe, Jane, MD"
    if len(parts) == 2 and parts[0] and parts[1] and len(parts[0].split()) <= 2:
        parts = [parts[1], parts[0]]  # "Okafor, Jane" and "Okafor, Dr. Jane"
    text = " ".join(parts)
    words = [_cased(w) for w in text.replace(",", " ").split()]
    while len(words) > 1 and _bare(words[-1]) in SUFFIXES:
        words.pop()
    titles: list[str] = []
    while words and _is_title(words[0]):
        titles.append(words.pop(0))
    if not words:
        return Name()  # only a title: "Dr." alone names nobody
    if not titles and _is_role(words):
        return Name()
    full = " ".join([*titles, *words])
    plain = " ".join(words)
    formal = " ".join([*titles, words[-1]]) if titles else ""
    if len(words) == 1:
        # One word after a title is the family name ("Dr. Raman"); alone it is the first name.
        return Name(full=full, given="" if titles else words[0], formal=formal)
    named = [w for w in words if not _is_initial(w) and any(c.isalnum() for c in w)]
    if not named:
        return Name(full=full, given="", formal=formal or plain)
    first = named[0]
    if first == words[-1] and len(words) > 1:
        # "J. Parker": initials and a family name; "Hi J. Parker" is the polite guess.
        return Name(full=full, given="", formal=formal or plain)
    return Name(full=full, given=first, formal=formal)


def _from_address(email: str) -> Name:
    """A name from a local part that looks like one: ``jane.park`` -> Jane (Park), and
    nothing from ``jparker``, ``info`` or ``j.park``: a single word could be anything."""
    local = email.rpartition("@")[0] if "@" in email else ""
    local = local.split("+", 1)[0]
    pieces = [p for p in re.split(r"[._]", local) if p]
    if len(pieces) < 2 or _is_role(pieces):
        return Name()
    if not all(p.replace("-", "").isalpha() for p in pieces[:2]):
        return Name()
    first, last = pieces[0], pieces[-1]
    if len(first.replace("-", "")) < 2 or len(last.replace("-", "")) < 2:
        return Name()
    words = ["-".join(part[:1].upper() + part[1:].lower() for part in p.split("-"))
             for p in pieces]
    return Name(full=" ".join(words), given=words[0])


def join_names(names: list[str] | tuple[str, ...]) -> str:
    """Names as a sentence lists them.

    >>> join_names(["José"]), join_names(["José", "Jane"]), join_names(["José", "Jane", "Priya"])
    ('José', 'José and Jane', 'José, Jane and Priya')
    """
    items = [n for n in names if n]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def greeting(names: list[str] | tuple[str, ...], word: str = "Hi") -> str:
    """The opening line of a letter to these people: every greeting name, or a plain
    "Hello," when any of them has none (greeting one person by name and another not at all
    would single one out).

    >>> greeting(["Jane"]), greeting(["José", "Jane"]), greeting([""]), greeting(["Jane", ""])
    ('Hi Jane,', 'Hi José and Jane,', 'Hello,', 'Hello,')
    """
    if not names or any(not n for n in names):
        return "Hello,"
    return f"{word} {join_names(names)},"
