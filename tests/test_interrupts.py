"""Ctrl-C on the command line: a cancel request first, and a clean exit status whenever it lands."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_a_ctrl_c_after_the_outcome_keeps_the_commands_exit_status(tmp_path):
    """The third Ctrl-C of an impatient user landed while the interpreter shut down, after "naviewer: cancelled"
    was printed: the process died by the signal (a sweep). It now ends with the status already decided."""
    done = _run(f"""
        import os, signal, sys, time
        sys.argv = ["naviewer", "export", {str(tmp_path / "no-such-workspace")!r}, "--out", {str(tmp_path / "x")!r}]
        from naviewer.cli import main
        code = main()
        print("main returned", code, flush=True)
        os.kill(os.getpid(), signal.SIGINT)  # as if pressed while the interpreter shuts down
        time.sleep(30)
    """)
    assert "main returned 2" in done.stdout and done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr


def test_cancel_then_quit_inside_a_job():
    """The first Ctrl-C asks the job to stop, the second quits at once: KeyboardInterrupt, caught as 130."""
    done = _run("""
        import os, signal
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job's shell may have ignored it
        from naviewer.interrupts import cancel_on_sigint
        from naviewer.jobs import JobContext
        ctx = JobContext()
        with cancel_on_sigint(ctx) as installed:
            assert installed
            os.kill(os.getpid(), signal.SIGINT)
            assert ctx.cancelled
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                print("quit at once")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    """)
    assert done.returncode == 0 and "quit at once" in done.stdout, done.stderr
