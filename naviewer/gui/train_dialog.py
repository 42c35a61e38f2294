"""The Train dialog: method, augmentation recipe, epochs, batch size, learning rate, device — validated as you type.

Numbers are typed into line edits (not spin boxes that silently clamp) so that a bad value is
shown with its reason and OK stays disabled until every field is valid. Before starting, the dialog
times a few training steps of the choice in a background job ("Measure speed"; cancellable) and says
how long an epoch and the whole run take, and it warns when the choice is slow (a ResNet-18 at batch
256 on a CPU, or a measured epoch over five minutes, a run over four hours). The dialog produces a
plain settings dict; what runs it is the main window's training job factory.

The methods, their default learning rates and the augmentation recipes come from
:mod:`naviewer.catalogue` (torch-free), the one place the CLI and the method classes read them
too. The recipe defaults to the method's paper recipe (``augment_recipe`` "", which
``TrainConfig`` resolves and records); another can be named, e.g. MoCo v2's ``aug+``, which the
attack papers' toolbox uses for every method.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from naviewer.catalogue import METHOD_NAMES, RECIPES, default_lr, default_recipe, method_label
from naviewer.gui.format import duration
from naviewer.gui.training import DEFAULT_BACKBONE, DEFAULT_IMAGE_SIZE, backbone_text, slow_warning

#: what a speed estimate re-measures on (the epochs only rescale it; the learning rate changes nothing)
MEASURED_FIELDS = ("method", "augment_recipe", "batch_size", "device", "backbone", "image_size", "threads")
#: the encoders the dialog offers (the CLI's --arch) and their widths (64: the standard network; 8-32: narrow nets
#: that train in minutes on a CPU)
ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50")
WIDTHS = (8, 16, 32, 64)
#: backbones too heavy for a CPU at a large batch (warned about before any measurement)
HEAVY_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def cpu_warning(settings: dict[str, Any], available_devices: Optional[Iterable[str]]) -> str:
    """Said before measuring: a heavy encoder at a large batch on a CPU (the device chosen, or ``auto``
    on a machine whose probe found no GPU) is slow; "" otherwise."""
    device = settings.get("device") or "auto"
    devices = tuple(available_devices) if available_devices is not None else None
    on_cpu = device == "cpu" or (device == "auto" and devices is not None and not set(devices) - {"cpu"})
    arch = str({**DEFAULT_BACKBONE, **dict(settings.get("backbone") or {})}.get("arch"))
    batch = settings.get("batch_size") or 0
    if not on_cpu or arch not in HEAVY_ARCHS or batch < 128:
        return ""
    cores = os.cpu_count() or 1
    return (f"{backbone_text(settings)} at batch {batch:,} on a CPU ({cores} core{'s' if cores != 1 else ''}) is slow: "
            "every step can take minutes. See the measured estimate below, or choose a smaller batch, a narrower "
            "encoder (Width 8-16) or a smaller image size.")

DEVICES = ("auto", "cpu", "cuda", "mps")
#: ``augment_recipe`` "" is the method's own paper recipe (TrainConfig resolves it)
DEFAULTS: dict[str, Any] = {"method": "simclr", "augment_recipe": "", "epochs": 100, "batch_size": 256, "lr": None,
                            "device": "auto", "arch": DEFAULT_BACKBONE["arch"], "width": DEFAULT_BACKBONE["width"],
                            "image_size": DEFAULT_IMAGE_SIZE, "threads": None}  # threads None: all cores but one
#: a first training on a machine without a GPU starts from these instead: ResNet-18 width 64 at batch 256 took minutes
#: a step on a 2-core CPU and every newcomer (sessions 21-27) had to find Width and Batch size first. ResNet-10 width
#: 16 at batch 128 is the recipe that formed a backdoor on the CIFAR subset here (results.md, session 26)
CPU_DEFAULTS: dict[str, Any] = {"arch": "resnet10", "width": 16, "batch_size": 128}
CPU_NOTE = ("No GPU here: the form starts from a CPU-sized encoder (ResNet-10, width 16, batch 128; about 25 s an "
            "epoch for 4,000 images at 32 px on 2 cores). ResNet-18 width 64 is the standard network, for a GPU.")


def epoch_time(seconds: float) -> str:
    """"0:42", or "0.4 s" under a second: a small set's epoch read "0:00 an epoch" (a newcomer, session 28)."""
    return f"{seconds:.1g} s" if seconds < 0.95 else duration(seconds)


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

    arch = str(raw.get("arch") or DEFAULT_BACKBONE["arch"]).strip().lower()
    width, error = _parse_int(str(raw.get("width", DEFAULT_BACKBONE["width"])), "Width", 4, 512)
    if arch not in ARCHS:
        errors["arch"] = f"Unknown encoder '{arch}'; choose one of {', '.join(ARCHS)}."
    if error:
        errors["width"] = error
    settings["backbone"] = {**DEFAULT_BACKBONE, "arch": arch, "width": width}
    size, error = _parse_int(str(raw.get("image_size", DEFAULT_IMAGE_SIZE)), "Image size", 8, 1024)
    if error:
        errors["image_size"] = error
    settings["image_size"] = size
    cores = os.cpu_count() or 1
    threads_text = str(raw.get("threads") if raw.get("threads") is not None else "").strip()
    threads: Optional[int] = None
    if threads_text:  # empty: all cores but one (the window keeps one for itself)
        threads, error = _parse_int(threads_text, "Threads", 1, max(1, cores))
        if error:
            errors["threads"] = error + f" This machine has {cores} core{'s' if cores != 1 else ''}."
    settings["threads"] = threads
    settings["dift"] = bool(raw.get("dift"))
    settings["leave_out_confirmed"] = bool(raw.get("leave_out_confirmed"))
    if settings["dift"] and settings["leave_out_confirmed"]:
        errors["dift"] = ("DIFT in the loop trains on every sample: untick it to leave out the confirmed poisons, "
                          "or untick leaving them out.")
    return settings, errors


