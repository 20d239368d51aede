"""Composing the mail the assistant sends: an action and its thread -> an ``EmailMessage``.

Pure: no SMTP, IMAP or SQLite; the outbox hands over a :class:`RenderJob` and gets a message
ready to send and to file in the Sent folder::

    renderer = Renderer(settings)      # once, at start-up: compiles and checks every template
    message = renderer.render(RenderJob(nudge, thread, now, references=("ask@ex.org",)))
    message["Subject"], message["In-Reply-To"]   # ("Re: Intro to Acme", "<ask@ex.org>")

Templates
---------
Every :class:`~mailhelper.model.values.ActionKind` has three templates: ``<kind>.subject.j2``,
``<kind>.txt.j2`` and ``<kind>.html.j2``; files starting with ``_`` are shared layouts and
macros. The defaults ship as the package ``mailhelper.templates``; a file of the same name in
``settings.templates_dir`` replaces one. All of them are compiled, and each kind is rendered once
with sample values, when the :class:`Renderer` is built, so a broken override stops the start-up
with :class:`TemplateProblem` (file and line) instead of failing at the first mail that needs it.

The environment is Jinja2's *immutable sandbox* with ``StrictUndefined``; only ``.html.j2``
templates are autoescaped. Mail content (names, subjects, excerpts) reaches templates only as
values, never as template source, so ``{{ config }}`` in a subject is printed, not evaluated
(SPEC.md safety rule 5).

What templates see (every key is always defined; unused ones hold their default):

==================  ===========================================================================
``kind``            the action kind, e.g. ``"follow_up"``
``now``             the job's time, in the owner's zone (``owners[].timezone``, else ``timezone``)
``zone``            that zone: the time filters (``when``, ``day``, ...) write times in it
``owner``           :class:`Person`: the owner the mail is for (or, to a counterpart, from)
``assistant``       :class:`Person`: the assistant
``thread``          :class:`ThreadView` or None (digest, help, some notices)
``who``             the counterpart(s) by name ("Jane Doe and Bob Lee"), "" when unknown
``who_first``       the same by first name ("Jane and Bob")
``about``           the subject the mail is about: the thread's, else ``data["subject"]``
``subject``         the rendered subject line ("" inside the subject template itself)
``data``            ``action.data``, every value made one line
``to_counterpart``  True for mail to the counterpart (nudge, thank_you)
``from_owner``      True when counterpart mail goes out From the owner (``send_as: owner``)
``send_as``         ``settings.send_as``: ``"assistant"`` or ``"owner"``
``sendable_draft``  True when the mail holds a draft that ``send`` would send
``number``, ``of``  which reminder this is (1-based) and how many the series has (0: unknown)
``last_reminder``   True for the last reminder of a series
``flavour``         thank-yous: ``"helped"`` or ``"declined"`` (an offer not taken up)
``requested``       True when the owner asked for this mail with ``send``
``ask_kind``        receipt: ``"ask"`` or ``"offer"``
``problem``         receipt: why the mail could not be understood ("" when it was)
``left_out``        receipt: a line per address left out, "address, because why" (empty: none)
``understood``      receipt: a sentence saying what was understood ("" lets the template say it)
``tag``             receipt: the tag that was read ("" for none)
``next_kind``       receipt: the kind of the first scheduled action ("" for none)
``next_due``        receipt: its due time (datetime) or None
``nudged``          follow_up, closing_note: when the latest follow-up went to the
                    counterparts since the owner last wrote (datetime), or None
``counterparts``    receipt: the people found (``data["counterparts"]``), each by name and
                    address, as a sentence lists them: "Jane Okafor <jane@x.org> and bob@y.org"
``command``         command_reply: the command line as the owner wrote it
``result``          command_reply: what it did, times written for people
``unknown_command`` help: the line that was not a command ("" when help was asked for)
``note``            help: why help is sent instead of doing something ("" for none)
``reason``          error_notice: why; digest: ``"schedule"`` or ``"status"``
``folder``          error_notice: where the mail that could not be understood was filed
``failed_what``     error_notice: the mail that could not be sent ("the thank-you", "")
``failed_to``       error_notice: who it was for
``failed_stage``    error_notice: ``"compose"`` (the mail could not be written) or ``"server"``
``filed``           error_notice, the daily summary of others' mail filed as errors:
                    ``{"total": n, "unreadable": n, "too_large": n, "failed": n, "day": datetime}``
                    or None for any other notice
``open_asks``       digest: ThreadViews of open asks, oldest first
``open_offers``     digest: ThreadViews of offers waiting on the owner
``thanks_due``      digest: ThreadViews of help given that is not yet settled with a thanks
``favours_due``     digest: ThreadViews of recent help to return
``ledger``          digest: :class:`LedgerView` or None
``tags``            ``{"ask": [...], "offer": [...]}``: the tag words
``plus``            ``{"ask": "helper+ask@…", "offer": …, "5d": …}``: example plus-addresses
``schedule``        the configured timings as text: ``ask_follow_up`` ("3 days and 7 days"),
                    ``offer_follow_up``, ``give_up_after``, ``thank_you_after``,
                    ``return_favor_after``
==================  ===========================================================================

Filters: ``when`` (``Thu 3 Dec, 09:00``; the year is added when it is not this year), ``day``
(``Thu 3 Dec``), ``ago`` (``today``, ``yesterday``, ``3 days ago``, ``in 2 days``), ``since``
(``3 days``: calendar days from a time to now), ``between`` (``start|between(end)``: ``5 hours``,
``1.5 days``), ``plural`` (``n|plural("offer")``: ``1 offer``, ``2 offers``), ``quoted``
(``“Intro to Acme”``: subjects and excerpts, inner double quotes made single), ``sentence`` (a
full stop added when the text has no end mark) and, for HTML,
``paragraphs`` (plain text to escaped ``<p>``/``<br>``) and ``plain`` (see :func:`plain`: an
HTML template that calls a macro of a text template must pass its output through ``plain`` or
``paragraphs``).

``action.data`` keys each kind reads (all strings, all optional):

* receipt: ``kind``, ``subject``, ``counterparts``, ``problem``, ``understood``, ``tag``,
  ``next_kind``, ``next_due`` (ISO 8601), ``left_out`` (a JSON list of lines)
* follow_up, offer_follow_up: ``number``, ``of``; follow_up and closing_note: ``nudged``
  (ISO 8601: the latest follow-up sent to the counterparts since the owner last wrote)
* nudge: ``number``, ``requested``
* thank_you, thank_you_draft: ``flavour`` (``helped``/``declined``), ``requested``
* closing_note, return_favor: none
* digest: ``reason`` (``schedule``/``status``)
* help: ``unknown_command``, ``note``
* command_reply: ``command``, ``result`` (ISO 8601 times in it are rewritten for people)
* error_notice: ``reason``, ``subject``, ``folder``, ``failed_kind``, ``failed_to``,
  ``failed_stage``; the daily summary: ``filed_day`` (ISO date), ``filed_unreadable``,
  ``filed_too_large``, ``filed_failed`` (counts), ``folder``
* any mail answering an owner's mail (receipt, command_reply, help, digest on ``status``,
  error_notice): ``answering``, that mail's Message-ID (:attr:`RenderJob.answering` wins)

Composition
-----------
The message uses :data:`POLICY`: ``email.policy.SMTP`` (CRLF line ends, as SMTP and IMAP
APPEND want them) whose Message-ID, In-Reply-To and References headers fold only between ids:
the stock folding would turn a long msg-id (Outlook's run to 90 characters) into RFC 2047
encoded words, which no client matches; a plain ASCII Subject folds between words (see
:class:`_SubjectHeader`). ``multipart/alternative``: text, then HTML, with a
boundary derived from the action key, so the same job always gives the same bytes.

* Mail to the owner: From the assistant, To the action's recipients. An answer to an owner's
  mail (``RenderJob.answering``) threads under it.
* Mail to a counterpart (nudge, thank_you): To the counterparts, in the thread: In-Reply-To the
  last of ``references`` and References all of them (RFC 5322 section 3.6.4; the thread's root
  Message-ID when ``references`` is empty). With ``send_as: assistant`` it is From the
  assistant, Cc the owner, Reply-To the owner *and* the assistant: a reply then reaches the
  owner, and reaches the assistant too, which is how it sees that the ask was answered. With
  ``send_as: owner`` it is From the owner, Cc the assistant (for the same reason).
* Every mail: Date (``job.now`` in ``settings.timezone``), the action's deterministic
  Message-ID as the store recorded it (``job.message_id``:
  :func:`mailhelper.model.message_id.make_message_id` of the action key, the assistant's domain and
  the installation's secret: the same action always gets the same id, and nobody without the
  state can guess it),
  ``Auto-Submitted: auto-generated`` (RFC 3834), ``X-Auto-Response-Suppress: All``,
  ``X-Mailhelper-Action: <kind>``, ``X-Mailhelper-Thread: <id>`` (when there is a thread) and
  MIME-Version.

Every value that came from mail is made one line (control characters, CR, LF and Unicode line
separators become spaces) before it reaches a template or a header, and every header is built
through :mod:`email.headerregistry`, so no input can add a header. Non-ASCII names and subjects
are RFC 2047 encoded.
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import functools
import hashlib
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import AddressHeader, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP as _SMTP_POLICY
from email.policy import EmailPolicy
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, assert_never

from markupsafe import Markup, escape

if TYPE_CHECKING:  # Jinja2 itself is imported when templates are first compiled (_jinja)
    from jinja2 import BaseLoader, BytecodeCache, Environment, Template
    from jinja2.runtime import Context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailhelper.compose.templatecheck import (
    TEMPLATE_PACKAGE,
    TemplateProblem,
    check_digest,
    check_overrides,
    default_sources,
    remember,
    remembered_check,
)
from mailhelper.decide.digest import BANDS, OFFER_OUTCOMES, Digest, Period, bar
from mailhelper.decide.digest import SECTIONS as DIGEST_SECTIONS
from mailhelper.decide.digest import build as build_digest
from mailhelper.decide.tap import mailto, token_for, with_token
from mailhelper.decide.timewords import describe_repeat
from mailhelper.model.addresses import fold
from mailhelper.model.errors import MailhelperError
from mailhelper.model.kinds import ACTIONS, KINDS, AnsweredBy
from mailhelper.model.message_id import bracketed, make_message_id
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    Address,
    Kind,
    Ledger,
    PersonFigures,
    Thread,
    ThreadState,
)
from mailhelper.read.language import guess_language
from mailhelper.read.names import greeting, join_names, read_name

__all__ = [
    "POLICY",
    "CompositionError",
    "FiguresView",
    "LedgerView",
    "Person",
    "RenderJob",
    "Rendered",
    "Renderer",
    "TemplateProblem",
    "ThreadView",
    "answered_sentence",
    "answered_words",
    "duration_words",
    "format_day",
    "format_when",
    "one_line",
    "paragraphs",
    "plain",
    "plural",
    "quoted",
    "sentence",
    "template_names",
    "thanks_words",
]

PARTS = ("subject", "txt", "html")
MAX_SUBJECT_CHARS = 200
MAX_NAME_CHARS = 120
MAX_TEXT_CHARS = 2000
#: RFC 5322 section 3.6.4 lets a References header be trimmed; keep the root and the latest.
MAX_REFERENCES = 20


class CompositionError(MailhelperError):
    """An action that cannot become a mail: no recipient, an address no header can carry, or
    mail to a counterpart without its thread. Retrying will not help."""


# -- the message policy ------------------------------------------------------------------


class _MessageIdsHeader(UnstructuredHeader, BaseHeader):
    """Message-ID, In-Reply-To, References: one msg-id per line when folding.

    The stock policy folds these as unstructured text and turns any id longer than a line into
    RFC 2047 encoded words, which breaks threading. Ids here come from :func:`bracketed`, so
    they hold no white space and nothing to encode.
    """

    def fold(self, *, policy: Any) -> str:
        ids = str(self).split()
        linesep = str(policy.linesep)
        return f"{self.name}: " + f"{linesep} ".join(ids) + linesep


class _SubjectHeader(UnstructuredHeader, BaseHeader):
    """Subject: plain ASCII folded greedily between words.

    The stock folder moves a value that would fit on a line of its own to the next line
    (``Subject:`` CRLF SP ``Tracking...``), which Python's own parser, and the owner's
    ``Re:`` built from it, read with a leading space. Non-ASCII text, and text that looks
    like an RFC 2047 encoded word, is left to the stock folder, which encodes it.
    """

    def fold(self, *, policy: Any) -> str:
        value = str(self)
        limit = int(policy.max_line_length or 78)
        words = value.split(" ")
        if not value.isascii() or "=?" in value or any(len(w) > limit // 2 for w in words):
            return str(super().fold(policy=policy))
        linesep = str(policy.linesep)
        lines = [f"{self.name}:"]
        for word in words:
            if len(lines[-1]) + 1 + len(word) > limit and lines[-1].strip():
                lines.append("")
            lines[-1] += " " + word
        return linesep.join(lines) + linesep


#: RFC 5322 section 3.2.3: the characters of an atom; a display name of these words alone
#: is written bare, any other is quoted.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
#: RFC 2047 section 2: an encoded word is at most 75 characters; ``=?utf-8?b?`` and ``?=``
#: take 12, leaving 63 for base64, which is 45 bytes (60 characters) of text.
_ENCODED_BYTES = 45


def _name_words(name: str) -> list[str]:
    """A display name as the words of an RFC 5322 phrase, each a place the header may fold.

    ASCII atoms stay bare; other ASCII is one quoted-string (quotes and backslashes escaped,
    RFC 5322 section 3.2.4), split at its spaces, where folding white space inside the quotes
    unfolds to the same space; non-ASCII is RFC 2047 ``B`` encoded words, which decoders join
    without the space between them (RFC 2047 section 6.2), each ending at a space of the
    name where it can (Python's own header parser keeps that space between encoded words, so
    it reads such a space doubled, never one inside a word). The name never reaches the header
    as text a parser could read as a separator, a group or an address.

        >>> _name_words("Jane Doe"), _name_words('jane@x, "Prof"')
        (['Jane', 'Doe'], ['"jane@x,', '\\\\"Prof\\\\""'])
    """
    if not name:
        return []
    if not name.isascii():
        chunks, chunk = [], ""
        for word in re.findall(r"[^ ]+ ?| ", name):  # each word with the space after it
            if chunk and len((chunk + word).encode("utf-8")) > _ENCODED_BYTES:
                chunks.append(chunk)
                chunk = ""
            for char in word:  # a word longer than one encoded word is cut where it must be
                if chunk and len((chunk + char).encode("utf-8")) > _ENCODED_BYTES:
                    chunks.append(chunk)
                    chunk = ""
                chunk += char
        chunks.append(chunk)
        return [f"=?utf-8?b?{base64.b64encode(c.encode('utf-8')).decode('ascii')}?="
                for c in chunks]
    words = name.split(" ")
    # "=?" and "?" are atext, but a bare word like "=?utf-8?q?...?=" would be decoded as an
    # encoded word (RFC 2047 section 5); inside quotes it is text.
    if "=?" not in name and all(_ATEXT.fullmatch(w) for w in words):
        return words
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').split(" ")
    escaped[0] = '"' + escaped[0]
    escaped[-1] += '"'
    return escaped


class _AddressListHeader(AddressHeader, BaseHeader):  # type: ignore[misc]  # as the registry composes it
    """From, To, Cc, Reply-To: every display name quoted or encoded, folded only where the
    unfolded header reads the same.

    The stock folder, when a header needs folding, writes a display name that needs quotes
    without them (``To: jane@x, Prof ... <eve@y>`` for the name ``jane@x, Prof ...``), so the
    header names two mailboxes and a reply-all reaches the address in the name. Groups, and
    an address only SMTPUTF8 can carry in a message that is not SMTPUTF8, are left to the
    stock folder (the assistant writes neither).
    """

    def fold(self, *, policy: Any) -> str:
        mailboxes = [a for g in self.groups for a in g.addresses]
        utf8 = bool(getattr(policy, "utf8", False))
        if (any(g.display_name is not None for g in self.groups)
                or not all(utf8 or a.addr_spec.isascii() for a in mailboxes)):
            return str(super().fold(policy=policy))
        words: list[str] = []
        for index, mailbox in enumerate(mailboxes):
            name = _name_words(mailbox.display_name)
            last = f"<{mailbox.addr_spec}>" if name else mailbox.addr_spec
            if index < len(mailboxes) - 1:
                last += ","
            words += [*name, last]
        limit = int(policy.max_line_length or 78)
        linesep = str(policy.linesep)
        lines = [f"{self.name}:"]
        for word in words:
            if len(lines[-1]) + 1 + len(word) > limit and lines[-1].strip():
                lines.append("")
            lines[-1] += " " + word
        return linesep.join(lines) + linesep


def _policy() -> EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    for name in ("from", "to", "cc", "reply-to"):
        registry.map_to_type(name, _AddressListHeader)
    registry.map_to_type("subject", _SubjectHeader)
    for name in ("message-id", "in-reply-to", "references"):
        registry.map_to_type(name, _MessageIdsHeader)
    return _SMTP_POLICY.clone(header_factory=registry)


#: The policy of every message :meth:`Renderer.render` returns: ``email.policy.SMTP`` (CRLF)
#: with msg-id headers folded between ids only, and plain subjects between words.
POLICY = _policy()


# -- values for templates ----------------------------------------------------------------

#: C0/C1 controls, line and paragraph separators, and the bidi overrides that can make a name
#: read backwards (a spoofing trick): none of them belongs in a one-line value.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _lines(text: str) -> tuple[str, ...]:
    """A JSON list of lines from action data, each made :func:`one_line`; a text that is not
    such a list is one line itself.

    >>> _lines('["a, because b", " c  d "]'), _lines("plain")
    (('a, because b', 'c d'), ('plain',))
    """
    try:
        items = json.loads(text) if text else []
    except ValueError:
        items = [text]
    if not isinstance(items, list):
        items = [text]
    return tuple(one_line(item, 500) for item in items if str(item).strip())


def one_line(text: object, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` as one line: control characters and line breaks become spaces, runs of white
    space one space, at most ``limit`` characters (cut at a word, with an ellipsis).

    >>> one_line("Hi\\r\\nBcc: evil@x.com")
    'Hi Bcc: evil@x.com'
    """
    raw = str(text)
    chars = []
    for char in raw:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp", "Cs") or char in _BIDI:
            chars.append(" ")
        else:
            chars.append(char)
    flat = " ".join("".join(chars).split())
    if len(flat) > limit:
        cut = flat[: limit - 1].rsplit(" ", 1)[0] or flat[: limit - 1]
        flat = cut + "…"
    return flat


