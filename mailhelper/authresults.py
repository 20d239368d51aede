"""Reading the verdict of a trusted ``Authentication-Results`` header (RFC 8601).

Only the topmost header whose authserv-id is the configured trusted one counts: the receiving
server adds its own on top, and anything lower down may have come from the sender (RFC 8601
section 5). The owner's mail passes when DMARC passes, or DKIM passes for a domain aligned with
the From domain, or SPF passes for an aligned envelope sender.

    >>> passes(["mx.example.com; dkim=pass header.d=example.com"], "mx.example.com",
    ...        "sam@example.com")
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_RESULT = re.compile(r"\b(dmarc|dkim|spf)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_PROP = re.compile(
    r"\b(header\.d|header\.i|header\.from|smtp\.mailfrom|smtp\.from)\s*=\s*([^\s;]+)",
    re.IGNORECASE,
)


def _strip_comments(value: str) -> str:
    # RFC 8601 allows CFWS comments "(...)" anywhere; they carry no verdict.
    depth, out = 0, []
    for char in value:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def _aligned(domain: str, from_domain: str) -> bool:
    domain = domain.lower().lstrip("@").split("@")[-1]
    return domain == from_domain or from_domain.endswith("." + domain) or domain.endswith(
        "." + from_domain
    )


def passes(headers: Sequence[str], trusted_authserv_id: str, from_address: str) -> bool:
    """True when the topmost trusted Authentication-Results header shows a passing verdict."""
    from_domain = from_address.rpartition("@")[2].lower()
    for raw in headers:
        value = _strip_comments(raw).strip()
        authserv_id = value.split(";", 1)[0].strip().split()[0].lower() if value else ""
        if authserv_id != trusted_authserv_id.lower():
            continue
        for method, result, props in _RESULT.findall(value):
            if result.lower() != "pass":
                continue
            if method.lower() == "dmarc":
                return True
            for name, domain in _PROP.findall(props):
                name = name.lower()
                if method.lower() == "dkim" and name in ("header.d", "header.i") and _aligned(
                    domain, from_domain
                ):
                    return True
                if method.lower() == "spf" and name in ("smtp.mailfrom", "smtp.from") and _aligned(
                    domain, from_domain
                ):
                    return True
        return False  # only the topmost trusted header counts
    return False
