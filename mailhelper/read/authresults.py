"""Reading the verdict of the trusted ``Authentication-Results`` headers (RFC 8601).

Only the headers the trusted server added count: the top-most contiguous run of headers whose
authserv-id is the configured one (RFC 8601 section 5: the receiving server adds its own on
top, and anything lower down may have come from the sender). A server may write one header per
filter (one for DKIM, one for SPF, one for DMARC, often ``dmarc=none`` on top), so every header
of that run is read. The owner's mail passes when one of them shows DMARC passing for the From
domain, DKIM passing for an aligned signing domain (``header.d``), or SPF passing for an
aligned envelope sender, and none shows ``dmarc=fail``.

The authserv-id is compared as the header carries it: the caller must pass the values
undecoded (an RFC 2047 encoded-word is not an authserv-id, RFC 8601 section 2.5).

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


def _dkim_aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed DKIM alignment (RFC 7489 section 3.1.1) of ``header.d`` with the From domain.

    Relaxed means "the same organisational domain", which needs the public-suffix list; the
    assistant carries none, so it asks for less: the signing domain is the From domain or a
    parent of it with at least two labels (``d=example.com`` for ``mail.example.com``, never
    ``d=com``). A signature by a subdomain does not align here.

    >>> _dkim_aligned("example.com", "mail.example.com"), _dkim_aligned("com", "example.com")
    (True, False)
    """
    domain = _domain_of(signing_domain)
    if domain.count(".") < 1 or "." not in from_domain:
        return False
    return domain == from_domain or from_domain.endswith("." + domain)


def _spf_aligned(domain: str, from_domain: str) -> bool:
    """Relaxed SPF alignment (RFC 7489 section 3.1.2): the envelope domain is the From
    domain, a parent of it (two labels at least), or a subdomain of it (a bounce domain such
    as ``bounces.example.com``). A bare top-level domain aligns with nothing."""
    domain = _domain_of(domain)
    if "." not in domain or "." not in from_domain:
        return False
    return _dkim_aligned(domain, from_domain) or domain.endswith("." + from_domain)


def _vouches(result: Result, from_domain: str) -> bool:
    if result.result != "pass":
        return False
    props = result.properties
    if result.method == "dmarc":
        # DMARC is evaluated for the From domain; a stated header.from must be the owner's.
        stated = props.get("header.from")
        return stated is None or _domain_of(stated) == from_domain
    if result.method == "dkim":
        # header.d is the signing domain DMARC aligns on; header.i (the agent or user
        # identifier) may name any subdomain the signer chose and says nothing more.
        return "header.d" in props and _dkim_aligned(props["header.d"], from_domain)
    if result.method == "spf":
        return any(_spf_aligned(props[name], from_domain)
                   for name in ("smtp.mailfrom", "smtp.from") if name in props)
    return False


def trusted_block(headers: Sequence[str], trusted_authserv_id: str) -> list[list[Result]]:
    """The results of each header the trusted server added: from the first header with the
    trusted authserv-id down to the next header with another one (RFC 8601 section 5).

    Headers of other servers above it (an internal relay's) are skipped; trusted-looking
    headers below another server's cannot be told from the sender's own and are not read.

    >>> [len(r) for r in trusted_block(["relay.example; none", "mx.example.com; spf=pass",
    ...     "mx.example.com; dmarc=none", "other.test; none", "mx.example.com; dmarc=pass"],
    ...     "mx.example.com")]
    [1, 1]
    """
    trusted = trusted_authserv_id.strip().lower()
    block: list[list[Result]] = []
    if not trusted:
        return block
    for raw in headers:
        authserv_id, results = parse(raw)
        if authserv_id == trusted:
            block.append(results)
        elif block:
            break
    return block


def passes(headers: Sequence[str], trusted_authserv_id: str, from_address: str) -> bool:
    """True when the trusted server's Authentication-Results headers (:func:`trusted_block`)
    show a passing, aligned verdict for the domain of ``from_address`` and none shows
    ``dmarc=fail``. ``headers`` are the raw values in message order, topmost first.

    >>> passes(["mx.example.com; dmarc=none", "mx.example.com; dkim=pass header.d=example.com"],
    ...        "mx.example.com", "sam@example.com")
    True
    """
    from_domain = _domain_of(from_address)
    results = [result for block in trusted_block(headers, trusted_authserv_id)
               for result in block]
    if any(r.method == "dmarc" and r.result == "fail" for r in results):
        return False
    return any(_vouches(result, from_domain) for result in results)
