"""Ctrl-C on the command line: a cancel request first, and a clean exit status whenever it lands."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest


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


def test_a_sigterm_after_the_outcome_keeps_the_commands_exit_status(tmp_path):
    """A review that had saved and said so, then a late SIGTERM: it ended 143 with no line, or 0 with a traceback
    out of a finaliser (a probe, session 29). The status already decided stands, with no traceback."""
    done = _run(f"""
        import os, signal, sys, time
        sys.argv = ["naviewer", "export", {str(tmp_path / "no-such-workspace")!r}, "--out", {str(tmp_path / "x")!r}]
        from naviewer.cli import main
        code = main()
        print("main returned", code, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """)
    assert "main returned 2" in done.stdout and done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_interpreters_teardown_keeps_the_status(tmp_path, name):
    """A signal that lands after the exit handlers, while modules are torn down, met the default action the
    interpreter puts back (an `embed` under `timeout -s INT` ended 130 with no line after "wrote", session 29)."""
    done = _run(f"""
        import os, signal, sys, time

        class Late:  # destroyed with this module, after the interpreter's own signal handling has ended
            def __del__(self):
                os.kill(os.getpid(), signal.{name})
                time.sleep(0.5)

        keep = Late()
        sys.argv = ["naviewer", "export", {str(tmp_path / "no-such-workspace")!r}, "--out", {str(tmp_path / "x")!r}]
        from naviewer.cli import main
        code = main()
        print("main returned", code, flush=True)
        sys.exit(code)
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


def test_a_rank_that_left_a_process_group_ends_without_finalisation(monkeypatch):
    """A torchrun rank aborted now and then in the interpreter's finalisation with gloo threads alive (SIGABRT
    after the work was saved): the command leaves with its status through os._exit once it tore a group down;
    a command that did not (every single-process run) returns as before."""
    import sys
    from types import SimpleNamespace

    import naviewer.cli as cli

    exits = []
    monkeypatch.setattr(cli, "_dispatch", lambda argv: 3)
    monkeypatch.setattr(cli, "_exit_on_sigint_from_now", lambda code: None)
    monkeypatch.setattr(cli.os, "_exit", lambda code: exits.append(code))
    monkeypatch.setitem(sys.modules, "naviewer.ssl.distributed", SimpleNamespace(left_a_process_group=lambda: True))
    assert cli.main() == 3 and exits == [3]
    monkeypatch.setitem(sys.modules, "naviewer.ssl.distributed", SimpleNamespace(left_a_process_group=lambda: False))
    assert cli.main() == 3 and exits == [3]
    assert cli.main([]) == 3 and exits == [3]  # a call with argv (tests, scripts): never


def test_shutdown_distributed_records_leaving_a_group_of_several_ranks_only(monkeypatch):
    import naviewer.ssl.distributed as distributed

    monkeypatch.setattr(distributed, "_LEFT_A_GROUP", False)
    assert distributed.shutdown_distributed() is True and not distributed.left_a_process_group()  # no group


def test_sigterm_cancels_a_job_first_then_quits():
    """SIGTERM (a scheduler, `timeout`, `kill`) killed the command where it stood (a bad-input probe, session 27):
    where the command line handles it, inside a job the first cancels as the first Ctrl-C does, the second raises
    Terminated (a KeyboardInterrupt: every Ctrl-C clean-up runs); the handlers are put back after."""
    done = _run("""
        import os, signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from naviewer.interrupts import Terminated, cancel_on_sigint, install_sigterm, raise_on_sigterm
        from naviewer.jobs import JobContext
        assert install_sigterm() and signal.getsignal(signal.SIGTERM) is raise_on_sigterm
        ctx = JobContext()
        with cancel_on_sigint(ctx):
            os.kill(os.getpid(), signal.SIGTERM)
            assert ctx.cancelled
            try:
                os.kill(os.getpid(), signal.SIGTERM)
            except Terminated:
                print("quit at once")
        assert signal.getsignal(signal.SIGTERM) is raise_on_sigterm
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt as exc:
            print("outside a job:", type(exc).__name__)
    """)
    said = done.stdout
    assert done.returncode == 0 and "quit at once" in said and "outside a job: Terminated" in said, done.stderr


def test_sigterm_cancels_a_job_cleanly_where_ctrl_c_is_ignored():
    """A training started with `&` from a script has Ctrl-C ignored; SIGTERM then stopped it mid-step, with no
    checkpoint (a review, session 27): SIGTERM is handled on its own, and the SIGINT left as it was."""
    done = _run("""
        import os, signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job of a script
        from naviewer.interrupts import cancel_on_sigint, install_sigterm, terminated
        from naviewer.jobs import JobContext
        install_sigterm()
        ctx = JobContext()
        with cancel_on_sigint(ctx) as ctrl_c:
            assert not ctrl_c and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            assert ctx.cancelled and terminated()
        print("cancelled cleanly")
    """)
    assert done.returncode == 0 and "cancelled cleanly" in done.stdout, done.stderr


def test_a_job_cancelled_by_sigterm_ends_with_its_status(monkeypatch, capsys):
    """A training SIGTERM stopped cleanly said "cancelled" with status 130; the promise is 143 (a review, session
    27)."""
    import naviewer.cli as cli
    import naviewer.interrupts as interrupts
    from naviewer.jobs import JobCancelled

    assert cli._say_interrupted(JobCancelled()) == 130
    monkeypatch.setattr(interrupts, "_TERMINATED", True)
    assert cli._say_interrupted(JobCancelled()) == 143 and "terminated (SIGTERM)" in capsys.readouterr().err


def test_the_window_is_left_to_close_itself_on_sigterm(monkeypatch):
    """`naviewer` with no command (the window) installed the command line's SIGTERM handler too, and the window then
    printed a traceback and went on running (a review, session 27): only a command installs it."""
    import naviewer.cli as cli
    import naviewer.interrupts as interrupts

    import warnings

    installed = []
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() sets its own: put back after
    monkeypatch.setattr(interrupts, "install_sigterm", lambda: installed.append(True) or True)
    monkeypatch.setattr("naviewer.gui.app.run_app", lambda words: 0)
    monkeypatch.setattr(cli.sys, "argv", ["naviewer"])
    monkeypatch.setattr(cli, "_exit_on_sigint_from_now", lambda code: None)
    assert cli.main() == 0 and installed == []


def test_sigterm_during_craft_leaves_no_half_written_output(tmp_path):
    """SIGTERM during `craft --out` left 730 of 3,000 images that neither a re-run nor --overwrite accepted (a
    bad-input probe, session 27): it ends with status 143 and cleans up as Ctrl-C did."""
    import time

    out = tmp_path / "crafted"
    process = subprocess.Popen([sys.executable, "-m", "naviewer", "craft", "--attack", "patch", "--dataset", "digits",
                                "--out", str(out), "--rate", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and sum(1 for _ in out.rglob("*.png")) > 20:
            break
        time.sleep(0.02)
    if process.poll() is not None:  # finished before the signal could land: nothing was checked
        pytest.skip("craft finished before SIGTERM could be sent")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "terminated (SIGTERM)" in err and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())[:5]


def test_a_stop_after_decisions_were_saved_says_they_were(monkeypatch, capsys):
    """A review stopped by Ctrl-C or SIGTERM just after it saved its decisions said only "cancelled", and the user
    could not tell whether to decide again (a probe, session 28): what was saved for good is named with the stop."""
    import naviewer.cli as cli
    import naviewer.interrupts as interrupts
    from naviewer.jobs import JobCancelled

    interrupts.clear_saved_notes()
    interrupts.note_saved("confirmed 3 samples")
    assert cli._say_interrupted(KeyboardInterrupt()) == 130
    assert "cancelled; saved before it: confirmed 3 samples" in capsys.readouterr().err
    monkeypatch.setattr(interrupts, "_TERMINATED", True)
    assert cli._say_interrupted(JobCancelled()) == 143
    assert "saved before it: confirmed 3 samples" in capsys.readouterr().err
    interrupts.clear_saved_notes()



def test_each_command_starts_with_no_saved_notes(tmp_path):
    """Notes are one command's: tests and scripts call main more than once in a process."""
    import naviewer.cli as cli
    import naviewer.interrupts as interrupts

    interrupts.note_saved("left over from an earlier call")
    assert cli.main(["review", str(tmp_path / "nowhere")]) == 2
    assert interrupts.saved_notes() == []


def test_a_note_with_a_key_replaces_the_earlier_one():
    """A count that grows (an extraction's shards done so far) is one note, its latest word, not one per shard."""
    import naviewer.interrupts as interrupts

    interrupts.clear_saved_notes()
    interrupts.note_saved("confirmed 3 samples")
    for k in (1, 2, 3):
        interrupts.note_saved(f"{k} of 9 shards of e.npy", key="shards:e.npy")
    assert interrupts.saved_notes() == ["confirmed 3 samples", "3 of 9 shards of e.npy"]
    interrupts.clear_saved_notes()
