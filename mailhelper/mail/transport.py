"""The SMTP edge: it moves a mail's bytes to the submission server and says what came of it.

A :class:`Transport` decides nothing about the mail: what goes, when, to whom and what an
acceptance changes are the engine's (:mod:`mailhelper.engine.outbox`,
:mod:`mailhelper.engine.sending`). It answers one of three things for each mail (RFC 5321 section
4.2, RFC 1047):

- :class:`Accepted`: the server took it for every recipient;
- :class:`Refused`: it did not go (a 4xx or 5xx reply, a connection lost before DATA, or mail
  this server cannot carry); the code tells temporary (4xx) from permanent (5xx);
- :class:`Unknown`: the connection failed after the whole mail was handed over, so the server
  may have it or not; only the Sent folder can tell.

:class:`SmtpTransport` is the real one over :mod:`smtplib`; tests and the demo may bring
their own (:mod:`mailhelper.mail.memory`).
"""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

#: The code of a refusal no server said: the mail needs something this server lacks.
LOCAL_REFUSAL = 554


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope (RFC 5321 section 2.3.1): the return path, every recipient (Cc
    included), and whether it needs SMTPUTF8 (RFC 6531)."""

    sender: str
    recipients: tuple[str, ...]
    international: bool = False


@dataclass(frozen=True)
class Accepted:
    """The server accepted the mail for every recipient."""


@dataclass(frozen=True)
class Refused:
    """Nothing was delivered. ``code`` is the server's reply code (4xx: try again later;
    5xx: never), ``text`` its words. ``reason``, when set, is the whole sentence for the
    owner: the refusal came from this side (the server lacks what the mail needs), not in
    the server's words."""

    code: int
    text: str
    reason: str | None = None

    @property
    def temporary(self) -> bool:
        """Whether a later try may succeed (a 4xx reply, RFC 5321 4.2.1).

        >>> Refused(451, "try later").temporary, Refused(550, "no such user").temporary
        (True, False)
        """
        return 400 <= self.code < 500


@dataclass(frozen=True)
class Unknown:
    """The whole mail was handed over and no final reply came (RFC 1047): it may have gone."""

    reason: str


Outcome = Accepted | Refused | Unknown


class Transport(Protocol):
    """Moves bytes to a submission server; one connection is shared by a cycle's mail."""

    def open(self) -> None:
        """Make sure a connection is there; raises :class:`~mailhelper.model.errors.ConnectError`
        when the server cannot be reached (then nothing is attempted)."""

    def send(self, envelope: Envelope, raw: bytes) -> Outcome:
        """One mail transaction that reaches all of ``envelope.recipients`` or none."""

    def close(self) -> None:
        """End the connection politely, if there is one."""


class NeedsSmtpUtf8(Exception):
    """The mail needs SMTPUTF8 (RFC 6531: an envelope address with a non-ASCII local part)
    and the server does not offer it; nothing was sent."""


class OutcomeUnknown(Exception):
    """The connection failed after the whole mail was handed over (DATA sent, no final reply):
    the server may have accepted it or not (RFC 1047)."""


def transmit(
    smtp: smtplib.SMTP, sender: str, recipients: Sequence[str], raw: bytes,
    international: bool = False,
) -> None:
    """One SMTP mail transaction (RFC 5321 section 3.3) that reaches all ``recipients`` or none.

    smtplib's ``sendmail`` goes on to DATA when some recipients are refused and reports them
    afterwards: the mail would then reach the owner in Cc but not the counterpart, and a retry
    would reach the owner twice. Here any refused RCPT ends the transaction with RSET before
    DATA (section 4.1.1.5), and the refusal is raised.

    Raises :class:`smtplib.SMTPResponseException` (or its subclass
    ``SMTPRecipientsRefused``) when the server refused: nothing was delivered; an ``OSError``
    (``SMTPServerDisconnected``, timeouts) when the connection failed before DATA: nothing was
    delivered; :class:`OutcomeUnknown` when it failed during DATA; :class:`NeedsSmtpUtf8` when
    ``international`` mail meets a server without SMTPUTF8: nothing was sent.
    """
    options: list[str] = []
    smtp.ehlo_or_helo_if_needed()
    if international:
        if not smtp.has_extn("smtputf8"):
            # smtplib would raise SMTPNotSupportedError from mail(); say what it means here.
            raise NeedsSmtpUtf8(
                "an address in it has non-ASCII characters before the @, and the SMTP server "
                "does not offer SMTPUTF8 (RFC 6531), which such an address needs")
        options += ["SMTPUTF8", "BODY=8BITMIME"]
    if smtp.does_esmtp and smtp.has_extn("size"):
        options.append(f"SIZE={len(raw)}")
    code, text = smtp.mail(sender, options)
    if code != 250:
        _end_transaction(smtp, code)
        raise smtplib.SMTPSenderRefused(code, text, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, text = smtp.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, text)
            if code == 421:
                break
    if refused:
        _end_transaction(smtp, max(code for code, _ in refused.values()))
        raise smtplib.SMTPRecipientsRefused(refused)
    try:
        code, text = smtp.data(raw)
    except smtplib.SMTPDataError:
        _end_transaction(smtp, 0)  # refused at DATA itself, before the message went
        raise
    except OSError as exc:  # SMTPServerDisconnected is an OSError too
        raise OutcomeUnknown(f"connection lost during DATA: {exc or type(exc).__name__}") from exc
    if code != 250:
        _end_transaction(smtp, code)
        raise smtplib.SMTPDataError(code, text)


def _end_transaction(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: RSET, or close where the server is closing (421, RFC 5321 3.8)."""
    if code == 421:
        smtp.close()
        return
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class SmtpTransport:
    """A :class:`Transport` over one :mod:`smtplib` connection, opened by ``factory`` (the one
    place that connects and logs in, :mod:`mailhelper.mail.connect`) when first needed, and
    dropped when the server closes it or it fails, so the next mail opens a fresh one."""

    def __init__(self, factory: Callable[[], smtplib.SMTP]) -> None:
        self.factory = factory
        self._smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        self._connection()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self.factory()
        return self._smtp

    def send(self, envelope: Envelope, raw: bytes) -> Outcome:
        smtp = self._connection()
        try:
            transmit(smtp, envelope.sender, envelope.recipients, raw, envelope.international)
        except OutcomeUnknown as exc:
            self._drop()
            return Unknown(str(exc))
        except NeedsSmtpUtf8 as exc:
            return Refused(LOCAL_REFUSAL, "SMTPUTF8 not offered", reason=str(exc))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            code = max(codes) if any(c >= 500 for c in codes) else min(codes)
            if 421 in codes:
                self._drop()
            return Refused(code, _refusal_text(exc.recipients, code))
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                self._drop()
            return Refused(exc.smtp_code, _decode(exc.smtp_error))
        except OSError as exc:  # before DATA: the mail did not go
            self._drop()
            return Refused(451, f"connection lost: {exc or type(exc).__name__}")
        return Accepted()

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None

    def _drop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _refusal_text(recipients: dict[str, tuple[int, bytes]], code: int) -> str:
    for address, (each, text) in recipients.items():
        if each == code:
            return f"{address}: {_decode(text)}"
    return ""
