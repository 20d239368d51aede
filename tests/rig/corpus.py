"""Where the shared mail corpus lies, and what a test does when it is not there.

The corpus is read in place, at ``../shared/corpus`` beside the checkout, never copied in.
Outside CI a missing corpus skips the tests that read it (one line in the summary says so);
with ``CI=true`` it fails them, so CI can never pass by reading less mail than it should.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS_DIR = Path(__file__).resolve().parents[3] / "shared" / "corpus"
NO_CORPUS = f"mail corpus not found at {CORPUS_DIR}"


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``), where nothing may skip for want of a part."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_corpus(module_level: bool = False) -> Path:
    """The corpus folder; a skip when it is absent, or a failure under ``CI=true``."""
    if (CORPUS_DIR / "expected.yaml").is_file():
        return CORPUS_DIR
    if in_ci():
        pytest.fail(f"{NO_CORPUS} (CI=true: not skipping)", pytrace=False)
    pytest.skip(NO_CORPUS, allow_module_level=module_level)