@dataclass(frozen=True)
class Person:
    """Someone a template can name (see :func:`mailhelper.read.names.read_name`): ``name`` is the
    name as a sentence writes it ("Jane Okafor" for "Okafor, Jane"; the address when there is
    none), ``first`` the short name a sentence uses ("Jane", "Dr. Raman"; else ``name``) and
    ``greet`` the name a letter opens with ("" when none can be told: "Hello," then)."""

    name: str
    first: str
    email: str
    greet: str = ""

    @classmethod
    def of(cls, address: Address) -> Person:
        email = one_line(address.email, MAX_NAME_CHARS)
        read = read_name(one_line(address.name, MAX_NAME_CHARS), email)
        name = one_line(read.full, MAX_NAME_CHARS) or email
        greet = one_line(read.greeting, MAX_NAME_CHARS)
        return cls(name=name, first=greet or name, email=email, greet=greet)

    def __str__(self) -> str:
        return self.name


def _names(people: Sequence[Person], attribute: str) -> str:
    """'Jane', 'Jane and Bob', 'Jane, Bob and Ann', 'Jane, Bob and 3 others'."""
    names = [str(getattr(p, attribute)) for p in people]
    if len(names) > 4:
        names = [*names[:2], f"{len(names) - 2} others"]
    return join_names(names)


