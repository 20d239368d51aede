"""Trusting an owner's mail only with a passing verdict from the configured server (RFC 8601)."""

from __future__ import annotations

import pytest

from mailhelper.authresults import passes

TRUSTED = "mx.example.com"
OWNER = "sam@example.com"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["mx.example.com; dmarc=pass header.from=example.com"], True),
        (["mx.example.com; dkim=pass header.d=example.com"], True),
        (["mx.example.com; dkim=pass (good signature) header.i=@example.com"], True),
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
