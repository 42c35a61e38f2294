"""Application entry points: ``naviewer`` with no command, and the ``naviewer-gui`` script.

Startup order matters: only Qt widgets and the standard library are imported before the window
is shown. pyqtgraph is imported right after the first paint (the monitor), torch only inside jobs
or on demand (About, Train dialog's device check).

``NAVIEWER_STARTUP_PROBE=1`` makes the app print ``NAVIEWER_WINDOW_EXPOSED <unix time> torch=<0|1>``
when the window is first exposed, then quit: ``naviewer bench startup`` uses it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Optional, Sequence

STARTUP_PROBE_ENV = "NAVIEWER_STARTUP_PROBE"
PROBE_TAG = "NAVIEWER_WINDOW_EXPOSED"
#: set to 0 to leave torch unimported until a job needs it (by default the window preloads it when it first shows)
PRELOAD_ENV = "NAVIEWER_PRELOAD_TORCH"


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="naviewer-gui", description="The naviewer desktop application.")
    parser.add_argument("path", nargs="?", help="a workspace to open, or a run folder / metrics.jsonl to follow")
    parser.add_argument("--theme", choices=("light", "dark"), help="colour theme (remembered)")
    parser.add_argument("--follow", metavar="RUN", help="follow a run folder written by another process")
    return parser.parse_args(list(argv))


def on_first_expose(widget, callback: Callable[[], None]) -> None:
    """Call ``callback`` once, right after ``widget``'s window is first exposed (painted) on screen."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class _Watcher(QObject):
        def __init__(self) -> None:
            super().__init__(widget)
            self.fired = False

        def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
            if not self.fired and event.type() == QEvent.Type.Expose and obj.isExposed():
                self.fired = True
                QTimer.singleShot(0, callback)  # after the expose handler painted the window
            return False

    handle = widget.windowHandle()
    if handle is None:
        widget.winId()  # creates the native window
        handle = widget.windowHandle()
    handle.installEventFilter(_Watcher())


def create_application(theme: Optional[str] = None):
    """The QApplication (made once, named, with its icon) and the applied theme: ``theme`` or the
    one the user chose last. Shared by the app and ``naviewer demo``'s window; returns (app, themes)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from naviewer.gui.resources import app_icon
    from naviewer.gui.settings import app_settings
    from naviewer.gui.theme import ThemeManager

    app = QApplication.instance()
    if app is None:
        from naviewer.system_libs import check_gui_libraries

        check_gui_libraries()  # Qt would abort (exit 134) naming the wrong library: say which ones, exit 2
        QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "naviewer"])
    app.setApplicationName("naviewer")
    app.setOrganizationName("naviewer")
    app.setApplicationDisplayName("naviewer")
    app.setDesktopFileName("naviewer")
    app.setWindowIcon(app_icon())
    themes = ThemeManager(app, theme or str(app_settings().value("view/theme", "light")))
    themes.apply()
    return app, themes


def run_app(argv: Optional[Sequence[str]] = None) -> int:
    """Create the application, show the main window, run the event loop; returns the exit code."""
    args = _parse(argv or [])
    from PySide6.QtCore import QTimer

    from naviewer.gui.main_window import MainWindow

    app, themes = create_application(args.theme)
    window = MainWindow(themes)
    if args.theme:
        window.settings.setValue("view/theme", args.theme)

    if os.environ.get(STARTUP_PROBE_ENV):

        def report() -> None:
            print(f"{PROBE_TAG} {time.time():.6f} torch={int('torch' in sys.modules)}", flush=True)
            # No one answers "jobs are still running, quit?" in a probe: stop them (opening a
            # workspace starts one), then quit.
            window.jobs.cancel_all()
            window.jobs.wait_all(timeout_s=60.0)
            app.quit()

        on_first_expose(window, report)

    elif os.environ.get(PRELOAD_ENV, "1") != "0":
        from naviewer.gui.environment import start_engine_preload

        on_first_expose(window, start_engine_preload)

    window.show()
    if args.path:
        window.open_path(args.path)
    if args.follow:
        window.follow_run(args.follow)
    if not args.path and not args.follow and not os.environ.get(STARTUP_PROBE_ENV):
        window.reopen_last_workspace()
    return exec_with_ctrl_c(app, window)


def exec_with_ctrl_c(app, window) -> int:
    """Run Qt's event loop so that Ctrl+C in the terminal closes ``window`` (asking about jobs).

    Qt's loop would swallow the signal: a 250 ms timer lets Python run its handler now and then.
    """
    import signal

    from PySide6.QtCore import QTimer

    tick = QTimer(window)
    tick.timeout.connect(lambda: None)
    tick.start(250)
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    hook = sys.excepthook
    sys.excepthook = unexpected_error_hook(window, hook)
    try:
        return int(app.exec())
    finally:
        sys.excepthook = hook
        signal.signal(signal.SIGINT, previous)
        tick.stop()


def unexpected_error_hook(window, previous):
    """An exception raised in a Qt slot reaches only ``sys.excepthook``: the Analyst panel failed to open after a
    detection with a traceback on stderr and no word in the window (a newcomer, session 25). This hook still
    prints it, and the window says it in its Log (each distinct error's traceback once, repeats counted) and in one
    box per distinct error, opened after the event that raised (never inside a paint, whose repaint would raise
    again) and at most one every :data:`ERROR_BOX_GAP_S`. Only for the app's own event loop (the tests' Qt hook
    stays theirs)."""
    import traceback

    seen: dict[tuple[str, str], int] = {}
    last_box = {"at": -1e9}

    def show_box(kind_name: str, text: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.warning(window, "Something went wrong",
                            f"naviewer met an unexpected error: {kind_name}: {text}.\n\nDecisions recorded before it "
                            "stay in the workspace. The details are in the Log panel; if a view looks wrong, reopen "
                            "the workspace (File ▸ Open).")

    def hook(kind, value, tb) -> None:
        if issubclass(kind, (KeyboardInterrupt, SystemExit)):
            previous(kind, value, tb)
            return
        key = (kind.__name__, str(value))
        count = seen.get(key, 0) + 1
        seen[key] = count
        if count == 1:
            previous(kind, value, tb)
        try:
            if count == 1:
                details = "".join(traceback.format_exception(kind, value, tb)).rstrip()
                window.state.log(f"unexpected error: {kind.__name__}: {value}\n{details}")
            elif count in (2, 10, 100) or count % 1000 == 0:
                window.state.log(f"unexpected error again ({count:,} times so far): {kind.__name__}: {value}")
            if count == 1 and time.monotonic() - last_box["at"] >= ERROR_BOX_GAP_S:
                from PySide6.QtCore import QTimer

                last_box["at"] = time.monotonic()
                QTimer.singleShot(0, window, lambda: show_box(key[0], key[1]))
        except Exception:  # noqa: BLE001 - the hook must never raise itself
            pass

    return hook


#: at most one "Something went wrong" box this often (a paint that raises would raise at every repaint)
ERROR_BOX_GAP_S = 30.0


def main() -> None:
    """``naviewer-gui`` console entry point."""
    from naviewer.errors import NaviewerError
    from naviewer.system_libs import report_missing_library

    try:
        code = run_app(sys.argv[1:])
    except NaviewerError as exc:
        print(f"naviewer: error: {exc}", file=sys.stderr)
        code = 2
    except ImportError as exc:
        code = report_missing_library(exc)
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
