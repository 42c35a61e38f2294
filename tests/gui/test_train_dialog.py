"""The Train dialog validates as you type: bad values disable OK and say why."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from naviewer.gui.train_dialog import TrainDialog, validate_train_settings


def test_defaults_are_valid(qtbot):
    dialog = TrainDialog()
    qtbot.addWidget(dialog)
    assert dialog.ok_button.isEnabled() and dialog.error_label.text() == ""
    assert dialog.settings() == {"method": "simclr", "augment_recipe": "", "epochs": 100, "batch_size": 256, "lr": None,
                                 "device": "auto", "backbone": {"arch": "resnet18", "cifar_stem": True, "width": 64},
                                 "image_size": 32, "threads": None, "dift": False, "leave_out_confirmed": False}


def test_a_narrow_encoder_and_a_small_image_size_can_be_chosen(qtbot):
    """The dialog trained ResNet-18 width 64 at 32 px whatever the data (12 min an epoch on a 2-core CPU), while its
    slow-training advice said to choose a narrower encoder (a newcomer's session)."""
    from naviewer.gui.training import train_config_values

    dialog = TrainDialog(n_samples=1000)
    qtbot.addWidget(dialog)
    dialog.arch.setCurrentIndex(dialog.arch.findData("resnet10"))
    dialog.width_box.setCurrentText("8")
    dialog.image_size.setText("16")
    assert dialog.ok_button.isEnabled()
    values = train_config_values(dialog.settings())
    assert values["backbone"] == {"arch": "resnet10", "cifar_stem": True, "width": 8} and values["image_size"] == 16
    dialog.image_size.setText("4")
    assert not dialog.ok_button.isEnabled() and "Image size must be between 8" in dialog.error_label.text()
    dialog.image_size.setText("16")
    dialog.width_box.setCurrentText("wide")
    assert not dialog.ok_button.isEnabled() and "Width must be a whole number" in dialog.error_label.text()


def test_bad_values_disable_ok_and_explain(qtbot):
    dialog = TrainDialog(n_samples=1000)
    qtbot.addWidget(dialog)
    dialog.epochs.setText("0")
    assert not dialog.ok_button.isEnabled()
    assert "Epochs must be between 1" in dialog.error_label.text()
    assert dialog.epochs.property("invalid") is True
    dialog.epochs.setText("20")
    dialog.batch_size.setText("4096")
    assert "larger than the dataset (1,000 images)" in dialog.error_label.text()
    dialog.batch_size.setText("1")
    assert "at least 2" in dialog.error_label.text()
    dialog.batch_size.setText("128")
    dialog.lr.setText("fast")
    assert "Learning rate must be a number" in dialog.error_label.text()
    dialog.lr.setText("-1")
    assert not dialog.ok_button.isEnabled()
    dialog.lr.setText("3e-4")
    assert dialog.ok_button.isEnabled() and dialog.error_label.text() == ""
    dialog.accept()
    assert dialog.settings()["lr"] == 3e-4 and dialog.settings()["batch_size"] == 128


def test_empty_lr_means_method_default(qtbot):
    dialog = TrainDialog()
    qtbot.addWidget(dialog)
    dialog.method.setCurrentIndex(dialog.method.findData("byol"))
    assert dialog.lr.text() == "" and "0.05" in dialog.lr.placeholderText()
    assert dialog.ok_button.isEnabled() and dialog.settings()["lr"] is None
    qtbot.keyClicks(dialog.lr, "0.2")
    assert dialog.settings() == {**dialog.settings(), "method": "byol", "lr": 0.2}


def test_unavailable_device_is_refused_once_probed(qtbot):
    dialog = TrainDialog()
    qtbot.addWidget(dialog)
    dialog.device.setCurrentIndex(dialog.device.findData("cuda"))
    assert dialog.ok_button.isEnabled()  # not probed yet: cannot know
    dialog.set_available_devices(["cpu"])
    assert not dialog.ok_button.isEnabled() and "not available" in dialog.error_label.text()
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    assert dialog.ok_button.isEnabled()


def test_validate_function_reports_every_field():
    _, errors = validate_train_settings({"method": "swav", "epochs": "x", "batch_size": "", "lr": "0", "device": "tpu"})
    assert set(errors) == {"method", "epochs", "batch_size", "lr", "device"}
    settings, errors = validate_train_settings({"method": "mocov2", "epochs": "1,000", "batch_size": "512", "lr": "0.06", "device": "cpu"})
    assert not errors and settings["epochs"] == 1000


def test_methods_learning_rates_and_recipes_come_from_the_catalogue(qtbot):
    """Issue 12: one list of methods and defaults (naviewer.catalogue); the recipe defaults to the paper's."""
    from naviewer.catalogue import METHOD_NAMES, RECIPES, default_lr, method_label

    dialog = TrainDialog()
    qtbot.addWidget(dialog)
    assert [dialog.method.itemData(i) for i in range(dialog.method.count())] == list(METHOD_NAMES)
    assert [dialog.method.itemText(i) for i in range(dialog.method.count())] == [method_label(m) for m in METHOD_NAMES]
    # the method's own, a separator, then every named recipe
    assert [dialog.recipe.itemData(i) for i in range(dialog.recipe.count())] == ["", None, *RECIPES]
    assert dialog.recipe.currentIndex() == 0 and dialog.recipe.itemText(0) == "SimCLR's paper recipe (simclr-cifar)"
    assert dialog.recipe_text.text() == RECIPES["simclr-cifar"][1]
    for method in METHOD_NAMES:
        dialog.method.setCurrentIndex(dialog.method.findData(method))
        assert f"{default_lr(method):g}" in dialog.lr.placeholderText()
    dialog.method.setCurrentIndex(dialog.method.findData("simsiam"))
    assert dialog.recipe.itemText(0) == "SimSiam's paper recipe (simsiam-cifar)" and "without blur" in dialog.recipe_text.text()
    assert dialog.settings()["augment_recipe"] == ""  # TrainConfig resolves "" to the method's own
    dialog.recipe.setCurrentIndex(dialog.recipe.findData("aug+"))
    assert dialog.settings()["augment_recipe"] == "aug+" and dialog.recipe_text.text() == RECIPES["aug+"][1]
    assert dialog.recipe.itemData(dialog.recipe.currentIndex(), Qt.ItemDataRole.ToolTipRole) == RECIPES["aug+"][1]
    _, errors = validate_train_settings({**dialog.raw_values(), "augment_recipe": "fancy"})
    assert "augment_recipe" in errors and "aug+" in errors["augment_recipe"]


def test_the_recipe_reaches_the_training_config():
    pytest.importorskip("naviewer.ssl.trainer")
    from naviewer.gui.training import train_config_values
    from naviewer.ssl.trainer import TrainConfig

    base = {"method": "byol", "epochs": 1, "batch_size": 8, "lr": None, "device": "cpu"}
    assert TrainConfig.from_dict(train_config_values({**base, "augment_recipe": ""})).augment_recipe == "byol"
    assert TrainConfig.from_dict(train_config_values({**base, "augment_recipe": "aug+"})).augment_recipe == "aug+"


def test_the_thread_count_is_a_field_checked_against_the_cores_and_recorded_with_the_run(qtbot, monkeypatch):
    """A run's figures depend on its thread count (the demo's 1- and 2-thread runs differ) and a shared machine wants
    fewer: the form had no field for it, every training took all cores but one (session 31's list)."""
    import naviewer.gui.train_dialog as td
    from naviewer.gui.training import train_config_values

    monkeypatch.setattr(td.os, "cpu_count", lambda: 4)
    dialog = TrainDialog()
    qtbot.addWidget(dialog)
    assert dialog.threads.text() == "" and dialog.threads.placeholderText().startswith("auto (")
    assert "all cores but one" in dialog.threads.toolTip()
    for bad in ("0", "5", "two"):
        dialog.threads.setText(bad)
        assert not dialog.ok_button.isEnabled() and "Threads" in dialog.error_label.text()
        assert "4 cores" in dialog.errors["threads"] and dialog.threads.property("invalid")
    dialog.threads.setText("2")
    assert dialog.ok_button.isEnabled() and dialog.settings()["threads"] == 2
    assert train_config_values(dialog.settings())["num_threads"] == 2
    dialog.threads.setText("")
    assert dialog.settings()["threads"] is None and "num_threads" not in train_config_values(dialog.settings())
    again = TrainDialog(initial={"threads": 3})  # the last training's settings, as the window passes them
    qtbot.addWidget(again)
    assert again.threads.text() == "3"


def test_the_forms_rows_stay_put_when_the_cpu_warning_goes(qtbot):
    """Picking ResNet-10 hid the "slow on a CPU" warning below the form and the rows moved down 16 px: a newcomer's
    next click opened the Encoder list instead of Width. The freed space goes below the form."""
    dialog = TrainDialog(n_samples=980, initial={"batch_size": 256}, available_devices=["cpu"],
                         source_description="Workspace: /data/ws1")  # initial: no CPU preset, the user's own choice
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    def rows() -> list[int]:
        return [w.mapTo(dialog, w.rect().topLeft()).y() for w in (dialog.arch, dialog.width_box, dialog.device)]

    assert dialog.warning_label.isVisible()  # ResNet-18 width 64 at batch 256 on a CPU
    before = rows()
    dialog.arch.setCurrentIndex(dialog.arch.findData("resnet10"))
    dialog.width_box.setCurrentText("16")
    qtbot.waitUntil(lambda: not dialog.warning_label.isVisible(), timeout=2000)
    assert rows() == before


def test_a_first_training_on_a_cpu_starts_from_a_cpu_sized_encoder(qtbot):
    """ResNet-18 width 64 at batch 256 took minutes a step on a 2-core CPU, and every newcomer had to find Width and
    Batch size first (sessions 21-27). Without a GPU a first training starts from ResNet-10 width 16 at batch 128 and
    says so; the user's earlier choice, a GPU, or a field changed before the device probe answered is kept."""
    from naviewer.gui.train_dialog import CPU_DEFAULTS

    def backbone(dialog):
        settings = dialog.settings()
        return settings["backbone"]["arch"], settings["backbone"]["width"], settings["batch_size"]

    cpu = (CPU_DEFAULTS["arch"], CPU_DEFAULTS["width"], CPU_DEFAULTS["batch_size"])
    first = TrainDialog(n_samples=1000, available_devices=["cpu"])
    qtbot.addWidget(first)
    assert backbone(first) == cpu and first.cpu_note.isVisibleTo(first) and not first.warning_label.isVisibleTo(first)

    probed_later = TrainDialog(n_samples=1000)  # the window's probe answers after the dialog opened
    qtbot.addWidget(probed_later)
    assert backbone(probed_later) == ("resnet18", 64, 256)
    probed_later.set_available_devices(["cpu"])
    assert backbone(probed_later) == cpu
    probed_later.set_available_devices(["cpu"])  # once only: a later answer does not undo the user's edits
    probed_later.batch_size.setText("64")
    probed_later.set_available_devices(["cpu"])
    assert backbone(probed_later)[2] == 64

    for kwargs in ({"available_devices": ["cpu", "cuda"]}, {"available_devices": ["cpu"], "initial": {"epochs": 50}}):
        kept = TrainDialog(n_samples=1000, **kwargs)
        qtbot.addWidget(kept)
        assert backbone(kept) == ("resnet18", 64, 256) and not kept.cpu_note.isVisibleTo(kept), kwargs

    edited = TrainDialog(n_samples=1000)
    qtbot.addWidget(edited)
    edited.width_box.setCurrentText("32")  # chosen before the probe answered
    edited.set_available_devices(["cpu"])
    assert backbone(edited) == ("resnet18", 32, 256) and not edited.cpu_note.isVisibleTo(edited)


def test_the_image_size_never_starts_above_the_images_own(qtbot):
    """32 px was offered on 16 px images (4x slower on upscaled pixels) with no word of their size (a newcomer,
    session 32): the form starts at the images' size and says it."""
    from naviewer.gui.train_dialog import TrainDialog

    dialog = TrainDialog(None, None, native_size=16)
    qtbot.addWidget(dialog)
    assert dialog.image_size.text() == "16" and "about 16 px" in dialog.image_size.toolTip()
    dialog = TrainDialog(None, {"image_size": 24}, native_size=64)  # below the images' size: the user's choice
    qtbot.addWidget(dialog)
    assert dialog.image_size.text() == "24"


def test_the_workspace_summary_reads_the_images_size_from_a_few_headers(tmp_path):
    from PIL import Image

    from naviewer.data import open_dataset
    from naviewer.gui.tasks import _native_size
    from naviewer.workspace import Workspace

    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 12), (40 * i, ord(c), 0)).save(tmp_path / "d" / c / f"{i}.png")
    with Workspace.create(tmp_path / "ws", open_dataset(tmp_path / "d")) as ws:
        assert _native_size(ws) == 16
