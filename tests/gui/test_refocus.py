"""Without a window manager the keyboard stayed on no window after a dialog closed (a newcomer, session 22)."""

from __future__ import annotations


def _window_and_dialog(qtbot, monkeypatch):
    """(a shown window, its RefocusAfterDialogs, a list of its activateWindow calls, a shown dialog over it)."""
    from PySide6.QtWidgets import QDialog, QWidget

    from naviewer.gui.refocus import RefocusAfterDialogs

    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    refocus = RefocusAfterDialogs(window)
    activated = []
    monkeypatch.setattr(window, "activateWindow", lambda: activated.append(True))
    dialog = QDialog(window)
    dialog.show()
    qtbot.waitExposed(dialog)
    return window, refocus, activated, dialog


def test_a_closed_dialog_gives_the_keys_back_to_the_window(qtbot, monkeypatch):
    from PySide6.QtWidgets import QApplication, QDialog

    window, refocus, activated, dialog = _window_and_dialog(qtbot, monkeypatch)
    refocus._on_focus_window(dialog.windowHandle())  # the dialog had the focus
    monkeypatch.setattr(QApplication, "focusWindow", staticmethod(lambda: None))  # what a bare X server leaves
    dialog.hide()
    qtbot.waitUntil(lambda: bool(activated), timeout=3000)
    assert refocus.activations >= 1

    # a dialog still open when the focus leaves (another application took it): the focus is not pulled back
    activated.clear()
    other = QDialog(window)
    other.show()
    qtbot.waitExposed(other)
    refocus._on_focus_window(other.windowHandle())
    qtbot.wait(200)
    assert not activated
    other.close()


def test_a_box_closed_over_a_dialog_gives_the_keys_back_to_that_dialog(qtbot, monkeypatch):
    """An error box over the Anchors dialog closed, and the keys went to the main window, where Esc said "the
    Analyst panel is behind another tab" instead of closing the dialog (a newcomer, session 29)."""
    from PySide6.QtWidgets import QApplication, QDialog

    _window, refocus, to_window, anchors = _window_and_dialog(qtbot, monkeypatch)
    box = QDialog(anchors)
    box.show()
    qtbot.waitExposed(box)
    asked = []
    monkeypatch.setattr(type(anchors.windowHandle()), "requestActivate", lambda self: asked.append(self))
    refocus._on_focus_window(box.windowHandle())
    monkeypatch.setattr(QApplication, "focusWindow", staticmethod(lambda: None))
    box.hide()
    qtbot.waitUntil(lambda: bool(asked), timeout=3000)
    assert asked[-1] is anchors.windowHandle() and not to_window
    anchors.close()
