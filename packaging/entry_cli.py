"""Frozen entry point of the ``naviewer`` command (console): same as ``python -m naviewer``.

On Linux the bundle ships one program: ``naviewer-gui`` is a symbolic link to ``naviewer`` (each
PyInstaller program carries its own ~50 MB copy of the Python archive), so the name it was started
under picks the desktop app.
"""

import os
import sys

from naviewer.system_libs import missing_library_message

if os.path.basename(sys.argv[0]).startswith("naviewer-gui"):
    from naviewer.gui.app import main
else:
    from naviewer.cli import main

try:
    raise SystemExit(main())
except ImportError as exc:
    message = missing_library_message(exc)
    if message is None:
        raise
    print(message, file=sys.stderr)
    raise SystemExit(1)
