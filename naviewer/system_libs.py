"""Readable advice when the desktop app's Qt cannot load a system library.

PySide6's wheels link the host's OpenGL/EGL/xcb/Wayland libraries, which pip cannot install: on a
bare server or a minimal container ``import PySide6.QtWidgets`` fails with an ``ImportError``
naming a ``.so``. A user should see which library is missing and the one line that installs it,
not a traceback. The list was checked on a minimal Debian 12 (see docs/packaging.md).
"""

from __future__ import annotations

import sys
from typing import Optional

#: the packages a minimal Debian/Ubuntu host needs for the desktop app
HOST_PACKAGES = "libgl1 libegl1 libxcb1 libwayland-cursor0 libwayland-egl1 fontconfig fonts-dejavu-core"

HOST_LIBS_HINT = (
    "The desktop app needs system libraries that this computer lacks.\n"
    "On Debian/Ubuntu:\n"
    f"  sudo apt-get install --no-install-recommends {HOST_PACKAGES}\n"
    '(see "Host requirements" in docs/packaging.md). The command-line actions work without them.'
)


def missing_library_message(exc: BaseException) -> Optional[str]:
    """The message for an ImportError caused by a missing shared library, else None."""
    text = str(exc)
    if not isinstance(exc, ImportError) or "cannot open shared object file" not in text:
        return None
    return f"naviewer: {text}\n{HOST_LIBS_HINT}"


def report_missing_library(exc: ImportError) -> int:
    """For an entry point's ``except ImportError``: print the advice and return exit code 2 when a
    system library is missing; any other ImportError is a bug and propagates."""
    message = missing_library_message(exc)
    if message is None:
        raise exc
    print(message, file=sys.stderr)
    return 2
