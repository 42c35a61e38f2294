"""Fixtures for the SSL tests: one thread per test, a tiny labelled store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from common_kit import one_torch_thread  # noqa: E402
from sslkit import make_store  # noqa: E402

from naviewer.data.store import ImageStore  # noqa: E402


_few_threads = pytest.fixture(autouse=True, name="_few_threads")(one_torch_thread)


@pytest.fixture
def tiny_store() -> ImageStore:
    return make_store()
