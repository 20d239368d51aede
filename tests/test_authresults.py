"""Trusting an owner's mail only with a passing verdict from the configured server (RFC 8601)."""

from __future__ import annotations

import pytest

from mailhelper.read.authresults import passes

TRUSTED = "mx.example.com"
OWNER = "sam@example.com"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["mx.example.com; dmarc=pass header.from=example.com"], True),
        (["mx.example.com; dkim=pass header.d=example.com"], True),
        (["mx.example.com; dkim=pass (good signature) header.d=example.com"], True),
        (["mx.example.com; spf=pass smtp.mailfrom=sam@example.com"], True),
        (["mx.example.com; spf=pass smtp.mailfrom=bounces.example.com"], True),
        # A pass for somebody else's domain says nothing about the owner's From.
        (["mx.example.com; dkim=pass header.d=evil.test"], False),
        (["mx.example.com; spf=pass smtp.mailfrom=evil.test"], False),
        (["mx.example.com; dmarc=fail; dkim=fail header.d=example.com; spf=softfail"], False),
        (["mx.example.com; none"], False),
        ([], False),
        # Another server's verdict is not trusted, however good.
        (["mx.evil.test; dmarc=pass"], False),
        # Only the topmost trusted header counts: a forged one below the real one is ignored.
        (["mx.example.com; dmarc=fail", "mx.example.com; dmarc=pass"], False),
        (["other.example.net; dmarc=fail", "mx.example.com; dkim=pass header.d=example.com"],
         True),
        (["MX.Example.Com ; DMARC=Pass"], True),
    ],
)
def test_verdicts(headers: list[str], expected: bool) -> None:
    assert passes(headers, TRUSTED, OWNER) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # header.i names an agent, not the signing domain: it aligns nothing (RFC 7489 3.1.1).
        (["mx.example.com; dkim=pass header.d=evil.test header.i=@example.com"], False),
        (["mx.example.com; dkim=pass header.i=@example.com"], False),
        # header.d may be a parent of the From domain, never a bare suffix or a stranger's.
        (["mx.example.com; dkim=pass header.d=example.com"], True),
        (["mx.example.com; dkim=pass header.d=com"], False),
        (["mx.example.com; dkim=pass header.d=notexample.com"], False),
    ],
)
def test_dkim_aligns_on_the_signing_domain(headers: list[str], expected: bool) -> None:
    assert passes(headers, TRUSTED, OWNER) is expected


def test_dkim_parent_domain_of_a_subdomain_sender_aligns() -> None:
    assert passes(["mx.example.com; dkim=pass header.d=example.com"], TRUSTED,
                  "sam@mail.example.com")
    assert not passes(["mx.example.com; dkim=pass header.d=mail.example.com"], TRUSTED,
                      "sam@example.com")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # One header per filter, dmarc=none on top: the DKIM pass below still counts.
        (["mx.example.com; dmarc=none header.from=example.com",
          "mx.example.com; dkim=pass header.d=example.com",
          "mx.example.com; spf=none smtp.mailfrom=example.com"], True),
        # A dmarc=fail in any of the trusted headers vetoes.
        (["mx.example.com; dkim=pass header.d=example.com",
          "mx.example.com; dmarc=fail header.from=example.com"], False),
        # Another server's header ends the trusted run: what is below it may be the sender's.
        (["mx.example.com; dmarc=none", "relay.evil.test; none",
          "mx.example.com; dkim=pass header.d=example.com"], False),
        # An internal relay's header above the trusted run is skipped.
        (["relay.example.com; none", "mx.example.com; dmarc=none",
          "mx.example.com; spf=pass smtp.mailfrom=example.com"], True),
    ],
)
def test_every_header_of_the_trusted_run_is_read(headers: list[str], expected: bool) -> None:
    assert passes(headers, TRUSTED, OWNER) is expected


def test_an_encoded_word_is_not_the_trusted_authserv_id() -> None:
    from mailhelper.read.parse import parse_mail

    raw = (b"From: sam@example.com\r\nMessage-ID: <a@example.com>\r\n"
           b"Authentication-Results: =?utf-8?q?mx=2Eexample=2Ecom?=; dmarc=pass\r\n\r\nhi\r\n")
    headers = parse_mail(raw).headers["authentication-results"]
    assert headers == ("=?utf-8?q?mx=2Eexample=2Ecom?=; dmarc=pass",)
    assert not passes(headers, TRUSTED, OWNER)
