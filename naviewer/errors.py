"""One error type for every problem a user can fix (bad input, wrong file, bad settings).

The CLI prints it on one line and exits non-zero; the GUI shows it in a message box. Anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class NaviewerError(Exception):
    """A user-facing problem: ``path`` names the file (if any), ``message`` says what is wrong."""

    def __init__(self, message: str, path: Optional[PathLike] = None) -> None:
        self.message = shortened(message)
        self.path = os.fspath(path) if path is not None else None
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


#: the longest message said whole: a 10-million-character value in workspace.toml was echoed into a 10 MB error
#: line (and would be a 10 MB label in the window's box; a fuzz, session 34)
MESSAGE_LIMIT = 4000


def shortened(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` whole up to ``limit`` characters, else its start and end with the count left out between."""
    message = str(message)
    if len(message) <= limit:
        return message
    keep = limit // 2 - 40
    return f"{message[:keep]} … ({len(message) - 2 * keep:,} characters left out) … {message[-keep:]}"


class WorkspaceWarning(UserWarning):
    """A damaged workspace file that does not stop the work (a run's state file, the evaluation ground truth): the
    window shows it with the job's other warnings, the command line on stderr."""


class JobCancelled(Exception):
    """Raised inside a job when its cancel flag is set; jobs clean up (checkpoint) and re-raise."""