@dataclass(frozen=True)
class ThreadView:
    """A :class:`~mailhelper.model.values.Thread` as templates see it: text made one line, times in
    the configured zone, and the counterparts named for a sentence. A mail about some of the
    counterparts (a thank-you for those who answered, a reminder about those who did not)
    names only them in ``who``; ``counterparts`` and ``everyone`` are all of them.

    ``phrase`` is the thread in a few words, for a sentence: "your ask to Jane Doe of Mon
    30 Nov" or "Bob Lee's offer of Tue 8 Dec" (no subject: that is the mail's Subject line).
    """

    id: int
    kind: str
    state: str
    subject: str
    owner: Person
    counterparts: tuple[Person, ...]
    counterpart: Person
    who: str
    who_first: str
    #: The opening line of a letter to them: "Hi José and Jane,", or "Hello," (see
    #: :func:`mailhelper.read.names.greeting`).
    greeting: str
    #: More than one person: "José and Jane haven't replied", "Jane hasn't".
    many: bool
    #: Every counterpart by name, whoever the mail is about.
    everyone: str
    #: The counterparts who answered, and those who have not (yet).
    answered: tuple[Person, ...]
    silent: tuple[Person, ...]
    #: Their short names for a sentence: "José", "José and Jane" ("" for nobody).
    who_answered: str
    who_silent: str
    phrase: str
    created: datetime
    last_owner_activity: datetime
    #: When the ask or offer was written: the forwarded original's own Date, else ``created``.
    written: datetime
    #: When the owner last followed up in the thread (their own mail after the ask), or None.
    followed_up: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    away_until: datetime | None
    follow_up_at: datetime | None
    excerpt: str
    reply_excerpt: str
    #: The language the thread is written in, guessed from its subject, the owner's ask and
    #: the answers (:func:`mailhelper.read.language.guess_language`): "en", "de", "zh", ...; ""
    #: when its words say too little. Letters to a counterpart quote a recap only in "en".
    language: str = ""
    #: The repeat in words ("every Monday at 09:00"), "" when the thread does not repeat.
    repeat: str = ""

    @classmethod
    def of(cls, thread: Thread, zone: tzinfo,
           focus: Sequence[Address] | None = None) -> ThreadView:
        """The view of ``thread`` for a mail about ``focus`` (default: every counterpart):
        ``who``, ``who_first``, ``greeting``, ``many`` and ``counterpart`` name them, and
        ``answered_at`` and ``reply_excerpt`` are their latest answer's."""
        everyone = tuple(Person.of(c) for c in thread.counterparts)
        chosen = tuple(focus) if focus else thread.counterparts
        people = tuple(Person.of(c) for c in chosen)
        subject = one_line(thread.subject, MAX_SUBJECT_CHARS) or "(no subject)"
        who = _names(people, "name") or "the person you asked"
        everyone_names = _names(everyone, "name") or "the person you asked"
        # The subject is the mail's own Subject line, never pasted into a sentence: the day
        # the thread began tells it apart from another with the same people.
        began = format_day(_local(thread.written_at or thread.created, zone))
        match thread.kind:
            case Kind.OFFER:
                phrase = (f"{everyone_names}'s offer of {began}" if everyone
                          else f"the offer of {began}")
            case Kind.ASK:
                phrase = f"your ask to {everyone_names} of {began}"
            case Kind.NOTE:
                phrase = f"your note of {began}"
            case _:
                assert_never(thread.kind)
        theirs = [a for a in thread.replies if any(a.email == c.email for c in chosen)]
        latest = max(theirs, key=lambda a: a.at, default=None)
        answered = tuple(Person.of(c) for c in thread.answered)
        silent = tuple(Person.of(c) for c in thread.silent)
        return cls(
            id=thread.id,
            kind=thread.kind.value,
            state=thread.state.value,
            subject=subject,
            owner=Person.of(thread.owner),
            counterparts=everyone,
            counterpart=people[0] if people else Person("the person you asked", "them", ""),
            who=who,
            who_first=_names(people, "first") or "them",
            greeting=greeting([p.greet for p in people]),
            many=len(people) > 1,
            everyone=everyone_names,
            answered=answered,
            silent=silent,
            who_answered=_names(answered, "first"),
            who_silent=_names(silent, "first"),
            phrase=phrase,
            created=_local(thread.created, zone),
            last_owner_activity=_local(thread.last_owner_activity, zone),
            written=_local(thread.written_at or thread.created, zone),
            followed_up=_local_or_none(thread.followed_up_at, zone),
            answered_at=_local_or_none(latest.at if latest else thread.answered_at, zone),
            closed_at=_local_or_none(thread.closed_at, zone),
            away_until=_local_or_none(thread.away_until, zone),
            follow_up_at=_local_or_none(thread.follow_up_at, zone),
            excerpt=one_line(thread.excerpt, MAX_TEXT_CHARS),
            reply_excerpt=one_line(latest.excerpt if latest else thread.reply_excerpt,
                                   MAX_TEXT_CHARS),
            language=guess_language([thread.subject, thread.excerpt, thread.reply_excerpt,
                                     *(a.excerpt for a in thread.replies)]),
            repeat=describe_repeat(thread.repeat) if thread.repeat else "",
        )


@dataclass(frozen=True)
class FiguresView:
    """One line of the ledger: everyone (``person`` None) or one counterpart.

    ``median`` is the median time to an answer in words ("5 hours", "2.1 days"), "" when no
    ask was answered; ``answered_percent`` is None when no ask was made. ``thanks_sent``
    counts thank-yous that went to the counterpart, ``thanks_drafted`` those that went to the
    owner as a draft only; ``thanks`` says both in words ("1 sent, 1 drafted", "none yet");
    ``answered_sentence`` is "1 of your 2 asks was answered." ("" when none was).
    """

    person: Person | None
    asks_made: int
    asks_answered: int
    median: str
    answered_percent: int | None
    offers_received: int
    thanks_sent: int
    favours_returned: int
    thanks_drafted: int = 0
    thanks: str = "none yet"
    answered_sentence: str = ""

    @classmethod
    def of(cls, figures: PersonFigures) -> FiguresView:
        made, answered = figures.asks_made, figures.asks_answered
        return cls(
            person=Person.of(figures.person) if figures.person is not None else None,
            asks_made=made,
            asks_answered=answered,
            median=duration_words(figures.median_hours_to_answer),
            answered_percent=round(100 * answered / made) if made else None,
            offers_received=figures.offers_received,
            thanks_sent=figures.thanks_sent,
            favours_returned=figures.favours_returned,
            thanks_drafted=figures.thanks_drafted,
            thanks=thanks_words(figures.thanks_sent, figures.thanks_drafted),
            answered_sentence=answered_sentence(answered, made),
        )


@dataclass(frozen=True)
class LedgerView:
    overall: FiguresView
    people: tuple[FiguresView, ...]

    @classmethod
    def of(cls, ledger: Ledger) -> LedgerView:
        people = sorted(
            ledger.people,
            key=lambda f: (-f.asks_made - f.offers_received, f.person.email if f.person else ""),
        )
        return cls(FiguresView.of(ledger.overall), tuple(FiguresView.of(p) for p in people))


@dataclass(frozen=True)
class ItemView:
    """One numbered item of the digest: ``commands`` are what a reply line says to act on
    it (``send 2``, ``snooze 2 3 days``), each also a link."""

    number: int
    section: str
    thread: ThreadView
    draft_kind: str
    commands: tuple[str, ...]
    #: A note's next reminder, in the owner's zone; None for any other item.
    due: datetime | None = None


@dataclass(frozen=True)
class WeekView:
    """A week of the chart: ``label`` its Monday ("30 Nov"), ``bar`` the text fallback."""

    label: str
    made: int
    answered: int
    bar: str
    #: Cells of the HTML bar: answered ones, then the unanswered (scaled to at most 20).
    cells_answered: int
    cells_open: int


