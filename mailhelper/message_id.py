"""Deterministic Message-IDs for the mail the assistant sends.

The same action key always gives the same Message-ID, so a mail composed twice (after a crash,
on a retry) carries the same id, and the Sent folder can tell whether it already went (SPEC.md
safety rule 3). The id is a hash: it cannot be turned back into the action key, so the store
keeps the map Message-ID -> action (``actions.message_id``) to match replies back::

    >>> make_message_id("t7/follow_up/20261130T090000Z/1", "example.com")
    '<mh.986b98379b63db2a552bf112@example.com>'
    >>> looks_like_ours("mh.986b98379b63db2a552bf112@example.com", "example.com")
    True

RFC 5322 section 3.6.4: ``msg-id = "<" id-left "@" id-right ">"``. ``id-left`` here is
``mh.`` and 24 lower-case hex digits (96 bits of SHA-256: collisions are not a concern);
``id-right`` is the assistant's domain, lower-cased.
"""

from __future__ import annotations

import hashlib
import re

#: The id-left of every Message-ID the assistant makes.
_OURS = re.compile(r"mh\.[0-9a-f]{24}")
#: What may stand between the angle brackets of a msg-id we copy into a header: no white
#: space, no brackets, no control characters (so no input can fold or inject a header).
_SAFE_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII less '<' and '>'
_MAX_ID_CHARS = 250


def _domain(domain: str) -> str:
    """The id-right for ``domain``: lower-case, IDNA-encoded when it is not ASCII."""
    cleaned = domain.strip().lower()
    if not cleaned.isascii():
        try:
            cleaned = cleaned.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"{domain!r} is not a domain a Message-ID can carry") from exc
    if not cleaned or not _SAFE_ID.fullmatch(cleaned) or "@" in cleaned:
        raise ValueError(f"{domain!r} is not a domain a Message-ID can carry")
    return cleaned


def make_message_id(action_key: str, domain: str) -> str:
    """The Message-ID, with angle brackets, of the mail for the action with this key.

    Pure and stable across versions: ``<mh.{sha256(action_key)[:24]}@{domain}>``. Changing the
    formula would make mail in flight during an upgrade look unsent, so it must never change.

    >>> make_message_id("k", "Example.COM") == make_message_id("k", "example.com")
    True
    """
    digest = hashlib.sha256(action_key.encode("utf-8")).hexdigest()[:24]
    return f"<mh.{digest}@{_domain(domain)}>"


def looks_like_ours(message_id: str, domain: str) -> bool:
    """True when ``message_id`` (with or without angle brackets) has the shape
    :func:`make_message_id` gives for ``domain``. A shape check only: the store knows which
    action, if any, it belongs to."""
    left, at, right = message_id.strip().strip("<>").rpartition("@")
    if not at:
        return False
    try:
        return bool(_OURS.fullmatch(left)) and right.lower() == _domain(domain)
    except ValueError:
        return False


def bracketed(message_id: str) -> str | None:
    """``message_id`` as a header writes it (``<id>``), or None when it is not safe to copy
    into a header: empty, over 250 characters, or with white space, brackets or control
    characters inside (RFC 5322 section 3.6.4 allows none of these in a msg-id).

    >>> bracketed("abc@example.com"), bracketed("<abc@example.com>"), bracketed("a\\r\\nBcc: x")
    ('<abc@example.com>', '<abc@example.com>', None)
    """
    bare = message_id.strip()
    if bare.startswith("<") and bare.endswith(">"):
        bare = bare[1:-1]
    if not bare or len(bare) > _MAX_ID_CHARS or not _SAFE_ID.fullmatch(bare):
        return None
    return f"<{bare}>"
