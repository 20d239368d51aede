"""One tap, one reply: the ``mailto:`` links of the commands, and the token that ties the mail
a tap writes back to the mail it was tapped in.

A ``mailto:`` link can set the subject and the body of the mail it starts, never its
In-Reply-To (RFC 6068 section 2 allows any header field but clients honour only a few, and
none of them In-Reply-To), so the assistant cannot match the command mail to its own by the
usual threading headers. Each link's subject therefore ends with a token, ``[#1f0c9a2b7d]``:
the first :data:`TOKEN_HEX` hex digits of the keyed hash in the Message-ID of the mail the
link is in (see :mod:`mailhelper.model.message_id`). The store looks the token up among the
assistant's sent mail to that owner; the safety rules do not change (only an owner's mail is
ever read as a command, see :mod:`mailhelper.decide.classify`).

    >>> token_for("mh.1f0c9a2b7d6e5f4a3b2c1d0e@example.com")
    '1f0c9a2b7d'
    >>> find_token("Re: Intro to Acme [#1f0c9a2b7d]")
    '1f0c9a2b7d'
    >>> mailto("helper@example.com", "Re: Café & co [#1f0c9a2b7d]", "snooze 3 days")
    'mailto:helper@example.com?subject=Re%3A%20Caf%C3%A9%20%26%20co%20%5B%231f0c9a2b7d%5D&body=snooze%203%20days'
"""

from __future__ import annotations

import re
from urllib.parse import quote

#: How many hex digits of the Message-ID's hash the token carries: 40 bits, so a forged
#: tap (From an owner's address, without ``require_auth``) has one chance in a trillion of
#: naming a real mail; a collision among one owner's mails is as unlikely.
TOKEN_HEX = 10
_OURS = re.compile(r"<?mh\.([0-9a-f]{24})@", re.IGNORECASE)
_TOKEN = re.compile(rf"\[#([0-9a-f]{{{TOKEN_HEX}}})\]", re.IGNORECASE)


def token_for(message_id: str | None) -> str | None:
    """The token of the assistant's mail with this Message-ID; None for an id it did not
    make in today's form (a preview, a state from an older version): its links then carry
    no token and a tap is read as a fresh mail."""
    match = _OURS.match(message_id or "")
    return match[1][:TOKEN_HEX].lower() if match else None


def find_token(subject: str) -> str | None:
    """The token in a subject (the last one, should the owner's client have kept an old
    one too), lower-case; None when there is none."""
    found = _TOKEN.findall(subject or "")
    return found[-1].lower() if found else None


def with_token(subject: str, token: str | None) -> str:
    """``subject`` with the token appended (unchanged without one)."""
    return f"{subject} [#{token}]" if token else subject


def mailto(address: str, subject: str, body: str) -> str:
    """A ``mailto:`` URI (RFC 6068) to ``address`` with this subject and body: every
    character but the unreserved ones percent-encoded as UTF-8 (section 2: space is ``%20``,
    never ``+``; a line break in the body ``%0D%0A``, section 5)."""
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return (f"mailto:{quote(address, safe='@')}?subject={quote(subject, safe='')}"
            f"&body={quote(text, safe='')}")
