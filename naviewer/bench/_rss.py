"""The peak resident memory the benchmarks report (one definition for every bench module)."""

from __future__ import annotations


def peak_rss_mb() -> float:
    """This process's peak RSS in MB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
