"""A mutation run over the safety rules of SPEC.md: does a test fail when a guard is broken?

    .venv/bin/python scripts/mutate.py                 # every mutation (about 10-20 minutes)
    .venv/bin/python scripts/mutate.py -k caps -k dedup  # those whose name contains a word
    .venv/bin/python scripts/mutate.py --list          # the mutations and their test files

Each mutation replaces one guard's condition or return (an exact snippet of one file, found
exactly once, so a stale entry fails loudly instead of mutating nothing). The run copies the
checkout to a temporary folder (with ``../shared`` linked beside it, for the corpus), checks
that the tests it uses pass there unmutated, then for each mutation writes the mutated file,
runs that mutation's test files with ``pytest -x`` and restores the file. ``PYTHONPATH`` and
the working folder point at the copy, so the test processes and the ``mailhelper`` processes
they start import the mutated code, never the checkout's (the editable install's finder comes
after ``sys.path``).

A mutation **killed** made a test fail (or time out); one that **survived** left them all
green: either a test is missing, or the mutation is equivalent (it changes nothing a user can
see), which its ``equivalent`` text then explains. Exit status 1 when a mutation without such
an explanation survives. tests/README.md keeps the last run's table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 900


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]
    equivalent: str | None = None


RECIPIENTS = ("tests/test_guards.py", "tests/test_last_checks.py",
              "tests/test_address_folding.py", "tests/test_abuse_addresses.py",
              "tests/test_outbox.py")
AUTO = ("tests/test_autoreply.py", "tests/test_classify.py", "tests/test_prefilter.py",
        "tests/test_abuse.py")
OWNERS = ("tests/test_authresults.py", "tests/test_classify.py", "tests/test_prefilter.py",
          "tests/test_abuse_trust.py", "tests/test_abuse.py")
ORDER = ("tests/test_guards.py", "tests/test_last_checks.py", "tests/test_outbox.py",
         "tests/test_crash.py")
CAPS = ("tests/test_last_checks.py", "tests/test_abuse_cycle.py",
        "tests/test_lifecycle_schedule.py", "tests/test_outbox.py")
DEDUP = ("tests/test_sync.py", "tests/test_abuse.py", "tests/test_crash.py",
         "tests/test_daemon.py")

MUTATIONS = (
    # -- rule 1: never send to an address that did not appear in the owner's own thread --------
    Mutation("recipients/check-never-refuses", "mailhelper/engine/outbox.py",
             "        if fold(email_address) not in allowed:", "        if False:", RECIPIENTS),
    Mutation("recipients/no-recipients-allowed", "mailhelper/engine/outbox.py",
             '        return "no recipients"', "        return None", RECIPIENTS),
    Mutation("recipients/envelope-not-checked", "mailhelper/engine/outbox.py",
             "    for email_address in [p.email for p in action.recipients] + list(envelope):",
             "    for email_address in [p.email for p in action.recipients]:", RECIPIENTS),
    Mutation("recipients/anyone-in-the-action-allowed", "mailhelper/engine/outbox.py",
             "        allowed |= {fold(c.email) for c in thread.counterparts}",
             "        allowed |= {fold(p.email) for p in action.recipients}", RECIPIENTS),
    Mutation("recipients/refusal-ignored", "mailhelper/engine/outbox.py",
             "        if refused is not None:", "        if False:", RECIPIENTS),
    # -- rule 2: never answer auto-generated mail -----------------------------------------------
    Mutation("auto/classify-ignores-the-verdict", "mailhelper/decide/classify.py",
             "    if auto is not None:", "    if False:", AUTO),
    Mutation("auto/report-not-auto", "mailhelper/read/autoreply.py",
             "    if report:\n        return report", "    if False:\n        return report", AUTO),
    Mutation("auto/out-of-office-not-auto", "mailhelper/read/autoreply.py",
             '    if is_out_of_office(mail):\n        return "out-of-office"',
             '    if False:\n        return "out-of-office"', AUTO),
    Mutation("auto/auto-submitted-not-auto", "mailhelper/read/autoreply.py",
             '    if submitted and submitted != "no":', "    if False:", AUTO),
    Mutation("auto/x-autoreply-headers-not-auto", "mailhelper/read/autoreply.py",
             "    for name in AUTO_HEADERS:", "    for name in ():", AUTO),
    Mutation("auto/precedence-not-auto", "mailhelper/read/autoreply.py",
             "    if precedence in AUTO_PRECEDENCE:", "    if False:", AUTO),
    Mutation("auto/list-headers-not-auto", "mailhelper/read/autoreply.py",
             '    for name in ("list-id", "list-unsubscribe"):', "    for name in ():", AUTO),
    Mutation("auto/empty-return-path-not-auto", "mailhelper/read/autoreply.py",
             '    if return_path is not None and return_path.strip() in ("<>", "", "< >"):',
             "    if False:", AUTO),
    Mutation("auto/system-sender-not-auto", "mailhelper/read/autoreply.py",
             "    if _system_sender(mail):", "    if False:", AUTO),
    Mutation("auto/no-reply-sender-not-auto", "mailhelper/read/autoreply.py",
             "    if NO_REPLY.match(sender):", "    if False:", AUTO),
    # -- rule 1: only owners command; require_auth ------------------------------------------------
    Mutation("owners/require-auth-skipped", "mailhelper/decide/classify.py",
             "    if settings.require_auth:", "    if False:", OWNERS),
    Mutation("owners/refused-owner-not-ignored", "mailhelper/decide/classify.py",
             "    if refused:\n        return Ignored(mid, refused)",
             "    if False:\n        return Ignored(mid, refused)", OWNERS),
    Mutation("owners/dmarc-fail-passes", "mailhelper/read/authresults.py",
             '    if any(r.method == "dmarc" and r.result == "fail" for r in results):',
             "    if False:", OWNERS),
    Mutation("owners/any-verdict-passes", "mailhelper/read/authresults.py",
             "    return any(_vouches(result, from_domain) for result in results)",
             "    return True", OWNERS),
    Mutation("owners/stranger-in-thread-counts-as-reply", "mailhelper/decide/classify.py",
             "        if not is_counterpart(sender.email, known):", "        if False:", OWNERS),
    Mutation("owners/owner-for-matches-anyone", "mailhelper/model/settings.py",
             "            if fold(owner.email) == email:", "            if True:", OWNERS),
    Mutation("owners/prefilter-drops-owner-mail", "mailhelper/decide/prefilter.py",
             "    if settings.owner_for(sender) is not None or is_assistant_address(",
             "    if False or is_assistant_address(", OWNERS),
    # -- rule 3: a deterministic Message-ID per action ------------------------------------------
    Mutation("message-id/rendered-id-differs", "mailhelper/compose/render.py",
             '        message["Message-ID"] = recorded or make_message_id(action.key, '
             'self.domain, b"")',
             '        message["Message-ID"] = make_message_id(action.key + "/x", self.domain, '
             'b"")', ORDER),
    Mutation("message-id/recorded-id-not-used", "mailhelper/state/store.py",
             '        if row is not None:\n            return str(row["message_id"])',
             '        if False:\n            return str(row["message_id"])', ORDER),
    # -- rule 3: record the attempt, send, record acceptance, then APPEND ----------------------
    Mutation("order/attempt-not-recorded", "mailhelper/engine/outbox.py",
             "        action = self.store.mark_sending(action, raw)",
             "        action = action", ORDER),
    Mutation("order/append-before-record", "mailhelper/engine/outbox.py",
             '        with self.store.transaction():\n            self._record_sent(action, now)'
             '\n        crash_point("after_record")\n        self._file(action, raw, now)',
             '        self._file(action, raw, now)\n        with self.store.transaction():\n'
             '            self._record_sent(action, now)\n        crash_point("after_record")',
             ORDER),
    Mutation("order/sent-folder-not-asked", "mailhelper/engine/outbox.py",
             "            went = self._in_sent_folder(action)", "            went = False", ORDER),
    Mutation("order/unknown-outcome-retried-blind", "mailhelper/engine/outbox.py",
             "            self.store.set_status(action.id, ActionStatus.SENDING, "
             "next_attempt=retry_at,",
             "            self.store.set_status(action.id, ActionStatus.PENDING, "
             "next_attempt=retry_at,", ORDER),
    # -- rule 2: the caps -------------------------------------------------------------------------
    Mutation("caps/per-recipient-day-cap-off", "mailhelper/engine/outbox.py",
             "        if len(times) >= cap:\n            release = times[len(times) - cap] + "
             "timedelta(days=1)",
             "        if False:\n            release = times[len(times) - cap] + "
             "timedelta(days=1)", CAPS),
    Mutation("caps/hourly-cap-off", "mailhelper/engine/outbox.py",
             "    if len(times) >= cap:\n        release = times[len(times) - cap] + "
             "timedelta(hours=1)",
             "    if False:\n        release = times[len(times) - cap] + timedelta(hours=1)",
             CAPS),
    Mutation("caps/hold-ignored", "mailhelper/engine/outbox.py",
             "        if held is not None:", "        if False:", CAPS),
    Mutation("caps/owners-capped-too", "mailhelper/engine/outbox.py",
             "        if person.email in owners:\n            continue",
             "        if False:\n            continue", CAPS),
    # -- rule 4: the same message seen twice acts once --------------------------------------------
    Mutation("dedup/seen-never-recognised", "mailhelper/engine/daemon.py",
             "        if not self.store.is_processed(message_id, key):",
             "        if True:", DEDUP),
    Mutation("dedup/needs-both-id-and-content", "mailhelper/state/store.py",
             '"SELECT 1 FROM processed WHERE message_id=? OR content_hash=? LIMIT 1"',
             '"SELECT 1 FROM processed WHERE message_id=? AND content_hash=? LIMIT 1"', DEDUP),
    Mutation("dedup/flagged-read-again", "mailhelper/engine/daemon.py",
             "        uids = [u for u in uids if u not in flagged]",
             "        uids = list(uids)", DEDUP),
)


def _copy_checkout(into: Path) -> Path:
    copy = into / "checkout"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"))
    shared = REPO.parent / "shared"
    if shared.exists():
        (into / "shared").symlink_to(shared)
    return copy


def _pytest(copy: Path, files: tuple[str, ...]) -> tuple[bool, str, float]:
    """Run ``files`` in the copy: (all passed, the first failure's line, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    began = time.monotonic()
    try:
        done = subprocess.run(
            [str(REPO / ".venv/bin/python"), "-m", "pytest", "-x", "-q", "-p",
             "no:cacheprovider", *files],
            cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {TIMEOUT} s", time.monotonic() - began
    seconds = time.monotonic() - began
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    return done.returncode == 0, (failed[0] if failed else done.stdout[-300:]), seconds


def _imports_the_copy(copy: Path) -> bool:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    where = subprocess.run([str(REPO / ".venv/bin/python"), "-c",
                            "import mailhelper; print(mailhelper.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True, check=True)
    return Path(where.stdout.strip()).is_relative_to(copy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", action="append", default=[], help="only names containing this")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.k or any(k in m.name for k in args.k)]
    if args.list:
        for m in chosen:
            print(f"{m.name:45} {m.path:26} {' '.join(Path(t).stem for t in m.tests)}")
        return 0
    for m in chosen:  # a stale snippet must fail loudly, not mutate nothing
        count = (REPO / m.path).read_text().count(m.before)
        if count != 1:
            print(f"{m.name}: the snippet occurs {count} times in {m.path}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="mailhelper-mutate-") as tmp:
        copy = _copy_checkout(Path(tmp))
        if not _imports_the_copy(copy):
            print("the copy's tests would import the checkout's mailhelper", file=sys.stderr)
            return 2
        files = tuple(sorted({f for m in chosen for f in m.tests}))
        ok, first, seconds = _pytest(copy, files)
        print(f"baseline: {len(files)} test files {'pass' if ok else 'FAIL'} in {seconds:.0f} s",
              flush=True)
        if not ok:
            print(f"  first failure: {first}", file=sys.stderr)
            return 2
        unexplained = 0
        for m in chosen:
            path = copy / m.path
            original = path.read_text()
            path.write_text(original.replace(m.before, m.after))
            try:
                passed, first, seconds = _pytest(copy, m.tests)
            finally:
                path.write_text(original)
            if passed:
                verdict = "SURVIVED (equivalent)" if m.equivalent else "SURVIVED"
                unexplained += m.equivalent is None
                first = m.equivalent or "no test failed"
            else:
                verdict = "killed"
            print(f"{m.name:45} {verdict:22} {seconds:5.0f} s  {first}", flush=True)
    print(f"{len(chosen)} mutations, {unexplained} unexplained survivor(s)")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
