"""Frozen entry point of the ``naviewer`` command (console): same as ``python -m naviewer``.

On Linux the bundle ships one program: ``naviewer-gui`` is a symbolic link to ``naviewer`` (each
PyInstaller program carries its own ~50 MB copy of the Python archive), so the name it was started
under picks the desktop app.
"""

import os
import sys

# Qt's libraries link the host's OpenGL/EGL/xcb libraries, which the bundle does not ship.
HOST_LIBS_HINT = """The desktop app needs system libraries that this computer lacks.
On Debian/Ubuntu:
  sudo apt-get install --no-install-recommends libgl1 libegl1 libxcb1 libwayland-cursor0 \\
      libwayland-egl1 fontconfig fonts-dejavu-core
(see "Host requirements" in docs/packaging.md)"""

if os.path.basename(sys.argv[0]).startswith("naviewer-gui"):
    from naviewer.gui.app import main
else:
    from naviewer.cli import main

try:
    raise SystemExit(main())
except ImportError as exc:
    if "cannot open shared object file" not in str(exc):
        raise
    print(f"naviewer: {exc}\n{HOST_LIBS_HINT}", file=sys.stderr)
    raise SystemExit(1)
