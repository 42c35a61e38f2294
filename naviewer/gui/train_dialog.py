"""The Train dialog: method, augmentation recipe, epochs, batch size, learning rate, device — validated as you type.

Numbers are typed into line edits (not spin boxes that silently clamp) so that a bad value is
shown with its reason and OK stays disabled until every field is valid. The dialog produces a
plain settings dict; what runs it is the main window's training job factory.

The methods, their default learning rates and the augmentation recipes come from
:mod:`naviewer.catalogue` (torch-free), the one place the CLI and the method classes read them
too. The recipe defaults to the method's paper recipe (``augment_recipe`` "", which
``TrainConfig`` resolves and records); another can be named, e.g. MoCo v2's ``aug+``, which the
attack papers' toolbox uses for every method.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from naviewer.catalogue import METHOD_NAMES, RECIPES, default_lr, default_recipe, method_label

DEVICES = ("auto", "cpu", "cuda", "mps")
#: ``augment_recipe`` "" is the method's own paper recipe (TrainConfig resolves it)
DEFAULTS: dict[str, Any] = {"method": "simclr", "augment_recipe": "", "epochs": 100, "batch_size": 256, "lr": None,
                            "device": "auto"}


def _parse_int(text: str, name: str, low: int, high: int) -> tuple[Optional[int], Optional[str]]:
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None, f"{name} is required."
    try:
        value = int(text)
    except ValueError:
        return None, f"{name} must be a whole number, not '{text}'."
    if not low <= value <= high:
        return None, f"{name} must be between {low:,} and {high:,}."
    return value, None


def validate_train_settings(
    raw: dict[str, Any],
    n_samples: Optional[int] = None,
    available_devices: Optional[Iterable[str]] = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse the dialog's raw strings: ``(settings, errors)`` with one message per bad field.

    ``n_samples``: size of the training set, if known (a batch cannot be larger; contrastive
    losses need at least two images). ``available_devices``: devices torch reports, if already
    probed (the dialog never imports torch itself).
    """
    settings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    method = str(raw.get("method", "")).strip().lower()
    if method not in METHOD_NAMES:
        errors["method"] = f"Unknown method '{method}'; choose one of {', '.join(METHOD_NAMES)}."
    settings["method"] = method

    recipe = str(raw.get("augment_recipe") or "").strip()
    if recipe and recipe not in RECIPES:
        errors["augment_recipe"] = f"Unknown augmentation recipe '{recipe}'; choose one of {', '.join(RECIPES)}."
    settings["augment_recipe"] = recipe

    epochs, error = _parse_int(str(raw.get("epochs", "")), "Epochs", 1, 100_000)
    if error:
        errors["epochs"] = error
    settings["epochs"] = epochs

    batch, error = _parse_int(str(raw.get("batch_size", "")), "Batch size", 2, 1_000_000)
    if error:
        errors["batch_size"] = error + (" Contrastive losses need at least 2 images." if batch is None and "between" in error else "")
    elif n_samples is not None and batch > n_samples:
        errors["batch_size"] = f"Batch size {batch:,} is larger than the dataset ({n_samples:,} images)."
    settings["batch_size"] = batch

    lr_text = str(raw.get("lr") if raw.get("lr") is not None else "").strip()
    lr: Optional[float] = None
    if lr_text:  # empty: the method's default learning rate
        try:
            lr = float(lr_text)
        except ValueError:
            errors["lr"] = f"Learning rate must be a number such as 0.5 or 3e-4, not '{lr_text}'."
        else:
            if not (0.0 < lr <= 100.0) or lr != lr:
                errors["lr"] = "Learning rate must be greater than 0 and at most 100."
    settings["lr"] = lr

    device = str(raw.get("device", "auto")).strip().lower()
    if device not in DEVICES:
        errors["device"] = f"Unknown device '{device}'; choose one of {', '.join(DEVICES)}."
    elif available_devices is not None and device != "auto" and device not in set(available_devices):
        names = {"cuda": "CUDA (an NVIDIA GPU)", "mps": "Apple MPS"}
        errors["device"] = f"{names.get(device, device)} is not available on this machine; use auto or cpu."
    settings["device"] = device
    return settings, errors


