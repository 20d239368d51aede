"""One definition of thanks due and favours due (mailhelper/decide/owed.py): the status table, the
digest's numbered sections and the digest mail's lists agree on a fixed set of threads.

The render part fails on the code before owed.py: without the lists, the digest mail took
every answered ask as thanks due (also one whose thank-you draft had gone) and every thread
done in the last 90 days as a favour due (also one whose reminder had gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailhelper.compose.render import Renderer, RenderJob
from mailhelper.decide import owed
from mailhelper.decide.digest import build
from mailhelper.engine import agenda
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    Thread,
    ThreadState,
)
from mailhelper.state.store import Store

SAM = Address("sam@example.com", "Sam Rivera")
NOW = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=14)
P, S = ActionStatus.PENDING, ActionStatus.SENT


def thread(tid: int, kind: Kind, state: ThreadState, *, answered: bool = False,
           closed: bool = False) -> Thread:
    created = T0 + timedelta(days=tid)
    return Thread(
        id=tid, kind=kind, state=state, subject=f"Thread {tid}", owner=SAM,
        counterparts=(Address(f"p{tid}@example.org", f"Person {tid}"),), created=created,
        root_message_id=f"root-{tid}@example.com", last_owner_activity=created,
        answered_at=created + timedelta(hours=5) if answered else None,
        closed_at=created + timedelta(days=1) if closed else None,
    )


ASK, OFFER, NOTE = Kind.ASK, Kind.OFFER, Kind.NOTE
THREADS = (
    thread(1, ASK, ThreadState.OPEN),
    thread(2, ASK, ThreadState.ANSWERED, answered=True),  # thank-you draft pending: thanks due
    thread(3, ASK, ThreadState.ANSWERED, answered=True),  # its draft went: not due
    thread(4, ASK, ThreadState.DONE, answered=True, closed=True),  # favour pending: due
    thread(5, ASK, ThreadState.DONE, answered=True, closed=True),  # reminder went: not due
    thread(6, OFFER, ThreadState.DECLINED, closed=True),  # thank-you to them pending: due
    thread(7, OFFER, ThreadState.DECLINED, closed=True),  # thanked: not due
    thread(8, OFFER, ThreadState.DONE, closed=True),  # thanks and favour both pending
    thread(9, NOTE, ThreadState.OPEN),
    thread(10, ASK, ThreadState.CANCELLED, answered=True, closed=True),  # cancelled draft
)
#: thread id -> (kind, status) of its actions
ACTIONS: dict[int, tuple[tuple[ActionKind, ActionStatus], ...]] = {
    1: ((ActionKind.FOLLOW_UP, P),),
    2: ((ActionKind.THANK_YOU_DRAFT, P),),
    3: ((ActionKind.THANK_YOU_DRAFT, S),),
    4: ((ActionKind.THANK_YOU, S), (ActionKind.RETURN_FAVOR, P)),
    5: ((ActionKind.THANK_YOU_DRAFT, S), (ActionKind.RETURN_FAVOR, S)),
    6: ((ActionKind.THANK_YOU, P),),
    7: ((ActionKind.THANK_YOU, S),),
    8: ((ActionKind.THANK_YOU_DRAFT, P), (ActionKind.RETURN_FAVOR, P)),
    9: ((ActionKind.NOTE_REMINDER, P),),
    10: ((ActionKind.THANK_YOU_DRAFT, ActionStatus.CANCELLED),),
}
THANKS_DUE = [2, 6, 8]
FAVOURS_DUE = [8, 4]  # most recently settled first


def history(store: Store | None = None) -> dict[int, Sequence[Action]]:
    """The actions of :data:`ACTIONS`, in memory, or as ``store`` holds them once added."""
    made: dict[int, list[Action]] = {}
    for tid, entries in ACTIONS.items():
        for n, (kind, state) in enumerate(entries):
            made.setdefault(tid, []).append(Action(
                key=f"t{tid}/{kind.value}/{n}", kind=kind, due=T0 + timedelta(days=tid + 1),
                thread_id=tid, recipients=(SAM,), status=state))
    if store is None:
        return {tid: tuple(a) for tid, a in made.items()}
    with store.transaction():
        for t in THREADS:
            store.save_thread(t)
        for actions in made.values():
            for action in actions:
                store.add_action(action, T0)
                stored = store.action_by_key(action.key)
                assert stored is not None and stored.id is not None
                if action.status is S:
                    store.mark_sent(stored, action.due)
                elif action.status is not P:
                    store.set_status(stored.id, action.status)
    return {t.id: store.actions_for(t.id) for t in THREADS}


def test_the_definition_on_the_fixed_threads() -> None:
    known = history()
    assert [t.id for t in owed.thanks_due(THREADS, known)] == THANKS_DUE
    assert [t.id for t in owed.favours_due(THREADS, known)] == FAVOURS_DUE
    assert owed.thanks_due(THREADS, {}) == owed.favours_due(THREADS, {}) == ()


def test_status_table_agrees(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db", "example.com")
    history(store)
    assert [t.id for t in agenda.thanks_due(store)] == THANKS_DUE
    assert [t.id for t in agenda.favours_due(store)] == FAVOURS_DUE
    assert [t.id for t in agenda.thanks_due(store, "someone@example.com")] == []


def test_digest_sections_agree() -> None:
    """Each thread is listed once, in the first section that fits: a thread whose thanks are
    due is under drafts or thanks; one whose favour is due, under favours unless an earlier
    section took it; none other is under thanks or favours."""
    digest = build(THREADS, history(), NOW, UTC)
    assert [t.id for t in digest.thanks_due] == THANKS_DUE
    assert [t.id for t in digest.favours_due] == FAVOURS_DUE
    section = {item.thread.id: item.section for item in digest.items}
    assert {tid for tid, s in section.items() if s == "thanks"} == set(THANKS_DUE)
    assert {tid for tid, s in section.items() if s == "favours"} == set(FAVOURS_DUE) - set(
        THANKS_DUE)


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    """The stock templates, with a digest text part that lists the two lists as they are."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text(
        "thanks:{% for t in thanks_due %} {{ t.id }}{% endfor %}\n"
        "favours:{% for t in favours_due %} {{ t.id }}{% endfor %}\n")
    return Renderer(Settings(owners=(SAM,), assistant=Address("helper@example.com", "Assistant"),
                             templates_dir=templates))


def test_digest_mail_lists_agree(renderer: Renderer) -> None:
    digest = Action("digest/sam@example.com/x", ActionKind.DIGEST, NOW, recipients=(SAM,),
                    data={"reason": "schedule"})
    # Without lists: from the digest's figures, as the status table has them.
    job = RenderJob(digest, None, NOW, open_threads=THREADS,
                    digest=build(THREADS, history(), NOW, UTC))
    text = renderer.render_parts(job).text
    assert "thanks: 2 6 8" in text and "favours: 8 4" in text
    # With the lists the outbox passes (status's), the same.
    job = RenderJob(digest, None, NOW, open_threads=THREADS,
                    thanks_due=owed.thanks_due(THREADS, history()),
                    favours_due=owed.favours_due(THREADS, history()))
    text = renderer.render_parts(job).text
    assert "thanks: 2 6 8" in text and "favours: 8 4" in text
