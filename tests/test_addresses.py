"""Bare addresses: ASCII-only case folding, and which addresses mail can be written to."""

from __future__ import annotations

import doctest

import pytest

from mailhelper import addresses
from mailhelper.addresses import check, fold


def test_docstring_examples() -> None:
    result = doctest.testmod(addresses)
    assert result.attempted > 0 and result.failed == 0


def test_only_ascii_letters_fold() -> None:
    assert fold("\u212aate@Example.COM") != fold("kate@example.com")  # the Kelvin sign
    assert fold("\u0130nfo@example.com") == "\u0130nfo@example.com"  # dotted capital I
    assert fold("SAM@EXAMPLE.COM") == "sam@example.com"


@pytest.mark.parametrize("email", [
    "jane@example.org", "Jane.Doe+tag@Example.ORG", "o'brien@example.ie", "a@b",
    "x" * 64 + "@example.org", "a@" + ".".join(["b" * 63] * 3) + ".example",
    "jane@example.org.", "x-y@xn--bcher-kva.example",
])
def test_writable(email: str) -> None:
    checked = check(email)
    assert checked.problem is None, checked
    assert checked.email == fold(email).rstrip(".")


@pytest.mark.parametrize(("email", "why"), [
    ("a..b@example.org", "not a valid dot-atom"),
    (".a@example.org", "not a valid dot-atom"),
    ("a.@example.org", "not a valid dot-atom"),
    ("@example.org", "not a valid dot-atom"),
    ('"a b"@example.org', "a space"),
    ('"ab"@example.org', "not a valid dot-atom"),
    ("x@foo_bar.test", "only letters, digits and hyphens"),
    ("x@-foo.test", "only letters, digits and hyphens"),
    ("x@foo..test", "empty label"),
    ("x@", "no domain"),
    ("x@[192.0.2.1]", "address literal"),
    ("j\u00f6hn@example.de", "SMTPUTF8"),
    ("\u212aate@example.com", "SMTPUTF8"),
    ("x" * 65 + "@example.org", "65 octets"),
    ("a@" + "b" * 64 + ".example", "64 octets long, over the limit of 63"),
    ("a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".org", "over the limit of 254"),
    ("a@b@example.org", "exactly one @"),
    ("a\r\nBcc: x@evil.test@example.org", "control character"),
    ("a\x00@example.org", "control character"),
    ("a@exa\u2028mple.org", "control character"),
    ("a@\u00e9\u0301" * 1 + "\udc80.org", "no IDNA encoding"),
])
def test_not_writable(email: str, why: str) -> None:
    checked = check(email)
    assert checked.problem is not None and why in checked.problem, checked


def test_a_non_ascii_domain_is_written_in_its_idna_form() -> None:
    assert check("Jane@B\u00fccher.Example") == ("jane@xn--bcher-kva.example", None)
