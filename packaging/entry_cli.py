"""Frozen entry point of the ``naviewer`` command (console): same as ``python -m naviewer``.

On Linux the bundle ships one program: ``naviewer-gui`` is a symbolic link to ``naviewer`` (each
PyInstaller program carries its own ~50 MB copy of the Python archive), so the name it was started
under picks the desktop app.
"""

import os
import sys

# Both entry points print a missing system library (libGL, xcb, ...) as its name and the apt-get
# line, not a traceback (naviewer.system_libs): nothing to add here.
if os.path.basename(sys.argv[0]).startswith("naviewer-gui"):
    from naviewer.gui.app import main
else:
    from naviewer.cli import main

raise SystemExit(main())
