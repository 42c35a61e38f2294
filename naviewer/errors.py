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
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class WorkspaceWarning(UserWarning):
    """A damaged workspace file that does not stop the work (a run's state file, the evaluation ground truth): the
    window shows it with the job's other warnings, the command line on stderr."""


class JobCancelled(Exception):
    """Raised inside a job when its cancel flag is set; jobs clean up (checkpoint) and re-raise."""
