"""naviewer.evaluation."""
