"""``mailhelper demo``: the whole story on this machine, nothing configured, no network.

An embedded IMAP server and SMTP sink start on 127.0.0.1 (:mod:`mailhelper.demo_servers`), a
temporary state file and a config for a demo owner are made, and the story is played through
the real code: mail is delivered to the assistant's IMAP inbox, each step is one
``poll --once`` cycle on a clock that jumps forward, and everything the assistant sends goes
through SMTP. Each mail it sent is printed as it goes; then the status table and the ledger.
"""

from __future__ import annotations

import logging
import secrets as _random
import sys
import tempfile
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from mailhelper.connect import open_imap, open_smtp
from mailhelper.daemon import Assistant
from mailhelper.demo_servers import DemoServers, ReceivedMail, demo_servers
from mailhelper.models import Address
from mailhelper.render import Renderer
from mailhelper.settings import ImapSettings, Secret, Settings, SmtpSettings
from mailhelper.status import status_table
from mailhelper.store import Store

ZONE = ZoneInfo("Europe/London")
SAM = Address("sam@example.org", "Sam Rivera")
HELPER = Address("helper@example.org", "Sam's assistant")
JANE = Address("jane@example.net", "Jane Okafor")
BOB = Address("bob@example.net", "Bob Lindqvist")
CARLOS = Address("carlos@example.com", "Carlos Mendes")
#: The story starts on a Monday morning.
START = datetime(2026, 12, 7, 9, 0, tzinfo=ZONE)


class Story:
    """The demo's cast and clock around one running assistant."""

    def __init__(self, servers: DemoServers, workdir: Path, out: TextIO) -> None:
        self.servers = servers
        self.out = out
        self.now = START
        self.shown = 0
        password_file = workdir / "password"
        password_file.write_text(servers.imap.users[HELPER.email])
        password_file.chmod(0o600)
        self.settings = Settings(
            owners=(SAM,),
            assistant=HELPER,
            timezone=ZONE,
            imap=ImapSettings(host=servers.imap_host, port=servers.imap_port, security="none",
                              username=HELPER.email, password=Secret(file=password_file),
                              sent_folder="Sent", timeout=10.0),
            smtp=SmtpSettings(host=servers.smtp_host, port=servers.smtp_port, security="none",
                              timeout=10.0),
            state=workdir / "state.db",
        )
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

    def reply_to_assistant(self, sent: EmailMessage, command: str) -> None:
        """Sam answers one of the assistant's mails with a one-word command."""
        reply = _message(SAM, [HELPER], "Re: " + str(sent["Subject"]), f"{command}\n\n"
                         + _quoted(sent))
        reply["In-Reply-To"] = sent["Message-ID"]
        reply["References"] = sent["Message-ID"]
        self.say(f"Sam replies \"{command}\" to \"{sent['Subject']}\"")
        self.deliver(reply)

    # -- the clock and the assistant --------------------------------------------------------
    def at(self, moment: datetime, what: str) -> None:
        self.now = moment
        self.out.write(f"\n== {moment:%a %d %b %H:%M} — {what}\n")

    def say(self, line: str) -> None:
        self.out.write(f"   {line}\n")

    def poll(self) -> list[EmailMessage]:
        """One cycle, as ``mailhelper poll --once --now``; print and return what was sent."""
        self.assistant.poll_once(self.now)
        new = self.servers.smtp.received()[self.shown:]
        self.shown += len(new)
        for mail in new:
            self.show(mail)
        if not new:
            self.say("(the assistant sent nothing)")
        return [m.message() for m in new]

    def show(self, mail: ReceivedMail) -> None:
        message = mail.message()
        self.out.write(f"   --> From: {message['From']}\n")
        self.out.write(f"       To: {message['To']}\n")
        if message["Cc"]:
            self.out.write(f"       Cc: {message['Cc']}\n")
        self.out.write(f"       Subject: {message['Subject']}\n")
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        shown = 0
        for line in (line for line in text.splitlines() if line.strip()):
            for part in textwrap.wrap(line, 84, subsequent_indent="  ") or [""]:
                if shown == 5:
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
    """The story: an ask, an offer, a reply, commands, a week fast-forwarded."""
    story.at(START, "Sam asks Jane for an intro, with the assistant in Cc")
    ask = _message(SAM, [JANE], "Intro to someone at Acme?",
                   "Hi Jane,\n\nWould you introduce me to someone on the Acme data team? "
                   "I'd like to ask them about their pipeline.\n\nThanks,\nSam", cc=[HELPER])
    ask_id = story.deliver(ask)
    story.poll()

    story.at(START + timedelta(minutes=10), "Sam asks Carlos to review a talk abstract")
    story.deliver(_message(SAM, [CARLOS], "Would you read my talk abstract?",
                           "Carlos, could you read the abstract below and tell me if it's clear?"
                           "\n\nSam", cc=[HELPER]))
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
    story.deliver(offer)
    story.poll()

    story.at(START + timedelta(days=1, minutes=30), "a day later: the offer reminder is due")
    sent = story.poll()
    story.reply_to_assistant(_find(sent, SAM.email, "bob"), "decline")
    story.now += timedelta(minutes=5)
    story.poll()

    story.at(START + timedelta(days=2, hours=2), "day 2: Jane replies to all")
    reply = _message(JANE, [SAM], "Re: Intro to someone at Acme?",
                     "Sam, happy to. I've written to Priya on the data team; expect a note "
                     "from her this week.\n\nJane\n\n> Would you introduce me to someone...",
                     cc=[HELPER])
    reply["In-Reply-To"] = ask_id
    reply["References"] = ask_id
    story.deliver(reply)
    story.poll()

    story.at(START + timedelta(days=2, hours=4, minutes=5), "two hours later: thank-you drafts")
    sent = story.poll()
    draft = _find(sent, SAM.email, "acme")
    story.reply_to_assistant(draft, "send")
    story.now += timedelta(minutes=5)
    sent = story.poll()
    story.reply_to_assistant(draft, "done")
    story.now += timedelta(minutes=5)
    story.poll()

    story.at(START + timedelta(days=3, hours=1), "Thursday: Carlos has not answered yet")
    story.poll()

    story.at(START + timedelta(days=7), "a week on: Monday's digest")
    story.poll()