@dataclass(frozen=True)
class DigestView:
    """:class:`mailhelper.decide.digest.Digest` as the templates see it."""

    sections: tuple[tuple[str, tuple[ItemView, ...]], ...]
    count: int
    #: How many items each section has (0 for an empty one).
    counts: Mapping[str, int]
    weeks: tuple[WeekView, ...]
    week: Period
    #: The Monday the week began ("Mon 14 Dec"), the chart's last row too.
    week_from: str
    overall: Period
    overall_bar: str
    week_bar: str
    answered_before: int
    answered_after: int
    bands: tuple[tuple[str, int], ...]
    offers: tuple[tuple[str, int], ...]
    offers_total: int
    #: (day asked, subject, expected, got) of the latest asks with an ``expect N``
    expectations: tuple[tuple[str, str, int, int], ...]
    expected_total: int
    got_total: int
    closing: str
    #: When the owner's pause ends (their zone), None when they are not paused.
    paused_until: datetime | None = None
    #: The footer's example reply lines, taken from this digest's own items (see
    #: :func:`footer_examples`); empty when it has none.
    examples: tuple[str, ...] = ()

    @classmethod
    def of(cls, digest: Digest, zone: tzinfo, now: datetime) -> DigestView:
        views = []
        for item in digest.items:
            thread = item.thread
            n = item.number
            live = thread.state in (ThreadState.OPEN, ThreadState.ANSWERED)
            words = []
            if item.draft is not None:
                words.append(f"send {n}")
            if live:
                words.append(f"done {n}")
            if thread.state is ThreadState.OPEN:
                words.append(f"snooze {n} 3 days")
            if live and KINDS[thread.kind].declinable:
                words.append(f"decline {n}")
            if thread.state is not ThreadState.CANCELLED:
                words.append(f"cancel {n}")
            drafting = item.draft.kind if item.draft is not None else None
            focus = (thread.answered if item.section in ("thanks", "favours")
                     or drafting is ActionKind.THANK_YOU_DRAFT
                     else thread.silent if _per_person(thread) else None)
            views.append(ItemView(n, item.section, ThreadView.of(thread, zone, focus or None),
                                  drafting.value if drafting else "", tuple(words),
                                  _local_or_none(item.due, zone)))
        sections = tuple((name, tuple(v for v in views if v.section == name))
                         for name in DIGEST_SECTIONS)
        biggest = max((w.made for w in digest.weeks), default=0)
        weeks = []
        for week in digest.weeks:
            scale = min(1.0, 20 / biggest) if biggest else 1.0
            cells = round(week.made * scale)
            done = min(cells, round(week.answered * scale) or (1 if week.answered else 0))
            weeks.append(WeekView(
                f"{week.start.day} {_MONTHS[week.start.month - 1]}", week.made, week.answered,
                bar(week.answered, week.made), done, cells - done))
        expected = [(format_day(_local(e.thread.written_at or e.thread.created, zone), now),
                     one_line(e.thread.subject, 60), e.expected, e.got)
                    for e in digest.expectations]
        return cls(
            sections=tuple((name, items) for name, items in sections if items),
            count=len(views),
            counts={name: len(items) for name, items in sections},
            weeks=tuple(weeks),
            week=digest.week,
            week_from=(format_day(datetime.combine(digest.weeks[-1].start, time(0)), now)
                       if digest.weeks else ""),
            overall=digest.overall,
            overall_bar=bar(digest.overall.answered, digest.overall.made),
            week_bar=bar(digest.week.answered, digest.week.made),
            answered_before=digest.follow_ups[0],
            answered_after=digest.follow_ups[1],
            bands=tuple((band, digest.bands.get(band, 0)) for band in BANDS),
            offers=tuple((what, digest.offers.get(what, 0)) for what in OFFER_OUTCOMES),
            offers_total=sum(digest.offers.values()),
            expectations=tuple(expected[-6:]),
            expected_total=sum(e.expected for e in digest.expectations),
            got_total=sum(e.got for e in digest.expectations),
            closing=digest.closing,
            paused_until=_local_or_none(digest.paused_until, zone),
            examples=footer_examples(tuple(v.commands for v in views)),
        )


def footer_examples(commands: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The digest footer's examples: one real command of each kind its items offer (in the
    order send, done, snooze, decline, cancel), each from an item not used yet when one
    offers it, so every example would act on this digest as written.

    >>> footer_examples([("send 1", "done 1", "cancel 1")])
    ('send 1', 'done 1', 'cancel 1')
    >>> footer_examples([("send 1", "done 1", "cancel 1"),
    ...                  ("done 2", "snooze 2 3 days", "decline 2", "cancel 2")])
    ('send 1', 'done 2', 'snooze 2 3 days', 'decline 2', 'cancel 1')
    """
    examples: list[str] = []
    used: set[int] = set()
    for word in ("send", "done", "snooze", "decline", "cancel"):
        offered = [(i, c) for i, item in enumerate(commands) for c in item
                   if c.split(" ", 1)[0] == word]
        if offered:
            index, command = next(((i, c) for i, c in offered if i not in used), offered[0])
            used.add(index)
            examples.append(command)
    return tuple(examples)


# -- the job and the result --------------------------------------------------------------


@dataclass(frozen=True)
class RenderJob:
    """Everything one mail is made from.

    ``references`` are the Message-IDs of the thread, oldest first, with or without angle
    brackets (unsafe ones are dropped). ``answering`` is the Message-ID of the owner's mail a
    receipt, command reply or notice answers; it threads the answer under that mail.
    ``thanks_due`` and ``favours_due`` list the digest's threads; None takes them from
    ``digest`` (:mod:`mailhelper.decide.owed`: a thank-you or a return-the-favour reminder still
    pending), so a job without its threads' actions (a preview) has none.
    """

    action: Action
    thread: Thread | None
    now: datetime
    references: tuple[str, ...] = ()
    open_threads: tuple[Thread, ...] = ()
    ledger: Ledger | None = None
    answering: str | None = None
    thanks_due: tuple[Thread, ...] | None = None
    favours_due: tuple[Thread, ...] | None = None
    #: The digest's items and figures (:func:`mailhelper.decide.digest.build`); None for a digest
    #: job without them (a preview): they are then built from ``open_threads`` alone.
    digest: Digest | None = None
    #: The action's Message-ID as the store recorded it (made with the installation's secret,
    #: see :mod:`mailhelper.model.message_id`). None only for previews outside any state: then a
    #: placeholder made without a secret, which mail that goes out never carries.
    message_id: str | None = None


@dataclass(frozen=True)
class Rendered:
    """The three rendered parts of one mail, before composition."""

    subject: str
    text: str
    html: str


def template_names(kind: ActionKind) -> tuple[str, str, str]:
    """The subject, text and HTML template names of one kind.

    >>> template_names(ActionKind.HELP)
    ('help.subject.j2', 'help.txt.j2', 'help.html.j2')
    """
    subject, text, html = (f"{kind.value}.{part}.j2" for part in PARTS)
    return subject, text, html


REQUIRED = tuple(name for kind in ActionKind for name in template_names(kind))


# -- loading -----------------------------------------------------------------------------


@functools.cache
def _jinja() -> tuple[Callable[[Mapping[str, str]], BaseLoader], BytecodeCache]:
    """Jinja2, imported at the first compile of templates, not when this module loads: a
    cron poll with nothing to send never needs it (its import was a fifth of that poll).
    Returns the loader class for the packaged templates and the process's bytecode cache."""
    from jinja2 import BaseLoader, BytecodeCache, TemplateNotFound
    from jinja2.bccache import Bucket

    class DefaultsLoader(BaseLoader):
        """The templates shipped in the package, read once (they may sit inside a zip)."""

        def __init__(self, sources: Mapping[str, str]) -> None:
            self.sources = dict(sources)

        def get_source(
            self, environment: Environment, template: str
        ) -> tuple[str, str | None, Callable[[], bool] | None]:
            if template not in self.sources:
                raise TemplateNotFound(template)
            return self.sources[template], f"{TEMPLATE_PACKAGE}/{template}", lambda: True

        def list_templates(self) -> list[str]:
            return sorted(self.sources)

    class MemoryBytecodeCache(BytecodeCache):
        """Compiled templates kept for the life of the process, keyed by name and source
        hash.

        Compiling the forty-odd templates is most of the cost of building a
        :class:`Renderer`; a process that builds several (a SIGHUP reload, ``poll --once``
        run in-process by the demo and the tests) compiles each source once. An edited
        override has another hash, so it is compiled again; the environment's options never
        change between renderers.
        """

        def __init__(self) -> None:
            self.compiled: dict[str, bytes] = {}

        def load_bytecode(self, bucket: Bucket) -> None:
            code = self.compiled.get(bucket.key)
            if code is not None:
                bucket.bytecode_from_string(code)

        def dump_bytecode(self, bucket: Bucket) -> None:
            self.compiled[bucket.key] = bucket.bytecode_to_string()

    return DefaultsLoader, MemoryBytecodeCache()


#: Digests of (settings, override sources) whose sample mails rendered without a problem.
_SAMPLES_PASSED: set[str] = set()


# -- times -------------------------------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ISO_TIME = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def _local(moment: datetime, zone: tzinfo) -> datetime:
    # A naive time is taken as UTC, as the store writes them, rather than as the machine's zone.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def _local_or_none(moment: datetime | None, zone: tzinfo) -> datetime | None:
    return None if moment is None else _local(moment, zone)


def format_day(moment: datetime, now: datetime | None = None) -> str:
    """``Thu 3 Dec``; ``Thu 3 Dec 2027`` when not in ``now``'s year. English on purpose:
    ``%a`` would follow the machine's locale and make the same mail differ between hosts."""
    text = f"{_DAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]}"
    if now is not None and moment.year != now.year:
        text += f" {moment.year}"
    return text


def format_when(moment: datetime, now: datetime | None = None) -> str:
    """``Thu 3 Dec, 09:00`` (24-hour clock, as SPEC.md writes times)."""
    return f"{format_day(moment, now)}, {moment:%H:%M}"


def format_ago(moment: datetime, now: datetime) -> str:
    """Calendar days between the two, in words: ``today``, ``yesterday``, ``3 days ago``,
    ``2 weeks ago``, ``in 2 days``."""
    days = (now.date() - moment.date()).days
    if days == 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days == -1:
        return "tomorrow"
    if days < 0:
        return f"in {-days} days"
    return f"{_span_days(days)} ago"


def _span_days(days: int) -> str:
    if days < 14:
        return f"{days} day{'s' if days != 1 else ''}"
    if days < 60:
        return f"{days // 7} weeks"
    return f"{round(days / 30.4)} months"


def format_since(moment: datetime, now: datetime) -> str:
    """Calendar days from ``moment`` to ``now``: ``14 days``, ``3 weeks``; ``less than a day``."""
    days = (now.date() - moment.date()).days
    return _span_days(days) if days > 0 else "less than a day"


_INNER_QUOTES = str.maketrans({"“": "‘", "”": "’", '"': "'"})


