"""`mailhelper status`: every thread and what happens next, as JSON or a table for people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailhelper.models import Action, Kind, Thread, ThreadState
from mailhelper.settings import Settings
from mailhelper.store import Store


def next_action(store: Store, thread: Thread) -> Action | None:
    pending = [a for a in store.actions_for(thread.id) if a.status.value == "pending"]
    return min(pending, key=lambda a: (a.due, a.id or 0), default=None)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def status_json(store: Store) -> dict[str, Any]:
    """``{"threads": [...]}`` with SPEC.md's keys, newest first; times ISO-8601 with offset."""
    threads = []
    for thread in store.threads():
        action = next_action(store, thread)
        threads.append({
            "id": thread.id,
            "kind": thread.kind.value,
            "state": thread.state.value,
            "subject": thread.subject,
            "counterparts": [c.email for c in thread.counterparts],
            "created": _iso(thread.created),
            "next_action": None if action is None else {
                "kind": action.kind.value, "due": _iso(action.due),
            },
            "owner": thread.owner.email,
            "answered_at": _iso(thread.answered_at),
        })
    ledger = store.ledger()
    overall = ledger.overall
    return {
        "threads": threads,
        "ledger": {
            "asks_made": overall.asks_made,
            "asks_answered": overall.asks_answered,
            "median_hours_to_answer": overall.median_hours_to_answer,
            "offers_received": overall.offers_received,
            "thanks_sent": overall.thanks_sent,
            "favours_returned": overall.favours_returned,
        },
    }


_GROUPS: list[tuple[str, frozenset[ThreadState]]] = [
    ("Waiting for an answer", frozenset({ThreadState.OPEN})),
    ("Answered: thanks and favours", frozenset({ThreadState.ANSWERED, ThreadState.DECLINED})),
    ("Done", frozenset({ThreadState.DONE})),
    ("Closed", frozenset({ThreadState.EXPIRED, ThreadState.CANCELLED})),
]


def status_table(store: Store, settings: Settings) -> str:
    """A readable table, grouped by what the owner should do, newest first within a group."""
    zone = settings.timezone
    threads = store.threads()
    if not threads:
        return "No threads yet: nothing is being tracked."
    lines: list[str] = []
    for title, states in _GROUPS:
        group = [t for t in threads if t.state in states]
        if not group:
            continue
        lines.append(f"{title} ({len(group)})")
        lines.append(f"  {'id':>4}  {'kind':5}  {'state':9}  {'with':28}  {'subject':32}  next")
        for thread in group:
            action = next_action(store, thread)
            who = ", ".join(c.email for c in thread.counterparts) or "-"
            upcoming = "-"
            if action is not None:
                upcoming = f"{action.kind.value} {action.due.astimezone(zone):%a %d %b %H:%M}"
            kind = "ask" if thread.kind is Kind.ASK else "offer"
            lines.append(
                f"  {thread.id:>4}  {kind:5}  {thread.state.value:9}  {_cut(who, 28):28}  "
                f"{_cut(thread.subject, 32):32}  {upcoming}"
            )
        lines.append("")
    overall = store.ledger().overall
    median = (f"{overall.median_hours_to_answer:g} h" if overall.median_hours_to_answer is not None
              else "-")
    lines.append(
        f"Ledger: {overall.asks_made} asks, {overall.asks_answered} answered "
        f"(median {median}), {overall.offers_received} offers, {overall.thanks_sent} thanks, "
        f"{overall.favours_returned} favours returned"
    )
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
