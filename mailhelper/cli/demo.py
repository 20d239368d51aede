"""``mailhelper demo``: the whole story on this machine, nothing configured, no network.

An embedded IMAP server and SMTP sink start on 127.0.0.1 (:mod:`mailhelper.cli.demo_servers`), a
temporary folder gets a real config file for them (``mailhelper.yaml``, read through the same
loader as any config), a password file and the state file, and the story is played through the
real code: mail is delivered to the assistant's IMAP inbox, each step is one ``poll --once``
cycle on a clock that jumps forward, and everything the assistant sends goes through SMTP.
Each mail the cast writes (``<--``) and each mail the assistant sent (``-->``) is printed as it
goes; then the status table and the ledger. With ``--keep`` the servers stay up (until Enter,
or with no input until SIGINT/SIGTERM) and the demo prints the ``status`` and ``poll``
commands, with the full path of this mailhelper and the story's clock, that work on that
config.
"""

from __future__ import annotations

import logging
import secrets as _random
import shlex
import signal
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TextIO, cast
from zoneinfo import ZoneInfo

import yaml

from mailhelper.cli.config import load_settings
from mailhelper.cli.demo_servers import DemoServers, ReceivedMail, demo_servers
from mailhelper.cli.status import ledger_line, status_table
from mailhelper.compose.render import Renderer, format_when
from mailhelper.compose.terminal import TerminalStream
from mailhelper.engine.daemon import Assistant
from mailhelper.mail.connect import open_imap, open_smtp
from mailhelper.model.values import Address
from mailhelper.state.store import Store

ZONE = ZoneInfo("Europe/London")
SAM = Address("sam@example.org", "Sam Rivera")
HELPER = Address("helper@example.org", "Sam's assistant")
JANE = Address("jane@example.net", "Jane Okafor")
BOB = Address("bob@example.net", "Bob Lindqvist")
CARLOS = Address("carlos@example.com", "Carlos Mendes")
#: The story starts on a Monday morning.
START = datetime(2026, 12, 7, 9, 0, tzinfo=ZONE)
#: How many non-empty lines of each mail's text the demo prints.
SHOWN_LINES = 5
#: The digest is printed whole, its text chart of asks made and answered included.
DIGEST_LINES = 60