def run_demo(keep: bool = False, out: TextIO = sys.stdout,
             wait: Callable[[], None] | None = None) -> int:
    """Play the demo; with ``keep``, leave the servers up until Enter (or ``wait``) returns."""
    logging.getLogger("mailhelper").setLevel(logging.WARNING)
    password = _random.token_urlsafe(12)
    with tempfile.TemporaryDirectory(prefix="mailhelper-demo-") as tmp, \
            demo_servers({HELPER.email: password}) as servers:
        out.write(f"mailhelper demo: IMAP on {servers.imap_host}:{servers.imap_port}, SMTP sink "
                  f"on {servers.smtp_host}:{servers.smtp_port}, state in {tmp}\n"
                  f"Sam ({SAM.email}) is the owner; the assistant is {HELPER.email}.\n")
        story = Story(servers, Path(tmp), out)
        try:
            play(story)
            out.write("\n== mailhelper status\n")
            out.write(status_table(story.store, story.settings) + "\n")
            out.write(_ledger(story.store))
            out.write(f"\nThe assistant sent {len(servers.smtp.received())} mails; every one is "
                      "above, and each is also in its Sent folder.\n")
            if keep:
                out.write(
                    "\nThe servers stay up. Point a mail client at them:\n"
                    f"  IMAP {servers.imap_host} port {servers.imap_port}, no TLS, user "
                    f"{HELPER.email}, password {password}\n"
                    f"  SMTP {servers.smtp_host} port {servers.smtp_port}, no TLS, no login\n"
                    f"  state: {story.settings.state} (mailhelper status reads it)\n"
                    "Press Enter to stop them.\n")
                out.flush()
                (wait or (lambda: sys.stdin.readline() and None))()
        finally:
            story.store.close()
    return 0


def _ledger(store: Store) -> str:
    ledger = store.ledger()
    lines = ["\n== the help ledger"]
    for figures in (*ledger.people, ledger.overall):
        who = figures.person.formatted() if figures.person else "everyone"
        median = ("-" if figures.median_hours_to_answer is None
                  else f"{figures.median_hours_to_answer:g} h")
        lines.append(f"   {who:36} asks {figures.asks_made} (answered {figures.asks_answered}, "
                     f"median {median}), offers {figures.offers_received}, thanks "
                     f"{figures.thanks_sent}, favours returned {figures.favours_returned}")
    return "\n".join(lines) + "\n"
