"""`python -m naviewer` is the same as the `naviewer` command."""

from naviewer.cli import main

raise SystemExit(main())
