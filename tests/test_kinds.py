"""The table of kinds (mailhelper/model/kinds.py): complete, and what the rest of the package reads
from it agrees with the templates, the config and the planner."""

from __future__ import annotations

import importlib.resources
import inspect
from dataclasses import fields

import pytest

from mailhelper.compose.render import template_names
from mailhelper.decide.digest import SECTIONS
from mailhelper.model import kinds
from mailhelper.model.kinds import (
    ACTIONS,
    COUNTERPART_ACTIONS,
    KINDS,
    THANKS,
    ActionKind,
    Audience,
    Kind,
    LedgerEffect,
    action_spec,
    answer_key,
    is_scheduled_key,
    kind_spec,
    send_key,
)
from mailhelper.model.settings import Schedules, Tags


def test_every_action_kind_and_thread_kind_has_an_entry() -> None:
    assert set(ACTIONS) == set(ActionKind)
    assert set(KINDS) == set(Kind)
    for kind in ActionKind:
        assert ACTIONS[kind] == action_spec(kind)
    for thread_kind in Kind:
        assert KINDS[thread_kind] == kind_spec(thread_kind)


def test_a_member_without_an_entry_is_refused() -> None:
    with pytest.raises(AssertionError):
        action_spec("postcard")  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        kind_spec("wish")  # type: ignore[arg-type]


def test_the_derived_sets_are_what_they_were_before_the_table() -> None:
    assert {ActionKind.NUDGE, ActionKind.THANK_YOU, ActionKind.LETTER} == COUNTERPART_ACTIONS
    assert {ActionKind.THANK_YOU, ActionKind.THANK_YOU_DRAFT} == THANKS
    assert {k for k, s in ACTIONS.items() if s.sendable_draft} == {
        ActionKind.FOLLOW_UP, ActionKind.THANK_YOU_DRAFT, ActionKind.CHECK_IN}
    assert {k: s.send_makes for k, s in ACTIONS.items() if s.send_makes} == {
        ActionKind.FOLLOW_UP: ActionKind.NUDGE,
        ActionKind.CHECK_IN: ActionKind.NUDGE,
        ActionKind.THANK_YOU_DRAFT: ActionKind.THANK_YOU,
        ActionKind.OFFER_FOLLOW_UP: ActionKind.LETTER,
        ActionKind.RETURN_FAVOR: ActionKind.LETTER,
    }
    assert {k: s.ledger for k, s in ACTIONS.items() if s.ledger is not LedgerEffect.NONE} == {
        ActionKind.THANK_YOU: LedgerEffect.THANKS_SENT,
        ActionKind.THANK_YOU_DRAFT: LedgerEffect.THANKS_DRAFTED,
        ActionKind.LETTER: LedgerEffect.FAVOUR_RETURNED,
    }


def test_every_action_kind_has_its_three_templates_and_its_words() -> None:
    shipped = {p.name for p in importlib.resources.files("mailhelper.templates").iterdir()}
    for kind, spec in ACTIONS.items():
        assert set(template_names(kind)) <= shipped, kind
        assert spec.words and spec.mail_name, kind
        # Only a mail to the counterpart is made by "send"; the owner gets the rest.
        if spec.send_makes is not None:
            assert ACTIONS[spec.send_makes].audience is Audience.COUNTERPART


def test_every_thread_kind_names_a_schedule_section_and_tag_words_the_config_has() -> None:
    schedule_sections = {f.name for f in fields(Schedules)}
    tag_keys = {f.name for f in fields(Tags)}
    for thread_kind, spec in KINDS.items():
        assert spec.schedule_section in schedule_sections, thread_kind
        assert spec.tag_words is None or spec.tag_words in tag_keys, thread_kind
        assert spec.reminders and all(ACTIONS[r].scheduled for r in spec.reminders)
        assert spec.status_group and spec.calendar_words
        assert spec.digest_section in SECTIONS, thread_kind


def test_the_keys_of_immediate_actions_are_never_scheduled_ones() -> None:
    assert not is_scheduled_key(ActionKind.NUDGE, send_key(3, ActionKind.NUDGE, "d@x.org"))
    assert not is_scheduled_key(ActionKind.DIGEST, answer_key("m@x.org", "digest"))
    assert is_scheduled_key(ActionKind.DIGEST, "digest/sam@example.com/20261207T090000Z")
    assert is_scheduled_key(ActionKind.FOLLOW_UP, "t3/follow_up/20261201T090000Z/1")
    assert not is_scheduled_key(ActionKind.RECEIPT, answer_key("m@x.org", "receipt"))
    assert not is_scheduled_key(ActionKind.LETTER, send_key(3, ActionKind.LETTER, "r@x.org"))
    # The notice of a failed send and the daily summary are keyed as scheduled ones.
    assert is_scheduled_key(ActionKind.ERROR_NOTICE, "failed/t3/nudge/x")
    assert is_scheduled_key(ActionKind.ERROR_NOTICE, "errors/2026-12-07/summary")


def test_the_module_imports_nothing_of_the_package() -> None:
    source = inspect.getsource(kinds)
    assert "from mailhelper" not in source and "import mailhelper" not in source
    assert kinds.__doc__
