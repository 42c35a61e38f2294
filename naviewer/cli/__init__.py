"""The ``naviewer`` command.

Every sub-command lives in its own module of this package and exposes
``register(subparsers) -> argparse.ArgumentParser`` that sets ``func`` (a callable taking the parsed
namespace and returning an exit code). Modules are discovered, so adding a command means adding a
file. Command modules must import torch and friends inside ``func``, never at module level, so
that ``naviewer --help`` stays instant.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import pkgutil
import sys
from typing import Optional, Sequence

from naviewer import __version__
from naviewer.errors import JobCancelled, NaviewerError

_NOT_COMMANDS = {"progress", "common"}


def _command_modules() -> list:
    modules = []
    for info in pkgutil.iter_modules(__path__):  # type: ignore[name-defined]
        if info.name.startswith("_") or info.name in _NOT_COMMANDS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    modules.sort(key=lambda m: (getattr(m, "ORDER", 50), m.__name__))
    return modules


class _VersionAction(argparse.Action):
    """`--version` reports naviewer and, when importable, torch/torchvision/Qt and the device."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from naviewer.versions import version_report

        print(version_report())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naviewer",
        description=(
            "Find data-poisoning backdoors in self-supervised contrastive learning: craft poisons, "
            "train or load an encoder, rank samples by embedding density (DIFT), review the flags "
            "and export a cleaned dataset. With no command, opens the desktop application; naviewer PATH opens it "
            "on that workspace (or run folder to follow), as naviewer-gui PATH does."
        ),
    )
    parser.add_argument("--version", action=_VersionAction, help="print versions and the compute device, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(sub)
    return parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    """Every command name and alias the parser knows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _one_line_warnings() -> None:
    """naviewer's own warnings (a file list's duplicates, an odd image) as one line each, said once: Python's
    default format adds the warning's source file and a line of naviewer's code, which reads like a crash."""
    import warnings

    default, shown = warnings.showwarning, set()

    def show(message, category, filename, lineno, file=None, line=None):
        if not getattr(category, "__module__", "").startswith("naviewer"):
            return default(message, category, filename, lineno, file, line)
        text = str(message)
        if text not in shown:
            shown.add(text)
            print(f"naviewer: warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``naviewer`` command (``argv`` None) or one call of it (tests, scripts); returns the exit status."""
    try:
        code = _dispatch(argv)
    except KeyboardInterrupt as exc:  # a Ctrl-C while the parser or a command's imports were still loading
        code = _say_interrupted(exc)
    if argv is None:
        _exit_on_sigint_from_now(code)
        _leave_after_a_process_group(code)
    return code


def _say_interrupted(exc: BaseException) -> int:
    """"naviewer: cancelled" (130) for Ctrl-C or a cancelled job, "naviewer: terminated" (143) for SIGTERM."""
    from naviewer.interrupts import Terminated, saved_notes, terminated

    saved = saved_notes()
    if len(saved) > 3:  # a matrix of many workspaces: the latest, and how many before
        saved = [f"{len(saved) - 2} earlier saves", *saved[-2:]]
    kept = f"; saved before it: {'; '.join(saved)}" if saved else ""
    if isinstance(exc, Terminated) or terminated():  # raised by it, or a job it cancelled cleanly
        print("naviewer: terminated (SIGTERM); what was written so far is kept or cleaned up as after Ctrl-C" + kept,
              file=sys.stderr)
        return 143
    print("naviewer: cancelled" + kept, file=sys.stderr)
    return 130


def _leave_after_a_process_group(code: int) -> None:
    """A rank of a torchrun job (train, embed) whose process group was torn down ends here, without the
    interpreter's finalisation: with gloo's threads still alive it aborted now and then ("terminate called without
    an active exception", SIGABRT; seen in CI, session 20), and torchrun then reported a failed run whose work was
    saved. Everything is written and closed by now; only the streams need flushing."""
    distributed = sys.modules.get("naviewer.ssl.distributed")
    if distributed is None or not distributed.left_a_process_group():
        return
    _flush_and_exit(code)


