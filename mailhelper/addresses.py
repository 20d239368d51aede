"""Bare e-mail addresses: comparing them, and whether one can be written to.

Two questions, both pure:

- :func:`fold` is the one way addresses are compared and stored: only ASCII letters change
  case. ``str.lower()`` would also fold non-ASCII letters into ASCII ones (the Kelvin sign
  U+212A becomes ``k``), so a stranger's ``Kate@example.com`` would match an owner's
  ``kate@example.com``.
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

import re
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
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def fold(email: str) -> str:
    """``email`` with its ASCII letters lower-cased and nothing else changed: the form in which
    addresses are stored and compared. Non-ASCII letters keep their case, so a non-ASCII local
    part never becomes an ASCII one.

    >>> fold("JÖHN@Example.DE")
    'jÖhn@example.de'
    """
    return email.translate(_ASCII_LOWER)


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
    if not name.isascii():
        try:
            # IDNA 2003 (the stdlib codec) as the resolvers that will look the name up do.
            name = fold(name.encode("idna").decode("ascii"))
        except UnicodeError:
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
