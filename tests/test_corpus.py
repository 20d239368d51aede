"""The parsing layer against the shared corpus of real mail (``../shared/corpus``, beside the
checkout; see its SOURCES.md and expected.yaml). Files are read where they lie, never copied.

Every file must parse. Each folder then has an accuracy: the share of its files whose stated
expectations all hold. The floors below are what the parser achieves today; a change that
drops one fails here, and prints what broke (``pytest -s`` prints the accuracies).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import yaml

from mailhelper.model.values import Mail
from mailhelper.read.autoreply import auto_generated
from mailhelper.read.htmltext import html_to_text
from mailhelper.read.parse import parse_mail
from tests.rig.corpus import require_corpus

CORPUS = require_corpus(module_level=True)

EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
FOLDERS = ("forwarded", "replies", "auto", "mime")
FILES = sorted(
    f"{folder}/{path.name}" for folder in FOLDERS for path in (CORPUS / folder).iterdir()
)

#: Share of files whose every stated expectation holds, per folder (1.0 = all of them).
FORWARD_ACCURACY_FLOOR = 1.0
FORWARD_DETAIL_ACCURACY_FLOOR = 1.0  # To, Cc, date, body and the forwarder's own note too
REPLY_ACCURACY_FLOOR = 1.0
AUTO_ACCURACY_FLOOR = 1.0
MIME_ACCURACY_FLOOR = 1.0


def mail_of(key: str, subject: str | None = None) -> Mail:
    """The corpus file as a parsed mail. Body-only files (.txt, .html) are sent through
    :func:`parse_mail` inside a minimal message, with the forwarding subject when the source
    suite had one, so they exercise the whole path (MIME encoding included)."""
    path = CORPUS / key
    raw = path.read_bytes()
    if path.suffix == ".eml":
        return parse_mail(raw)
    message = EmailMessage()
    message["Message-ID"] = f"<{path.stem}@corpus.invalid>"
    message["From"] = "owner@example.com"
    message["Subject"] = " ".join((subject or "").split())
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    message.set_content(text, subtype="html" if path.suffix == ".html" else "plain")
    return parse_mail(message.as_bytes())


@pytest.mark.parametrize("key", FILES)
def test_every_corpus_file_parses(key: str) -> None:
    mail = mail_of(key, EXPECTED.get(key, {}).get("input_subject"))
    assert mail.message_id
    assert not [d for d in mail.defects if "unreadable" in d], mail.defects


# -- forwards -------------------------------------------------------------------------------


def forward_problems(key: str, expected: dict[str, Any], subject: str | None) -> list[str]:
    """Detected, with the original sender's address and the subject as stated."""
    found = mail_of(key, subject).forwarded
    if found is None:
        return ["no forward found"]
    problems = []
    sender = found.from_.email if found.from_ else None
    if sender != expected["original_from"]:
        problems.append(f"from {sender!r} != {expected['original_from']!r}")
    if found.subject != expected["original_subject"]:
        problems.append(f"subject {found.subject!r} != {expected['original_subject']!r}")
    return problems


def forward_detail_problems(key: str, expected: dict[str, Any]) -> list[str]:
    """To, Cc, date, body, sender name and the forwarder's own words, where stated."""
    mail = mail_of(key, expected.get("input_subject"))
    found = mail.forwarded
    if found is None:
        return ["no forward found"]
    problems = []
    if "original_to" in expected and expected["original_to"] is not None:
        # The source suites check the first recipients only; name-only entries have no address.
        wanted = list(dict.fromkeys(a for a in map(_address_of, expected["original_to"]) if a))
        got = [a.email for a in found.to]
        if got[: len(wanted)] != wanted:
            problems.append(f"to {got} != {wanted}")
    if expected.get("original_cc"):
        wanted_cc = [_address_of(a) for a in expected["original_cc"]]
        if [a.email for a in found.cc] != wanted_cc:
            problems.append(f"cc {[a.email for a in found.cc]} != {wanted_cc}")
    name = expected.get("original_from_name")
    if name and found.from_ is not None and found.from_.name != name:
        problems.append(f"name {found.from_.name!r} != {name!r}")
    dated = expected.get("original_date_present") or expected.get("original_date_raw")
    if dated and found.date is None:
        problems.append("no date")
    if expected.get("original_date"):
        wanted_date = parsedate_to_datetime(expected["original_date"])
        if found.date != wanted_date:
            problems.append(f"date {found.date} != {wanted_date}")
    body = expected.get("original_body") or expected.get("original_body_starts_with")
    if body and not _words(found.body).startswith(_words(body)):
        problems.append(f"body {found.body[:60]!r}")
    if "forwarder_message" in expected:
        note = expected["forwarder_message"] or ""
        if _words(mail.reply_text) != _words(note):
            problems.append(f"forwarder note {mail.reply_text[:60]!r} != {note[:60]!r}")
    return problems


