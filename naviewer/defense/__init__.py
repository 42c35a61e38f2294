"""naviewer.defense."""
