"""The About box: naviewer, Python and Qt versions at once; torch and the device when probed."""

from __future__ import annotations

import html
import platform
from typing import Any, Optional

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from naviewer import __version__
from naviewer.gui.environment import EnvironmentProbe, cached_environment
from naviewer.gui.resources import app_icon

CHECKING = "checking…"


class AboutDialog(QDialog):
    """Shows versions; the torch part arrives from the background probe, so opening never freezes."""

    def __init__(self, probe: EnvironmentProbe, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About naviewer")
        self.setObjectName("aboutDialog")
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(96, 96))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(icon)
        row.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.info: dict[str, Any] = cached_environment() or {}
        self._render()
        probe.ready.connect(self._on_ready)
        probe.request()

    def _on_ready(self, info: dict) -> None:
        self.info = dict(info)
        self._render()

    def versions(self) -> dict[str, str]:
        return {
            "naviewer": __version__,
            "Python": platform.python_version(),
            "Qt": f"PySide6 {pyside_version}, Qt {qVersion()}",
            "torch": self.info.get("torch", CHECKING),
            "torchvision": self.info.get("torchvision", CHECKING),
            "device": self.info.get("device", CHECKING),
        }

    def _render(self) -> None:
        rows = "".join(
            f"<tr><td style='padding-right:12px'><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.versions().items()
        )
        self.text.setText(
            "<h3>naviewer</h3>"
            "<p>Find, review and remove data-poisoning backdoors in self-supervised "
            "contrastive-learning datasets.</p>"
            f"<table>{rows}</table>"
        )