def quoted(text: object) -> str:
    """``text`` in curly double quotes, as every subject and excerpt is quoted in the mails;
    double quotes inside become single ones, so quotes never nest alike (a subject that
    quotes another subject stays readable).

    >>> quoted("Intro to Acme")
    '“Intro to Acme”'
    >>> quoted("Re: Tell Bob what would help: “Help with the move”")
    '“Re: Tell Bob what would help: ‘Help with the move’”'
    """
    return "“" + str(text).translate(_INNER_QUOTES) + "”"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, the word in the plural unless ``count`` is 1.

    >>> plural(1, "offer"), plural(2, "offer"), plural(0, "reply", "replies")
    ('1 offer', '2 offers', '0 replies')
    """
    return f"{count} {word if count == 1 else (many or word + 's')}"


def answered_words(answered: int, partly: int = 0) -> str:
    """How many asks were answered, saying how many of them only some of the people asked
    answered (an ask counts as answered when anyone answered it).

    >>> answered_words(2), answered_words(1, 1)
    ('2 answered', '1 answered, by only some of those asked')
    >>> answered_words(3, 1)
    '3 answered (1 by only some of those asked)'
    """
    if partly <= 0:
        return f"{answered} answered"
    if partly >= answered:
        return f"{answered} answered, by only some of those asked"
    return f"{answered} answered ({partly} by only some of those asked)"


def answered_sentence(answered: int, made: int) -> str:
    """How many asks were answered, as a sentence ("" when none was).

    >>> answered_sentence(1, 2), answered_sentence(2, 3), answered_sentence(1, 1)
    ('1 of your 2 asks was answered.', '2 of your 3 asks were answered.', 'Your ask was answered.')
    >>> answered_sentence(3, 3)
    'All 3 of your asks were answered.'
    """
    if answered <= 0 or made <= 0:
        return ""
    if answered >= made:
        return "Your ask was answered." if made == 1 else f"All {made} of your asks were answered."
    return f"{answered} of your {made} asks {'was' if answered == 1 else 'were'} answered."


def thanks_words(sent: int, drafted: int) -> str:
    """The thank-yous of a ledger line: ``1 sent, 1 drafted``; ``none yet``.

    In ``draft`` mode the assistant's job ends with the draft mailed to the owner; whether
    the owner then sent it is theirs to know, so a draft is counted as drafted, not sent.

    >>> thanks_words(1, 1), thanks_words(0, 2), thanks_words(3, 0), thanks_words(0, 0)
    ('1 sent, 1 drafted', '2 drafted', '3 sent', 'none yet')
    """
    parts = [f"{sent} sent"] if sent else []
    if drafted:
        parts.append(f"{drafted} drafted")
    return ", ".join(parts) or "none yet"


def duration_words(hours: float | None) -> str:
    """A span of time as the digest, the status table and the demo all write it:
    ``45 minutes``, ``5 hours``, ``2.1 days`` ("" for None).

    >>> duration_words(50), duration_words(1), duration_words(0.25)
    ('2.1 days', '1 hour', '15 minutes')
    """
    if hours is None:
        return ""
    if hours < 1:
        minutes = max(1, round(hours * 60))
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if hours < 48:
        whole = round(hours)
        return f"{whole} hour{'s' if whole != 1 else ''}"
    days = round(hours / 24, 1)
    return f"{days:g} days"


def _humanize_times(text: str, zone: tzinfo, now: datetime) -> str:
    """ISO 8601 times inside ``text`` (as plan writes them in results) rewritten as
    ``Thu 3 Dec, 09:00`` in the configured zone."""

    def replace(match: re.Match[str]) -> str:
        try:
            moment = datetime.fromisoformat(match[0].replace("Z", "+00:00"))
        except ValueError:
            return match[0]
        return format_when(_local(moment, zone), now)

    return _ISO_TIME.sub(replace, text)


def _time_filters(zone: tzinfo) -> dict[str, Callable[..., str]]:
    """The template filters that write times, in the context's ``zone`` (the owner's the mail
    is for), else ``zone``, relative to the context's ``now``."""
    from jinja2 import pass_context

    def now_of(context: Context) -> datetime | None:
        now = context.get("now")
        return now if isinstance(now, datetime) else None

    def zone_of(context: Context) -> tzinfo:
        found = context.get("zone")
        return found if isinstance(found, tzinfo) else zone

    @pass_context
    def when(context: Context, moment: datetime | None) -> str:
        return "" if moment is None else format_when(_local(moment, zone_of(context)),
                                                     now_of(context))

    @pass_context
    def day(context: Context, moment: datetime | None) -> str:
        return "" if moment is None else format_day(_local(moment, zone_of(context)),
                                                    now_of(context))

    @pass_context
    def ago(context: Context, moment: datetime | None) -> str:
        now = now_of(context)
        return "" if moment is None or now is None else format_ago(
            _local(moment, zone_of(context)), now)

    @pass_context
    def since(context: Context, moment: datetime | None) -> str:
        now = now_of(context)
        return "" if moment is None or now is None else format_since(
            _local(moment, zone_of(context)), now)

    def between(start: datetime | None, end: datetime | None) -> str:
        if start is None or end is None:
            return ""
        return duration_words(max((end - start).total_seconds(), 0) / 3600)

    return {"when": when, "day": day, "ago": ago, "since": since, "between": between}


# -- the renderer ------------------------------------------------------------------------

