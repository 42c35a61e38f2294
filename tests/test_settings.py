"""One strict loader for every settings dataclass (issue 16 item 5): unknown keys are named errors,
legacy keys are mapped or dropped, the workspace's [dift] section is merged with overrides in one place."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from naviewer.errors import NaviewerError
from naviewer.settings import settings_from_dict


@dataclass
class _Settings:
    alpha: int = 1
    beta: str = "b"


def test_unknown_keys_are_named_and_legacy_keys_mapped_or_dropped() -> None:
    with pytest.raises(NaviewerError, match=r"unknown example setting\(s\): gamma, zeta; known: alpha, beta"):
        settings_from_dict(_Settings, {"alpha": 2, "zeta": 0, "gamma": 1}, "example")
    from naviewer.defense.config import DiftConfig

    with pytest.raises(NaviewerError, match=r"unknown DIFT setting\(s\): ls_alpah; did you mean ls_alpha, ls_gamma\?$"):
        DiftConfig.from_dict({"ls_alpah": 0.7})   # many settings: the nearest names, not all of them
    legacy = {"old_alpha": "alpha", "retired": None}
    assert settings_from_dict(_Settings, {"old_alpha": 5, "retired": True}, "example", legacy) == _Settings(alpha=5)
    assert settings_from_dict(_Settings, {"old_alpha": 5, "alpha": 7}, "example", legacy).alpha == 7  # the new key wins
    assert settings_from_dict(_Settings, None, "example") == _Settings()


def test_train_config_refuses_unknown_keys_and_still_loads_saved_ones() -> None:
    from naviewer.ssl.trainer import TrainConfig

    with pytest.raises(NaviewerError, match="unknown training setting.*epoch_count"):
        TrainConfig.from_dict({"method": "simclr", "epoch_count": 3})
    saved = TrainConfig(method="byol", epochs=3).to_dict()
    del saved["augment_recipe"]  # a checkpoint from before recipes were recorded
    assert TrainConfig.from_saved(saved) == TrainConfig(method="byol", epochs=3, augment_recipe="aug+")


def test_augment_and_backbone_settings_use_the_same_loader() -> None:
    from naviewer.ssl.augment import AugmentSettings
    from naviewer.ssl.backbones import BackboneConfig

    with pytest.raises(NaviewerError, match="unknown augmentation setting.*blur_q"):
        AugmentSettings.from_dict({"blur_q": 0.5})
    with pytest.raises(NaviewerError, match="unknown backbone setting.*layers"):
        BackboneConfig.from_any({"layers": 3})


def test_dift_config_from_workspace_merges_the_section_with_overrides(tmp_path) -> None:
    from naviewer.data.base import ArrayDataset
    from naviewer.defense.config import DiftConfig
    from naviewer.workspace import Workspace

    import numpy as np

    images = np.zeros((6, 8, 8, 3), np.uint8)
    with Workspace.create(tmp_path / "ws", ArrayDataset(images, np.arange(6) % 2, ["a", "b"])) as ws:
        assert DiftConfig.from_workspace(ws) == DiftConfig()
        ws.update_config("dift", {"k": 7, "patience": 3})
        config = DiftConfig.from_workspace(ws, {"patience": 5})
        assert (config.k, config.patience) == (7, 5)
        with pytest.raises(NaviewerError, match="unknown DIFT setting.*bogus"):
            DiftConfig.from_workspace(ws, {"bogus": 1})


def test_a_setting_of_the_wrong_type_is_an_error_naming_it_not_a_crash_later():
    from naviewer.defense.config import DiftConfig

    with pytest.raises(NaviewerError, match="ls_soft_threshold='abc': expected a number"):
        DiftConfig.from_dict({"ls_soft_threshold": "abc"})
    with pytest.raises(NaviewerError, match="k=1.5: expected a whole number"):
        DiftConfig.from_dict({"k": 1.5})
    with pytest.raises(NaviewerError, match="normalize='yes': expected true or false"):
        DiftConfig.from_dict({"normalize": "yes"})
    with pytest.raises(NaviewerError, match="expected a number"):
        DiftConfig.from_dict({"ls_alpha": True})      # a bool is not a number here
    with pytest.raises(NaviewerError, match="ls_gamma=inf: expected a finite number"):
        DiftConfig.from_dict({"ls_gamma": float("inf")})  # TOML allows inf and nan; no setting means them


def test_numbers_are_coerced_where_nothing_is_lost():
    from naviewer.defense.config import DiftConfig

    config = DiftConfig.from_dict({"k": 10.0, "ls_gamma": 20, "ivf_nlist": None})
    assert config.k == 10 and isinstance(config.k, int)
    assert config.ls_gamma == 20.0 and isinstance(config.ls_gamma, float)
    assert config.ivf_nlist is None
