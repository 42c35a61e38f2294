"""naviewer.gui: the Qt desktop application, a view and scheduler over the core.

Everything here imports Qt lazily enough that the main window is on screen before torch is
imported: torch (and pyqtgraph, which is slow to import) are loaded inside job functions or after
the first paint. Entry points: :func:`naviewer.gui.app.run_app` and :func:`naviewer.gui.app.main`.
"""

from naviewer.gui import _refcount_guard

_refcount_guard.apply()  # PySide6 6.12 on Python 3.11 loses references to None; see the module
