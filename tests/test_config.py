"""Config loading: the example, defaults, the search order, and one clear problem per mistake."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from mailhelper.cli.config import EXAMPLE_NAME, find_config, load_settings, parse_settings
from mailhelper.model.duration import Duration
from mailhelper.model.errors import ConfigError
from mailhelper.model.settings import Settings
from mailhelper.model.values import Address

REPO = Path(__file__).resolve().parent.parent

# The least a config needs; line numbers in the table below count from these four lines.
MINIMAL = """\
owners: [{name: Sam Rivera, email: sam@example.com}]
assistant: {name: Sam's assistant, email: helper@example.com}
imap: {host: imap.example.com}
smtp: {host: smtp.example.com}
"""
OWNERS, ASSISTANT, IMAP, SMTP = MINIMAL.splitlines(keepends=True)

FAKE_HOME = {"HOME": "/home/sam"}


def parse(text: str, base_dir: Path | None = None) -> Settings:
    return parse_settings(text, "config.yaml", environ=FAKE_HOME, base_dir=base_dir)


def problems_of(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, base_dir)
    return caught.value.problems


# --- the example and the defaults -------------------------------------------------------------


def test_example_config_loads_without_any_password_set() -> None:
    settings = load_settings(REPO / EXAMPLE_NAME, environ=FAKE_HOME)
    assert settings.owners == (Address("sam@example.com", "Sam Rivera"),)
    assert settings.assistant.email == "helper@example.com"
    assert settings.timezone.key == "Europe/London"
    assert settings.imap.password.env == "MAILHELPER_IMAP_PASSWORD"
    assert settings.smtp.security == "starttls"
    assert settings.state == Path("/home/sam/.local/state/mailhelper/state.db")
    assert settings.source == REPO / EXAMPLE_NAME


def test_example_config_names_every_top_level_key_in_spec_order() -> None:
    text = (REPO / EXAMPLE_NAME).read_text()
    keys = [line.split(":")[0] for line in text.splitlines()
            if line and not line.startswith((" ", "#"))]
    assert keys == [
        "timezone", "owners", "assistant", "imap", "smtp", "state", "lease", "poll_interval",
        "confirm", "confirm_commands", "tags", "schedules", "sending", "limits", "send_as",
        "require_auth", "trusted_authserv_id", "templates_dir", "default_time", "date_order",
        "calendar_file",
    ]
    for extra in ("sent_folder", "processed_folder", "ca_file", "auth", "oauth2_token_cmd",
                  "max_per_hour", "timeout", "password_file", "password_cmd"):
        assert f"{extra}:" in text


def test_default_time_date_order_and_per_owner_time_are_read() -> None:
    s = parse(MINIMAL.replace(OWNERS, "owners: [{name: Sam, email: sam@example.com, "
                              "timezone: America/New_York, default_time: 7:45}, kim@example.com]\n")
              + 'default_time: "08:30"\ndate_order: mdy\n')
    assert (s.default_time, s.date_order) == (time(8, 30), "mdy")
    assert s.zone_for("Sam@Example.com").key == "America/New_York"
    assert s.default_time_for("sam@example.com") == time(7, 45)  # unquoted 7:45 is base 60
    assert (s.zone_for("kim@example.com").key, s.default_time_for("kim@example.com")) == (
        "UTC", time(8, 30))
    defaults = parse(MINIMAL)
    assert (defaults.default_time, defaults.date_order) == (time(9), None)


def test_bad_default_time_date_order_and_owner_zone_are_refused_with_key_and_line() -> None:
    problems = problems_of(MINIMAL.replace(OWNERS, "owners: [{email: sam@example.com, "
                                           "timezone: Europe/Lodnon, default_time: '25:00'}]\n")
                           + 'default_time: "9am"\ndate_order: ymd\n')
    assert problems == [
        'config.yaml:1: owners[0].timezone: "Europe/Lodnon" is not a known time zone (did you '
        'mean "Europe/London"?)',
        'config.yaml:1: owners[0].default_time: "25:00" is not a time of day (write it like '
        '"09:00" or "17:30")',
        'config.yaml:5: default_time: "9am" is not a time of day (write it like "09:00" or '
        '"17:30")',
        'config.yaml:6: date_order: "ymd" is not one of dmy, mdy (did you mean "mdy"?)',
    ]


def test_calendar_file_is_off_by_default_and_relative_to_the_config(tmp_path: Path) -> None:
    assert parse(MINIMAL).calendar_file is None
    assert parse(MINIMAL + "calendar_file: null\n").calendar_file is None
    (tmp_path / "cal").mkdir()
    got = parse(MINIMAL + "calendar_file: cal/mailhelper.ics\n", base_dir=tmp_path)
    assert got.calendar_file == tmp_path / "cal" / "mailhelper.ics"


def test_a_calendar_file_in_a_missing_folder_or_on_a_folder_is_refused(tmp_path: Path) -> None:
    problems = problems_of(MINIMAL + f"calendar_file: {tmp_path}/nowhere/x.ics\n")
    assert problems == [f"config.yaml:5: calendar_file: the folder {tmp_path}/nowhere does not "
                        "exist; create it or give another path"]
    problems = problems_of(MINIMAL + f"calendar_file: {tmp_path}\n")
    assert problems == [f"config.yaml:5: calendar_file: {tmp_path} is a folder; give the "
                        f"file's path, e.g. {tmp_path}/mailhelper.ics"]


def test_minimal_config_gets_spec_defaults() -> None:
    s = parse_settings(MINIMAL, "config.yaml", environ={"HOME": "/home/sam"})
    assert s.timezone.key == "UTC"
    assert (s.imap.port, s.imap.security, s.imap.folder) == (993, "ssl", "INBOX")
    assert s.imap.error_folder == "mailhelper/errors"
    assert (s.smtp.port, s.smtp.security) == (587, "starttls")
    assert s.imap.username is None and not s.imap.password.configured
    assert s.state == Path("/home/sam/.local/state/mailhelper/state.db")
    assert s.poll_interval == Duration.parse("60s")
    assert s.lease == Duration.parse("30s")
    assert s.confirm is True and s.confirm_commands is True
    assert (s.tags.ask, s.tags.offer) == (("ask",), ("offer",))
    assert s.schedules.ask.follow_up == (Duration.parse("3 days"), Duration.parse("7 days"))
    assert s.schedules.ask.give_up_after == Duration.parse("14 days")
    assert s.schedules.ask.nudge_counterpart == ()
    assert s.schedules.offer.follow_up == (Duration.parse("1 day"), Duration.parse("4 days"))
    assert s.schedules.thank_you.after == Duration.parse("2 hours")
    assert s.schedules.thank_you.mode == "draft"
    assert s.schedules.return_favor.after == Duration.parse("30 days")
    assert s.schedules.note.after == Duration.parse("1 day")
    assert s.schedules.digest.rrule == "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"
    assert s.sending.business_days is True
    assert s.sending.quiet_hours is not None
    assert (s.sending.quiet_hours.start, s.sending.quiet_hours.end) == (time(20), time(8))
    assert s.sending.max_per_recipient_per_day == 3
    assert s.send_as == "assistant" and s.require_auth is False
    assert s.trusted_authserv_id is None and s.templates_dir is None
    assert s.source == Path("config.yaml")


def test_state_default_follows_xdg_state_home() -> None:
    s = parse_settings(MINIMAL, "c.yaml", environ={"HOME": "/h", "XDG_STATE_HOME": "/var/xdg"})
    assert s.state == Path("/var/xdg/mailhelper/state.db")
    # The XDG spec: a relative value is invalid and ignored.
    s = parse_settings(MINIMAL, "c.yaml", environ={"HOME": "/h", "XDG_STATE_HOME": "rel"})
    assert s.state == Path("/h/.local/state/mailhelper/state.db")


def test_relative_paths_count_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "ca.pem").write_text("not really a CA\n")
    config = tmp_path / "mailhelper.yaml"
    config.write_text(
        OWNERS + ASSISTANT + "imap: {host: imap.example.com, ca_file: ca.pem}\n" + SMTP
        + "state: data/state.db\ntemplates_dir: templates\n"
    )
    s = load_settings(config, environ=FAKE_HOME)
    assert s.state == tmp_path / "data" / "state.db"
    assert s.templates_dir == tmp_path / "templates"
    assert s.imap.ca_file == tmp_path / "ca.pem"
    assert s.source == config


def test_values_are_normalised() -> None:
    s = parse(
        "owners: [{name: Sam, email: Sam@Example.COM}, 'Jo Park <Jo@Example.org>']\n"
        "assistant: helper@example.com\n"
        "imap: {host: localhost, security: none, username: helper, password_cmd: pass x}\n"
        "smtp: {host: 127.0.0.1, security: ssl}\n"
        "tags: {ask: [Ask, please], offer: Offer}\n"
        "schedules: {ask: {follow_up: 2 business days}, digest: {rrule: null}}\n"
        "sending: {quiet_hours: null}\n"
        "send_as: Owner\n"
    )
    assert s.owners == (Address("sam@example.com", "Sam"), Address("jo@example.org", "Jo Park"))
    assert s.assistant == Address("helper@example.com")
    # The default port follows security: 143 for plain IMAP, 465 for SMTP over TLS.
    assert (s.imap.port, s.smtp.port) == (143, 465)
    assert s.imap.password.cmd == "pass x"
    assert (s.tags.ask, s.tags.offer) == (("ask", "please"), ("offer",))
    assert s.schedules.ask.follow_up == (Duration.parse("2 business days"),)
    assert s.schedules.digest.rrule is None
    assert s.sending.quiet_hours is None
    assert s.send_as == "owner"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"])
def test_security_none_is_allowed_on_loopback(host: str) -> None:
    s = parse(OWNERS + ASSISTANT + IMAP + f"smtp: {{host: '{host}', security: none}}\n")
    assert s.smtp.security == "none" and s.smtp.port == 25


def test_empty_digest_rrule_turns_the_digest_off() -> None:
    s = parse(MINIMAL + "schedules: {digest: {rrule: ''}}\n")
    assert s.schedules.digest.rrule is None


def test_digest_rrule_may_end_on_a_utc_until() -> None:
    rule = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8;UNTIL=20271231T000000Z"
    s = parse(MINIMAL + f"schedules: {{digest: {{rrule: '{rule}'}}}}\n")
    assert s.schedules.digest.rrule == rule


def test_quiet_hours_may_cross_midnight_or_not() -> None:
    s = parse(MINIMAL + "sending: {quiet_hours: '12:30-13:45'}\n")
    assert s.sending.quiet_hours is not None
    assert (s.sending.quiet_hours.start, s.sending.quiet_hours.end) == (time(12, 30),
                                                                          time(13, 45))


def test_yaml_merge_keys_and_anchors_work() -> None:
    s = parse(
        OWNERS + ASSISTANT
        + "imap: &server {host: mail.example.com, username: helper, password_env: PW}\n"
        + "smtp: {<<: *server, port: 465, security: ssl}\n"
    )
    assert (s.smtp.host, s.smtp.username, s.smtp.port) == ("mail.example.com", "helper", 465)


# --- find_config ------------------------------------------------------------------------------


def write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MINIMAL)
    return path


def test_find_config_prefers_the_command_line(tmp_path: Path) -> None:
    chosen = write(tmp_path / "chosen.yaml")
    env_file = write(tmp_path / "env.yaml")
    write(tmp_path / "mailhelper.yaml")
    environ = {"HOME": str(tmp_path / "home"), "MAILHELPER_CONFIG": str(env_file)}
    assert find_config("chosen.yaml", environ, tmp_path) == chosen


def test_find_config_then_the_environment_variable(tmp_path: Path) -> None:
    env_file = write(tmp_path / "env.yaml")
    write(tmp_path / "mailhelper.yaml")
    environ = {"HOME": str(tmp_path / "home"), "MAILHELPER_CONFIG": str(env_file)}
    assert find_config(None, environ, tmp_path) == env_file


def test_find_config_then_the_working_folder(tmp_path: Path) -> None:
    local = write(tmp_path / "mailhelper.yaml")
    write(tmp_path / "xdg" / "mailhelper" / "config.yaml")
    environ = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert find_config(None, environ, tmp_path) == local


def test_find_config_then_xdg_config_home(tmp_path: Path) -> None:
    xdg = write(tmp_path / "xdg" / "mailhelper" / "config.yaml")
    environ = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert find_config(None, environ, tmp_path / "elsewhere") == xdg


def test_find_config_xdg_defaults_to_dot_config_in_home(tmp_path: Path) -> None:
    home_config = write(tmp_path / "home" / ".config" / "mailhelper" / "config.yaml")
    assert find_config(None, {"HOME": str(tmp_path / "home")}, tmp_path) == home_config


def test_find_config_expands_tilde_with_the_given_home(tmp_path: Path) -> None:
    chosen = write(tmp_path / "home" / "mh.yaml")
    assert find_config("~/mh.yaml", {"HOME": str(tmp_path / "home")}, tmp_path) == chosen


def test_find_config_names_every_place_when_nothing_is_there(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path / "home")}
    with pytest.raises(ConfigError) as caught:
        find_config(None, environ, tmp_path)
    message = str(caught.value)
    assert "--config" in message and "$MAILHELPER_CONFIG" in message
    assert str(tmp_path / "mailhelper.yaml") in message
    assert str(tmp_path / "home" / ".config" / "mailhelper" / "config.yaml") in message
    assert EXAMPLE_NAME in message


@pytest.mark.parametrize("origin", ["--config", "$MAILHELPER_CONFIG"])
def test_find_config_does_not_skip_a_missing_explicit_file(tmp_path: Path, origin: str) -> None:
    write(tmp_path / "mailhelper.yaml")  # must not be picked instead of the named file
    cli = "missing.yaml" if origin == "--config" else None
    environ = {"HOME": str(tmp_path)}
    if origin != "--config":
        environ["MAILHELPER_CONFIG"] = str(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError) as caught:
        find_config(cli, environ, tmp_path)
    assert origin in str(caught.value)
    assert "missing.yaml" in str(caught.value) and "does not exist" in str(caught.value)


# --- bad configs: each names the key path and the line ----------------------------------------

SCHEDULES = """\
schedules:
  ask:
    follow_up: [3 days, 3 dayz]
"""

BAD_CONFIGS: list[tuple[str, str, str, int]] = [
    # (id, yaml text, expected substring, expected line)
    ("unknown-key-did-you-mean", OWNERS + ASSISTANT + "imap:\n  host: imap.example.com\n"
     "  hots: imap.example.org\n" + SMTP, 'imap.hots: unknown key (did you mean "host"?)', 5),
    ("unknown-top-level-key", MINIMAL + "timezon: UTC\n",
     'timezon: unknown key (did you mean "timezone"?)', 5),
    ("bad-duration-in-list", MINIMAL + "\n" + SCHEDULES,
     'schedules.ask.follow_up[1]: "3 dayz" is not a duration (try "3 days")', 8),
    ("duration-without-unit", MINIMAL + "schedules:\n  ask: {give_up_after: 14}\n",
     'schedules.ask.give_up_after: 14 has no unit; write "14 days"', 6),
    ("bad-timezone", "timezone: Europe/Londn\n" + MINIMAL,
     'timezone: "Europe/Londn" is not a known time zone (did you mean "Europe/London"?)', 1),
    ("timezone-wrong-case", MINIMAL + "timezone: europe/paris\n",
     'did you mean "Europe/Paris"?', 5),
    ("no-owners-key", ASSISTANT + IMAP + SMTP, "owners: required", 1),
    ("empty-owners", "owners: []\n" + ASSISTANT + IMAP + SMTP,
     "owners: needs at least one owner", 1),
    ("owner-email-not-an-address", "owners:\n  - name: Sam\n    email: sam.example.com\n"
     + ASSISTANT + IMAP + SMTP,
     'owners[0].email: "sam.example.com" does not look like an e-mail address', 3),
    ("assistant-without-email", OWNERS + "assistant:\n  name: Helper\n" + IMAP + SMTP,
     "assistant.email: required", 2),
    ("assistant-is-an-owner", OWNERS + "assistant: {email: SAM@example.com}\n" + IMAP + SMTP,
     "assistant.email: sam@example.com is also an owner", 2),
    ("imap-without-host", OWNERS + ASSISTANT + "imap:\n  port: 993\n" + SMTP,
     "imap.host: required", 3),
    ("smtp-missing", OWNERS + ASSISTANT + IMAP, "smtp.host: required", 1),
    ("section-not-a-mapping", OWNERS + ASSISTANT + IMAP + "smtp: smtp.example.com\n",
     'smtp: expected a mapping of keys (host, port, security, ...), got "smtp.example.com"', 4),
    ("security-none-on-remote-host", OWNERS + ASSISTANT + IMAP
     + "smtp:\n  host: smtp.example.com\n  security: none\n",
     'smtp.security: "none" sends the password and mail unencrypted', 6),
    ("security-unknown", OWNERS + ASSISTANT + "imap: {host: h.example.com, security: tls}\n"
     + SMTP, 'imap.security: "tls" is not one of ssl, starttls, none', 3),
    ("port-out-of-range", OWNERS + ASSISTANT + "imap:\n  host: imap.example.com\n"
     "  port: 99300\n" + SMTP, "imap.port: 99300 is out of range (must be from 1 to 65535)", 5),
    ("port-not-a-number", OWNERS + ASSISTANT + IMAP + "smtp: {host: s.example.com, port: smtp}\n",
     'smtp.port: expected a whole number, got "smtp"', 4),
    ("two-password-sources", OWNERS + ASSISTANT + IMAP + "smtp:\n  host: smtp.example.com\n"
     "  username: helper\n  password_env: SMTP_PW\n  password_cmd: pass show smtp\n",
     "smtp.password_cmd: give only one of password_env, password_cmd", 8),
    ("username-without-password", OWNERS + ASSISTANT + "imap:\n  host: imap.example.com\n"
     "  username: helper\n" + SMTP, "imap.username: a username needs a password", 5),
    ("password-env-holds-a-password", OWNERS + ASSISTANT + "imap:\n  host: imap.example.com\n"
     "  username: helper\n  password_env: 'hunter 2!'\n" + SMTP,
     'imap.password_env: "hunter 2!" is not an environment variable name', 6),
    ("unbalanced-quotes-in-command", OWNERS + ASSISTANT + "imap:\n  host: imap.example.com\n"
     "  username: helper\n  password_cmd: pass show 'mail\n" + SMTP,
     "imap.password_cmd: cannot split into words", 6),
    ("auth-unknown", OWNERS + ASSISTANT + "imap: {host: i.example.com, auth: oauth}\n" + SMTP,
     'imap.auth: "oauth" is not one of password, oauth2 (did you mean "oauth2"?)', 3),
    ("oauth2-without-token-cmd", OWNERS + ASSISTANT + IMAP + "smtp:\n  host: smtp.example.com\n"
     "  username: helper\n  auth: oauth2\n", "smtp.auth: oauth2 needs oauth2_token_cmd", 7),
    ("require-auth-without-authserv", MINIMAL + "require_auth: true\n",
     "require_auth: true needs trusted_authserv_id", 5),
    ("require-auth-not-a-bool", MINIMAL + "require_auth: 'yes please'\n",
     'require_auth: expected true or false, got "yes please"', 5),
    ("poll-interval-too-short", MINIMAL + "poll_interval: 5s\n",
     'poll_interval: "5 seconds" is too often; the least is "10 seconds"', 5),
    ("lease-too-short", MINIMAL + "lease: 1s\n",
     'lease: "1 second" is out of range; give between "2 seconds" and "1 hour"', 5),
    ("lease-too-long", MINIMAL + "lease: 2 days\n",
     'lease: "2 days" is out of range; give between "2 seconds" and "1 hour"', 5),
    ("lease-bare-number", MINIMAL + "lease: 30\n",
     'lease: 30 has no unit; write "30 seconds", "30 minutes" or "30 hours"', 5),
    ("max-per-recipient-zero", MINIMAL + "sending:\n  max_per_recipient_per_day: 0\n",
     "sending.max_per_recipient_per_day: 0 is out of range (must be at least 1)", 6),
    ("quiet-hours-same-start-and-end", MINIMAL + "sending: {quiet_hours: '08:00-08:00'}\n",
     'sending.quiet_hours: "08:00-08:00" starts and ends at the same time', 5),
    ("quiet-hours-hour-25", MINIMAL + "sending:\n  business_days: true\n"
     "  quiet_hours: '25:00-08:00'\n", 'sending.quiet_hours: "25:00-08:00" has a time out', 7),
    ("quiet-hours-unquoted-base-60", MINIMAL + "sending: {quiet_hours: 20:00}\n",
     'sending.quiet_hours: expected a window like "20:00-08:00" in quotes', 5),
    ("rrule-invalid", MINIMAL + "schedules:\n  digest:\n    rrule: FREQ=WEEKLY;BYDAY=MX\n",
     'schedules.digest.rrule: "FREQ=WEEKLY;BYDAY=MX" is not a valid RFC 5545 RRULE', 7),
    ("rrule-garbage", MINIMAL + "schedules: {digest: {rrule: every monday}}\n",
     "each part must read NAME=VALUE", 5),
    ("thank-you-mode", MINIMAL + "schedules:\n  thank_you: {after: 1 hour, mode: mail}\n",
     'schedules.thank_you.mode: "mail" is not one of draft, send', 6),
    ("send-as", MINIMAL + "send_as: me\n", 'send_as: "me" is not one of assistant, owner', 5),
    ("tag-in-both-lists", MINIMAL + "tags:\n  ask: [ask, help]\n  offer: [offer, help]\n",
     'tags.offer[1]: "help" is both an ask and an offer word (first on line 6)', 7),
    ("tag-word-empty", MINIMAL + "tags:\n  ask: ['']\n", "tags.ask[0]: is empty", 6),
    ("tag-word-with-space", MINIMAL + "tags: {offer: [can help]}\n",
     'tags.offer[0]: "can help" must be one word', 5),
    ("tag-reads-as-duration", MINIMAL + "tags: {ask: [2d]}\n",
     'tags.ask[0]: "2d" reads as a duration', 5),
    ("templates-dir-missing", MINIMAL + "templates_dir: no-such-templates\n",
     "templates_dir: ", 5),
    ("ca-file-missing", OWNERS + ASSISTANT + IMAP
     + "smtp:\n  host: smtp.example.com\n  ca_file: no-such-ca.pem\n",
     "smtp.ca_file: ", 6),
    ("duplicate-key", OWNERS + ASSISTANT + IMAP + SMTP + "imap: {host: other.example.com}\n",
     "imap: given twice (first on line 3)", 5),
    ("duplicate-owner", "owners:\n  - sam@example.com\n  - Sam@Example.com\n"
     + ASSISTANT + IMAP + SMTP, "owners[1]: sam@example.com is listed twice", 3),
    ("confirm-not-a-bool", MINIMAL + "confirm: sure\n", 'confirm: expected true or false', 5),
    ("confirm-commands-not-a-bool", MINIMAL + "confirm_commands: 1\n",
     "confirm_commands: expected true or false, got the number 1", 5),
    ("unsafe-yaml-tag", OWNERS + ASSISTANT + "imap: {host: !!python/name:os.system ''}\n"
     + SMTP, "imap.host: cannot read this value", 3),
    ("host-is-a-number", OWNERS + ASSISTANT + IMAP + "smtp: {host: 25}\n",
     "smtp.host: expected a host name, got the number 25 (put it in quotes)", 4),
    ("timeout-negative", OWNERS + ASSISTANT + "imap: {host: i.example.com, timeout: -5}\n"
     + SMTP, 'imap.timeout: expected a positive duration like "60 seconds", got -5', 3),
    ("poll-interval-bare-number", MINIMAL + "poll_interval: 60\n",
     'poll_interval: 60 has no unit; write "60 seconds", "60 minutes" or "60 hours"', 5),
    ("follow-up-bare-number", MINIMAL + "schedules:\n  ask: {follow_up: 3}\n",
     'schedules.ask.follow_up: 3 has no unit; write "3 days", "3 hours" or "3 minutes"', 6),
    ("duration-too-long", MINIMAL + "schedules:\n  return_favor: {after: 99999 days}\n",
     'schedules.return_favor.after: "99999 days" is longer than ten years', 6),
    ("note-after-not-a-duration", MINIMAL + "schedules:\n  note: {after: soonish}\n",
     "schedules.note.after:", 6),
    ("note-unknown-key", MINIMAL + "schedules:\n  note: {every: 1 day}\n",
     "schedules.note.every: unknown key (known keys: after)", 6),
    ("processed-folder-is-the-folder", OWNERS + ASSISTANT + "imap:\n  host: imap.example.com\n"
     "  processed_folder: INBOX\n" + SMTP,
     "imap.processed_folder: 'INBOX' is the folder being read (imap.folder: 'INBOX'): every "
     "message moved there would be read again, and moved again, without end; name another "
     'folder (e.g. "mailhelper/done")', 5),
    ("processed-folder-is-inbox-in-other-case", OWNERS + ASSISTANT + "imap:\n"
     "  host: imap.example.com\n  folder: INBOX\n  processed_folder: inbox\n" + SMTP,
     "imap.processed_folder: 'inbox' is the folder being read", 6),
    ("processed-folder-is-a-subfolder-of-inbox-in-other-case", OWNERS + ASSISTANT + "imap:\n"
     "  host: imap.example.com\n  folder: INBOX/assistant\n"
     "  processed_folder: Inbox/assistant\n" + SMTP,
     "imap.processed_folder: 'Inbox/assistant' is the folder being read", 6),
    ("error-folder-is-the-folder", OWNERS + ASSISTANT + "imap:\n  host: imap.example.com\n"
     "  folder: helper\n  error_folder: helper\n" + SMTP,
     "imap.error_folder: 'helper' is the folder being read (imap.folder: 'helper')", 6),
    ("folder-is-the-default-error-folder", OWNERS + ASSISTANT + "imap:\n"
     "  host: imap.example.com\n  folder: mailhelper/errors\n" + SMTP,
     "imap.error_folder: 'mailhelper/errors' is the folder being read", 5),
]


@pytest.mark.parametrize(
    ("text", "expected", "line"),
    [pytest.param(text, expected, line, id=case_id) for case_id, text, expected, line
     in BAD_CONFIGS],
)
def test_bad_config_names_key_and_line(
    text: str, expected: str, line: int, tmp_path: Path
) -> None:
    problems = problems_of(text, base_dir=tmp_path)
    matching = [p for p in problems if expected in p]
    assert matching, f"no problem mentions {expected!r}; got {problems}"
    assert matching[0].startswith(f"config.yaml:{line}: "), matching[0]


def test_there_are_at_least_twenty_bad_config_cases() -> None:
    assert len({case_id for case_id, *_ in BAD_CONFIGS}) == len(BAD_CONFIGS) >= 20


def test_the_spec_example_message_reads_exactly() -> None:
    text = "\n" * 13 + "schedules:\n  ask:\n    follow_up:\n      - 3 days\n      - 3 dayz\n"
    problems = problems_of(MINIMAL + text)
    assert 'config.yaml:22: schedules.ask.follow_up[1]: "3 dayz" is not a duration ' \
        '(try "3 days")' in problems


def test_every_problem_in_a_file_is_reported_in_line_order() -> None:
    text = (
        "timezone: Mars/Olympus\n"                       # 1
        "owners: [{name: Sam, email: sam}]\n"              # 2
        "assistant: {email: helper@example.com}\n"        # 3
        "imap: {hots: imap.example.com}\n"                 # 4
        "smtp: {host: smtp.example.com, port: 0}\n"       # 5
        "poll_interval: 1 sec\n"                           # 6
        "schedules: {ask: {follow_up: [3 dayz]}}\n"        # 7
    )
    problems = problems_of(text)
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)
    for expected in ("config.yaml:1: timezone:", "config.yaml:2: owners[0].email:",
                     "config.yaml:4: imap.hots:", "config.yaml:4: imap.host: required",
                     "config.yaml:5: smtp.port:", "config.yaml:6: poll_interval:",
                     "config.yaml:7: schedules.ask.follow_up[0]:"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == 7


def test_a_section_that_is_not_a_mapping_is_reported_once() -> None:
    problems = problems_of(OWNERS + ASSISTANT + IMAP + "smtp: [smtp.example.com]\n")
    assert problems == [
        "config.yaml:4: smtp: expected a mapping of keys (host, port, security, ...), got a list"
    ]


def test_yaml_syntax_error_reports_its_line() -> None:
    text = MINIMAL + "sending:\n  business_days: true\n   quiet_hours: '20:00-08:00'\n"
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("config.yaml:7: YAML syntax error")


def test_yaml_syntax_error_names_the_broken_line_not_the_next() -> None:
    """A key without its colon on line 5: the scanner notices only on line 6, the message
    names line 5 (it said :6)."""
    text = MINIMAL.replace("smtp: {host: smtp.example.com}\n",
                           "smtp:\n  port 33961\n  host: smtp.example.com\n")
    assert text.splitlines()[4] == "  port 33961"
    problems = problems_of(text)
    assert len(problems) == 1 and problems[0].startswith("config.yaml:5: YAML syntax error"), (
        problems)
    # The same key among others (host above it): the scanner's own error, the same line.
    text = MINIMAL.replace("smtp: {host: smtp.example.com}\n",
                           "smtp:\n  host: smtp.example.com\n  port 33961\n  security: none\n")
    assert text.splitlines()[5] == "  port 33961"
    assert problems_of(text)[0].startswith("config.yaml:6: YAML syntax error")
    # A quoted value never closed: the line it opens on, not the end of the file.
    problems = problems_of(OWNERS + "assistant: {email: 'helper@example.com}\n" + IMAP + SMTP)
    assert problems[0].startswith("config.yaml:2: YAML syntax error"), problems


def test_the_example_config_keeps_its_own_rule_no_bare_number_durations() -> None:
    """config.example.yaml says a bare number is not a duration: no key in it is one."""
    example = (Path(__file__).parent.parent / "config.example.yaml").read_text()
    assert "A bare number is not a duration" in example
    assert re.search(r"(?m)^\s*timeout: 60 seconds\b", example)
    assert not re.search(r"(?m)^\s*(timeout|poll_interval|after|give_up_after): \d+\s*(#|$)",
                         example)


def test_unclosed_flow_mapping_reports_a_line() -> None:
    problems = problems_of(OWNERS + "assistant: {email: helper@example.com\n" + IMAP + SMTP)
    assert problems[0].startswith("config.yaml:")
    assert "YAML syntax error" in problems[0]


def test_empty_file_is_a_clear_error() -> None:
    for text in ("", "\n# only a comment\n"):
        problems = problems_of(text)
        assert problems == [f"config.yaml:1: the file is empty; start from {EXAMPLE_NAME}, "
                            "which lists every key"]


@pytest.mark.parametrize(("text", "what"), [("- owners\n", "a list"), ("hello\n", "a single")])
def test_top_level_must_be_a_mapping(text: str, what: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("config.yaml:1: the top level must be a mapping")
    assert what in problems[0]


def test_load_settings_reports_the_file_path(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL + "poll_interval: 1s\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ=FAKE_HOME)
    assert caught.value.problems[0].startswith(f"{config}:5: poll_interval:")


def test_load_settings_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.yaml", environ=FAKE_HOME)
    assert "nope.yaml" in str(caught.value) and "cannot read" in str(caught.value)


@pytest.mark.parametrize("unsafe", ["!!python/object/apply:os.system ['echo hacked']",
                                    "!!python/name:os.system ''"])
@pytest.mark.parametrize("key", ["sending: {quiet_hours: %s}", "owners: [%s]", "confirm: %s",
                                 "schedules: {ask: {follow_up: [%s]}}"])
def test_an_unsafe_yaml_tag_is_refused_and_reported_once(key: str, unsafe: str) -> None:
    line = key % unsafe
    text = MINIMAL.replace(OWNERS, "") if key.startswith("owners") else MINIMAL
    problems = problems_of(text + line + "\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"config.yaml:{text.count(chr(10)) + 1}: ")


# --- folders and size ---------------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "other"), [
    ("INBOX", "INBOX/done"), ("Helper", "helper"), ("Archive/helper", "archive/helper"),
])
def test_folders_that_differ_as_the_server_compares_them_are_accepted(
    folder: str, other: str,
) -> None:
    """Only INBOX is case-insensitive (RFC 3501 section 5.1): other names differing in case
    are two folders on the server, so they are not refused."""
    settings = parse(OWNERS + ASSISTANT + f"imap:\n  host: imap.example.com\n  folder: {folder}\n"
                     f"  processed_folder: {other}\n" + SMTP)
    assert (settings.imap.folder, settings.imap.processed_folder) == (folder, other)


def test_a_config_over_a_megabyte_is_refused_before_it_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    # Valid YAML all through (a comment), so only the size can be why it is refused; a YAML
    # reader would spend seconds and hundreds of MB on 100 MB of it.
    with path.open("w") as out:
        out.write(MINIMAL)
        line = "# " + "x" * 1022 + "\n"
        for _ in range(1100):
            out.write(line)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=FAKE_HOME)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: the file is larger than 1024 KB")
    assert "is this the right file?" in problem


def test_a_config_just_under_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(MINIMAL + ("# " + "x" * 1022 + "\n") * 1000)
    assert path.stat().st_size < 1024 * 1024
    assert load_settings(path, environ=FAKE_HOME).imap.host == "imap.example.com"


def test_confirm_commands_false_is_read() -> None:
    assert parse(MINIMAL + "confirm_commands: false\n").confirm_commands is False


# --- a PostgreSQL state -----------------------------------------------------------------------
def test_a_postgresql_url_is_the_state_and_a_path_still_an_sqlite_file() -> None:
    url = "postgresql://helper@db.example.org:5432/mailhelper"
    s = parse(MINIMAL + f"state: {url}\nstate_password_env: MH_STATE_PASSWORD\n")
    assert s.state_url == url and s.state_location == url
    assert s.state_password is not None and s.state_password.env == "MH_STATE_PASSWORD"
    s = parse(MINIMAL + "state: /srv/postgresql/state.db\n")
    assert s.state_url is None and s.state_location == Path("/srv/postgresql/state.db")


@pytest.mark.parametrize(("lines", "problem"), [
    ("state: postgresql://helper:s3cret@db/mh\n",
     "config.yaml:5: state: holds a password; take it out of the URL and give it in "
     "PGPASSWORD, ~/.pgpass or state_password_env, so it is not in the config file"),
    ("state: postgresql://helper@db:5432\n",
     "config.yaml:5: state: names no database; end the URL with the database's name, e.g. "
     "postgresql://mailhelper@db.example.org:5432/mailhelper"),
    ("state: postgresql://helper@db:99999/mh\n", "config.yaml:5: state: is not a valid URL"),
    ("state: mysql://helper@db/mh\n", 'config.yaml:5: state: "mysql://" is not a database'),
    ("state_password_env: MH_PW\n", "config.yaml:5: state_password_env: is for a PostgreSQL "
     "state; set state: postgresql://user@host:port/database too"),
    ("state: postgresql://h@db/mh\nstate_password_env: s3cret!\n",
     'config.yaml:6: state_password_env: "s3cret!" is not an environment variable name'),
])
def test_a_wrong_postgresql_state_is_one_problem_with_its_line(lines: str, problem: str) -> None:
    [found] = problems_of(MINIMAL + lines)
    assert found.startswith(problem)


def test_a_bare_timeout_is_still_seconds_as_configs_always_wrote_it() -> None:
    """``timeout: 60`` was read as seconds before durations needed units: it still is, so an
    existing config keeps loading; every other duration needs its unit."""
    s = parse(OWNERS + ASSISTANT + "imap: {host: i.example.com, timeout: 60}\n" + SMTP)
    assert s.imap.timeout == 60.0
