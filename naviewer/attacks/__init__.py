"""naviewer.attacks."""
