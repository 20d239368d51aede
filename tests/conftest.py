"""Shared fixtures: a real Dovecot, fresh IMAP accounts, an SMTP sink and the mail corpus.

Fixtures (see each docstring):

- ``rig_cert`` (session): the self-signed certificate both servers present;
- ``dovecot`` (session): a running :class:`tests.rig.dovecot.DovecotServer`;
- ``imap_account`` (function): a fresh user with an empty mailbox, as an ``ImapAccount``;
- ``smtp_sink`` (function): a running :class:`tests.rig.smtpsink.SmtpSink` in ``tmp_path``;
- ``smtp_sink_factory`` (function): makes more sinks with other options (all stopped after);
- ``corpus_dir`` (session): ``Path`` of the shared mail corpus, or a skip;
- ``postgres`` (session): a running :class:`tests.rig.postgres.PostgresServer`, or a skip;
- ``state_location`` (function, over ``sqlite`` and ``postgresql``): makes the ``state`` of a
  store, an SQLite file's path or a new PostgreSQL database's URL: tests taking it (or the
  ``store`` fixtures built on it) are the store's contract, run against both backends.

Tests using ``dovecot``, ``imap_account`` or the sinks are marked ``integration`` automatically
(``pytest -m "not integration"`` runs the rest). When Dovecot is not installed they skip with
one reason saying how to install it; with ``CI=true`` they fail instead, so CI never passes
by skipping.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The rig is imported as tests.rig, which needs the repository root on sys.path. pytest puts
# only tests/ there while tests/ has no __init__.py (rootdir-relative "prepend" import mode).
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.rig import SelfSignedCert  # noqa: E402
from tests.rig.assistant import RigAssistant  # noqa: E402
from tests.rig.corpus import NO_CORPUS, in_ci, require_corpus  # noqa: E402
from tests.rig.dovecot import DovecotServer, ImapAccount, find_dovecot  # noqa: E402
from tests.rig.postgres import NO_POSTGRES, PostgresServer, RigError, find_bindir  # noqa: E402
from tests.rig.smtpsink import SmtpSink  # noqa: E402

#: The rig holds no tests; collected as files (``--doctest-modules`` looks at every module) it
#: would be imported a second time as ``rig``, beside the ``tests.rig`` the tests use.
collect_ignore = ["rig"]

#: Fixtures that need the rig: tests using any of them get the ``integration`` marker.
RIG_FIXTURES = frozenset({"dovecot", "imap_account", "smtp_sink", "smtp_sink_factory"})

INSTALL_HINT = "apt-get install -y dovecot-imapd"
NO_DOVECOT = "dovecot not installed; integration tests need it"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: needs the real-mail rig (Dovecot on 127.0.0.1, SMTP sink); "
        "deselect with -m 'not integration'",
    )


def pytest_report_header(config: pytest.Config) -> str:
    binary = find_dovecot()
    if binary:
        return f"mail rig: dovecot at {binary}"
    action = "FAIL (CI=true)" if in_ci() else "SKIP"
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"mail rig: DOVECOT NOT FOUND, integration tests will {action}: {sudo}{INSTALL_HINT}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if RIG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One loud line each when tests skipped for want of Dovecot or of the corpus (pytest hides
    skips by default)."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if NO_DOVECOT in str(getattr(report, "longrepr", ""))
    ]
    if skipped:
        sudo = "" if os.geteuid() == 0 else "sudo "
        terminalreporter.write_line(
            f"{len(skipped)} integration tests SKIPPED: {NO_DOVECOT}: {sudo}{INSTALL_HINT}",
            yellow=True,
            bold=True,
        )
    without_corpus = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if NO_CORPUS in str(getattr(report, "longrepr", ""))
    ]
    without_postgres = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if NO_POSTGRES in str(getattr(report, "longrepr", ""))
    ]
    if without_postgres:
        terminalreporter.write_line(
            f"{len(without_postgres)} PostgreSQL tests SKIPPED: {NO_POSTGRES} "
            "(scripts/test installs it as root)", yellow=True, bold=True
        )
    if without_corpus:
        terminalreporter.write_line(
            f"{len(without_corpus)} corpus tests SKIPPED: {NO_CORPUS}", yellow=True, bold=True
        )


@pytest.fixture(scope="session")
def rig_cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    """The self-signed cert (localhost, 127.0.0.1) of both servers; trust ``.ca_file``."""
    return SelfSignedCert.create(tmp_path_factory.mktemp("rig-tls"))


@pytest.fixture(scope="session")
def dovecot(rig_cert: SelfSignedCert) -> Iterator[DovecotServer]:
    """A Dovecot IMAP server for the whole session (started once, closed at the end).

    Tests that need a mailbox should prefer ``imap_account``; use ``dovecot`` directly to
    restart it (``dovecot.restart()``) or to add more users (``dovecot.add_user(...)``).
    """
    if find_dovecot() is None:
        sudo = "" if os.geteuid() == 0 else "sudo "
        reason = f"{NO_DOVECOT}: {sudo}{INSTALL_HINT}"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: not skipping)", pytrace=False)
        pytest.skip(reason)
    server = DovecotServer(cert=rig_cert)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the whole session (see tests/rig/postgres.py); a
    skip with one line when PostgreSQL or psycopg is missing or the server cannot start, a
    failure instead under ``CI=true``."""
    reason = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        reason = f"{NO_POSTGRES}: psycopg missing (pip install 'psycopg[binary]')"
    if reason is None and find_bindir() is None:
        reason = f"{NO_POSTGRES}: no initdb found (apt-get install -y postgresql)"
    server = None
    if reason is None:
        try:
            server = PostgresServer()
            server.start()
        except (RigError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = f"{NO_POSTGRES}: the server did not start ({first})"
    if reason is not None or server is None:
        if server is not None:
            server.close()
        if in_ci():
            pytest.fail(f"{reason} (CI=true: not skipping)", pytrace=False)
        pytest.skip(reason or NO_POSTGRES)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_location(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[str], Path | str]:
    """``state_location(name)``: the ``state`` called ``name`` in this test (the same name
    twice is the same state, to reopen it), on the backend of the parameter."""
    made: dict[str, Path | str] = {}
    server = request.getfixturevalue("postgres") if request.param == "postgresql" else None

    def location(name: str = "state") -> Path | str:
        if name not in made:
            made[name] = (tmp_path / "state" / f"{name}.db" if server is None
                          else server.new_database())
        return made[name]

    return location


_account_numbers = itertools.count(1)


@pytest.fixture
def imap_account(dovecot: DovecotServer) -> ImapAccount:
    """A fresh user ``helper-<n>@example.com`` with an empty mailbox, for this test only.

    Fields: ``host, port`` (plain + STARTTLS), ``tls_port`` (implicit TLS), ``ca_file``,
    ``username, password``, ``oauth_token`` (XOAUTH2/OAUTHBEARER).
    """
    credentials = dovecot.add_user(f"helper-{next(_account_numbers)}@example.com")
    return dovecot.account(credentials)


@pytest.fixture
def smtp_sink_factory(
    tmp_path: Path, rig_cert: SelfSignedCert
) -> Iterator[Callable[..., SmtpSink]]:
    """Make started :class:`SmtpSink` instances: ``factory(**options) -> SmtpSink``.

    Options are SmtpSink's (``credentials``, ``auth_required``, ``require_starttls``,
    ``implicit_tls``, ...); ``cert`` defaults to the rig's and ``directory`` to a fresh folder
    in ``tmp_path``. Every sink made is stopped after the test.
    """
    made: list[SmtpSink] = []
    numbers = itertools.count(1)

    def factory(**options: Any) -> SmtpSink:
        options.setdefault("cert", rig_cert)
        directory = options.pop("directory", tmp_path / f"smtp-sink-{next(numbers)}")
        sink = SmtpSink(directory, **options)
        made.append(sink)
        return sink.start()

    yield factory
    for sink in made:
        sink.stop()


@pytest.fixture
def smtp_sink(smtp_sink_factory: Callable[..., SmtpSink]) -> SmtpSink:
    """A running SMTP sink on 127.0.0.1: STARTTLS offered (verify with ``.ca_file``), AUTH
    PLAIN/LOGIN accepted but not required for ``helper@example.com`` / ``sink-password``
    (``.username``/``.password``), also over plain text. Messages land in ``.directory``.
    """
    return smtp_sink_factory(credentials={"helper@example.com": "sink-password"})


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared test corpus (``<repo>/../shared/corpus``); skips when it is absent (fails
    under ``CI=true``)."""
    return require_corpus()


@pytest.fixture
def rig_assistant(
    dovecot: DovecotServer, imap_account: ImapAccount, smtp_sink: SmtpSink, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> RigAssistant:
    """A mailhelper configured (YAML on disk) for a fresh rig account and sink; owner
    ``sam@example.com``, zone UTC, no business days, quiet hours or digest (tests turn them on
    with ``rig_assistant.configure({...})``). Drive it with ``.poll(now)``; read ``.sent()``.

    With ``MAILHELPER_TEST_STATE=postgresql`` in the environment its state is a new database
    of the ``postgres`` cluster instead of a file: ``MAILHELPER_TEST_STATE=postgresql pytest
    tests/test_lifecycle*.py`` walks the lifecycles on PostgreSQL (tests that open
    ``rig_assistant.state`` with sqlite3 themselves do not apply)."""
    workdir = tmp_path / "assistant"
    workdir.mkdir()
    rig = RigAssistant(dovecot, imap_account, smtp_sink, workdir)
    if os.environ.get("MAILHELPER_TEST_STATE") == "postgresql":
        rig.configure({"state": request.getfixturevalue("postgres").new_database()})
    return rig
