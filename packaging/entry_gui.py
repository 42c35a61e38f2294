"""Frozen entry point of ``naviewer-gui`` (windowed): same as the ``naviewer-gui`` script."""

from naviewer.gui.app import main

raise SystemExit(main())
