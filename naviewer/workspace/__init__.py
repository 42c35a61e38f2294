"""naviewer.workspace."""