class TrainDialog(QDialog):
    """Choose how to train; ``settings()`` gives the validated dict once accepted."""

    FIELDS = ("method", "augment_recipe", "epochs", "batch_size", "lr", "device", "arch", "width", "image_size", "threads")

    def __init__(
        self,
        parent: Optional[QWidget] = None,
        initial: Optional[dict[str, Any]] = None,
        n_samples: Optional[int] = None,
        available_devices: Optional[Iterable[str]] = None,
        source_description: str = "",
        estimator: Optional[Callable[[dict[str, Any]], Callable[[Any], dict]]] = None,
        job_manager: Any = None,
        measure_after_probe: bool = False,
        dift_available: bool = False,
        confirmed: int = 0,
        native_size: Optional[int] = None,
    ) -> None:
        """``estimator(settings)`` gives a job function (``fn(ctx) -> dict`` like
        :func:`naviewer.gui.training.estimate_training_time`) that times a few training steps; with it the
        dialog measures the chosen recipe in a background job of ``job_manager`` (cancellable, never on the
        GUI thread) and shows the time an epoch and the whole run take before anything starts.
        ``measure_after_probe``: the first measurement waits for :meth:`set_available_devices` (the
        window's device probe imports torch in its own thread; importing torchvision in a second thread
        at the same time fails with a partially initialised module)."""
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
        self.recipe.insertSeparator(1)  # the method's own apart from the named recipes: "SimCLR's paper recipe
        for name, (_settings, line) in RECIPES.items():  # (simclr-cifar)" above a bare "simclr-cifar" read as a
            self.recipe.addItem(name, name)               # duplicate (a newcomer, session 22)
            self.recipe.setItemData(self.recipe.count() - 1, line, Qt.ItemDataRole.ToolTipRole)
        recipe = values.get("augment_recipe") or ""
        if recipe == default_recipe(values["method"]):  # a run records the method's own by name: it showed the bare
            recipe = ""                                 # "simclr-cifar" entry after a restart (a newcomer, session 28)
        self.recipe.setCurrentIndex(max(0, self.recipe.findData(recipe)))
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

        # the encoder: a newcomer on a CPU needs a narrow one (ResNet-18 width 64 at 32 px took 12 min an epoch)
        backbone = dict(values.get("backbone") or {})
        self.arch = QComboBox()
        for name in ARCHS:
            self.arch.addItem(name.replace("resnet", "ResNet-"), name)
        self.arch.setCurrentIndex(max(0, self.arch.findData(backbone.get("arch", values["arch"]))))
        self.width_box = QComboBox()
        self.width_box.setEditable(True)
        for w in WIDTHS:
            self.width_box.addItem(str(w))
        self.width_box.setCurrentText(str(backbone.get("width", values["width"])))
        self.width_box.setToolTip("channels of the first stage: 64 = the standard network; 8 or 16 train in minutes on a CPU")
        size = values.get("image_size") or DEFAULT_IMAGE_SIZE
        tip = "training crop size in pixels (32 for CIFAR-sized images; 16 trains 4x faster)"
        if native_size:
            # never above the images' own size: 32 px on 16 px images trained 4x slower on upscaled pixels, and
            # nothing said the images' size (a newcomer, session 32)
            try:
                if int(size) > int(native_size):
                    size = max(8, int(native_size))
            except (TypeError, ValueError):
                pass
            tip += f"; the workspace's images are about {int(native_size)} px"
        self.image_size = QLineEdit(str(size))
        self.image_size.setToolTip(tip)
        from naviewer.gui.tasks import training_threads

        # the threads torch trains with: a run's figures depend on them (the demo's 1- and 2-thread runs differ), and
        # a shared machine wants fewer; empty is all cores but one, as before (session 31's list)
        threads = values.get("threads")
        self.threads = QLineEdit("" if threads in (None, "") else str(threads))
        self.threads.setPlaceholderText(f"auto ({training_threads()})")  # "(all cores but one)" was cut: the tooltip
        self.threads.setToolTip(f"CPU threads the training uses (1 to {os.cpu_count() or 1}); empty: all cores but "
                                "one, so the window keeps a core. The same seed on another thread count trains a "
                                "different encoder.")

        form = QFormLayout()
        form.addRow("Method", self.method)
        form.addRow("Augmentation", self.recipe)
        form.addRow(self.recipe_text)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Encoder", self.arch)
        form.addRow("Width", self.width_box)
        form.addRow(f"Image size (px; images {int(native_size)})" if native_size else "Image size (px)", self.image_size)
        # threads beside the device, not a row of their own: the form stays as tall as before on a 720 px screen
        device_row = QHBoxLayout()
        device_row.setContentsMargins(0, 0, 0, 0)
        device_row.addWidget(self.device, 3)
        threads_label = QLabel("Threads")
        threads_label.setBuddy(self.threads)
        threads_label.setToolTip(self.threads.toolTip())
        device_row.addWidget(threads_label)
        device_row.addWidget(self.threads, 2)
        form.addRow("Device", device_row)
        # DIFT in the loop, as the demo and naviewer run --dift do: the window could only train without it (a
        # newcomer with their own data, session 22); only with a workspace (its anchors, its detection passes)
        self.dift = QCheckBox("DIFT in the loop (stops for your review)")
        self.dift.setToolTip("as naviewer run WORKSPACE --dift: every sample ranked each epoch from epoch min(10, max(5, "
                             "2 % of the epochs)) (the workspace's [dift] settings); when the flags hold, the run "
                             "checkpoints and the Analyst opens on them; the Fine-tune / retrain tab goes on after the "
                             "review")
        self.dift.setChecked(bool(values.get("dift")) and dift_available)
        self.dift.setEnabled(dift_available)
        if not dift_available:
            self.dift.setToolTip("needs an open workspace (its anchors and detection passes): File ▸ New workspace…")
        form.addRow("", self.dift)
        # after a review: train without the confirmed poisons, as naviewer run --leave-out-confirmed does. Train
        # trained on every sample, the confirmed ones too, without a word (a newcomer, session 25)
        self.leave_out = QCheckBox(f"Leave out the {confirmed:,} sample{'' if confirmed == 1 else 's'} confirmed as "
                                   "poisons")
        self.leave_out.setToolTip("as naviewer run WORKSPACE --leave-out-confirmed: a fresh encoder trained on the "
                                  "samples your review keeps (recorded with the run, so a resume leaves out the same); "
                                  "without DIFT in the loop")
        # ticked where samples are confirmed, unless the user unticked it last time, over a DIFT remembered from the
        # training before the review: one click on Train retrained on the 80 confirmed poisons (a newcomer, session 32)
        prefer_leave_out = confirmed > 0 and bool(values.get("leave_out_confirmed", True))
        if prefer_leave_out:
            self.dift.setChecked(False)
        self.leave_out.setChecked(prefer_leave_out)
        self.leave_out.setVisible(confirmed > 0)
        self.leave_out.toggled.connect(lambda on: on and self.dift.setChecked(False))
        self.dift.toggled.connect(lambda on: on and self.leave_out.setChecked(False))
        if confirmed > 0:
            form.addRow("", self.leave_out)

        self.source_label = QLabel(source_description)
        self.source_label.setObjectName("hintLabel")
        self.source_label.setWordWrap(True)
        self.error_label = QLabel("")
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        # the speed: a warning before measuring (a heavy encoder at a large batch on a CPU), then the
        # measured time an epoch and the whole run take
        self.warning_label = QLabel("")
        self.warning_label.setObjectName("warningLabel")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()
        self.estimate_label = QLabel("")
        self.estimate_label.setObjectName("hintLabel")
        self.estimate_label.setWordWrap(True)
        # three lines held from the start: the estimate grew from one line to three as it measured and moved the
        # Train button from under the mouse (a newcomer, session 25)
        self.estimate_label.setMinimumHeight(3 * self.estimate_label.fontMetrics().lineSpacing() + 4)
        self.estimate_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.cpu_note = QLabel(CPU_NOTE)
        self.cpu_note.setObjectName("hintLabel")
        self.cpu_note.setWordWrap(True)
        self.cpu_note.hide()
        # a first training only: settings the user chose before (initial) are theirs to keep
        self._cpu_preset_pending = not initial
        self.estimate_button = QPushButton("Measure speed")
        self.estimate_button.setToolTip("time a few training steps of this choice on a sample of the images "
                                        "(in the background) and estimate the time an epoch takes")
        self.estimate_button.clicked.connect(lambda _checked=False: self._toggle_estimate())
        speed = QHBoxLayout()
        speed.addWidget(self.estimate_label, 1)
        speed.addWidget(self.estimate_button, 0, Qt.AlignmentFlag.AlignTop)
        self.estimator, self.job_manager = estimator, job_manager
        self.estimate_job: Any = None
        self.estimate: Optional[dict[str, Any]] = None
        self._estimate_key: Optional[tuple] = None
        self._remeasure = QTimer(self)
        self._remeasure.setSingleShot(True)
        self._remeasure.setInterval(800)  # typing "256" measures once, not for 2, 25 and 256
        self._remeasure.timeout.connect(self.start_estimate)
        self._shown = False
        self._closed = False
        self._measure_after_probe = measure_after_probe
        self._stopping: Any = None  # a cancelled measurement still running (its worker checks between steps)
        self._restart_queued = False
        self._running_key: Optional[tuple] = None  # what the running measurement times
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        self.setMinimumWidth(440)
        if source_description:
            layout.addWidget(self.source_label)
        layout.addLayout(form)
        layout.addWidget(self.cpu_note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.warning_label)
        # the space a hidden warning leaves goes here: without it the form's rows moved down 16 px as the warning
        # went (a newcomer's next click opened the Encoder list instead of Width)
        layout.addStretch(1)
        layout.addLayout(speed)
        layout.addWidget(self.buttons)
        self.estimate_button.setVisible(estimator is not None)
        self.finished.connect(lambda _result: (setattr(self, "_closed", True), self.cancel_estimate()))

        for edit in (self.epochs, self.batch_size, self.lr, self.image_size, self.threads):
            edit.textChanged.connect(self._revalidate)
        self.arch.currentIndexChanged.connect(self._revalidate)
        self.width_box.currentTextChanged.connect(self._revalidate)
        self.method.currentIndexChanged.connect(self._method_changed)
        self.device.currentIndexChanged.connect(self._revalidate)
        self.dift.toggled.connect(self._revalidate)  # ticked last, it was left out of the settings (a newcomer)
        self.leave_out.toggled.connect(self._revalidate)
        self.recipe.currentIndexChanged.connect(self._recipe_changed)
        self._settings: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._method_changed()
        if self.available_devices is not None:
            self._offer_cpu_preset()

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
            "arch": self.arch.currentData(),
            "width": self.width_box.currentText(),
            "image_size": self.image_size.text(),
            "threads": self.threads.text(),
            "dift": self.dift.isChecked(),
            "leave_out_confirmed": self.leave_out.isChecked() and self.leave_out.isVisibleTo(self),
        }

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def on_environment(self, info: dict) -> None:
        """Slot for :class:`~naviewer.gui.environment.EnvironmentProbe.ready`."""
        self.set_available_devices(info.get("devices", ["cpu"]))

    def set_available_devices(self, devices: Iterable[str]) -> None:
        """Called when the background device probe answers; re-checks the device choice."""
        self.available_devices = tuple(devices)
        self._offer_cpu_preset()
        self._revalidate()
        if self._shown:
            self._first_measure()

    def _offer_cpu_preset(self) -> None:
        """Once the devices are known, a first training on a CPU-only machine starts from :data:`CPU_DEFAULTS`,
        unless the user already changed the encoder, its width or the batch, or chose a GPU device."""
        if not self._cpu_preset_pending:
            return
        self._cpu_preset_pending = False
        if set(self.available_devices or ()) - {"cpu"} or self.device.currentData() not in ("auto", "cpu"):
            return
        untouched = (self.arch.currentData() == DEFAULTS["arch"] and self.width_box.currentText() == str(DEFAULTS["width"])
                     and self.batch_size.text() == str(DEFAULTS["batch_size"]))
        if not untouched:
            return
        self.arch.setCurrentIndex(max(0, self.arch.findData(CPU_DEFAULTS["arch"])))
        self.width_box.setCurrentText(str(CPU_DEFAULTS["width"]))
        self.batch_size.setText(str(CPU_DEFAULTS["batch_size"]))
        self.cpu_note.show()

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
        fields = (("epochs", self.epochs), ("batch_size", self.batch_size), ("lr", self.lr),
                  ("image_size", self.image_size), ("threads", self.threads))
        if not hasattr(self, "_base_tips"):  # each field's own tooltip, back once its error is mended (it was lost)
            self._base_tips = {name: edit.toolTip() for name, edit in fields}
        for name, edit in fields:
            invalid = name in self.errors
            if edit.property("invalid") != invalid:
                edit.setProperty("invalid", invalid)
                edit.style().unpolish(edit)
                edit.style().polish(edit)
            edit.setToolTip(self.errors.get(name) or self._base_tips.get(name, ""))
        self.error_label.setText("\n".join(self.errors[f] for f in (*self.FIELDS, "dift") if f in self.errors))
        self.ok_button.setEnabled(not self.errors)
        self._update_speed()

    # -- the speed estimate -------------------------------------------------------------------------
    def _measured_key(self) -> Optional[tuple]:
        if self.errors:
            return None
        return tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v
                     for v in (self._settings.get(f) for f in MEASURED_FIELDS))

    def _update_speed(self) -> None:
        """Re-say the warning and the estimate for the current values; re-measure (debounced) when a
        value the measurement depends on changed since it was taken."""
        warning = cpu_warning(self._settings, self.available_devices) if not self.errors else ""
        if self.estimator is None:  # no images to time it on: no estimate below to point at (a newcomer, session 17)
            warning = warning.replace("See the measured estimate below, or choose", "Choose")
        if self.estimate is not None and self._estimate_key == self._measured_key():
            estimate = dict(self.estimate)
            estimate["seconds_total"] = estimate["seconds_per_epoch"] * int(self._settings.get("epochs") or 1)
            warning = slow_warning(estimate) or ("" if estimate["seconds_per_epoch"] < 60 else warning)
            self.estimate_label.setText(
                f"Measured: about <b>{epoch_time(estimate['seconds_per_epoch'])} an epoch</b> "
                f"({estimate['seconds_per_step']:.2g} s a step × {estimate['steps_per_epoch']:,} "
                f"step{'s' if estimate['steps_per_epoch'] != 1 else ''}), "
                f"<b>{duration(estimate['seconds_total'])}</b> for {int(self._settings.get('epochs') or 1):,} "
                f"epoch{'s' if int(self._settings.get('epochs') or 1) != 1 else ''} "
                f"on {estimate['device']} ({estimate['encoder']}, batch {estimate['batch_size']:,})."
                + self._dift_time(estimate))
        elif self.estimate_job is not None and self.estimate_job.running:
            if self._shown and self._measured_key() not in (None, self._running_key):
                # the choice changed under a measurement: it kept timing the old encoder (a newcomer read
                # ResNet-18's minutes beside the ResNet-10 they had picked); the new one is measured instead
                self._remeasure.start()
                self._say("Measuring the new choice shortly (the last measurement timed the earlier one)…")
        elif self.estimator is not None:
            if self._shown and self._measured_key() is not None:
                self._remeasure.start()  # a measured value changed: measure the new choice
            self.estimate_label.setText("Time an epoch takes: not measured yet for this choice"
                                        + (" (measuring shortly)." if self._remeasure.isActive() else "."))
        self.warning_label.setText(warning)
        self.warning_label.setVisible(bool(warning))
        self._fit_height()

    def _dift_time(self, estimate: dict[str, Any]) -> str:
        """What DIFT in the loop adds to the measured epoch: an embedding of every sample each epoch from its start
        until the flags hold (the estimate left it out and a DIFT run took longer than it said)."""
        extra = estimate.get("seconds_per_embedding_pass")
        if not self.dift.isChecked() or not extra:
            return ""
        return f" DIFT's ranking adds about {epoch_time(float(extra))} an epoch from its start epoch until the flags hold."

    def _say(self, text: str) -> None:
        self.estimate_label.setText(text)
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow to the height the wrapped labels need at the dialog's width (a top-level dialog does not
        follow its labels' height-for-width: longer text would overlap the form's rows)."""
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else layout.totalSizeHint().height()
        self.setMinimumHeight(needed)
        # taller when the text needs it; shorter again when it shrinks, unless the user sized the dialog
        if needed > self.height() or self.height() == getattr(self, "_fitted", None):
            self.resize(self.width(), needed)
            self._fitted = needed

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """The first time the dialog shows, the default choice is measured at once (in the background)."""
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            self._first_measure()

    def _first_measure(self) -> None:
        if self._measure_after_probe and self.available_devices is None:
            return  # set_available_devices starts it
        if (self.estimator is not None and self.estimate is None and self.estimate_job is None
                and self._measured_key() is not None):
            self._remeasure.start()

    def _toggle_estimate(self) -> None:
        if self.estimate_job is not None and self.estimate_job.running:
            self.cancel_estimate()
        else:
            self.start_estimate()

    def start_estimate(self) -> Any:
        """Measure the current choice in a background job (a running one is cancelled first); returns the job."""
        self._remeasure.stop()
        key = self._measured_key()
        if self.estimator is None or key is None:
            return None
        running = self.estimate_job if self.estimate_job is not None and self.estimate_job.running else self._stopping
        if running is not None and running.running:
            # one measurement at a time (they share the CPU and the resource): this one starts once the
            # running one has noticed its cancel
            self.cancel_estimate()
            self._stopping = running
            if not self._restart_queued:
                self._restart_queued = True
                running.finished.connect(lambda _state: self._start_queued())
            self._say("Measuring the new choice once the last measurement has stopped…")
            return None
        if self.job_manager is None:
            from naviewer.gui.jobs import JobManager

            self.job_manager = JobManager(self)
        from naviewer.gui.tasks import training_threads

        from naviewer.gui.jobs import JobConflict

        settings = dict(self._settings)
        try:
            job = self.job_manager.start(self.estimator(settings), "Estimate the training speed",
                                         resources=["train-estimate"], kind="estimate",
                                         torch_threads=settings.get("threads") or training_threads())
        except JobConflict as exc:  # another dialog's measurement: say so instead of raising in a slot
            self._say(f"Cannot measure now: {exc}")
            return None
        self.estimate_job, self._running_key = job, key
        self.estimate_button.setText("Stop measuring")
        self._say("Measuring a few training steps on a sample of the images…")
        job.progress.connect(lambda done, total, message, j=job: self._estimate_progress(j, done, total, message))
        job.finished.connect(lambda state, j=job, k=key: self._estimate_done(j, k, state))
        return job

    def _estimate_progress(self, job: Any, done: float, total: Any, message: str) -> None:
        if job is self.estimate_job and not self._remeasure.isActive():  # (else "the new choice shortly" stays)
            share = f" {int(100 * done / total)} %" if total else ""
            self._say(f"Measuring: {message}{share}…")

    def _estimate_done(self, job: Any, key: tuple, state: str) -> None:
        if job is not self.estimate_job:
            return
        self.estimate_job = None
        self.estimate_button.setText("Measure again")
        if state == "finished" and isinstance(job.result, dict):
            self.estimate, self._estimate_key = dict(job.result), key
            self._update_speed()
        elif state == "failed":
            self._say(f"Could not measure the speed: {job.error_message()}")
        else:
            self._say("Measuring stopped; nothing was estimated.")

    def _start_queued(self) -> None:
        self._restart_queued, self._stopping = False, None
        if not self._closed:
            self.start_estimate()

    def cancel_estimate(self) -> None:
        """Stop a running measurement (the dialog closing or the choice changing)."""
        self._remeasure.stop()
        job, self.estimate_job = self.estimate_job, None
        if job is not None and job.running:
            job.cancel()
            self._stopping = job
            self.estimate_button.setText("Measure speed")
            # the label said "Measuring: … 33 %" until the dialog closed: the stop looked ignored
            self._say("Stopping the measurement (after the training step under way)…")
            job.finished.connect(lambda _state, j=job: self._stopped(j))

    def _stopped(self, job: Any) -> None:
        """A cancelled measurement has stopped: say so, unless another one has started or is queued."""
        if self._closed or self.estimate_job is not None or self._restart_queued:
            return
        if self._stopping is job:
            self._stopping = None
        self._say("Measuring stopped; nothing was estimated. Measure speed measures the current choice.")

    def accept(self) -> None:
        if self.errors:
            return
        super().accept()
