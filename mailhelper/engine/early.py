"""The pure half of a message's reading, done ahead (:mod:`mailhelper.engine.pipeline`), and
how the cycle goes on from it. Light at import: the reading modules are imported when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailhelper.decide.prefilter import Candidate, Lookup
    from mailhelper.model.settings import Settings
    from mailhelper.model.values import Mail


@dataclass(frozen=True)
class Early:
    """What the pure half of the reading found for one message: its content key, the
    prefilter's candidate when the header alone may let it be ignored (subject to the state),
    and unless it is a candidate naming no other mail, its
    :class:`~mailhelper.model.values.Mail` or the reason it is no mail."""

    key: str
    candidate: Candidate | None = None
    mail: Mail | None = None
    unparseable: str | None = None
    #: :func:`~mailhelper.read.replytext.strip_reply` of the mail's reply text (else its
    #: text): what the excerpt of it starts from (:func:`~mailhelper.read.replytext.recap`).
    stripped: str | None = None
    #: :func:`~mailhelper.read.replytext.recap` of that text (from ``stripped``): the excerpt
    #: classifying quotes from a mail (an ask's, an answer's).
    recapped: str | None = None


def read_early(raw: bytes, settings: Settings) -> Early:
    """The pure half of :meth:`mailhelper.engine.daemon.Assistant.handle`'s reading, in its
    order: the content key, the prefilter's header check, and when that leaves the message to
    the full reading or may (it names other mail), :func:`~mailhelper.read.parse.parse_mail`,
    the stripped reply text an excerpt of the mail starts from, and that excerpt.
    Exceptions other than :class:`~mailhelper.read.parse.UnparseableMail` go to the caller."""
    from mailhelper.decide.prefilter import header_check
    from mailhelper.mail.mailbox import content_key
    from mailhelper.read.parse import UnparseableMail, parse_mail
    from mailhelper.read.replytext import recap_stripped, strip_reply

    key = content_key(raw)
    candidate = header_check(raw, settings)
    if candidate is not None and len(candidate.ids) == 1:
        return Early(key, candidate=candidate)
    # A candidate that refers to other mail is parsed too: whether it can be ignored depends
    # on the state (a reply to a tracked thread cannot), and the caller must not have to
    # parse it in its turn.
    try:
        mail = parse_mail(raw)
    except UnparseableMail as exc:
        return Early(key, candidate=candidate, unparseable=str(exc))
    stripped = strip_reply(mail.reply_text or mail.text)
    return Early(key, candidate=candidate, mail=mail, stripped=stripped,
                 recapped=recap_stripped(stripped))


def import_reading() -> None:
    """Import what :func:`early_verdict` and :func:`early_mail` may call, so that a caller
    timing them (the per-message budget) times the reading, not an import."""
    import mailhelper.decide.prefilter
    import mailhelper.read.parse  # noqa: F401


def early_verdict(early: Early | None, raw: bytes, settings: Settings,
                  lookup: Lookup) -> tuple[str, str] | None:
    """:func:`~mailhelper.decide.prefilter.ignorable` for ``raw``, its header check taken
    from ``early`` when the worker did it."""
    from mailhelper.decide.prefilter import confirmed, ignorable

    if early is None:
        return ignorable(raw, settings, lookup)
    return confirmed(early.candidate, lookup) if early.candidate is not None else None


def early_mail(early: Early | None, raw: bytes) -> Mail:
    """:func:`~mailhelper.read.parse.parse_mail` of ``raw``, taken from ``early`` when the
    worker parsed it (its :class:`~mailhelper.read.parse.UnparseableMail` raised again; its
    stripped reply text and excerpt handed to :func:`~mailhelper.read.replytext.recap`)."""
    from mailhelper.read.parse import UnparseableMail, parse_mail
    from mailhelper.read.replytext import hand_over

    if early is not None:
        if early.mail is not None:
            if early.stripped is not None:
                hand_over(early.mail.reply_text or early.mail.text, early.stripped,
                          early.recapped)
            return early.mail
        if early.unparseable is not None:
            raise UnparseableMail(early.unparseable)
    return parse_mail(raw)
