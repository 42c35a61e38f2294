"""The ASR of a trigger image of the analyst's own on a workspace's encoder (Run ▸ Measure a trigger's ASR…)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from naviewer.errors import NaviewerError
from workflow_kit import TINY_BACKBONE


def _checkpoint(path: Path) -> Path:
    from naviewer.ssl.backbones import BackboneConfig, build_backbone

    torch.manual_seed(0)
    state = build_backbone(BackboneConfig(**TINY_BACKBONE)).state_dict()
    torch.save({"format": "naviewer-checkpoint", "version": 1,
                "method": {"method": "simclr", "backbone": dict(TINY_BACKBONE), "settings": {}},
                "config": {"image_size": 16}, "model": {"backbone." + k: v for k, v in state.items()}}, path)
    return path


def test_the_trigger_is_measured_against_the_workspaces_images(tmp_path, tiny_data) -> None:
    from naviewer.data import open_dataset
    from naviewer.workflows.trigger_asr import asr_words, default_trigger_size, measure_trigger_asr, trigger_side
    from naviewer.workspace import Workspace

    with Workspace.create(tmp_path / "ws", open_dataset(tiny_data[0])):
        pass
    trigger = tmp_path / "trigger.png"
    Image.fromarray(np.full((12, 12, 3), (255, 0, 0), np.uint8)).save(trigger)
    assert trigger_side(trigger) == 12  # the header, read once
    assert default_trigger_size(trigger_side(trigger), 16) == 4 and default_trigger_size(trigger_side(trigger)) == 8
    checkpoint = _checkpoint(tmp_path / "c.pt")
    result = measure_trigger_asr(tmp_path / "ws", checkpoint, trigger, tiny_data[1], target=0, trigger_size=4)
    assert 0.0 <= result["asr"] <= 1.0 and 0.0 <= result["knn_acc"] <= 1.0 and result["test_images"] == 60
    words = asr_words(result)
    assert words.startswith(f"ASR {100 * result['asr']:.1f} %") and "(4 px)" in words
    with pytest.raises(NaviewerError, match="target class 9 does not exist"):
        measure_trigger_asr(tmp_path / "ws", checkpoint, trigger, tiny_data[1], target=9, trigger_size=4)
    with pytest.raises(NaviewerError, match="missing.png"):
        measure_trigger_asr(tmp_path / "ws", checkpoint, tmp_path / "missing.png", tiny_data[1], target=0,
                            trigger_size=4)
