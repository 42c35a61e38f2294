"""naviewer.gui: the Qt desktop application, a view and scheduler over the core.

Everything here imports Qt lazily enough that the main window is on screen before torch is
imported: torch (and pyqtgraph, which is slow to import) are loaded inside job functions or after
the first paint. Entry points: :func:`naviewer.gui.app.run_app` and :func:`naviewer.gui.app.main`.
"""
