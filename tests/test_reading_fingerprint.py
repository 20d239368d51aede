"""No change of the reading code may change a reading: every message of the corpus and of
the benchmark's generated mail must read exactly as recorded in
``tests/data/reading_fingerprints.json`` (see :mod:`tests.reading_fingerprint`, which also
says how to regenerate it when a change of reading is meant)."""

from __future__ import annotations

import json

import pytest

from tests.reading_fingerprint import DATA, GENERATED, fingerprints
from tests.rig.corpus import require_corpus

RECORDED: dict[str, dict[str, str]] = json.loads(DATA.read_text())


def _differences(found: dict[str, dict[str, str]], keys: list[str]) -> list[str]:
    return [f"{key}: {part}" for key in keys for part in ("mail", "explain")
            if found.get(key, {}).get(part) != RECORDED[key][part]]


@pytest.fixture(scope="module")
def found() -> dict[str, dict[str, str]]:
    return fingerprints(require_corpus())


def test_the_record_covers_the_corpus_and_both_bench_mixes() -> None:
    corpus = [k for k in RECORDED if k.startswith("corpus/")]
    assert len(corpus) > 150  # 151 files and a header-only reading of each .eml
    for mix, count in GENERATED.items():
        assert sum(k.startswith(f"bench-{mix}/") for k in RECORDED) == count


def test_every_corpus_message_reads_as_recorded(found: dict[str, dict[str, str]]) -> None:
    keys = sorted(k for k in RECORDED if k.startswith("corpus/"))
    assert sorted(k for k in found if k.startswith("corpus/")) == keys
    assert _differences(found, keys) == []


def test_every_generated_message_reads_as_recorded(found: dict[str, dict[str, str]]) -> None:
    keys = sorted(k for k in RECORDED if k.startswith("bench-"))
    assert _differences(found, keys) == []
