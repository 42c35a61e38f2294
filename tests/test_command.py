"""The `naviewer` command itself: one-line errors, quiet broken pipes."""

from __future__ import annotations

import subprocess
import sys


def test_bad_input_gives_one_line_error_and_nonzero_exit(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "naviewer", "export", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_closed_pipe_is_not_a_traceback():
    proc = subprocess.Popen([sys.executable, "-m", "naviewer", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before the command writes
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err
