import json

import numpy as np
import pytest

from naviewer.cli import main

TINY_ARGS = ["--arch", "resnet10", "--width", "8", "--image-size", "16", "--batch-size", "32", "--threads", "1",
             "--warmup-epochs", "0", "--max-steps-per-epoch", "2"]


def test_train_resume_embed_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(run), *TINY_ARGS]) == 0
    assert (run / "checkpoints" / "last.pt").is_file()
    # a second train into the same folder without --resume is refused, with --resume it extends the run
    assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(run), *TINY_ARGS]) == 2
    capsys.readouterr()
    # options that --resume would ignore are refused, named with the run's own value
    assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *TINY_ARGS,
                 "--method", "mocov2", "--width", "16"]) == 2
    err = capsys.readouterr().err
    assert "--method mocov2 (the run: simclr)" in err and "--width 16 (the run: 8)" in err and "Traceback" not in err
    assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *TINY_ARGS,
                 "--set", "temperature=0.2"]) == 2
    # an option typed with its default value is an option too: "--arch resnet18" on a resnet10 run was dropped
    bare = ["--batch-size", "32", "--threads", "1", "--max-steps-per-epoch", "2"]
    assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *bare,
                 "--arch", "resnet18", "--image-size", "32"]) == 2
    err = capsys.readouterr().err
    assert "--arch resnet18 (the run: resnet10)" in err and "--image-size 32 (the run: 16)" in err
    assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *TINY_ARGS]) == 0
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "epoch"]
    assert epochs == [0, 1]
    capsys.readouterr()  # done: resuming again trains nothing (it said "done" and rewrote last.pt)
    assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *TINY_ARGS]) == 2
    assert "2 epochs done already" in capsys.readouterr().err
    out = tmp_path / "emb.npy"
    assert main(["embed", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--dataset", "demo",
                 "--out", str(out), "--dtype", "float16", "--device", "cpu"]) == 0
    emb = np.load(out)
    assert emb.shape[1] == 64 and emb.dtype == np.float16
    result = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--train-dataset", "demo",
                 "--test-dataset", "demo", "--no-linear", "--knn-k", "20", "--attack", "patch",
                 "--device", "cpu", "--json", str(result)]) == 0
    values = json.loads(result.read_text())
    assert 0 <= values["knn_acc"] <= 1 and 0 <= values["knn_asr_nt"] <= 1 and values["target"] == 0
    # the analyst's own trigger image (eval --help says how): a newcomer believed only the built-in ones were measured
    from PIL import Image

    patch = np.zeros((6, 6, 3), np.uint8)
    patch[::2, ::2] = 255
    Image.fromarray(patch).save(tmp_path / "mine.png")
    assert main(["eval", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--train-dataset", "demo",
                 "--test-dataset", "demo", "--no-linear", "--knn-k", "20", "--attack", "patch", "--target", "3",
                 "--attack-setting", f"trigger={tmp_path / 'mine.png'}", "--attack-setting", "trigger_size=6",
                 "--device", "cpu", "--json", str(result)]) == 0
    values = json.loads(result.read_text())
    assert 0 <= values["knn_asr_nt"] <= 1 and values["target"] == 3
    # a misspelt trigger file is said before either set is embedded (after both, a probe, session 30)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--train-dataset", "demo",
                 "--test-dataset", "demo", "--no-linear", "--attack", "patch",
                 "--attack-setting", f"trigger={tmp_path / 'nosuch.png'}", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "nosuch.png: trigger file not found" in err and "embedding" not in err
    # a test set of the target class alone: asr_nt has nothing to measure; it reads n/a and is null in the JSON
    # (it printed "nan" and wrote NaN, which is not JSON)
    (tmp_path / "one" / "a").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / "one" / "a" / f"{i}.png")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--train-dataset", str(tmp_path / "one"),
                 "--test-dataset", str(tmp_path / "one"), "--no-linear", "--knn-k", "3", "--attack", "patch",
                 "--device", "cpu", "--json", str(tmp_path / "one.json")]) == 0
    out, err = capsys.readouterr()
    assert "knn_asr_nt: n/a" in out and "nan" not in out and "every labelled test image is of the target class" in err
    values = json.loads((tmp_path / "one.json").read_text())
    assert values["knn_asr_nt"] is None and values["knn_asr_all"] is not None


