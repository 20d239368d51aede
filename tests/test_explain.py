"""``mailhelper explain FILE.eml [--json]``: how the assistant reads one message, run through
the real command line (:func:`mailhelper.cli.main.main`) on crafted files and on the corpus."""

from __future__ import annotations

import email.utils
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from mailhelper.cli.main import main
from mailhelper.model.message_id import make_message_id
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
from tests.rig.mailboxes import make_message

#: The keys SPEC.md names, and no others.
KEYS = {"from", "is_owner", "auto_generated", "kind", "tag", "when", "forwarded", "command",
        "problem", "repeat"}
FORWARDED_KEYS = {"from", "to", "subject", "date"}
NOW = "2026-11-30T09:00:00+00:00"
DATE = "Mon, 30 Nov 2026 08:59:00 +0000"
LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with no config anywhere in the search path, unless a test writes one."""
    monkeypatch.delenv("MAILHELPER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(folder: Path, **extra: Any) -> Path:
    config = {
        "timezone": "Europe/London",
        "owners": [{"name": "Sam Rivera", "email": "Sam@Example.com"}],
        "assistant": {"name": "Sam's assistant", "email": "helper@example.com"},
        "imap": {"host": "127.0.0.1", "security": "none", "username": "helper@example.com",
                 "password_env": "MAILHELPER_TEST_UNSET"},
        "smtp": {"host": "127.0.0.1", "security": "none"},
        "state": str(folder / "state.db"),
        **extra,
    }
    # Not ./mailhelper.yaml: tests without --config must find no config.
    path = folder / "conf" / "mailhelper.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def explain(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["explain", str(path), "--now", NOW, *args])
    out, err = capsys.readouterr()
    return code, out, err


def explain_json(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> dict[str, Any]:
    code, out, err = explain(capsys, path, "--json", *args)
    assert code == 0, err
    reading: dict[str, Any] = json.loads(out)
    assert set(reading) == KEYS
    if reading["forwarded"] is not None:
        assert set(reading["forwarded"]) == FORWARDED_KEYS
    return reading


def eml(folder: Path, name: str, raw: bytes) -> Path:
    path = folder / name
    path.write_bytes(raw)
    return path


# -- crafted messages -----------------------------------------------------------------------


def test_an_owners_ask_with_a_config(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(workdir)
    path = eml(workdir, "ask.eml", make_message(
        "Sam Rivera <SAM@Example.COM>", "Jane Doe <Jane@Example.org>", "Intro to Acme?",
        "Hi Jane, could you introduce me?", cc="Helper <HELPER@example.com>", date=DATE))
    assert explain_json(capsys, path, "--config", str(config)) == {
        "from": "sam@example.com", "is_owner": True, "auto_generated": False, "kind": "ask",
        "tag": None, "when": None, "forwarded": None, "command": None, "problem": None,
        "repeat": None,
    }


def test_a_tagged_offer_gives_the_tag_and_when(workdir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(workdir)
    path = eml(workdir, "offer.eml", make_message(
        "sam@example.com", "jane@example.org", "Happy to help", "Hi",
        cc="helper+offer+2d@example.com", date=DATE))
    reading = explain_json(capsys, path, "--config", str(config))
    assert reading["kind"] == "offer" and reading["tag"] == "offer+2d"
    assert reading["when"] == "2026-12-02T09:00:00+00:00"
    assert datetime.fromisoformat(reading["when"]).utcoffset() is not None
    # A local --now is read in the configured zone, and "when" carries its offset.
    summer = explain_json(capsys, path, "--config", str(config), "--now", "2026-07-01T09:00")
    assert summer["when"] == "2026-07-03T09:00:00+01:00"
    path = eml(workdir, "subject.eml", make_message(
        "sam@example.com", "jane@example.org", "[offer] Happy to help", "Hi",
        cc="helper@example.com", date=DATE))
    reading = explain_json(capsys, path, "--config", str(config))
    assert (reading["kind"], reading["tag"], reading["when"]) == ("offer", "[offer]", None)


def test_without_a_config_nobody_is_an_owner(workdir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = eml(workdir, "ask.eml", make_message(
        "Sam Rivera <sam@example.com>", "jane@example.org", "[offer] Intro", "Hi",
        cc="helper@example.com", date=DATE))
    code, out, err = explain(capsys, path, "--json")
    assert code == 0
    assert "no usable config" in err and "as if nobody were an owner" in err
    reading = json.loads(out)
    assert set(reading) == KEYS
    assert reading["from"] == "sam@example.com" and reading["is_owner"] is False
    assert reading["kind"] == "offer" and reading["tag"] == "[offer]"
    assert reading["command"] is None


def test_a_reply_to_assistant_mail_reads_as_a_command(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    ours = make_message_id("t1/follow_up/20261203T090000Z/1", "example.com", b"")
    for text, command in (("Snooze 3 days", "snooze"), ("> quoted\n\ndone", "done"),
                          ("Thanks!", "unknown")):
        path = eml(workdir, "reply.eml", make_message(
            "sam@example.com", "helper@example.com", "Re: Reminder", text, date=DATE,
            in_reply_to=ours))
        reading = explain_json(capsys, path, "--config", str(config))
        assert reading["is_owner"] is True
        assert reading["command"] == command, text
    # No config: nobody is an owner, so nothing is a command.
    path = eml(workdir, "reply.eml", make_message(
        "sam@example.com", "helper@example.com", "Re: Reminder", "done", date=DATE,
        in_reply_to=ours))
    assert explain_json(capsys, path)["command"] is None


def test_status_in_a_fresh_mail_is_a_command(workdir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(workdir)
    path = eml(workdir, "status.eml", make_message(
        "sam@example.com", "helper@example.com", "hello", "status", date=DATE))
    assert explain_json(capsys, path, "--config", str(config))["command"] == "status"


def test_a_pause_reads_as_a_command_whose_when_is_its_end(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    ours = make_message_id("t1/follow_up/20261203T090000Z/1", "example.com", b"")
    path = eml(workdir, "pause.eml", make_message(
        "sam@example.com", "helper@example.com", "Away", "pause until 6 April", date=DATE))
    reading = explain_json(capsys, path, "--config", str(config), "--now",
                           "2026-12-01T10:00:00+00:00")
    assert (reading["command"], reading["when"], reading["problem"]) == (
        "pause", "2027-04-06T09:00:00+01:00", None)
    path = eml(workdir, "pause.eml", make_message(
        "sam@example.com", "helper@example.com", "Re: Reminder", "Pause 2 years", date=DATE,
        in_reply_to=ours))
    reading = explain_json(capsys, path, "--config", str(config), "--now",
                           "2026-12-01T10:00:00+00:00")
    assert (reading["command"], reading["when"]) == ("unknown", None)
    assert reading["problem"].startswith("a pause lasts at most a year")


def test_the_state_file_is_read_and_never_written(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    store = Store.open(workdir / "state.db", "example.com")
    sam, jane = Address("sam@example.com", "Sam"), Address("jane@example.org", "Jane")
    created = datetime(2026, 11, 27, 9, tzinfo=LONDON)
    store.save_thread(Thread(1, Kind.ASK, ThreadState.OPEN, "Intro", sam, (jane,), created,
                             "ask-1@example.com", created))
    store.add_thread_messages(1, ("ask-1@example.com",))
    store.add_action(Action("t1/thank_you", ActionKind.THANK_YOU_DRAFT, created, 1, (sam,)),
                     created)
    draft = store.action_by_key("t1/thank_you")
    assert draft is not None and draft.id is not None
    store.set_status(draft.id, ActionStatus.SENT, sent_at=created)
    draft_id = store.message_id_for(draft)
    store.close()
    before = (workdir / "state.db").read_bytes()

    path = eml(workdir, "send.eml", make_message(
        "sam@example.com", "helper@example.com", "Re: Say thanks", "send", date=DATE,
        in_reply_to=f"<{draft_id}>"))
    assert explain_json(capsys, path, "--config", str(config))["command"] == "send"
    code, out, _ = explain(capsys, path, "--config", str(config))
    assert code == 0 and "would run the owner's command: send" in out

    path = eml(workdir, "answer.eml", make_message(
        "Jane <jane@example.org>", "sam@example.com", "Re: Intro", "Sure!", date=DATE,
        in_reply_to="<ask-1@example.com>"))
    reading = explain_json(capsys, path, "--config", str(config))
    assert reading["is_owner"] is False and reading["command"] is None
    code, out, _ = explain(capsys, path, "--config", str(config))
    assert "would mark thread 1 answered by jane@example.org" in out
    assert (workdir / "state.db").read_bytes() == before


def test_require_auth_makes_an_unverified_owner_a_stranger(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir, require_auth=True, trusted_authserv_id="mx.example.com")
    raw = make_message("sam@example.com", "jane@example.org", "Intro", "Hi",
                       cc="helper@example.com", date=DATE,
                       extra_headers={"Authentication-Results": "mx.evil.test; dmarc=pass"})
    reading = explain_json(capsys, eml(workdir, "forged.eml", raw), "--config", str(config))
    assert reading["is_owner"] is False
    raw = make_message("sam@example.com", "jane@example.org", "Intro", "Hi",
                       cc="helper@example.com", date=DATE, extra_headers={
                           "Authentication-Results": "mx.example.com; dkim=pass "
                                                     "header.d=example.com"})
    reading = explain_json(capsys, eml(workdir, "signed.eml", raw), "--config", str(config))
    assert reading["is_owner"] is True and reading["kind"] == "ask"


def test_an_auto_reply_is_auto_generated(workdir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_message("Jane <jane@example.org>", "sam@example.com",
                       "Automatic reply: Intro", "I am away until Monday.", date=DATE,
                       extra_headers={"Auto-Submitted": "auto-replied"})
    reading = explain_json(capsys, eml(workdir, "ooo.eml", raw))
    assert reading["auto_generated"] is True and reading["command"] is None
    code, out, _ = explain(capsys, workdir / "ooo.eml")
    assert code == 0 and "Automatic: yes" in out


def test_a_forward_gives_the_original(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = ("FYI\n\n---------- Forwarded message ---------\n"
            "From: Jane Doe <Jane.Doe@Example.org>\nDate: Fri, 27 Nov 2026 at 16:02\n"
            "Subject: Re: Acme\nTo: Sam Rivera <sam@example.com>, Bob <BOB@example.net>\n\n"
            "Happy to introduce you.\n")
    config = write_config(workdir)
    raw = make_message("sam@example.com", "helper@example.com", "Fwd: Re: Acme", body,
                       date=DATE)
    reading = explain_json(capsys, eml(workdir, "fwd.eml", raw), "--config", str(config))
    forwarded = reading["forwarded"]
    assert forwarded["from"] == "jane.doe@example.org"
    assert forwarded["to"] == ["sam@example.com", "bob@example.net"]
    assert forwarded["subject"] == "Re: Acme"
    assert forwarded["date"].startswith("2026-11-27T16:02:00")
    assert reading["kind"] == "ask" and reading["is_owner"] is True


# -- files that are not mail ----------------------------------------------------------------


def test_a_missing_file_is_a_usage_error(workdir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = explain(capsys, workdir / "nope.eml", "--json")
    assert code == 2 and out == ""
    assert "nope.eml: no such file" in err
    (workdir / "dangling.eml").symlink_to(workdir / "gone.eml")
    code, out, err = explain(capsys, workdir / "dangling.eml")
    assert code == 2 and out == "" and "no such file" in err


def test_a_folder_is_a_usage_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "mail").mkdir()
    code, out, err = explain(capsys, workdir / "mail", "--json")
    assert code == 2 and out == "" and "is a folder" in err


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (bytes(range(256)) * 40, "binary file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(500), "binary file"),
        (b"", "empty message"),
        (b"just some words\nand more words\n", "not a mail"),
    ],
    ids=["bytes", "png", "empty", "text"],
)
def test_a_file_that_is_not_mail_is_refused_clearly(
    workdir: Path, capsys: pytest.CaptureFixture[str], content: bytes, why: str
) -> None:
    path = eml(workdir, "thing.eml", content)
    code, out, err = explain(capsys, path, "--json")
    assert code == 1 and out == ""
    assert f"mailhelper: {path} is not a mail message" in err and why in err
    assert "Traceback" not in err


def test_a_mail_with_a_nul_in_its_body_is_still_read(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = (b"From: Jane <jane@example.org>\r\nSubject: odd\r\nMessage-ID: <n@x>\r\n\r\n"
           b"a\x00b\r\n")
    reading = explain_json(capsys, eml(workdir, "nul.eml", raw))
    assert reading["from"] == "jane@example.org"


def test_a_broken_config_named_on_the_command_line_fails_fast(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = workdir / "bad.yaml"
    bad.write_text("owners: [\n")
    path = eml(workdir, "ask.eml", make_message("sam@example.com", "jane@example.org", "x",
                                                "y", date=DATE))
    code, out, err = explain(capsys, path, "--config", str(bad))
    assert code == 2 and out == "" and "bad.yaml" in err


# -- the corpus -----------------------------------------------------------------------------


def corpus_expectations(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = yaml.safe_load(
        (corpus_dir / "expected.yaml").read_text())
    return {key: value for key, value in loaded.items() if key.endswith(".eml")}


def test_every_corpus_message_explains_with_the_spec_keys(
    workdir: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    expected = corpus_expectations(corpus_dir)
    assert len(expected) > 40
    for key, facts in sorted(expected.items()):
        reading = explain_json(capsys, corpus_dir / key, "--config", str(config))
        sender = reading["from"]
        assert sender is None or (sender == sender.lower() and "<" not in sender), key
        assert reading["is_owner"] is False, key  # no corpus mail is from sam@example.com
        assert reading["command"] is None, key
        kind = facts.get("kind")
        if kind == "auto":
            assert reading["auto_generated"] is True, key
        elif kind == "reply":
            assert reading["auto_generated"] is False, key
        if facts.get("from") and "<" not in facts["from"]:
            assert sender == facts["from"].lower(), key


def test_corpus_forwards_give_the_original_sender_subject_and_date(
    workdir: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checked = 0
    for key, facts in sorted(corpus_expectations(corpus_dir).items()):
        if facts.get("kind") != "forward" or not facts.get("original_from"):
            continue
        forwarded = explain_json(capsys, corpus_dir / key)["forwarded"]
        assert forwarded is not None, key
        assert forwarded["from"] == facts["original_from"].lower(), key
        assert forwarded["subject"] == facts["original_subject"], key
        if facts.get("original_to"):
            once = list(dict.fromkeys(a.lower() for a in facts["original_to"]))
            assert forwarded["to"] == once, key  # each address once, in order
        if facts.get("original_date"):
            stated = email.utils.parsedate_to_datetime(facts["original_date"])
            assert datetime.fromisoformat(forwarded["date"]) == stated, key
        checked += 1
    assert checked >= 5


def test_a_corpus_reply_explains_the_same_with_and_without_a_config(
    workdir: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = corpus_dir / "replies" / "talon-gmail.eml"
    without = explain_json(capsys, path)
    config = write_config(workdir)
    with_config = explain_json(capsys, path, "--config", str(config))
    assert without == with_config
    assert without["forwarded"] is None and without["auto_generated"] is False


def test_explain_takes_no_wall_clock_when_now_is_given(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    path = eml(workdir, "tag.eml", make_message(
        "sam@example.com", "jane@example.org", "Intro", "follow up in 5 days\n\nHi",
        cc="helper@example.com", date=DATE))
    first = explain_json(capsys, path, "--config", str(config))
    assert datetime.fromisoformat(first["when"]) == datetime.fromisoformat(NOW) + timedelta(
        days=5)



def test_expect_on_the_first_line_is_no_tag_and_no_problem(
    workdir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(workdir)
    raw = make_message("Sam Rivera <sam@example.com>", "Jane Doe <jane@example.org>",
                       "Intro to Acme?", "expect 2\nHi Jane, could you introduce me?",
                       cc="helper@example.com", date=DATE)
    reading = explain_json(capsys, eml(workdir, "expect.eml", raw), "--config", str(config))
    # The keys are SPEC.md's, unchanged: "expect 2" is neither a tag nor a problem.
    assert (reading["kind"], reading["tag"], reading["when"], reading["problem"]) == (
        "ask", None, None, None)
    plain = make_message("Sam Rivera <sam@example.com>", "Jane Doe <jane@example.org>",
                         "Intro to Acme?", "Hi Jane, could you introduce me?",
                         cc="helper@example.com", date=DATE)
    assert reading == explain_json(capsys, eml(workdir, "plain.eml", plain), "--config",
                                   str(config))


def test_a_reply_to_the_digest_reads_its_numbered_commands(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    store = Store.open(workdir / "state.db", "example.com")
    sam = Address("sam@example.com", "Sam")
    created = datetime(2026, 11, 27, 9, tzinfo=LONDON)
    store.add_action(Action("digest/sam", ActionKind.DIGEST, created, None, (sam,)), created)
    digest = store.action_by_key("digest/sam")
    assert digest is not None and digest.id is not None
    store.set_status(digest.id, ActionStatus.SENT, sent_at=created)
    digest_id = store.message_id_for(digest)
    store.close()
    path = eml(workdir, "digest-reply.eml", make_message(
        "sam@example.com", "helper@example.com", "Re: Your digest", "snooze 2 3 days\ndone 1",
        date=DATE, in_reply_to=f"<{digest_id}>"))
    reading = explain_json(capsys, path, "--config", str(config))
    assert (reading["command"], reading["when"], reading["problem"]) == (
        "snooze", "2026-12-03T09:00:00+00:00", None)
    code, out, _ = explain(capsys, path, "--config", str(config))
    assert code == 0 and ("would run the owner's commands on the digest's numbered items "
                          "(snooze item 2; done item 1)") in out
