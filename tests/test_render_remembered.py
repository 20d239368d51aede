"""A passed check of the templates, remembered across processes (``Renderer(...,
remembered=PATH)``): a process whose settings, templates and code are those of a check that
passed compiles nothing until it renders; anything changed is checked again at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailhelper.compose import render
from mailhelper.compose.render import Renderer, TemplateProblem
from tests.rig.assistant import RigAssistant
from tests.test_render import JOBS, settings


@pytest.fixture(autouse=True)
def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Renderer below is built as in a process of its own: no check passed in it."""
    monkeypatch.setattr(render, "_SAMPLES_PASSED", set())


def _as_if_a_new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "_SAMPLES_PASSED", set())


def test_a_remembered_check_compiles_nothing_until_a_mail_is_rendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = tmp_path / "state.db-templates"
    first = Renderer(settings(), remembered=marker)
    assert first.compiled and marker.is_file()  # checked, and remembered
    _as_if_a_new_process(monkeypatch)
    second = Renderer(settings(), remembered=marker)
    assert not second.compiled  # nothing compiled at start-up
    message = second.render(JOBS["follow_up"])
    assert message["Subject"] == first.render(JOBS["follow_up"])["Subject"]
    assert second.compiled


def test_an_override_changed_since_the_check_is_checked_again_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    templates, marker = tmp_path / "templates", tmp_path / "state.db-templates"
    templates.mkdir()
    override = templates / "receipt.txt.j2"
    override.write_text("Hi {{ owner.first }}.\n")
    Renderer(settings(templates_dir=templates), remembered=marker)
    remembered = marker.read_text()
    _as_if_a_new_process(monkeypatch)
    override.write_text("Hi {{ owner.first }},\n\n{% if %}\nOops.\n")
    with pytest.raises(TemplateProblem) as caught:
        Renderer(settings(templates_dir=templates), remembered=marker)
    assert caught.value.template == str(override) and caught.value.line == 3
    assert marker.read_text() == remembered  # a failed check is never remembered


def test_other_settings_are_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          ) -> None:
    marker = tmp_path / "state.db-templates"
    Renderer(settings(), remembered=marker)
    before = marker.read_text()
    _as_if_a_new_process(monkeypatch)
    renderer = Renderer(settings(send_as="owner"), remembered=marker)
    assert renderer.compiled and marker.read_text() != before


def test_an_unwritable_marker_only_means_checking_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = tmp_path / "no-such-folder" / "state.db-templates"
    Renderer(settings(), remembered=marker)
    _as_if_a_new_process(monkeypatch)
    assert Renderer(settings(), remembered=marker).compiled
    assert not marker.exists()


def test_renderer_for_defers_the_renderer_while_the_check_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailhelper.compose.deferred import renderer_for

    marker = tmp_path / "state.db-templates"
    first = renderer_for(settings(), marker)
    assert isinstance(first, Renderer) and marker.is_file()  # checked now, and remembered
    _as_if_a_new_process(monkeypatch)
    deferred = renderer_for(settings(), marker)
    assert not isinstance(deferred, Renderer)  # stands for one: nothing built yet
    assert deferred.render(JOBS["follow_up"])["Subject"] == \
        first.render(JOBS["follow_up"])["Subject"]
    assert isinstance(deferred._real, Renderer)  # type: ignore[attr-defined]


def test_renderer_for_checks_a_changed_override_now_and_refuses_an_unknown_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailhelper.compose.deferred import renderer_for

    templates, marker = tmp_path / "templates", tmp_path / "state.db-templates"
    templates.mkdir()
    override = templates / "receipt.txt.j2"
    override.write_text("Hi {{ owner.first }}.\n")
    renderer_for(settings(templates_dir=templates), marker)
    _as_if_a_new_process(monkeypatch)
    override.write_text("Hi {{ owner.first }},\n\n{% if %}\nOops.\n")
    with pytest.raises(TemplateProblem) as caught:
        renderer_for(settings(templates_dir=templates), marker)
    assert caught.value.template == str(override) and caught.value.line == 3
    override.write_text("Hi {{ owner.first }}.\n")
    (templates / "reciept.txt.j2").write_text("typo\n")
    with pytest.raises(TemplateProblem, match=r"reciept\.txt\.j2"):
        renderer_for(settings(templates_dir=templates), marker)


def test_a_cron_poll_with_nothing_new_loads_neither_the_renderer_nor_the_reading(
    rig_assistant: RigAssistant,
) -> None:
    import json
    import subprocess
    import sys

    rig_assistant.ask()
    rig_assistant.poll("2026-12-07T09:00:00+00:00")  # reads the ask; remembers the check
    code = ("import json, sys; from mailhelper.cli.main import main; "
            "code = main(sys.argv[1:]); "
            "print(json.dumps([code, sorted(m for m in sys.modules if m.startswith("
            "('mailhelper.compose.render', 'jinja2', 'mailhelper.read.parse', "
            ")))]))")
    done = subprocess.run(
        [sys.executable, "-c", code, "poll", "--once", "--now", "2026-12-07T09:05:00+00:00",
         "--config", str(rig_assistant.config_path)],
        capture_output=True, text=True, timeout=60, check=True)
    exit_code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code == 0 and loaded == [], done.stderr