def _address_of(entry: Any) -> str | None:
    return entry.get("address") if isinstance(entry, dict) else entry


def forward_cases() -> list[tuple[str, str | None]]:
    cases = []
    for key, expected in EXPECTED.items():
        if key.startswith("forwarded/"):
            cases.append((key, expected.get("input_subject")))
            for subject in (expected.get("alternate_input_subjects") or {}).values():
                cases.append((key, subject))
    return cases


def test_forward_accuracy() -> None:
    cases = forward_cases()
    failures = {
        f"{key} [{subject}]": problems
        for key, subject in cases
        if (problems := forward_problems(key, EXPECTED[key], subject))
    }
    _assert_accuracy("forwards", len(cases), failures, FORWARD_ACCURACY_FLOOR)


def test_forward_detail_accuracy() -> None:
    keys = [key for key in EXPECTED if key.startswith("forwarded/")]
    failures = {key: p for key in keys if (p := forward_detail_problems(key, EXPECTED[key]))}
    _assert_accuracy("forward details", len(keys), failures, FORWARD_DETAIL_ACCURACY_FLOOR)


# -- replies --------------------------------------------------------------------------------

#: The source suites keep signatures in the reply text (talon keeps "Sent from my iPhone"
#: and Sparrow's "-- " block); mailhelper drops them (the spec's reply text is the writer's
#: words). Expectations are compared both as stated and without their signature.
_SIGNATURE_LINE = re.compile(r"^(?:sent from my |sent with |envoyé à partir de )", re.I)


