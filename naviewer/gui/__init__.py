"""naviewer.gui."""
