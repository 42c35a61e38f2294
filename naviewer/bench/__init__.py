"""naviewer.bench."""