class TrainDialog(QDialog):
    """Choose how to train; ``settings()`` gives the validated dict once accepted."""

    FIELDS = ("method", "augment_recipe", "epochs", "batch_size", "lr", "device")

    def __init__(
        self,
        parent: Optional[QWidget] = None,
        initial: Optional[dict[str, Any]] = None,
        n_samples: Optional[int] = None,
        available_devices: Optional[Iterable[str]] = None,
        source_description: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train an encoder")
        self.setObjectName("trainDialog")
        self.n_samples = n_samples
        self.available_devices = None if available_devices is None else tuple(available_devices)
        values = {**DEFAULTS, **(initial or {})}

        self.method = QComboBox()
        for name in METHOD_NAMES:
            self.method.addItem(method_label(name), name)
        self.method.setCurrentIndex(max(0, self.method.findData(values["method"])))
        self.recipe = QComboBox()
        self.recipe.addItem("", "")  # the method's paper recipe: its text follows the method
        for name, (_settings, line) in RECIPES.items():
            self.recipe.addItem(name, name)
            self.recipe.setItemData(self.recipe.count() - 1, line, Qt.ItemDataRole.ToolTipRole)
        self.recipe.setCurrentIndex(max(0, self.recipe.findData(values.get("augment_recipe") or "")))
        self.recipe_text = QLabel()
        self.recipe_text.setObjectName("hintLabel")
        self.recipe_text.setWordWrap(True)
        self.epochs = QLineEdit(str(values["epochs"]))
        self.batch_size = QLineEdit(str(values["batch_size"]))
        self.lr = QLineEdit("" if values["lr"] is None else str(values["lr"]))
        self.lr.setToolTip("Base learning rate at batch 256 (scaled with the batch size); empty: the method's default")
        self.device = QComboBox()
        for name in DEVICES:
            self.device.addItem(name, name)
        self.device.setCurrentIndex(max(0, self.device.findData(values["device"])))

        form = QFormLayout()
        form.addRow("Method", self.method)
        form.addRow("Augmentation", self.recipe)
        form.addRow(self.recipe_text)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Device", self.device)

        self.source_label = QLabel(source_description)
        self.source_label.setObjectName("hintLabel")
        self.source_label.setWordWrap(True)
        self.error_label = QLabel("")
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        self.setMinimumWidth(440)
        if source_description:
            layout.addWidget(self.source_label)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        for edit in (self.epochs, self.batch_size, self.lr):
            edit.textChanged.connect(self._revalidate)
        self.method.currentIndexChanged.connect(self._method_changed)
        self.device.currentIndexChanged.connect(self._revalidate)
        self.recipe.currentIndexChanged.connect(self._recipe_changed)
        self._settings: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._method_changed()

    @property
    def ok_button(self):
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def raw_values(self) -> dict[str, Any]:
        return {
            "method": self.method.currentData(),
            "augment_recipe": self.recipe.currentData() or "",
            "epochs": self.epochs.text(),
            "batch_size": self.batch_size.text(),
            "lr": self.lr.text(),
            "device": self.device.currentData(),
        }

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def on_environment(self, info: dict) -> None:
        """Slot for :class:`~naviewer.gui.environment.EnvironmentProbe.ready`."""
        self.set_available_devices(info.get("devices", ["cpu"]))

    def set_available_devices(self, devices: Iterable[str]) -> None:
        """Called when the background device probe answers; re-checks the device choice."""
        self.available_devices = tuple(devices)
        self._revalidate()

    def _method_changed(self, _index: int = 0) -> None:
        method = self.method.currentData()
        self.lr.setPlaceholderText(f"method default ({default_lr(method):g})")
        own = default_recipe(method)
        self.recipe.setItemText(0, f"{method_label(method)}'s paper recipe ({own})")
        self.recipe.setItemData(0, RECIPES[own][1], Qt.ItemDataRole.ToolTipRole)
        self._recipe_changed()

    def _recipe_changed(self, _index: int = 0) -> None:
        name = self.recipe.currentData() or default_recipe(self.method.currentData())
        self.recipe_text.setText(RECIPES[name][1])
        self._revalidate()

    def _revalidate(self, *_args: Any) -> None:
        self._settings, self.errors = validate_train_settings(self.raw_values(), self.n_samples, self.available_devices)
        for name, edit in (("epochs", self.epochs), ("batch_size", self.batch_size), ("lr", self.lr)):
            invalid = name in self.errors
            if edit.property("invalid") != invalid:
                edit.setProperty("invalid", invalid)
                edit.style().unpolish(edit)
                edit.style().polish(edit)
            edit.setToolTip(self.errors.get(name, ""))
        self.error_label.setText("\n".join(self.errors[f] for f in self.FIELDS if f in self.errors))
        self.ok_button.setEnabled(not self.errors)

    def accept(self) -> None:
        if self.errors:
            return
        super().accept()
