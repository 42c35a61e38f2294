"""Frozen entry point of the ``naviewer`` command (console): same as ``python -m naviewer``."""

from naviewer.cli import main

raise SystemExit(main())