def test_method_settings_are_checked_before_the_images_are_read(tmp_path, capsys):
    """A typo in --set is named at once; the dataset (here missing) is not opened first."""
    assert main(["train", "--dataset", str(tmp_path / "no-such-folder"), "--out", str(tmp_path / "run"),
                 "--set", "temprature=0.2", *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert "temprature" in err and "no-such-folder" not in err


def test_bad_checkpoint_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["embed", "--checkpoint", str(bad), "--dataset", "demo", "--out", str(tmp_path / "e.npy")]) == 2
    assert "bad.pt" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "embed", "eval"])
def test_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "usage" in capsys.readouterr().out


def test_a_second_training_into_the_same_folder_at_the_same_time_is_refused(tmp_path, capsys):
    """Two train --out R at once both ran: one metrics.jsonl with two runs interleaved, both saving last.pt (a sweep,
    session 18). The second finds the folder's lock held."""
    from filelock import FileLock

    from naviewer.cli.train import TRAIN_LOCK

    run = tmp_path / "run"
    run.mkdir()
    with FileLock(run / TRAIN_LOCK):  # what the first training holds while it trains
        assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(run), *TINY_ARGS]) == 2
    assert "another process is training into this folder now" in capsys.readouterr().err
    assert not (run / "checkpoints" / "last.pt").exists()
    assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(run), *TINY_ARGS]) == 0


def test_resume_on_other_images_is_refused(tmp_path, capsys):
    """train --resume --dataset another/train.txt (a crafted set of the same size) went on training on it without a
    word (a sweep, session 18): the run records what it began on."""
    from naviewer.cli.train import DATA_RECORD

    run = tmp_path / "run"
    assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(run), *TINY_ARGS]) == 0
    assert (run / DATA_RECORD).is_file()
    capsys.readouterr()
    assert main(["craft", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "crafted"),
                 "--rate", "0.05"]) == 0
    capsys.readouterr()
    assert main(["train", "--dataset", str(tmp_path / "crafted" / "train.txt"), "--epochs", "2", "--out", str(run),
                 "--resume", *TINY_ARGS]) == 2
    assert "holds other images" in capsys.readouterr().err
    assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *TINY_ARGS]) == 0


def test_resume_with_a_damaged_data_record_is_refused_and_a_missing_one_is_said(tmp_path, capsys):
    """A damaged train_data.json turned the check off: the run resumed on other images, rc 0 (a bad-input probe,
    session 32). Damaged: refused, the file named; missing (a run from before the record): a warning, then recorded."""
    from naviewer.cli.train import DATA_RECORD

    run = tmp_path / "run"
    assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(run), *TINY_ARGS]) == 0
    capsys.readouterr()
    for damaged in ("garbage", "{}", "[1]", '{"fingerprint": 7}'):
        (run / DATA_RECORD).write_text(damaged)
        assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *TINY_ARGS]) == 2
        err = capsys.readouterr().err
        assert "record of the data it began on is damaged" in err and DATA_RECORD in err, err
    (run / DATA_RECORD).unlink()
    with pytest.warns(UserWarning, match="no record of the data this run began on"):
        assert main(["train", "--dataset", "demo", "--epochs", "2", "--out", str(run), "--resume", *TINY_ARGS]) == 0
    assert (run / DATA_RECORD).is_file()


def test_a_knn_test_set_without_its_bank_is_refused(tmp_path, capsys):
    """--knn-test-dataset without --knn-dataset was ignored, rc 0 (a bad-input probe, session 32)."""
    assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--knn-test-dataset", "demo", *TINY_ARGS]) == 2
    assert "it needs --knn-dataset" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_training_batch_of_one_is_named_on_the_command_line(tmp_path, capsys):
    """train / run --batch-size 1 said "batch size must be at least 2 ..." without the option (a probe, session 28)."""
    from naviewer.cli import main

    assert main(["train", "--dataset", "digits", "--batch-size", "1", "--out", str(tmp_path / "o")]) == 2
    assert "--batch-size must be >= 2 for a training" in capsys.readouterr().err and not (tmp_path / "o").exists()
