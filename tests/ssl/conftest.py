"""Fixtures for the SSL tests: one thread per test, a tiny labelled store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from sslkit import make_store  # noqa: E402

from naviewer.data.store import ImageStore  # noqa: E402


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tiny_store() -> ImageStore:
    return make_store()
