"""Each method trains with its paper's augmentation by default, and every run records its recipe."""

from __future__ import annotations

import pytest

from naviewer.catalogue import LEGACY_RECIPE, METHOD_RECIPES, RECIPES, augment_values, recipes_help
from naviewer.errors import NaviewerError
from naviewer.ssl.augment import AugmentSettings
from naviewer.ssl.trainer import TrainConfig


@pytest.mark.parametrize("method", sorted(METHOD_RECIPES))
def test_default_recipe_is_the_methods_own_and_recorded(method):
    config = TrainConfig(method=method, epochs=1)
    assert config.augment_recipe == METHOD_RECIPES[method]
    assert config.to_dict()["augment_recipe"] == METHOD_RECIPES[method]
    AugmentSettings.from_dict(config.augment_settings())  # every recipe is a valid AugmentSettings


def test_simclr_cifar_recipe_and_overrides():
    simclr = TrainConfig(method="simclr", epochs=1, image_size=16).augment_settings()
    assert simclr["scale"] == (0.08, 1.0) and simclr["blur_p"] == 0.0 and simclr["image_size"] == 16
    aug_plus = TrainConfig(method="simclr", epochs=1, augment_recipe="aug+", augment={"blur_p": 0.1}).augment_settings()
    assert aug_plus["scale"] == (0.2, 1.0) and aug_plus["blur_p"] == 0.1
    with pytest.raises(NaviewerError, match="recipe"):
        TrainConfig(method="simclr", epochs=1, augment_recipe="nope")


def test_a_checkpoint_from_before_recipes_resumes_with_aug_plus():
    saved = TrainConfig(method="simclr", epochs=1).to_dict()
    del saved["augment_recipe"]
    assert TrainConfig.from_saved(saved).augment_recipe == LEGACY_RECIPE == "aug+"
    assert TrainConfig.from_saved({**saved, "augment_recipe": "simclr-cifar"}).augment_recipe == "simclr-cifar"


def test_help_lists_every_recipe():
    text = recipes_help()
    assert all(name in text for name in RECIPES) and "default of simclr" in text
    assert augment_values("aug+")["blur_p"] == 0.5


def test_the_method_classes_take_their_defaults_from_the_catalogue():
    from naviewer.catalogue import METHODS
    from naviewer.ssl.methods import build_method

    for name, (label, lr, wd) in METHODS.items():
        cls = type(build_method(name, backbone={"arch": "resnet10", "width": 8, "cifar_stem": True}))
        assert cls.name == name and cls.default_lr == lr and cls.default_weight_decay == wd and label
