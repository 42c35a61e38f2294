"""naviewer: find and remove data-poisoning backdoors in self-supervised contrastive learning.

The package root stays import-light (no torch, no Qt) so that the CLI and the GUI start fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
