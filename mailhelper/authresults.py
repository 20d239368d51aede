"""Reading the verdict of a trusted ``Authentication-Results`` header (RFC 8601).

Only the topmost header whose authserv-id is the configured trusted one counts: the receiving
server adds its own on top, and anything lower down may have come from the sender (RFC 8601
section 5). The owner's mail passes when DMARC passes for the From domain, or DKIM passes for a
domain aligned with the From domain, or SPF passes for an aligned envelope sender.

    >>> passes(["mx.example.com; dkim=pass header.d=example.com"], "mx.example.com",
    ...        "sam@example.com")
    True

The header is parsed, not searched: comments ``(...)`` are dropped, and a quoted string (a
``reason="..."``) is one value, so words inside it can never read as a verdict::

    >>> passes(['mx.example.com; spf=fail reason="dkim=pass header.d=example.com"'],
    ...        "mx.example.com", "sam@example.com")
    False
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# name=value, where value is a token or a quoted string (RFC 8601 section 2.2: "value").
_PAIR = re.compile(
    r"([A-Za-z0-9_.-]+(?:\s*/\s*\d+)?)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^\s\";=]+)"
)


@dataclass(frozen=True)
class Result:
    """One ``method=result`` of a header with its properties (``header.d``, ...)."""

    method: str
    result: str
    properties: dict[str, str]


def _strip_comments(value: str) -> str:
    """``value`` without CFWS comments ``(...)`` (which may nest); quoted strings are kept
    as they are, parentheses inside them included."""
    depth, quoted, escaped, out = 0, False, False, []
    for char in value:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
            continue
        if char == "\\" and (quoted or depth):
            escaped = True
            if not depth:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == '"' and not depth:
            quoted = True
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def _split_outside_quotes(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse(header: str) -> tuple[str, list[Result]]:
    """(authserv-id, results) of one Authentication-Results value; the id lower-case.

    >>> parse("mx.example.com 1; dkim=pass (ok) header.d=Example.com; spf=none")
    ('mx.example.com', [Result(method='dkim', result='pass', properties={'header.d': \
'example.com'}), Result(method='spf', result='none', properties={})])
    """
    first, *resinfos = _split_outside_quotes(_strip_comments(header))
    words = first.split()
    authserv_id = words[0].lower() if words else ""
    results = []
    for resinfo in resinfos:
        pairs = [(name.lower(), value) for name, value in _PAIR.findall(resinfo)]
        if not pairs:
            continue  # "none", or garbage
        method, result = pairs[0]
        properties = {
            name: value.strip('"').lower()
            for name, value in pairs[1:]
            if "." in name  # ptype.property; "reason" and unknown words carry no identity
        }
        results.append(Result(method.split("/")[0].strip(), result.strip('"').lower(), properties))
    return authserv_id, results


def _domain_of(value: str) -> str:
    return value.lower().rpartition("@")[2].strip().rstrip(".")


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 section 3.1): the same domain, or one the parent of the
    other. A bare top-level domain aligns with nothing."""
    domain = _domain_of(domain)
    if "." not in domain or "." not in from_domain:
        return False
    return (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


def _vouches(result: Result, from_domain: str) -> bool:
    if result.result != "pass":
        return False
    props = result.properties
    if result.method == "dmarc":
        # DMARC is evaluated for the From domain; a stated header.from must be the owner's.
        stated = props.get("header.from")
        return stated is None or _domain_of(stated) == from_domain
    if result.method == "dkim":
        return any(_aligned(props[name], from_domain)
                   for name in ("header.d", "header.i") if name in props)
    if result.method == "spf":
        return any(_aligned(props[name], from_domain)
                   for name in ("smtp.mailfrom", "smtp.from") if name in props)
    return False


def passes(headers: Sequence[str], trusted_authserv_id: str, from_address: str) -> bool:
    """True when the topmost trusted Authentication-Results header shows a passing verdict
    for the domain of ``from_address``. ``headers`` are in message order, topmost first."""
    trusted = trusted_authserv_id.strip().lower()
    if not trusted:
        return False
    from_domain = _domain_of(from_address)
    for raw in headers:
        authserv_id, results = parse(raw)
        if authserv_id != trusted:
            continue
        return any(_vouches(result, from_domain) for result in results)
    return False