def _flush_and_exit(code: int) -> None:
    """End the process with ``code`` now, its output flushed first (no interpreter finalisation)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _exit_on_sigint_from_now(code: int) -> None:
    """The outcome is decided and printed: a Ctrl-C while the interpreter shuts down (threads joined, buffers
    flushed) ends the process with that outcome's status. It killed the process by the signal after
    "naviewer: cancelled" was printed (a sweep: the second and third Ctrl-C of an impatient user)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        _flush_and_exit(code)

    try:
        signal.signal(signal.SIGINT, handler)
        # and SIGTERM: after a review had saved and said so, a late one ended 143 with no line, or 0 with a traceback
        # out of an object's finaliser (a probe, session 29); the outcome already said stands
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError, AttributeError):
        return
    # Python-level handlers stop with the interpreter's signal handling, which puts the default back (killed by
    # the signal, 130 / 143 with no line: an `embed` under `timeout -s INT`, session 29), but it leaves SIG_IGN
    # alone: the finalisers and module teardown after the exit handlers ignore both signals.
    global _OUTCOME_DECIDED
    _OUTCOME_DECIDED = True


#: set once a command's outcome is printed: the last exit handler then ignores SIGINT / SIGTERM
_OUTCOME_DECIDED = False


def _ignore_signals_from_now() -> None:
    """Registered at import, so it runs after every exit handler registered later (multiprocessing joining its
    children, torch's): until then a Ctrl-C still ends a hang there with the decided status (a review, session 30)."""
    import signal

    if not _OUTCOME_DECIDED:
        return
    for name in ("SIGINT", "SIGTERM"):
        try:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        except (ValueError, OSError, AttributeError):
            pass


atexit.register(_ignore_signals_from_now)


def _dispatch(argv: Optional[Sequence[str]]) -> int:
    from naviewer.interrupts import clear_saved_notes

    clear_saved_notes()  # one command's notes (tests and scripts call main more than once)
    if argv is None:  # run as the command (tests call main with their own argv and record warnings themselves)
        _one_line_warnings()
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if words and not words[0].startswith("-") and words[0] not in _commands(parser) and os.path.exists(words[0]):
        # `naviewer WS`: what a newcomer types to open a workspace ("invalid choice" before); the window opens on it
        try:
            from naviewer.gui.app import run_app

            return run_app(words)
        except NaviewerError as exc:
            print(f"naviewer: error: {exc}", file=sys.stderr)
            return 2
        except ImportError as exc:
            from naviewer.system_libs import report_missing_library

            return report_missing_library(exc)
    args = parser.parse_args(argv)
    args.given_words = words  # which options were typed (argparse cannot tell "--arch resnet18" from its default)
    try:
        if args.command is None:
            from naviewer.gui.app import run_app

            return run_app([])
        from naviewer.cli._options import check_options

        if argv is None:  # a command (not the window, which closes itself): SIGTERM ends it as Ctrl-C does
            from naviewer.interrupts import install_sigterm

            install_sigterm()
        check_options(args)
        return int(args.func(args) or 0)
    except NaviewerError as exc:
        print(f"naviewer: error: {exc}", file=sys.stderr)
        return 2
    except (JobCancelled, KeyboardInterrupt) as exc:
        return _say_interrupted(exc)
    except ImportError as exc:
        from naviewer.system_libs import report_missing_library

        return report_missing_library(exc)
    except MemoryError as exc:  # a tensor or image too large for this machine: said in one line, not a traceback
        print(f"naviewer: error: out of memory ({exc or 'an allocation failed'}); try a smaller --batch-size, fewer "
              "threads, or a machine with more memory", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`naviewer review WS | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        # A file-system failure no command turned into a NaviewerError (disk full, read-only --out, a file
        # where a folder is expected): the user can fix it, so one line naming the file, not a traceback.
        from naviewer.io import describe_os_error

        where = exc.filename if isinstance(exc.filename, (str, bytes)) else None
        where = os.fsdecode(where) if where is not None else None
        print(f"naviewer: error: {where + ': ' if where else ''}{describe_os_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
