"""naviewer.ssl."""
