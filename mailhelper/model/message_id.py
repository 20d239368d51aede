"""Deterministic but unguessable Message-IDs for the mail the assistant sends.

The same action key always gives the same Message-ID, so a mail composed twice (after a crash,
on a retry) carries the same id, and the Sent folder can tell whether it already went (SPEC.md
safety rule 3). The id is a keyed hash (HMAC-SHA-256) of the action key under a secret of the
installation (32 random bytes the state store makes once and keeps): action keys are easy to
guess (``t7/follow_up/20261130T090000Z/1``), so without the secret anyone who saw an ask could
compute the Message-ID of the reminder about it and forge the owner's command reply to it. The
id cannot be turned back into the action key, so the store keeps the map Message-ID -> action
(``actions.message_id``) to match replies back, and a reply counts as answering the
assistant's mail only by an id found there, never by the id's shape::

    >>> secret = bytes(32)
    >>> make_message_id("t7/follow_up/20261130T090000Z/1", "example.com", secret)
    '<mh.f0f76a27459ab6143addd00b@example.com>'
    >>> looks_like_ours("mh.f0f76a27459ab6143addd00b@example.com", "example.com")
    True

RFC 5322 section 3.6.4: ``msg-id = "<" id-left "@" id-right ">"``. ``id-left`` here is
``mh.`` and 24 lower-case hex digits (96 bits of the HMAC: collisions are not a concern);
``id-right`` is the assistant's domain, lower-cased.
"""

from __future__ import annotations

import hashlib
import hmac
import os
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


#: How many random bytes an installation's secret has.
SECRET_BYTES = 32


def new_secret() -> bytes:
    """A fresh secret for an installation (the state store keeps it)."""
    return os.urandom(SECRET_BYTES)


def make_message_id(action_key: str, domain: str, secret: bytes) -> str:
    """The Message-ID, with angle brackets, of the mail for the action with this key.

    Pure: ``<mh.{hmac_sha256(secret, action_key)[:24]}@{domain}>``. The store records each
    action's id when it plans the action and reads it from there afterwards, so a change of
    formula (ids made before the secret were ``sha256(action_key)``) never makes mail in
    flight look unsent.

    >>> make_message_id("k", "Example.COM", b"s") == make_message_id("k", "example.com", b"s")
    True
    >>> make_message_id("k", "example.com", b"s") == make_message_id("k", "example.com", b"t")
    False
    """
    digest = hmac.new(secret, action_key.encode("utf-8"), hashlib.sha256).hexdigest()[:24]
    return f"<mh.{digest}@{_domain(domain)}>"


def looks_like_ours(message_id: str, domain: str) -> bool:
    """True when ``message_id`` (with or without angle brackets) has the shape
    :func:`make_message_id` gives for ``domain``. A shape check only, which anyone can forge:
    it may only ever make the assistant *ignore* a mail (its own mail coming back), never act
    on one; the store knows which action, if any, an id belongs to."""
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
