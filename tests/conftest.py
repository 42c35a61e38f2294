"""Shared test fixtures: the real CIFAR-10 subset, offscreen Qt, small thread counts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common_kit, the helpers shared across folders
_DEFAULT_CIFAR = REPO.parent / "shared" / "data" / "cifar10-subset"


def cifar10_subset_path() -> Path | None:
    """Root holding ``cifar-10-batches-py/``: $NAVIEWER_CIFAR10_SUBSET, else ../shared/data/cifar10-subset."""
    env = os.environ.get("NAVIEWER_CIFAR10_SUBSET")
    path = Path(env) if env else _DEFAULT_CIFAR
    return path if (path / "cifar-10-batches-py").is_dir() else None


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """The real CIFAR-10 subset. Missing data fails in CI (CI=true) and skips only on a dev machine."""
    path = cifar10_subset_path()
    if path is None:
        message = "CIFAR-10 subset not found: set NAVIEWER_CIFAR10_SUBSET to the folder holding cifar-10-batches-py/"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
