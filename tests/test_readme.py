"""README "What it writes" shows real mail: the receipt and the reminder are rendered here from
the README's own story and must appear in it word for word, and the digest's text is
``docs/digest.txt`` as ``scripts/digest_screenshot.py`` made it (with the screenshots). When a
template's words change, run this file as a script to print the fresh examples:
``.venv/bin/python -m tests.test_readme``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mailhelper.compose.render import Renderer, RenderJob
from mailhelper.model.values import Action, ActionKind, Address, Answer, Kind, Thread, ThreadState
from tests.test_render import SAM, T0, settings

ROOT = Path(__file__).resolve().parent.parent
JOSE = Address("jose@example.org", "José Núñez")
JANE = Address("jane@example.org", "Okafor, Jane")
SUBJECT = "Q4 plan before Thursday?"
#: The ask as the assistant keeps it: greeting and sign-off already dropped.
ASK = "Could you both look over the Q4 plan before Thursday? The budget part matters most."


def thread(**changes: object) -> Thread:
    base = Thread(id=7, kind=Kind.ASK, state=ThreadState.OPEN, subject=SUBJECT, owner=SAM,
                  counterparts=(JOSE, JANE), created=T0, root_message_id="q4@mail.example.com",
                  last_owner_activity=T0, excerpt=ASK)
    return base.__class__(**{**base.__dict__, **changes})


def receipt() -> str:
    action = Action("r/7", ActionKind.RECEIPT, T0, 7, (SAM,), {
        "kind": "ask", "next_kind": "follow_up", "next_due": (T0 + timedelta(days=3)).isoformat(),
        "counterparts": f"{JOSE.formatted()}, {JANE.formatted()}"})
    return _shown(RenderJob(action, thread(), T0))


def reminder() -> str:
    """Reminder 2, a week on: José has answered, a follow-up went to Jane on Thursday."""
    now = T0 + timedelta(days=7)
    nudged = T0 + timedelta(days=3)
    answered = thread(answers=(Answer(JOSE.email, T0 + timedelta(days=1), True, "Will do."),))
    action = Action("f/7/2", ActionKind.FOLLOW_UP, now, 7, (SAM,), {
        "number": "2", "of": "2", "nudged": nudged.isoformat()})
    return _shown(RenderJob(action, answered, now), until="Here's a draft:")


def _shown(job: RenderJob, until: str = "") -> str:
    parts = Renderer(settings()).render_parts(job)
    text = parts.text.rstrip("\n")
    if until:
        text = text[: text.index(until) + len(until)] + "\n..."
    return f"Subject: {parts.subject}\n\n{text}"


def test_the_readme_shows_what_the_code_writes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for example in (receipt(), reminder()):
        assert f"```text\n{example}\n```" in readme, example
    digest = (ROOT / "docs" / "digest.txt").read_text(encoding="utf-8").rstrip("\n")
    assert f"```\n{digest}\n```" in readme, "regenerate with scripts/digest_screenshot.py"


if __name__ == "__main__":
    print(receipt(), reminder(), sep="\n\n")
