"""Render a sample digest (fixed clock, made-up people) and screenshot its HTML part with
headless Chromium, for the README: ``docs/digest-desktop.png`` and ``docs/digest-phone.png``
(390 px wide), plus ``docs/digest.txt``, the same digest's text part.

    .venv/bin/python scripts/digest_screenshot.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mailhelper.compose.render import Renderer, RenderJob
from mailhelper.decide.digest import build
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Ledger,
    PersonFigures,
    Thread,
    ThreadState,
)

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 14, 8, 0, tzinfo=LONDON)  # a Monday, digest time
SAM = Address("sam@example.com", "Sam Rivera")
PEOPLE = [Address("jane@example.org", "Jane Okafor"), Address("jose@example.org", "José Núñez"),
          Address("priya@example.net", "Dr. Priya Raman"), Address("bob@example.net", "Bob Lee"),
          Address("mei@example.com", "Mei Chen")]
SUBJECTS = ["Intro to Acme", "Read my abstract", "Q4 plan review", "Flat viewing",
            "Help with the move", "Conference talk feedback", "Reference letter",
            "Borrow the projector", "Coffee with your team lead", "Budget sheet check"]


def sample() -> tuple[list[Thread], dict[int, list[Action]]]:
    threads: list[Thread] = []
    history: dict[int, list[Action]] = {}
    for n in range(16):  # about two asks a week for eight weeks, most answered
        created = NOW - timedelta(days=3 + 3.5 * n, hours=n % 3)
        person = PEOPLE[n % len(PEOPLE)]
        answered = n % 4 != 1
        delay = timedelta(hours=(5, 30, 60, 120)[n % 4])
        answers = (Answer(person.email, created + delay, True),) if answered else ()
        state = ThreadState.DONE if answered and n > 3 else (
            ThreadState.ANSWERED if answered else ThreadState.OPEN if n < 6
            else ThreadState.EXPIRED)
        threads.append(Thread(
            id=n + 1, kind=Kind.ASK, state=state, subject=SUBJECTS[n % len(SUBJECTS)],
            owner=SAM, counterparts=(person,), created=created,
            root_message_id=f"a{n}@example.com", last_owner_activity=created,
            answers=answers, expected=(1 if n % 4 == 0 else None),
            closed_at=created + delay + timedelta(days=1) if state is ThreadState.DONE
            else None))
    threads.append(Thread(
        id=40, kind=Kind.OFFER, state=ThreadState.OPEN, subject="Help with the move",
        owner=SAM, counterparts=(PEOPLE[3],), created=NOW - timedelta(days=2),
        root_message_id="o1@example.net", last_owner_activity=NOW - timedelta(days=2)))
    threads.append(Thread(
        id=41, kind=Kind.OFFER, state=ThreadState.DECLINED, subject="Spare desk",
        owner=SAM, counterparts=(PEOPLE[4],), created=NOW - timedelta(days=20),
        root_message_id="o2@example.com", last_owner_activity=NOW - timedelta(days=20),
        closed_at=NOW - timedelta(days=18)))
    # Thread 1 (answered, thank-you drafted), thread 2 (silent, reminder drafted),
    # thread 5 (done, favour to return).
    history[1] = [Action("t1/thank_you_draft", ActionKind.THANK_YOU_DRAFT, NOW, 1, (SAM,),
                         {"people": threads[0].counterparts[0].email}, ActionStatus.SENT,
                         id=101, sent_at=NOW - timedelta(days=1))]
    history[2] = [Action("t2/follow_up/1", ActionKind.FOLLOW_UP, NOW, 2, (SAM,), {},
                         ActionStatus.SENT, id=102, sent_at=NOW - timedelta(days=1))]
    history[5] = [Action("t5/return_favor", ActionKind.RETURN_FAVOR, NOW + timedelta(days=5),
                         5, (SAM,), {}, id=105)]
    threads[2] = dataclasses.replace(threads[2], state=ThreadState.ANSWERED)
    # Notes to self: one that comes back on Thursday, one every Monday.
    for id, subject, repeat, due in (
            (50, "Renew the passport", None, NOW + timedelta(days=3, hours=1)),
            (51, "Water the office plants", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
             NOW + timedelta(hours=1))):
        created = NOW - timedelta(days=4)
        threads.append(Thread(
            id=id, kind=Kind.NOTE, state=ThreadState.OPEN, subject=subject, owner=SAM,
            counterparts=(), created=created, root_message_id=f"n{id}@example.com",
            last_owner_activity=created, repeat=repeat))
        history[id] = [Action(f"t{id}/note_reminder", ActionKind.NOTE_REMINDER, due, id, (SAM,),
                              {}, id=100 + id)]
    return threads, history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    settings = Settings(owners=(SAM,), assistant=Address("helper@example.com",
                                                         "Sam's assistant"), timezone=LONDON)
    threads, history = sample()
    ledger = Ledger(PersonFigures(None, asks_made=16, asks_answered=12,
                                  median_hours_to_answer=30.0, offers_received=2,
                                  thanks_sent=9, thanks_drafted=3, favours_returned=2))
    action = Action("digest/sam@example.com/20261214T080000Z", ActionKind.DIGEST, NOW,
                    recipients=(SAM,), data={"reason": "schedule"})
    job = RenderJob(action, None, NOW, open_threads=tuple(threads), ledger=ledger,
                    digest=build(threads, history, NOW, LONDON),
                    message_id="mh.4f1c2a9b7d3e5f60718293a4@example.com")
    parts = Renderer(settings).render_parts(job)
    args.out.mkdir(exist_ok=True)
    (args.out / "digest.txt").write_text(f"Subject: {parts.subject}\n\n{parts.text}")
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "digest.html"
        page.write_text(parts.html)
        for name, size in (("digest-desktop.png", "900,1560"), ("digest-phone.png", "390,2250")):
            subprocess.run(
                [args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 "--hide-scrollbars", f"--screenshot={(args.out / name).resolve()}",
                 f"--window-size={size}", page.as_uri()],
                check=True, capture_output=True, timeout=120)


if __name__ == "__main__":
    main()
