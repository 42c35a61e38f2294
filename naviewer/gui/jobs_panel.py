"""The Jobs panel: every job of this session with its state, progress, time and a Cancel button."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from naviewer.gui.format import duration, remaining
from naviewer.gui.jobs import Job, JobManager, JobState

_COLUMNS = ("Job", "State", "Progress", "Time", "")


class JobsPanel(QWidget):
    """A list view over a :class:`JobManager`; double-click a failed job to see its error again."""

    show_error = Signal(object)  # Job

    def __init__(self, manager: JobManager, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobsPanel")
        self.manager = manager
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(_COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(manager.clear_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self._items: dict[int, QTreeWidgetItem] = {}
        self._buttons: dict[int, QPushButton] = {}
        manager.jobs_changed.connect(self.refresh)
        manager.job_started.connect(self._watch)
        self._clock = QTimer(self)  # elapsed/remaining time tick while something runs
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._tick)
        self.refresh()

    def _watch(self, job: Job) -> None:
        job.progress.connect(lambda *_a, job=job: self._update_item(job))

    def item_for(self, job: Job) -> Optional[QTreeWidgetItem]:
        return self._items.get(job.id)

    def cancel_button_for(self, job: Job) -> Optional[QPushButton]:
        return self._buttons.get(job.id)

    @staticmethod
    def listed(job: Job) -> bool:
        """A Train dialog's speed estimate cancelled for the next one (each edit starts one) is no job to list: a
        newcomer's list filled with "cancelled 25 %" rows as they set the fields (session 27)."""
        return not (job.kind == "estimate" and job.state is JobState.CANCELLED)

    def refresh(self) -> None:
        jobs = [job for job in self.manager.jobs if self.listed(job)]
        alive = {job.id for job in jobs}
        for job_id in list(self._items):
            if job_id not in alive:
                item = self._items.pop(job_id)
                self._buttons.pop(job_id, None)
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        for job in jobs:
            if job.id not in self._items:
                item = QTreeWidgetItem([job.name, "", "", "", ""])
                item.setData(0, Qt.ItemDataRole.UserRole, job.id)
                self.tree.insertTopLevelItem(0, item)
                self._items[job.id] = item
                button = QPushButton("Cancel")
                button.setToolTip(f"Cancel '{job.name}' at its next checkpoint")
                button.clicked.connect(job.cancel)
                self.tree.setItemWidget(item, 4, button)
                self._buttons[job.id] = button
            self._update_item(job)
        if self.manager.running_jobs():
            self._clock.start()
        else:
            self._clock.stop()
        self.clear_button.setEnabled(any(not job.running for job in jobs))

    def _tick(self) -> None:
        for job in self.manager.running_jobs():
            self._update_item(job)

    def _update_item(self, job: Job) -> None:
        item = self._items.get(job.id)
        if item is None:
            return
        item.setText(1, job.state.value)
        # the whole run's share where the job knows it (a training: its epochs), as the status bar shows it; the
        # stage's own fraction read "epoch 10 of 50 … 100 %" beside the status bar's 20 % (a newcomer)
        fraction = job.run_fraction if job.run_fraction is not None else job.fraction
        if job.state is JobState.FINISHED:
            fraction = 1.0  # a detection's last stage reported 99 % and its finished row kept it (a newcomer)
        if fraction is not None:
            text = f"{fraction * 100:.0f} %"
            if job.state in (JobState.FAILED, JobState.CANCELLED):  # "failed · 100 %" read as done (a newcomer)
                # "stopped at 100 %" for a job that failed in its last step read as done too (session 29)
                text = f"stopped at {min(fraction * 100, 99):.0f} %" if fraction < 1 else "stopped in its last step"
        elif job.done:
            text = f"{job.done:g}"
        else:
            text = ""
        if job.message and job.running:
            text = f"{job.message} · {text}" if text else job.message  # "epoch 3 of 50 4 %" read as one number
        item.setText(2, text)
        time_text = duration(job.working_s)
        if job.state is JobState.PAUSED:
            time_text += " (paused)"
        elif job.running and job.remaining_s is not None:
            time_text += f" ({remaining(job.remaining_s)})"
        item.setText(3, time_text)
        if job.state is JobState.FAILED:
            item.setToolTip(0, job.error_message() + "\n(double-click for details)")
            item.setForeground(1, Qt.GlobalColor.red)
        button = self._buttons.get(job.id)
        if button is not None:
            button.setEnabled(job.running and job.state is not JobState.CANCELLING)
            button.setVisible(job.running)

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        job_id = item.data(0, Qt.ItemDataRole.UserRole)
        for job in self.manager.jobs:
            if job.id == job_id and job.state is JobState.FAILED:
                self.show_error.emit(job)
