"""The validated configuration, as frozen values. :mod:`mailhelper.cli.config` builds these from
YAML.

Defaults here are the ones SPEC.md gives; a test or the demo can build a :class:`Settings` by
hand with only the fields it cares about.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from mailhelper.model.addresses import fold
from mailhelper.model.duration import Duration
from mailhelper.model.values import Address

Security = Literal["ssl", "starttls", "none"]


def _d(text: str) -> Duration:
    return Duration.parse(text)


#: The longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes); a longer one it cuts silently.
_PG_NAME_MAX = 63


def assistant_schema(email: str) -> str:
    """The PostgreSQL schema that holds this assistant's state in a shared database: its
    address folded (:func:`~mailhelper.model.addresses.fold`: ASCII lower-cased, a
    non-ASCII domain in IDNA form), every character but ``a-z`` and ``0-9`` as ``_``, after
    ``mailhelper_``; a name longer than PostgreSQL keeps (63 bytes) is cut and ends in a
    hash of the whole address, so two long addresses still get two names.

        >>> assistant_schema("Helper@Example.org")
        'mailhelper_helper_example_org'
        >>> name = assistant_schema("a-very-long-assistant-name-for-the-team@" + "x" * 40 + ".org")
        >>> len(name), name[:40]
        (63, 'mailhelper_a_very_long_assistant_name_fo')
    """
    address = fold(email.strip())
    name = "mailhelper_" + re.sub(r"[^a-z0-9]", "_", address)
    if len(name) <= _PG_NAME_MAX:
        return name
    digest = hashlib.sha256(address.encode()).hexdigest()[:8]
    return f"{name[:_PG_NAME_MAX - 9]}_{digest}"


@dataclass(frozen=True)
class Secret:
    """Where a password comes from. The value itself is read only when logging in
    (:func:`mailhelper.mail.secrets.resolve`), so it never sits in the settings or a traceback."""

    env: str | None = None
    file: Path | None = None
    cmd: str | None = None

    def __repr__(self) -> str:
        where = self.env or self.file or self.cmd or "none"
        return f"Secret(from {where!s})"

    @property
    def configured(self) -> bool:
        return bool(self.env or self.file or self.cmd)


@dataclass(frozen=True)
class ImapSettings:
    host: str = "localhost"
    port: int = 993
    security: Security = "ssl"
    username: str | None = None
    password: Secret = field(default_factory=Secret)
    auth: Literal["password", "oauth2"] = "password"
    oauth2_token_cmd: str | None = None
    folder: str = "INBOX"
    error_folder: str = "mailhelper/errors"
    sent_folder: str | None = None
    processed_folder: str | None = None
    ca_file: Path | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class WatchSettings:
    """``owners[].watch``: the owner's own mailbox, read read-only (:mod:`mailhelper.engine.watch`).

    ``server`` has the meaning of ``imap:`` (only its connection keys are used); ``folders``
    empty means INBOX plus the folder flagged ``\\Sent`` (RFC 6154), else ``Sent``."""

    owner: str
    server: ImapSettings
    folders: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: Secret = field(default_factory=Secret)
    auth: Literal["password", "oauth2"] = "password"
    oauth2_token_cmd: str | None = None
    ca_file: Path | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class AskSchedule:
    follow_up: tuple[Duration, ...] = (_d("3 days"), _d("7 days"))
    give_up_after: Duration = _d("14 days")
    nudge_counterpart: tuple[Duration, ...] = ()


@dataclass(frozen=True)
class OfferSchedule:
    follow_up: tuple[Duration, ...] = (_d("1 day"), _d("4 days"))


@dataclass(frozen=True)
class NoteSchedule:
    """``schedules.note``: when a note to self with no time of its own comes back."""

    after: Duration = _d("1 day")


@dataclass(frozen=True)
class ThankYouSchedule:
    after: Duration = _d("2 hours")
    mode: Literal["draft", "send"] = "draft"


@dataclass(frozen=True)
class ReturnFavorSchedule:
    after: Duration = _d("30 days")


@dataclass(frozen=True)
class DigestSchedule:
    rrule: str | None = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"


@dataclass(frozen=True)
class Schedules:
    ask: AskSchedule = field(default_factory=AskSchedule)
    offer: OfferSchedule = field(default_factory=OfferSchedule)
    note: NoteSchedule = field(default_factory=NoteSchedule)
    thank_you: ThankYouSchedule = field(default_factory=ThankYouSchedule)
    return_favor: ReturnFavorSchedule = field(default_factory=ReturnFavorSchedule)
    digest: DigestSchedule = field(default_factory=DigestSchedule)


@dataclass(frozen=True)
class QuietHours:
    """A daily window in which nothing is sent, e.g. 20:00-08:00 (it may cross midnight)."""

    start: time
    end: time


@dataclass(frozen=True)
class SendingSettings:
    business_days: bool = True
    quiet_hours: QuietHours | None = QuietHours(time(20, 0), time(8, 0))
    max_per_recipient_per_day: int = 3
    max_per_hour: int = 30


@dataclass(frozen=True)
class LimitSettings:
    """Bounds on the work one message can cost.

    ``message_seconds``: the longest the reading of one message (header check, parsing,
    classifying) may take; past it the message goes to ``imap.error_folder`` with that reason
    and is never read again.
    """

    message_seconds: float = 10


@dataclass(frozen=True)
class Tags:
    ask: tuple[str, ...] = ("ask",)
    offer: tuple[str, ...] = ("offer",)


@dataclass(frozen=True)
class OwnerTime:
    """An owner's own time zone and default time of day, where they differ from the top-level
    ``timezone`` and ``default_time`` (``owners[].timezone``, ``owners[].default_time``)."""

    email: str
    timezone: ZoneInfo | None = None
    default_time: time | None = None


@dataclass(frozen=True)
class Settings:
    owners: tuple[Address, ...]
    assistant: Address
    timezone: ZoneInfo = ZoneInfo("UTC")
    imap: ImapSettings = field(default_factory=ImapSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    state: Path = Path("~/.local/state/mailhelper/state.db").expanduser()
    #: The PostgreSQL database holding the state instead of the file ``state`` (``state:
    #: postgresql://...`` in the config), and where its password comes from (None: libpq's
    #: own ways, ``PGPASSWORD`` or ``~/.pgpass``).
    state_url: str | None = None
    state_password: Secret | None = None
    poll_interval: Duration = _d("60s")
    #: With a PostgreSQL state: how long a process's claim on the mailbox lasts without a
    #: renewal (:mod:`mailhelper.state.lease`); another process takes it over after that.
    lease: Duration = _d("30s")
    confirm: bool = True
    #: A one-line answer to each command that did something; false: silence (a command
    #: that failed, or that nobody understood, is answered either way).
    confirm_commands: bool = True
    tags: Tags = field(default_factory=Tags)
    schedules: Schedules = field(default_factory=Schedules)
    sending: SendingSettings = field(default_factory=SendingSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    send_as: Literal["assistant", "owner"] = "assistant"
    require_auth: bool = False
    trusted_authserv_id: str | None = None
    templates_dir: Path | None = None
    source: Path | None = None
    #: The time of day for a day given without one ("monday", "dec 3", "next week").
    default_time: time = time(9)
    #: How to read a numeric date like 3/4: None refuses it as ambiguous.
    date_order: Literal["dmy", "mdy"] | None = None
    owner_times: tuple[OwnerTime, ...] = ()
    #: Each owner's watched mailbox, for the owners who configured one.
    watches: tuple[WatchSettings, ...] = ()
    #: Where the daemon keeps the iCalendar of what is planned (``status --ics``); None: off.
    calendar_file: Path | None = None

    @property
    def state_location(self) -> Path | str:
        """What :meth:`mailhelper.state.store.Store.open` opens: the URL, or the file's path."""
        return self.state_url or self.state

    @property
    def state_schema(self) -> str | None:
        """The schema of this assistant's state in the PostgreSQL database (see
        :func:`assistant_schema`); None with an SQLite file (a file is one assistant's)."""
        return assistant_schema(self.assistant.email) if self.state_url else None

    def owner_for(self, email: str) -> Address | None:
        """The owner with this bare address (ASCII case-insensitive), or None.

            >>> s = Settings(owners=(Address("sam@example.com", "Sam"),),
            ...              assistant=Address("helper@example.com"))
            >>> s.owner_for("SAM@Example.COM"), s.owner_for("jane@example.org")
            (Address(email='sam@example.com', name='Sam'), None)
        """
        email = fold(email)
        for owner in self.owners:
            if fold(owner.email) == email:  # the config keeps an IDN domain as written
                return owner
        return None

    def zone_for(self, email: str | None) -> ZoneInfo:
        """The time zone an owner's words and threads are read in: theirs, else ``timezone``."""
        found = self._owner_time(email)
        return found.timezone if found and found.timezone else self.timezone

    def default_time_for(self, email: str | None) -> time:
        """The owner's ``default_time``, else the top-level one."""
        found = self._owner_time(email)
        return found.default_time if found and found.default_time else self.default_time

    def _owner_time(self, email: str | None) -> OwnerTime | None:
        if not email:
            return None
        folded = fold(email)
        return next((o for o in self.owner_times if fold(o.email) == folded), None)
