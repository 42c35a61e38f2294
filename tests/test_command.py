"""The `naviewer` command itself: one-line errors, quiet broken pipes."""

from __future__ import annotations

import subprocess
import sys

import pytest


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


def test_missing_system_library_names_it_and_the_install_line(monkeypatch, capsys):
    """A host without libGL (a bare server) gets the library and the apt-get line, not a traceback."""
    import naviewer.gui.app
    from naviewer.cli import main

    def no_libgl(argv):
        raise ImportError("libGL.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(naviewer.gui.app, "run_app", no_libgl)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "libGL.so.1" in err and "apt-get install" in err and "Traceback" not in err


def test_run_name_survives_torchrun_parser():
    """torchrun reads ``--run`` as its ``--run-path``; ``--run-name`` reaches naviewer intact."""
    from torch.distributed.run import get_args_parser

    from naviewer.cli import build_parser

    launched = get_args_parser().parse_args(["--nproc_per_node", "2", "-m", "naviewer", "run", "ws", "--run-name", "x"])
    assert launched.training_script_args == ["run", "ws", "--run-name", "x"]
    assert build_parser().parse_args(launched.training_script_args).run == "x"
    assert build_parser().parse_args(["finetune", "ws", "--run-name", "x"]).run == "x"


def test_terminal_epoch_lines_count_from_one_of_the_run_total():
    """metrics.jsonl keeps 0-based epochs; the terminal says "epoch N of M" like the window does."""
    import io

    from naviewer.cli._sslargs import EpochLines
    from naviewer.cli.progress import TextProgress

    out = io.StringIO()
    lines = EpochLines(TextProgress(out))
    lines.metric({"kind": "run_start", "total_epochs": 3, "steps_per_epoch": 2})
    lines.metric({"kind": "step", "epoch": 0, "step": 2, "loss": 1.0})
    lines.metric({"kind": "epoch", "epoch": 0, "loss": 1.5})
    lines.metric({"kind": "step", "epoch": 1, "step": 4, "loss": 1.0})
    lines.metric({"kind": "event", "event": "restart", "n_samples": 5, "remaining_epochs": 4})  # in the hook
    lines.metric({"kind": "epoch", "epoch": 1, "loss": 1.25})
    assert out.getvalue().splitlines() == ["  epoch 1 of 3: loss=1.5", "  epoch 2 of 6: loss=1.25"]
    lines.metric({"kind": "epoch", "epoch": 2, "loss": 1.0})  # after the restart: counted as its progress line
    assert out.getvalue().splitlines()[-1] == "  epoch 1 of 4 since the restart (the run's 3): loss=1"
    resumed = EpochLines(TextProgress(io.StringIO()))  # naviewer finetune: a new process, the restart's own epoch
    resumed.metric({"kind": "event", "event": "restart", "remaining_epochs": 50, "restart_epoch": 39})
    resumed.metric({"kind": "epoch", "epoch": 39, "loss": 5.5})
    assert resumed.inner.stream.getvalue() == "  epoch 1 of 50 since the restart (the run's 40): loss=5.5\n"


def test_terminal_dift_figures_are_words_that_join_the_buffer_to_the_flags():
    """"dift_detected=24 dift_candidates=46" stood beside "DIFT flagged 172" unexplained (a newcomer, session 31)."""
    import io

    from naviewer.cli._sslargs import EpochLines
    from naviewer.cli.progress import TextProgress

    out = io.StringIO()
    lines = EpochLines(TextProgress(out))
    lines.metric({"kind": "run_start", "total_epochs": 50})
    lines.metric({"kind": "event", "event": "dift_stop", "epoch": 38, "buffer": 24, "flagged": 172})
    lines.metric({"kind": "epoch", "epoch": 38, "loss": 4.27, "dift_detected": 24, "dift_candidates": 46,
                  "dift_stable": True, "dift_precision": 1.0, "dift_recall": 0.2124})
    said = out.getvalue().splitlines()
    assert said == ["DIFT's buffer held steady at 24 samples; label spreading from them (and the trusted anchors) "
                    "flags 172",
                    "  epoch 39 of 50: loss=4.27; DIFT buffer 24 of 46 candidates, steady (precision 100 %, recall 21 %)"]


def test_naviewer_warnings_are_one_line_each_said_once(tmp_path):
    """A file list's duplicate lines are a warning, not a crash: one `naviewer: warning:` line, without the
    source file and code line Python's default format prints (which reads like a traceback)."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    lines = []
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "img" / f"{i}.png")
        lines.append(f"img/{i}.png {i % 2}")
    (tmp_path / "train.txt").write_text("\n".join(lines + lines[:1]) + "\n")
    out = subprocess.run([sys.executable, "-m", "naviewer", "new", str(tmp_path / "ws"), "--dataset",
                          str(tmp_path / "train.txt"), "--anchors-per-class", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    warned = [line for line in out.stderr.splitlines() if "duplicate entry ignored" in line]
    assert len(warned) == 1 and warned[0].startswith("naviewer: warning: ")
    assert ".py:" not in out.stderr and "Traceback" not in out.stderr


def test_numeric_options_out_of_range_are_named_not_a_traceback(capsys, tmp_path):
    """argparse checks types only: --seed -1, --image-size 0, --lr nan, --epochs 0 used to reach the code (a traceback,
    or --epochs 0 silently training the default 200)."""
    from naviewer.cli import main

    cases = [
        (["craft", "--dataset", "demo", "--out", str(tmp_path / "c"), "--attack", "patch", "--seed", "-1"], "--seed must be >= 0"),
        (["train", "--dataset", "demo", "--out", str(tmp_path / "t"), "--epochs", "0"], "--epochs must be >= 1"),
        (["train", "--dataset", "demo", "--out", str(tmp_path / "t"), "--lr", "nan"], "--lr must be a finite number"),
        # finite but absurd: 1e300 overflowed inside torch's optimiser, after the run folder was made
        (["train", "--dataset", "demo", "--out", str(tmp_path / "t"), "--lr", "1e300"], "--lr must be > 0 and <= 1000"),
        # pass ids count from 1, and a bound of 2**62 is noise beside a negative id (a probe, session 29)
        (["export", str(tmp_path / "ws"), "--pass", "-1"], "--pass must be >= 1, got -1"),
        (["train", "--dataset", "demo", "--out", str(tmp_path / "t"), "--wd", "1e300"], "--wd must be >= 0 and <= 10"),
        # in range, but an encoder that wide cannot be trained on this machine (it stalled allocating ~40 GB)
        (["train", "--dataset", "demo", "--out", str(tmp_path / "t"), "--arch", "resnet10", "--width", "4096",
          "--epochs", "1"], "--width 4096: a resnet10 that wide"),
        (["embed", "--checkpoint", "x.pt", "--dataset", "demo", "--out", str(tmp_path / "e.npy"), "--image-size", "0"],
         "--image-size must be >= 8"),
        (["review", str(tmp_path), "--pass", str(2**70)], "--pass must be"),
        (["new", str(tmp_path / "w"), "--dataset", "demo", "--attack", "patch", "--attack-setting", "trigger_size=abc"],
         "setting trigger_size='abc': expected a whole number"),
        # a second sweep: a traceback (nan, -0.1, --timeout -1), a hang (--large -1) or a silent no-op (--repeat 0)
        (["bench", "detect", "--skip-baseline", "--n", "1000", "--poison-fraction", "nan"],
         "--poison-fraction must be a finite number"),
        (["bench", "detect", "--skip-baseline", "--n", "1000", "--poison-fraction", "-0.1"], "--poison-fraction must be >"),
        (["bench", "detect", "--skip-baseline", "--n", "1000", "--large", "-1"], "--large must be >= 0"),
        (["bench", "startup", "--no-torch", "--timeout", "-1"], "--timeout must be > 0"),
        (["bench", "startup", "--repeat", "0"], "--repeat must be >= 1"),
        # a third sweep: inf passed their own "> 0" checks (a traceback; a prune that pruned nothing, rc 0)
        (["embed", "--checkpoint", "x.pt", "--dataset", "demo", "--out", str(tmp_path / "e.npy"), "--decode-mb", "inf"],
         "--decode-mb must be a finite number"),
        (["prune", "x.pt", "--out", str(tmp_path / "p.pt"), "--u", "inf"], "--u must be a finite number"),
        (["review", str(tmp_path), "--top", "0"], "--top must be >= 1"),
        # bench and reproduce sizes: tracebacks (StopIteration, ZeroDivisionError), nonsense figures with rc 0
        (["bench", "embed", "--images", "0"], "--images must be >= 1"),
        (["bench", "workspace", "--scale", "1000", "0"], "--scale must be >= 1, got 0"),
        (["bench", "responsiveness", "--seconds", "nan"], "--seconds must be a finite number"),
        (["reproduce", "--matrix", str(tmp_path / "mx"), "--cells", "patch:simclr:-1"], "seed must be 0 .."),
        # a fourth sweep (session 17): refused only after the craft, the no-defense training and B1
        (["reproduce", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "rp"), "--epochs", "3"],
         "it would never detect"),
        (["reproduce", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "rp"),
          "--attack-setting", "trigger_size=-3"], "trigger size must be at least 1 px"),
        (["reproduce", "--matrix", str(tmp_path / "mx"), "--cells", ""], "--cells is empty"),
        (["reproduce", "--matrix", str(tmp_path / "mx"), "--cells", "patch:simclr:0:2:9"], "bad matrix cell"),
        # bench gui / workspace sizes of 0 or -1 ended in numpy tracebacks
        (["bench", "gui", "--gallery", "-1"], "--gallery must be >= 1"),
        (["bench", "gui", "--image-points", "-5"], "--image-points must be >= 0"),
        (["bench", "gui", "--sort", "0"], "--sort must be >= 1"),
        (["bench", "gui", "--crossover", "-1"], "--crossover must be >= 1"),
        (["bench", "workspace", "--file-list", "100", "--register", "-1"], "--register must be >= 0"),
        (["reproduce", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "rp"), "--restarts", "x"],
         "--restarts belongs to the detection matrix"),
        # a bad-input sweep, session 26: a traceback, hours of matrix for an ignored option, options that named nothing
        (["bench", "embed", "--dataset", "demo", "--images", "4", "--batch-size", "64", "--steps", "1"],
         "--batch-size 64 is more than the 4 images timed"),
        (["reproduce", "--matrix", str(tmp_path / "mx"), "--attack", "patch"],
         "--attack belongs to a single reproduction, not to --matrix OUT"),
        (["reproduce", "--matrix", str(tmp_path / "mx"), "--epochs", "3", "--seed", "2"],
         "--epochs, --seed belong to a single reproduction"),
        (["reproduce", "--matrix", str(tmp_path / "mx"), "--seed", "0"], "--seed belongs to a single reproduction"),
        (["bench", "detect", "--scale", "1000", "--resume"], "--resume keeps the rows of a --json file"),
        (["bench", "detect", "--n", "1000", "--classes", "5000"], "--classes 5,000 is too many for --n 1,000"),
        (["new", str(tmp_path / "w"), "--dataset", "demo", "--test-dataset", ""], "--test-dataset is empty"),
        (["eval", "--checkpoint", "x.pt", "--train-dataset", "demo", "--test-dataset", " "], "--test-dataset is empty"),
        (["reproduce", "--matrix", str(tmp_path / "mx"), "--set", "=5"], "--set '=5' has an empty KEY"),
        (["reproduce", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "rp"), "--target", "12"],
         "--target 12 is not a class of this dataset (10 classes"),
        (["reproduce", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "rp"), "--anchors",
          f"ids:@{tmp_path / 'nope.txt'}"], "the anchor id file does not exist"),
        (["reproduce", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "rp"), "--dift-set",
          "k=5000"], "DIFT needs more than k + anchors = 5000 + 100 samples"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "w").exists() and not (tmp_path / "t").exists()
    assert not (tmp_path / "mx" / "cells").exists() and not (tmp_path / "rp").exists()


def test_naviewer_path_opens_the_window_on_it(tmp_path, monkeypatch):
    """`naviewer WS` was "invalid choice: 'WS'"; it opens the window on that workspace, as naviewer-gui WS does.
    A command name still wins over a folder of that name."""
    import naviewer.gui.app as app
    from naviewer.cli import main

    opened = []
    monkeypatch.setattr(app, "run_app", lambda argv: opened.append(list(argv)) or 0)
    (tmp_path / "ws").mkdir()
    assert main([str(tmp_path / "ws"), "--theme", "dark"]) == 0
    assert opened == [[str(tmp_path / "ws"), "--theme", "dark"]]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export").mkdir()
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert len(opened) == 1


def test_out_of_memory_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    """A MemoryError (roi_align's std::bad_alloc on a 60,000,000 x 1 image) reached the user as a traceback."""
    import naviewer.cli.review as review
    from naviewer.cli import main

    def boom(_args):
        raise MemoryError("std::bad_alloc")

    monkeypatch.setattr(review, "run", boom)
    assert main(["review", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "out of memory (std::bad_alloc)" in err and "Traceback" not in err


def test_more_threads_than_twice_the_cores_is_warned_about(tmp_path, capsys):
    """--threads 1000 on 2 cores ran 1,000x slower without a word (a sweep, session 18)."""
    import os

    from naviewer.cli import main

    too_many = 2 * (os.cpu_count() or 1) + 1
    main(["train", "--dataset", str(tmp_path / "missing"), "--out", str(tmp_path / "r"), "--threads", str(too_many)])
    assert f"--threads {too_many} is more than twice this machine's" in capsys.readouterr().err