#: Local part and domain of an address a header may carry: dot-atom text, with the non-ASCII
#: characters RFC 6532 section 3.2 allows in it (such mail needs SMTPUTF8, see
#: :func:`mailhelper.engine.outbox.flatten`), and a host name (an IDN domain is turned into its
#: ASCII form first). Quoted local parts are refused; so is a local part over 64 octets (RFC 5321
#: section 4.5.3.1.1).
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\u0080-\U0010ffff-]{1,64}")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class Renderer:
    """Turns a :class:`RenderJob` into an ``EmailMessage``; built once at start-up.

    Construction compiles every template (defaults, then same-named overrides from
    ``settings.templates_dir``) and renders each kind with sample values; any problem raises
    :class:`TemplateProblem` naming the file and the line. An override that is not a template
    mailhelper uses (a typo such as ``reciept.txt.j2``) is a problem too; names starting with
    ``_`` are free for shared layouts and macros.

        renderer = Renderer(settings)
        renderer.render(job)["X-Mailhelper-Action"]      # "follow_up"
    """

    def __init__(self, settings: Settings, remembered: Path | None = None) -> None:
        """``remembered``: a file where a passed check is remembered across processes (the
        CLI gives one beside the state file): when the settings, the template sources, the
        code and the Jinja2 version are those of a check that passed, the templates are
        compiled at their first use instead of now (a ``poll --once`` with nothing to send
        compiles nothing); any change of them checks everything again, here."""
        self.settings = settings
        self.zone: tzinfo = settings.timezone
        self.domain = settings.assistant.email.rpartition("@")[2]
        defaults = default_sources()
        missing = [name for name in REQUIRED if name not in defaults]
        if missing:
            raise TemplateProblem(f"the default templates are incomplete: {', '.join(missing)}",
                                  TEMPLATE_PACKAGE)
        self._defaults = defaults
        self._folder: Path | None = None
        self.overrides: tuple[Path, ...] = ()
        if settings.templates_dir is not None:
            self._folder = Path(settings.templates_dir).expanduser()
            self.overrides = check_overrides(self._folder, defaults)
        self._env: ImmutableSandboxedEnvironment | None = None
        self._templates: dict[str, Template] = {}
        self._filenames: set[str] = set()
        # The check depends only on the settings, the template sources and the code: once
        # they passed (in this process: a reload, the demo's many cycles; or, remembered,
        # in an earlier one), they pass again.
        digest = check_digest(settings, defaults, self.overrides)
        if digest in _SAMPLES_PASSED or remembered_check(remembered, digest):
            _SAMPLES_PASSED.add(digest)
            return
        self._build()
        for job in _sample_jobs(settings):
            try:
                self.render_parts(job)
            except TemplateProblem as exc:
                raise TemplateProblem(
                    f"{exc.problem} (while trying a sample {job.action.kind.value} mail)",
                    exc.template, exc.line,
                ) from exc
        _SAMPLES_PASSED.add(digest)
        remember(remembered, digest)

    @property
    def compiled(self) -> bool:
        """Whether the templates are compiled yet: at start-up when they were checked, else
        at the first mail rendered (a check remembered from an earlier process compiles
        nothing)."""
        return self._env is not None

    @property
    def env(self) -> ImmutableSandboxedEnvironment:
        """The Jinja2 environment, built (every template compiled) at its first use."""
        if self._env is None:
            self._build()
        assert self._env is not None
        return self._env

    @property
    def templates(self) -> dict[str, Template]:
        """Every template by name, compiled."""
        self.env  # noqa: B018 - builds the templates when they are not yet
        return self._templates

    def _build(self) -> None:
        from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        defaults_loader, compiled = _jinja()
        loaders: list[BaseLoader] = []
        if self._folder is not None:
            loaders.append(FileSystemLoader(str(self._folder), encoding="utf-8"))
        loaders.append(defaults_loader(self._defaults))
        env = ImmutableSandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            # Only HTML output is escaped: subjects and text parts are not markup.
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), disabled_extensions=(), default=False,
                default_for_string=False,
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
            bytecode_cache=compiled,
        )
        env.filters.update(_time_filters(self.zone))
        env.filters["sentence"] = sentence
        env.filters["paragraphs"] = paragraphs
        env.filters["plain"] = plain
        env.filters["plural"] = plural
        env.filters["answered_words"] = answered_words
        env.filters["quoted"] = quoted
        names = sorted(set(REQUIRED) | {n for n in env.list_templates() if n.endswith(".j2")})
        templates = {name: self._compile(env, name) for name in names}
        self._env, self._templates = env, templates

    # -- construction helpers ------------------------------------------------------------
    def _compile(self, env: Environment, name: str) -> Template:
        from jinja2 import TemplateNotFound, TemplateSyntaxError

        try:
            template = env.get_template(name)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(exc.message or str(exc), exc.filename or exc.name or name,
                                  exc.lineno) from exc
        except TemplateNotFound as exc:
            raise TemplateProblem(f"includes {exc.name!r}, which does not exist", name) from exc
        except UnicodeDecodeError as exc:
            raise TemplateProblem(f"is not UTF-8 text ({exc.reason})", name) from exc
        if template.filename:
            self._filenames.add(template.filename)
        return template

    # -- rendering -----------------------------------------------------------------------
    def render(self, job: RenderJob) -> EmailMessage:
        """The mail for ``job``: headers as the module docstring says, text and HTML parts.

        Raises :class:`CompositionError` when the action cannot become a mail (see there) and
        :class:`TemplateProblem` when a template fails on these values.
        """
        if job.now.tzinfo is None:
            raise ValueError("RenderJob.now must be timezone-aware")
        action = job.action
        to_counterpart = ACTIONS[action.kind].to_counterpart
        if to_counterpart and job.thread is None:
            raise CompositionError(f"{action.kind.value} {action.key!r}: its thread is missing")
        if not action.recipients:
            raise CompositionError(f"{action.kind.value} {action.key!r}: nobody to send it to")
        parts = self.render_parts(job)

        message = EmailMessage(policy=POLICY)
        assistant = self.settings.assistant
        owner = self._owner(job)
        recipients = [_header_address(a) for a in _unique(action.recipients)]
        to_emails = {fold(a.email) for a in action.recipients}
        if to_counterpart and self.settings.send_as == "owner":
            message["From"] = _header_address(owner)
            copy = [assistant]
            reply_to: list[Address] = []
        elif to_counterpart:
            message["From"] = _header_address(assistant)
            copy = [owner]
            # The owner first: clients that answer only the first Reply-To address answer them.
            reply_to = [owner, assistant]
        else:
            message["From"] = _header_address(assistant)
            copy, reply_to = [], []
        message["To"] = recipients
        copy = [a for a in copy if fold(a.email) not in to_emails]
        if copy:
            message["Cc"] = [_header_address(a) for a in copy]
        if reply_to:
            message["Reply-To"] = [_header_address(a) for a in reply_to]
        message["Subject"] = parts.subject
        message["Date"] = email.utils.format_datetime(job.now.astimezone(self._zone(job)))
        recorded = bracketed(job.message_id) if job.message_id else None
        message["Message-ID"] = recorded or make_message_id(action.key, self.domain, b"")
        references = self._references(job, to_counterpart)
        if references:
            message["In-Reply-To"] = references[-1]
            message["References"] = " ".join(references)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834 section 5
        message["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office, no receipts
        message["X-Mailhelper-Action"] = action.kind.value
        thread_id = job.thread.id if job.thread is not None else action.thread_id
        if thread_id is not None:
            message["X-Mailhelper-Thread"] = str(thread_id)
        # Non-ASCII text always goes quoted-printable: the stock choice sends a part whose
        # lines all fit in 78 bytes as raw 8bit, which a server without 8BITMIME may mangle.
        message.set_content(parts.text, subtype="plain", charset="utf-8",
                            cte=None if parts.text.isascii() else "quoted-printable")
        message.add_alternative(parts.html, subtype="html", charset="utf-8",
                                cte=None if parts.html.isascii() else "quoted-printable")
        # A boundary from the action key instead of a random one: the same job gives the same
        # bytes, so a re-composed mail (recovery, dry run, tests) is byte-for-byte the same.
        message.set_boundary("mh-" + hashlib.sha256(action.key.encode("utf-8")).hexdigest()[:32])
        return message

    def render_parts(self, job: RenderJob) -> Rendered:
        """The subject, text and HTML of ``job``'s mail, without headers (dry runs, tests)."""
        context = self._context(job)
        kind = job.action.kind
        if ACTIONS[kind].to_counterpart and context["own_words"]:
            kind = ActionKind.LETTER  # the owner's words go as they wrote them, not the draft
        subject_name, text_name, html_name = template_names(kind)
        subject = one_line(self._run(subject_name, context), MAX_SUBJECT_CHARS)
        if not subject:
            subject = f"mailhelper: {job.action.kind.value.replace('_', ' ')}"
        context["subject"] = subject  # tap() below reads it: the links answer this subject
        text = _tidy_text(self._run(text_name, context))
        html = self._run(html_name, context).strip() + "\n"
        return Rendered(subject, text, html)

    def _run(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.templates[name].render(context)
        except TemplateProblem:
            raise
        except Exception as exc:  # any failure inside a template is the template's problem
            filename, line = _template_frame(exc.__traceback__, self._filenames)
            raise TemplateProblem(
                f"{type(exc).__name__}: {exc}", filename or name, line
            ) from exc

    def _zone(self, job: RenderJob) -> tzinfo:
        """The zone the mail's times are written in: its owner's (``owners[].timezone``),
        else ``timezone``."""
        return self.settings.zone_for(self._owner(job).email)

    def _owner(self, job: RenderJob) -> Address:
        if job.thread is not None:
            return job.thread.owner
        first = job.action.recipients[0] if job.action.recipients else None
        if first is not None:
            known = self.settings.owner_for(first.email)
            return known or first
        if self.settings.owners:
            return self.settings.owners[0]
        raise CompositionError(f"{job.action.kind.value} {job.action.key!r}: no owner to name")

    def _references(self, job: RenderJob, to_counterpart: bool) -> list[str]:
        if to_counterpart:
            ids = list(job.references)
            if not ids and job.thread is not None:
                ids = [job.thread.root_message_id]
        else:
            answering = job.answering or job.action.data.get("answering")
            ids = [answering] if answering else []
        clean = list(_unique_ids(bracketed(i) for i in ids))
        if len(clean) > MAX_REFERENCES:
            clean = [clean[0], *clean[-(MAX_REFERENCES - 1):]]
        return clean

    def _context(self, job: RenderJob) -> dict[str, Any]:
        action, settings, zone = job.action, self.settings, self._zone(job)
        now = job.now.astimezone(zone)
        data = {str(k): one_line(v) for k, v in action.data.items()}
        thread = (ThreadView.of(job.thread, zone, _focus(job.thread, action))
                  if job.thread is not None else None)
        to_counterpart = ACTIONS[action.kind].to_counterpart
        owner = Person.of(self._owner(job))

        if thread is not None:
            who, who_first, about = thread.who, thread.who_first, thread.subject
        else:
            found = [Person.of(a) for a in _parse_people(data.get("counterparts", ""))]
            who, who_first = _names(found, "name"), _names(found, "first")
            about = data.get("subject", "")
        about = one_line(about, MAX_SUBJECT_CHARS)

        number = _int(data.get("number"), 1)
        of = _int(data.get("of"), 0)
        flavour = data.get("flavour", "")
        if flavour not in ("helped", "declined"):
            flavour = (
                "declined"
                if job.thread is not None and job.thread.state is ThreadState.DECLINED
                else "helped"
            )
        next_due = _time_or_none(data.get("next_due", ""), zone)
        ask_kind = thread.kind if thread is not None else data.get("kind", "ask")
        failed_kind = data.get("failed_kind", "")
        failed_what = ""
        if failed_kind in {k.value for k in ActionKind}:
            failed_what = ACTIONS[ActionKind(failed_kind)].mail_name
        elif failed_kind:
            failed_what = f"a {failed_kind.replace('_', ' ')} mail"

        facts = None
        if action.kind is ActionKind.DIGEST:
            facts = job.digest or build_digest(job.open_threads, {}, job.now, zone)
        digest = self._digest_lists(job, facts) if facts is not None else None
        schedules = settings.schedules
        local, _, domain = settings.assistant.email.partition("@")
        ask_word = settings.tags.ask[0] if settings.tags.ask else "ask"
        offer_word = settings.tags.offer[0] if settings.tags.offer else "offer"
        plus = {
            "ask": f"{local}+{ask_word}@{domain}",
            "offer": f"{local}+{offer_word}@{domain}",
            "5d": f"{local}+5d@{domain}",
        }

        token = token_for(job.message_id)
        context: dict[str, Any] = {}

        def tap(body: str) -> str:
            """The mailto: link that writes ``body`` back to the assistant about this mail."""
            subject = str(context.get("subject", ""))
            if not re.match(r"(?i)re\s*:", subject):
                subject = f"Re: {subject}"
            return mailto(settings.assistant.email, with_token(subject, token), body)

        context.update({
            "tap": tap,
            "kind": action.kind.value,
            "now": now,
            "zone": zone,
            "owner": owner,
            "assistant": Person.of(settings.assistant),
            "thread": thread,
            "who": who,
            "who_first": who_first,
            "about": about,
            "subject": "",
            "data": data,
            "to_counterpart": to_counterpart,
            "from_owner": to_counterpart and settings.send_as == "owner",
            "send_as": settings.send_as,
            "sendable_draft": ACTIONS[action.kind].sendable_draft,
            "number": number,
            "of": of,
            "last_reminder": of > 0 and number >= of,
            "flavour": flavour,
            "requested": data.get("requested") == "send",
            "ask_kind": ask_kind if ask_kind in set(Kind) else "ask",
            "repeat": describe_repeat(data["repeat"]) if data.get("repeat") else "",
            "occurrence": _local_or_none(_iso_or_none(data.get("occurrence")), zone),
            "problem": data.get("problem", ""),
            "left_out": _lines(data.get("left_out", "")),
            "understood": data.get("understood", ""),
            "tag": data.get("tag", ""),
            "next_kind": data.get("next_kind", ""),
            "next_due": next_due,
            "nudged": _time_or_none(data.get("nudged", ""), zone),
            "counterparts": join_names([
                p.name if p.name == p.email else f"{p.name} <{p.email}>"
                for p in (Person.of(a) for a in _parse_people(data.get("counterparts", "")))
            ]),
            "command": data.get("command", ""),
            "result": _humanize_times(data.get("result", ""), zone, now),
            "result_lines": tuple(_humanize_times(line, zone, now)
                                  for line in _lines(action.data.get("lines", ""))),
            "unknown_command": data.get("unknown_command", ""),
            "own_words": own_text(action.data.get("text", "")),
            "note": _humanize_times(data.get("note", ""), zone, now),
            "reason": _humanize_times(data.get("reason", ""), zone, now),
            "folder": data.get("folder", ""),
            "failed_what": failed_what,
            "failed_to": data.get("failed_to", ""),
            "failed_stage": data.get("failed_stage", "server" if failed_what else ""),
            "filed": _filed(data, zone),
            "open_asks": digest[0] if digest else (),
            "open_offers": digest[1] if digest else (),
            "thanks_due": digest[2] if digest else (),
            "favours_due": digest[3] if digest else (),
            "ledger": LedgerView.of(job.ledger) if job.ledger is not None else None,
            "digest": DigestView.of(facts, zone, now) if facts is not None else None,
            "tags": {"ask": list(settings.tags.ask), "offer": list(settings.tags.offer)},
            "plus": plus,
            "schedule": {
                "ask_follow_up": _and(d.text for d in schedules.ask.follow_up),
                "offer_follow_up": _and(d.text for d in schedules.offer.follow_up),
                "give_up_after": schedules.ask.give_up_after.text,
                "thank_you_after": schedules.thank_you.after.text,
                "thank_you_mode": schedules.thank_you.mode,
                "return_favor_after": schedules.return_favor.after.text,
                "note_after": schedules.note.after.text,
            },
        })
        return context

    def _digest_lists(
        self, job: RenderJob, facts: Digest
    ) -> tuple[tuple[ThreadView, ...], tuple[ThreadView, ...], tuple[ThreadView, ...],
               tuple[ThreadView, ...]]:
        zone = self._zone(job)
        threads = sorted(job.open_threads, key=lambda t: (t.created, t.id))
        asks = [t for t in threads if t.kind is Kind.ASK and t.state is ThreadState.OPEN]
        offers = [t for t in threads if t.kind is Kind.OFFER and t.state is ThreadState.OPEN]
        # The one definition of thanks and favours due (mailhelper.decide.owed), as status has it.
        thanks = job.thanks_due if job.thanks_due is not None else facts.thanks_due
        favours = job.favours_due if job.favours_due is not None else facts.favours_due

        def views(items: Iterable[Thread], about: str = "") -> tuple[ThreadView, ...]:
            return tuple(ThreadView.of(t, zone, getattr(t, about) if about else None)
                         for t in items)

        return (views(asks, "silent"), views(offers), views(thanks, "answered"),
                views(favours, "answered"))


# -- helpers -----------------------------------------------------------------------------


#: Mail about those who answered, and mail about those who did not.
_ABOUT_ANSWERED = frozenset({ActionKind.THANK_YOU, ActionKind.THANK_YOU_DRAFT,
                             ActionKind.RETURN_FAVOR})
_ABOUT_SILENT = frozenset({ActionKind.FOLLOW_UP, ActionKind.NUDGE, ActionKind.CLOSING_NOTE})


def _per_person(thread: Thread) -> bool:
    """Whether the thread's counterparts answer it one by one (an ask), so a mail may be
    about those who answered or those who did not."""
    return KINDS[thread.kind].answered_by is AnsweredBy.COUNTERPARTS


def _focus(thread: Thread, action: Action) -> tuple[Address, ...]:
    """The counterparts a mail is about: those its ``people`` names; for a mail planned
    before it named them, those who answered (thanks) or did not (reminders); else all."""
    named = set(action.data.get("people", "").split(",")) - {""}
    if named:
        chosen = tuple(c for c in thread.counterparts if c.email in named)
    elif _per_person(thread) and action.kind in _ABOUT_ANSWERED:
        chosen = thread.answered
    elif _per_person(thread) and action.kind in _ABOUT_SILENT:
        chosen = thread.silent
    else:
        chosen = ()
    return chosen or thread.counterparts


def _filed(data: Mapping[str, str], zone: tzinfo) -> dict[str, Any] | None:
    """The counts of the daily summary of others' mail filed as errors (the day as noon of
    that day in ``zone``, for the ``day`` filter), or None for any other notice."""
    if "filed_day" not in data:
        return None
    counts = {name: _int(data.get(f"filed_{name}"), 0)
              for name in ("unreadable", "too_large", "failed")}
    try:
        day: datetime | None = datetime.combine(
            date.fromisoformat(data["filed_day"]), time(12), tzinfo=zone)
    except ValueError:
        day = None
    return {**counts, "total": sum(counts.values()), "day": day}


def _header_address(address: Address) -> HeaderAddress:
    """A header address for ``address``, or CompositionError when no header can carry it."""
    raw = address.email.strip()
    local, at, domain = raw.rpartition("@")
    if (not at or not _LOCAL_PART.fullmatch(local) or len(local.encode("utf-8")) > 64
            or local.startswith(".") or local.endswith(".") or ".." in local
            or any(unicodedata.category(c)[0] in "CZ" for c in local if not c.isascii())):
        raise CompositionError(f"{raw!r} is not an address mailhelper can send to")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise CompositionError(f"{raw!r} is not an address mailhelper can send to") from exc
    if not _DOMAIN.fullmatch(domain) or ".." in domain:
        raise CompositionError(f"{raw!r} is not an address mailhelper can send to")
    name = one_line(address.name, MAX_NAME_CHARS)
    return HeaderAddress(display_name=name, username=local, domain=domain)


def _iso_or_none(text: str | None) -> datetime | None:
    """An ISO-8601 time from action data, None when absent or unreadable."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _unique(addresses: Iterable[Address]) -> list[Address]:
    seen: set[str] = set()
    out = []
    for address in addresses:
        key = fold(address.email.strip())
        if key not in seen:
            seen.add(key)
            out.append(address)
    return out


def _unique_ids(ids: Iterable[str | None]) -> Iterable[str]:
    seen: set[str] = set()
    for msg_id in ids:
        if msg_id is not None and msg_id not in seen:
            seen.add(msg_id)
            yield msg_id


def _parse_people(text: str) -> list[Address]:
    """The people in a header-style list ("Jane Doe <jane@x.org>, bob@y.org")."""
    return [
        Address(fold(addr), name)
        for name, addr in email.utils.getaddresses([text])
        if addr and "@" in addr
    ]


def _time_or_none(text: str, zone: tzinfo) -> datetime | None:
    """An ISO 8601 time from action data, in ``zone``; None when empty or unreadable."""
    try:
        return _local(datetime.fromisoformat(text), zone) if text else None
    except ValueError:
        return None


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


#: The most characters of the owner's own words a letter carries.
MAX_OWN_WORDS = 20_000


def own_text(text: object, limit: int = MAX_OWN_WORDS) -> str:
    """The owner's own words for a letter: their line breaks and indents kept, every other
    control character, line separator and bidi override a space, at most ``limit``
    characters.

    >>> own_text("Hi Bob,\\r\\n\\n  Saturday\\u202e works.\\x00")
    'Hi Bob,\\n\\n  Saturday  works.'
    """
    lines = []
    for line in str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        chars = [" " if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") or c in _BIDI
                 else c for c in line]
        lines.append("".join(chars).rstrip())
    return "\n".join(lines).strip("\n")[:limit]


def sentence(text: object) -> str:
    """``text`` ending with a full stop unless it ends with one of ``.!?…``.

    >>> sentence("marked done"), sentence("Done!")
    ('marked done.', 'Done!')
    """
    flat = str(text).rstrip()
    if not flat or flat[-1] in ".!?…":
        return flat
    return flat + "."


def plain(value: object) -> str:
    """``value`` as plain text, so that an autoescaping template escapes it.

    Jinja marks what a macro returns as safe when the *caller* autoescapes, even when the macro
    comes from a text template that escaped nothing. An HTML template that calls a text macro
    (the drafts, the command words) must pass the result through ``plain`` (or ``paragraphs``),
    or a name such as ``<script>`` would reach the HTML as markup.

    >>> from markupsafe import Markup
    >>> type(plain(Markup("<b>"))).__name__
    'str'
    """
    return str(value)


def paragraphs(text: object) -> Markup:
    """Plain text as HTML: blank lines part paragraphs, newlines become ``<br>``, and all of it
    is escaped, ``Markup`` or not (see :func:`plain` for why nothing is trusted here).

    >>> print(paragraphs("Hi <b>,\\n\\nthanks\\nSam"))
    <p>Hi &lt;b&gt;,</p>
    <p>thanks<br>
    Sam</p>
    """
    # Escape first, then split: every piece below is already safe to wrap in Markup.
    safe = str(escape(plain(text)))
    blocks = re.split(r"\n[ \t]*\n", safe.strip("\n"))
    rendered = [
        "<p>" + "<br>\n".join(line.strip() for line in block.strip("\n").split("\n")) + "</p>"
        for block in blocks
        if block.strip()
    ]
    return Markup("\n".join(rendered))


def _and(items: Iterable[str]) -> str:
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


#: The longest line of a text part (RFC 5322 section 2.1.1: 78 characters).
TEXT_WIDTH = 78
#: The hanging indent of a wrapped line: its own indent, and a list mark ("- ") or a command
#: name and the spaces after it ("  status         get a digest") when it starts with one.
_HANGING = re.compile(r"\s*(?:- |\S+(?: \S+)*? {2,})?")


#: Characters no line starts with, and characters no line ends with (UAX #14 classes CL, EX,
#: IS, NS, QU and OP, the ones Chinese and Japanese text use).
_NO_BREAK_BEFORE = frozenset("，。、．？！：；」』）》〉】〕”’…‥・ー々"
                             "ぁぃぅぇぉっゃゅょァィゥェォッャュョ,.?!:;)]}%")
_NO_BREAK_AFTER = frozenset("「『（《〈【〔“‘([{")


def _pieces(word: str) -> list[str]:
    """``word`` cut where a line may break inside it: next to a character of a script written
    without spaces (Chinese, Japanese; UAX #14 class ID), never before closing punctuation
    or after opening punctuation.

    >>> _pieces("计划？好的"), _pieces("Q4计划"), _pieces("plan")
    (['计', '划？', '好', '的'], ['Q4', '计', '划'], ['plan'])
    """
    if word.isascii():
        return [word]
    pieces = [word[:1]]
    for before, char in itertools.pairwise(word):
        wide = any(unicodedata.east_asian_width(c) in ("W", "F") for c in (before, char))
        if wide and char not in _NO_BREAK_BEFORE and before not in _NO_BREAK_AFTER:
            pieces.append(char)
        else:
            pieces[-1] += char
    return pieces


def _wrap(line: str, width: int = TEXT_WIDTH) -> list[str]:
    """One line of a text part as lines of at most ``width`` characters, cut between words
    (a word longer than that, such as an address, stays whole) and, in text written without
    spaces, between characters (see :func:`_pieces`), continued under its text.

    >>> _wrap("  - an ask to Jane Okafor <jane@example.org>, about the plan", 40)
    ['  - an ask to Jane Okafor', '    <jane@example.org>, about the plan']
    >>> _wrap("  snooze 3 days  remind you again in 3 days (or: snooze monday)", 50)
    ['  snooze 3 days  remind you again in 3 days (or:', '                 snooze monday)']
    >>> _wrap("  “你好，能不能在周四之前帮我看一下计划？”", 16)
    ['  “你好，能不能在周四之前帮我', '  看一下计划？”']
    """
    if len(line) <= width:
        return [line]
    hanging = _HANGING.match(line)
    indent = " " * (hanging.end() if hanging and hanging.end() < width // 2 else 0)
    words = line.split(" ")
    lead = len(line) - len(line.lstrip(" "))
    out: list[str] = []
    current = line[:lead]
    for word in words[lead:]:
        for index, piece in enumerate(_pieces(word)):
            glue = " " if index == 0 else ""  # the pieces of one word join without a space
            if current.strip() and len(current) + len(glue) + len(piece) > width:
                out.append(current)
                current = indent + piece
            else:
                current = f"{current}{glue}{piece}" if current.strip() else current + piece
    out.append(current)
    return out


def _tidy_text(text: str) -> str:
    """No trailing blanks, at most one empty line in a row, lines of at most
    :data:`TEXT_WIDTH` characters, one newline at the end: templates can then be laid out for
    reading without counting newlines or characters. The signature separator keeps its space
    (``-- ``, RFC 3676 section 4.3), so clients can fold the signature away."""
    lines = [
        "-- " if line.rstrip() == "--" else line.rstrip()
        for line in text.strip("\n").splitlines()
    ]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.extend(_wrap(line) if line != "-- " else [line])
    return "\n".join(out).strip("\n") + "\n"


def _template_frame(
    tb: TracebackType | None, filenames: set[str]
) -> tuple[str | None, int | None]:
    """The innermost template file and line in a traceback (Jinja rewrites the frames of
    compiled templates to point at the template source)."""
    found: tuple[str | None, int | None] = (None, None)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in filenames or filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


# -- sample values for the start-up check ------------------------------------------------


def _sample_jobs(settings: Settings) -> list[RenderJob]:
    """One or more jobs per kind, with the branches templates are likely to take, so that a
    broken override fails at start-up and not at the first real mail."""
    zone = settings.timezone
    owner = settings.owners[0] if settings.owners else Address("owner@example.com", "Sam Rivera")
    jane = Address("jane@example.org", "Jane Doe")
    now = datetime(2026, 12, 7, 9, 0, tzinfo=zone)
    created = now - timedelta(days=7)
    ask = Thread(
        id=1, kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro to Acme", owner=owner,
        counterparts=(jane,), created=created, root_message_id="ask@example.com",
        last_owner_activity=created, excerpt="Could you introduce me to someone at Acme?",
    )
    answered = Thread(
        id=2, kind=Kind.ASK, state=ThreadState.ANSWERED, subject="CV review", owner=owner,
        counterparts=(jane,), created=created, root_message_id="cv@example.com",
        last_owner_activity=created, answered_at=now - timedelta(days=1),
        excerpt="Would you look over my CV?", reply_excerpt="Happy to, send it over.",
    )
    offer = Thread(
        id=3, kind=Kind.OFFER, state=ThreadState.DECLINED, subject="Moving house", owner=owner,
        counterparts=(jane,), created=created, root_message_id="move@example.com",
        last_owner_activity=created, closed_at=now - timedelta(hours=3),
        excerpt="I have a van if you need it.",
    )
    done = Thread(
        id=4, kind=Kind.ASK, state=ThreadState.DONE, subject="Flat viewing", owner=owner,
        counterparts=(jane,), created=created - timedelta(days=40), root_message_id="f@x.org",
        last_owner_activity=created - timedelta(days=40), answered_at=created - timedelta(days=39),
        closed_at=created - timedelta(days=30), excerpt="Could you view the flat for me?",
    )
    note = Thread(
        id=5, kind=Kind.NOTE, state=ThreadState.OPEN, subject="Renew passport", owner=owner,
        counterparts=(), created=created, root_message_id="note@example.com",
        last_owner_activity=created, excerpt="Forms at the post office.",
    )
    weekly = dataclasses.replace(note, id=6, repeat="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    keep_in_touch = dataclasses.replace(ask, id=7, repeat="FREQ=MONTHLY;INTERVAL=3;"
                                                          "BYMONTHDAY=7;BYHOUR=9;BYMINUTE=0")
    ledger = Ledger(
        PersonFigures(None, asks_made=4, asks_answered=3, median_hours_to_answer=5.0,
                      offers_received=1, thanks_sent=2, favours_returned=1, thanks_drafted=1),
        (PersonFigures(jane, asks_made=4, asks_answered=3, median_hours_to_answer=5.0),
         PersonFigures(Address("bob@example.org", "Bob Lee"), offers_received=1,
                       thanks_drafted=1)),
    )

    def job(kind: ActionKind, thread: Thread | None, data: Mapping[str, str] | None = None,
            **extra: Any) -> RenderJob:
        recipients = thread.counterparts if thread and ACTIONS[kind].to_counterpart else (owner,)
        action = Action(key=f"sample/{kind.value}", kind=kind, due=now,
                        thread_id=thread.id if thread else None, recipients=recipients,
                        data=dict(data or {}))
        return RenderJob(action, thread, now, references=("ask@example.com",), **extra)

    due = (now + timedelta(days=3)).isoformat()
    K = ActionKind
    return [
        job(K.RECEIPT, ask, {"kind": "ask", "subject": "Intro to Acme", "tag": "5d",
                             "counterparts": "Jane Doe <jane@example.org>",
                             "next_kind": "follow_up", "next_due": due}),
        job(K.RECEIPT, offer, {"kind": "offer", "next_kind": "offer_follow_up", "next_due": due}),
        job(K.RECEIPT, None, {"kind": "ask", "subject": "Intro", "problem": "no counterpart",
                              "left_out": '["a..b@example.org, because it is not valid"]'}),
        job(K.FOLLOW_UP, ask, {"number": "1", "of": "2"}),
        job(K.FOLLOW_UP, ask, {"number": "2", "of": "2"}),
        job(K.OFFER_FOLLOW_UP, offer, {"number": "1", "of": "2"}),
        job(K.CLOSING_NOTE, ask),
        job(K.NUDGE, ask, {"number": "1"}),
        job(K.THANK_YOU_DRAFT, answered, {"flavour": "helped"}),
        job(K.THANK_YOU_DRAFT, offer, {"flavour": "declined"}),
        job(K.THANK_YOU, answered, {"flavour": "helped", "requested": "send"}),
        job(K.THANK_YOU, offer, {"flavour": "declined"}),
        job(K.RETURN_FAVOR, done),
        job(K.RECEIPT, note, {"kind": "note", "subject": "Renew passport",
                              "next_kind": "note_reminder", "next_due": due}),
        job(K.RECEIPT, weekly, {"kind": "note", "repeat": weekly.repeat or "",
                                "next_kind": "note_reminder", "next_due": due}),
        job(K.RECEIPT, keep_in_touch, {"kind": "ask", "repeat": keep_in_touch.repeat or "",
                                       "next_kind": "check_in", "next_due": due}),
        job(K.NOTE_REMINDER, note, {"answering": "note@example.com"}),
        job(K.NOTE_REMINDER, weekly, {"occurrence": due, "snoozed": "yes"}),
        job(K.CHECK_IN, keep_in_touch, {"occurrence": due, "people": "jane@example.org"}),
        job(K.NUDGE, keep_in_touch, {"flavour": "check_in", "requested": "send"}),
        job(K.LETTER, done, {"about": "return_favor"}),
        job(K.LETTER, offer, {"about": "offer", "text": "Hi Jane,\n\nThe van on Saturday."}),
        job(K.NUDGE, ask, {"text": "Jane, any news?"}),
        job(K.DIGEST, None, {"reason": "schedule"},
            open_threads=(ask, answered, offer, done, note, weekly), ledger=ledger,
            thanks_due=(answered, offer), favours_due=(done,)),
        job(K.DIGEST, None, {"reason": "status"}),
        job(K.HELP, None, {}),
        job(K.HELP, ask, {"unknown_command": "frobnicate", "note": "Try again."}),
        job(K.COMMAND_REPLY, ask, {"command": "snooze 3 days", "result": f"snoozed until {due}"}),
        job(K.COMMAND_REPLY, None, {"command": "done", "result": "marked done"}),
        job(K.ERROR_NOTICE, None, {"reason": "no sender", "subject": "Hello",
                                   "folder": "mailhelper/errors"}),
        job(K.ERROR_NOTICE, ask, {"reason": "550 no such user", "failed_kind": "nudge",
                                  "failed_to": "jane@example.org"}),
        job(K.ERROR_NOTICE, ask, {"reason": "no header can carry it", "failed_kind": "nudge",
                                  "failed_to": "jane@example.org", "failed_stage": "compose"}),
        job(K.ERROR_NOTICE, None, {"filed_day": "2026-12-06", "filed_unreadable": "3",
                                   "filed_too_large": "1", "filed_failed": "0",
                                   "folder": "mailhelper/errors"}),
    ]