def _words(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


def _visible(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if re.match(r"^--\s*$", line):
            break
        if not _SIGNATURE_LINE.match(line.strip()):
            lines.append(line)
    return _words("\n".join(lines))


def reply_problems(
    key: str, expected: dict[str, Any], strip: Callable[[Mail], str] | None = None
) -> list[str]:
    mail = mail_of(key, expected.get("input_subject"))
    got = strip(mail) if strip else mail.reply_text
    words = _words(got)
    problems = []

    def same(wanted: str) -> bool:
        return words in (_words(wanted), _visible(wanted))

    if "reply_text" in expected and not same(expected["reply_text"]):
        problems.append(f"reply {got[:80]!r} != {expected['reply_text'][:80]!r}")
    if "reply_html_top" in expected and not same(html_to_text(expected["reply_html_top"])):
        problems.append(f"reply {got[:80]!r} != top of {expected['reply_html_top'][:60]!r}")
    starts = expected.get("reply_text_starts_with") or expected.get("first_fragment")
    if starts and not words.startswith(_words(starts)):
        problems.append(f"reply {got[:60]!r} does not start with {starts!r}")
    contains = expected.get("reply_text_contains") or []
    for wanted in [contains] if isinstance(contains, str) else contains:
        if _words(wanted) not in words:
            problems.append(f"reply {got[:60]!r} lacks {wanted!r}")
    fragments = expected.get("visible_fragments_start_with") or []
    if fragments and not (words.startswith(fragments[0]) and all(f in words for f in fragments)):
        problems.append(f"reply {got[:60]!r} lacks fragments {fragments}")
    if expected.get("reply_must_not_contain") and expected["reply_must_not_contain"] in got:
        problems.append(f"reply contains {expected['reply_must_not_contain']!r}")
    if expected.get("reply_nonempty") and not words:
        problems.append("reply is empty")
    if expected.get("forwarded") is False and mail.forwarded is not None and strip is None:
        problems.append(f"taken for a forward of {mail.forwarded.from_}")
    return problems


def test_reply_accuracy() -> None:
    keys = [key for key in EXPECTED if key.startswith("replies/")]
    failures = {key: p for key in keys if (p := reply_problems(key, EXPECTED[key]))}
    _assert_accuracy("replies", len(keys), failures, REPLY_ACCURACY_FLOOR)


def test_replies_are_not_forwards() -> None:
    """Replies carry quoted header blocks that look like forwards; none may be taken for one
    (the .txt bodies have no subject, so they are read with the "Re:" a reply would have)."""
    for key, expected in EXPECTED.items():
        if key.startswith("replies/") and expected.get("forwarded") is not False:
            subject = "Re: corpus" if not key.endswith(".eml") else None
            assert mail_of(key, subject).forwarded is None, key


# -- auto-generated mail --------------------------------------------------------------------


def auto_problems(key: str, expected: dict[str, Any]) -> list[str]:
    mail = mail_of(key)
    problems = []
    if auto_generated(mail) is None:
        problems.append("not detected as auto-generated")
    for name, value in (expected.get("headers") or {}).items():
        if mail.header(name) != value:
            problems.append(f"{name}: {mail.header(name)!r} != {value!r}")
    subject = (
        expected.get("subject_decoded")
        or expected.get("decoded_subject")
        or expected.get("subject_raw_8bit_decoded_as_gb2312")
    )
    if subject and mail.subject != subject:
        problems.append(f"subject {mail.subject!r} != {subject!r}")
    top = (mail.header("content-type") or "text/plain").lower()
    if not top.startswith(expected["top_content_type"].lower()):
        problems.append(f"content type {top!r}")
    first_line = expected.get("text_first_line_decoded_as_gbk")
    if first_line and first_line not in mail.text:
        problems.append(f"text lacks {first_line!r}")
    return problems


def test_auto_accuracy() -> None:
    keys = [key for key in EXPECTED if key.startswith("auto/")]
    failures = {key: p for key in keys if (p := auto_problems(key, EXPECTED[key]))}
    _assert_accuracy("auto", len(keys), failures, AUTO_ACCURACY_FLOOR)


# -- MIME decoding --------------------------------------------------------------------------


def mime_problems(key: str, expected: dict[str, Any]) -> list[str]:
    mail = mail_of(key)
    problems = []
    if "decoded_subject" in expected and mail.subject != expected["decoded_subject"]:
        problems.append(f"subject {mail.subject!r} != {expected['decoded_subject']!r}")
    if "decoded_from" in expected:
        # The first mailbox, as "Name <addr>", "<addr>" or "addr"; the name may be an address.
        first = expected["decoded_from"].split(">,")[0]
        shaped = re.match(r"^\s*(?:\"?(?P<name>[^<]*?)\"?\s*)?<(?P<addr>[^>]+)>?\s*$", first)
        name, address = (
            (shaped.group("name") or "", shaped.group("addr")) if shaped else ("", first.strip())
        )
        got = (mail.from_.name, mail.from_.email) if mail.from_ else None
        if got != (name, address.lower()):
            problems.append(f"from {got} != {(name, address)}")
    if "from" in expected and (mail.from_ is None or mail.from_.email != expected["from"]):
        problems.append(f"from {mail.from_} != {expected['from']!r}")
    if "decoded_from_name" in expected and (
        mail.from_ is None or mail.from_.name != expected["decoded_from_name"]
    ):
        problems.append(f"from name {mail.from_} != {expected['decoded_from_name']!r}")
    if "to" in expected and [a.email for a in mail.to] != [t.lower() for t in expected["to"]]:
        problems.append(f"to {mail.to} != {expected['to']}")
    if "decoded_to_name" in expected and (
        not mail.to or mail.to[0].name != expected["decoded_to_name"]
    ):
        problems.append(f"to name {mail.to} != {expected['decoded_to_name']!r}")
    if "decoded_body" in expected and _lines(mail.text) != _lines(expected["decoded_body"]):
        problems.append(f"body {mail.text[:60]!r} != {expected['decoded_body'][:60]!r}")
    if "decoded_body_stripped" in expected and mail.text.strip() != expected[
        "decoded_body_stripped"
    ]:
        problems.append(f"body {mail.text[:60]!r} != {expected['decoded_body_stripped']!r}")
    if "body_contains" in expected and expected["body_contains"] not in mail.text:
        problems.append(f"body lacks {expected['body_contains']!r}")
    if expected.get("has_text_plain") is False and not mail.text.strip():
        problems.append("HTML-only body gave no text")
    return problems


def _lines(text: str) -> str:
    """Text compared line by line: CRLF is LF (Mail.text normalises line ends)."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


def test_mime_accuracy() -> None:
    keys = [key for key in EXPECTED if key.startswith("mime/")]
    failures = {key: p for key in keys if (p := mime_problems(key, EXPECTED[key]))}
    _assert_accuracy("mime", len(keys), failures, MIME_ACCURACY_FLOOR)


def _assert_accuracy(
    folder: str, total: int, failures: dict[str, list[str]], floor: float
) -> None:
    accuracy = (total - len(failures)) / total
    print(f"\n{folder}: {total - len(failures)}/{total} = {accuracy:.1%}")
    for key, problems in failures.items():
        print(f"  {key}: {'; '.join(problems)}")
    assert accuracy >= floor, f"{folder} accuracy {accuracy:.1%} < {floor:.0%}: {failures}"