def write_config(servers: DemoServers, workdir: Path) -> Path:
    """A config file for the demo servers in ``workdir``, with its password file; the state
    file goes beside it. Returns the config's path (``mailhelper --config PATH`` reads it)."""
    password_file = workdir / "password"
    password_file.write_text(servers.imap.users[HELPER.email])
    password_file.chmod(0o600)
    config = {
        "timezone": str(ZONE),
        "owners": [{"name": SAM.name, "email": SAM.email}],
        "assistant": {"name": HELPER.name, "email": HELPER.email},
        "imap": {"host": servers.imap_host, "port": servers.imap_port, "security": "none",
                 "username": HELPER.email, "password_file": str(password_file),
                 "sent_folder": "Sent", "timeout": "10s"},
        "smtp": {"host": servers.smtp_host, "port": servers.smtp_port, "security": "none",
                 "timeout": "10s"},
        "state": str(workdir / "state.db"),
        # A command that worked shows its effect in the story; only failures are answered.
        "confirm_commands": False,
    }
    path = workdir / "mailhelper.yaml"
    path.write_text("# The mailhelper demo's servers on this machine; they stop with the "
                    "demo.\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    path.chmod(0o600)
    return path


class Story:
    """The demo's cast and clock around one running assistant."""

    def __init__(self, servers: DemoServers, config: Path, out: TextIO) -> None:
        self.servers = servers
        self.out = out
        self.now = START
        self.shown = 0
        self.config = config
        self.settings = load_settings(config, {})
        self.store = Store.open(self.settings.state, "example.org")
        self.assistant = Assistant(
            self.settings, self.store, Renderer(self.settings),
            lambda: open_imap(self.settings.imap), lambda: open_smtp(self.settings.smtp),
        )

    # -- the cast writes ----------------------------------------------------------------------
    def deliver(self, message: EmailMessage) -> str:
        """Put ``message`` into the assistant's inbox, as its mail server would."""
        message["Date"] = format_datetime(self.now)
        message_id = make_msgid(domain=message["From"].addresses[0].domain)
        message["Message-ID"] = message_id
        self.servers.imap.append(HELPER.email, bytes(message))
        return message_id

    def write(self, message: EmailMessage, what: str, lines: int = 2) -> str:
        """Someone in the story sends ``message`` to the assistant's inbox: say ``what``
        happens, show the subject and the first ``lines`` lines, then deliver it."""
        self.out.write(f"   <-- {what}\n       | Subject: {message['Subject']}\n")
        self.show_text(message, lines)
        return self.deliver(message)

    def reply_to_assistant(self, sent: EmailMessage, command: str) -> None:
        """Sam answers one of the assistant's mails with a one-word command."""
        reply = _message(SAM, [HELPER], "Re: " + str(sent["Subject"]), f"{command}\n\n"
                         + _quoted(sent))
        reply["In-Reply-To"] = sent["Message-ID"]
        reply["References"] = sent["Message-ID"]
        self.write(reply, f"Sam answers the assistant's mail with \"{command}\"", lines=1)

    # -- the clock and the assistant --------------------------------------------------------
    def at(self, moment: datetime, what: str) -> None:
        self.now = moment
        self.out.write(f"\n== {format_when(moment)} — {what}\n")

    def say(self, line: str) -> None:
        self.out.write(f"   {line}\n")

    def poll(self, lines: int = SHOWN_LINES) -> list[EmailMessage]:
        """One cycle, as ``mailhelper poll --once --now``; print and return what was sent,
        each mail's first ``lines`` non-empty lines."""
        self.assistant.poll_once(self.now)
        new = self.servers.smtp.received()[self.shown:]
        self.shown += len(new)
        for mail in new:
            self.show(mail, lines)
        if not new:
            self.say("(the assistant sent nothing)")
        return [m.message() for m in new]

    def show(self, mail: ReceivedMail, lines: int = SHOWN_LINES) -> None:
        """A mail the assistant sent: its headers and the start of its text."""
        message = mail.message()
        self.out.write(f"   --> From: {message['From']}\n")
        self.out.write(f"       To: {message['To']}\n")
        if message["Cc"]:
            self.out.write(f"       Cc: {message['Cc']}\n")
        self.out.write(f"       Subject: {message['Subject']}\n")
        self.show_text(message, lines)

    def show_text(self, message: EmailMessage, lines: int) -> None:
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        shown = 0
        # The signature ends what a person reads; the command list after it is in every mail.
        text = text.split("\n— ", 1)[0]
        for line in (line for line in text.splitlines() if line.strip()):
            for part in textwrap.wrap(line, 84, subsequent_indent="  ") or [""]:
                if shown == lines:
                    self.out.write("       | ...\n")
                    return
                self.out.write(f"       | {part}\n")
                shown += 1


def _message(sender: Address, to: list[Address], subject: str, text: str,
             cc: list[Address] | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender.formatted()
    message["To"] = ", ".join(a.formatted() for a in to)
    if cc:
        message["Cc"] = ", ".join(a.formatted() for a in cc)
    message["Subject"] = subject
    message.set_content(text)
    return message


def _quoted(sent: EmailMessage) -> str:
    body = sent.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    return "\n".join("> " + line for line in text.splitlines()[:6])


def _find(sent: list[EmailMessage], to: str, words: str) -> EmailMessage:
    for message in sent:
        if to in str(message["To"]).lower() and words.lower() in str(message["Subject"]).lower():
            return message
    raise RuntimeError(f"the demo expected a mail to {to} about {words!r}, and none was sent")


def play(story: Story) -> None:
    """The story: an ask to two people, an offer, a reply, commands, a week fast-forwarded,
    in eight mails from the assistant (``confirm_commands: false``: a command that worked is
    not answered; what it did shows in the next mail).

    Each step polls at the moment something falls due, so every mail shows up under the
    heading that announces it.
    """
    story.at(START, "Sam asks Jane and Carlos for an intro, with the assistant in Cc")
    ask = _message(SAM, [JANE, CARLOS], "Intro to someone at Acme?",
                   "Hi Jane, hi Carlos,\n\nWould one of you introduce me to someone on the Acme "
                   "data team? I'd like to ask them about their pipeline.\n\nThanks,\nSam",
                   cc=[HELPER])
    ask_id = story.write(ask, "Sam writes to Jane and Carlos, Cc the assistant")
    story.poll()

    story.at(START + timedelta(minutes=20), "Sam forwards Bob's offer to helper+offer@")
    offer = _message(SAM, [Address("helper+offer@example.org")], "Fwd: Happy to help with the move",
                     "Could you keep me honest on this one?\n\n"
                     "---------- Forwarded message ---------\n"
                     f"From: {BOB.name} <{BOB.email}>\n"
                     "Date: Sun, 6 Dec 2026 at 18:12\n"
                     "Subject: Happy to help with the move\n"
                     f"To: {SAM.name} <{SAM.email}>\n\n"
                     "Sam, if you need a hand with the move, just say what would help.\n\nBob\n")
    story.write(offer, "Sam forwards Bob's mail to helper+offer@example.org", lines=1)
    story.poll()

    story.at(START + timedelta(days=1, minutes=30), "a day later: the offer reminder is due")
    sent = story.poll()
    story.reply_to_assistant(_find(sent, SAM.email, "bob"), "decline")
    story.now += timedelta(minutes=5)
    story.poll()
    declined = story.now

    story.at(declined + timedelta(hours=2), "two hours after the decline: the thank-you draft "
             "for Bob")
    story.poll()

    story.at(START + timedelta(days=2, hours=2), "day 2: Jane replies to all, so the reminders "
             "about her stop")
    reply = _message(JANE, [SAM], "Re: Intro to someone at Acme?",
                     "Sam, happy to. I've written to Priya on the data team; expect a note "
                     "from her this week.\n\nJane\n\n> Would one of you introduce me to someone...",
                     cc=[HELPER])
    reply["In-Reply-To"] = ask_id
    reply["References"] = ask_id
    story.write(reply, "Jane replies to all: Sam, and the assistant in Cc")
    story.poll()

    story.at(START + timedelta(days=2, hours=4), "two hours later: the thank-you draft for Jane")
    sent = story.poll()
    story.reply_to_assistant(_find(sent, SAM.email, "acme"), "send")
    story.now += timedelta(minutes=5)
    story.poll()

    story.at(START + timedelta(days=3), "Thursday: Carlos has not answered yet")
    story.poll()

    story.at(datetime(2026, 12, 14, 8, 0, tzinfo=ZONE), "a week on: Monday's digest, in full")
    story.poll(lines=DIGEST_LINES)


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Only warnings from mailhelper while the story runs; the level is put back after, so a
    process that goes on (a test session) logs as before."""
    logger = logging.getLogger("mailhelper")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_demo(keep: bool = False, out: TextIO = sys.stdout,
             wait: Callable[[], None] | None = None) -> int:
    """Play the demo; with ``keep``, leave the servers up until ``wait`` returns (default
    :func:`wait_for_stop`)."""
    out = cast(TextIO, TerminalStream(out))  # mail words reach the terminal through here
    password = _random.token_urlsafe(12)
    with _quiet_logs(), tempfile.TemporaryDirectory(prefix="mailhelper-demo-") as tmp, \
            demo_servers({HELPER.email: password}) as servers:
        config = write_config(servers, Path(tmp))
        out.write(f"mailhelper demo: IMAP on {servers.imap_host}:{servers.imap_port}, SMTP sink "
                  f"on {servers.smtp_host}:{servers.smtp_port}, config and state in {tmp}\n"
                  f"Sam ({SAM.email}) is the owner; the assistant is {HELPER.email}.\n"
                  "<-- is mail the people in the story write; --> is mail the assistant "
                  "sends.\n")
        story = Story(servers, config, out)
        try:
            play(story)
            out.write("\n== mailhelper status\n")
            out.write(status_table(story.store, story.settings) + "\n")
            out.write(_ledger(story.store))
            out.write(f"\nThe assistant sent {len(servers.smtp.received())} mails: each is above, "
                      "its first lines (the digest whole), and each is whole in its Sent "
                      "folder.\n"
                      "The digest's HTML part draws its chart in coloured table cells: run the "
                      "demo with --keep and open it from the Sent folder in a mail client.\n")
            if keep:
                path = shlex.quote(str(config))
                program = program_words()
                last = story.now.isoformat()
                later = (story.now + timedelta(days=7)).isoformat()
                out.write(
                    f"\nThe servers stay up, with a config for them in {config}. Try:\n"
                    f"  {program} status --config {path}\n"
                    f"  {program} poll --once --now {last} --config {path}\n"
                    f"  {program} poll --once --dry-run --now {later} --config {path}\n"
                    "(the story's clock: the first poll runs at its last moment, the second "
                    "shows what would go out a week later, sending nothing). Or point a mail "
                    "client at them:\n"
                    f"  IMAP {servers.imap_host} port {servers.imap_port}, no TLS, user "
                    f"{HELPER.email}, password {password}\n"
                    f"  SMTP {servers.smtp_host} port {servers.smtp_port}, no TLS, no login\n"
                    "Press Enter to stop them (with no terminal to read, they run until "
                    "Ctrl-C or SIGTERM).\n")
                out.flush()
                (wait or wait_for_stop)()
        finally:
            story.store.close()
    return 0


def program_words() -> str:
    """How to run this same mailhelper from a shell, for the commands ``--keep`` prints: the
    full path of the script that started the demo (``.venv/bin/mailhelper``, seldom on PATH
    after ``bash scripts/demo``), else this interpreter with ``-m mailhelper.cli``."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "mailhelper" and script.is_file():
        return shlex.quote(str(script.resolve()))
    return f"{shlex.quote(sys.executable)} -m mailhelper.cli"


class _Stopped(Exception):
    """SIGTERM while the demo's servers wait."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def wait_for_stop() -> None:
    """Until Enter; on end of input (``</dev/null``, no terminal) until SIGINT or SIGTERM,
    so ``--keep`` keeps serving however it was started."""
    if sys.stdin is not None and sys.stdin.readline():
        return
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        while True:
            signal.pause()
    except (_Stopped, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ledger(store: Store) -> str:
    ledger = store.ledger()
    lines = ["\n== the help ledger"]
    for figures in (*ledger.people, ledger.overall):
        who = figures.person.formatted() if figures.person else "everyone"
        lines.append(f"   {who:36} {ledger_line(figures)}")
    return "\n".join(lines) + "\n"
