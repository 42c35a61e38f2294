from __future__ import annotations

import pytest

from workflow_kit import PATCH
from naviewer.cli import main
from naviewer.workspace import Workspace


def test_new_with_attack_and_init_alias(tmp_path, tiny_data, capsys):
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    assert main(["new", str(tmp_path / "a"), "--dataset", str(tiny_data[0]), "--test-dataset", str(tiny_data[1]),
                 "--attack", "patch", "--rate", "0.1", *settings]) == 0
    assert "20 patch poisons" in capsys.readouterr().out
    with Workspace.open(tmp_path / "a") as ws:
        assert ws.read_ground_truth() is not None and ws.config["anchors"]["indices"]
    assert main(["init", str(tmp_path / "b"), "--dataset", str(tiny_data[0])]) == 0
    with Workspace.open(tmp_path / "b") as ws:
        assert ws.store.sample_count() == 240 and ws.read_ground_truth() is None


def test_a_copied_attack_workspace_reads_its_own_crafted_dataset(tmp_path, tiny_data, capsys):
    """new --attack writes the crafted set into WORKSPACE/dataset/; its [dataset] path was absolute, so a copied
    workspace read the original's images, and failed once the original was gone (a bad-input probe)."""
    import shutil

    import numpy as np

    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    assert main(["new", str(tmp_path / "a"), "--dataset", str(tiny_data[0]), "--attack", "patch", "--rate", "0.1",
                 *settings]) == 0
    # what the rate counted is said (a newcomer asked for 10 % and read 8.98 % in the ground truth)
    assert "% of the" in capsys.readouterr().out.split("patch: ", 1)[1].split("\n")[0]
    with Workspace.open(tmp_path / "a") as ws:
        assert ws.config["dataset"]["path"] == "dataset/train.txt" and ws.config["dataset"]["inside_workspace"]
        first = ws.dataset().image(0)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    with Workspace.open(tmp_path / "b") as ws:
        assert ws.dataset_record()["path"] == str(tmp_path / "b" / "dataset" / "train.txt")
        assert np.array_equal(ws.dataset().image(0), first)
    assert main(["export", str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 0
    assert str(tmp_path / "b" / "dataset") in (tmp_path / "out" / "README.txt").read_text()


def test_new_on_built_in_digits_says_how_the_demo_crafts_the_attack(tmp_path, capsys):
    """`new --dataset demo --attack na` made 67 poisons where `naviewer demo` makes 113, and nothing said why: the
    command names the demo's settings it did not use; given them, it says nothing more."""
    assert main(["new", str(tmp_path / "a"), "--dataset", "digits", "--attack", "na"]) == 0
    out = capsys.readouterr().out
    assert "note: naviewer demo crafts na on --dataset digits (grey, 16 px) with rate=0.08, num_references=36" in out
    assert "does: add --rate 0.08 --attack-setting num_references=36" in out
    assert main(["new", str(tmp_path / "t"), "--dataset", "demo", "--attack", "na"]) == 0  # the tinted set: says so
    assert "use --dataset digits and add --rate 0.08" in capsys.readouterr().out
    assert main(["new", str(tmp_path / "b"), "--dataset", "digits", "--attack", "na", "--rate", "0.08",
                 "--attack-setting", "num_references=36"]) == 0
    assert "naviewer demo crafts" not in capsys.readouterr().out


def test_new_writes_the_dift_preset_that_detect_then_reads(tmp_path, tiny_data):
    """A new workspace starts from naviewer's measured recipe (the paper's settings flagged none of the poisons on 4
    of 12 stored cells post-hoc); --dift-preset paper leaves [dift] to the dataclass's defaults."""
    from naviewer.defense.config import DIFT_PRESETS, DiftConfig

    assert main(["new", str(tmp_path / "r"), "--dataset", str(tiny_data[0])]) == 0
    with Workspace.open(tmp_path / "r") as ws:
        assert ws.config["dift"] == DIFT_PRESETS["naviewer"]
        config = DiftConfig.from_workspace(ws, {"ls_alpha": 0.5})  # --dift-set still wins
        assert config.candidate_fraction == 0.03 and config.closure_votes == 0.7 and config.ls_alpha == 0.5
    assert main(["new", str(tmp_path / "p"), "--dataset", str(tiny_data[0]), "--dift-preset", "paper"]) == 0
    with Workspace.open(tmp_path / "p") as ws:
        assert not ws.config.get("dift")
        assert DiftConfig.from_workspace(ws) == DiftConfig()


def test_new_refuses_attack_options_without_attack(tmp_path, tiny_data, capsys):
    assert main(["new", str(tmp_path / "c"), "--dataset", str(tiny_data[0]), "--rate", "0.1"]) == 2
    assert "--rate needs --attack" in capsys.readouterr().err


@pytest.mark.parametrize("restart", ["continue", "retrain"])
def test_run_stops_for_review_then_finetune_resumes(tmp_path, tiny_data, capsys, restart):
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    ws_path = str(tmp_path / "w")
    assert main(["new", ws_path, "--dataset", str(tiny_data[0]), "--attack", "patch", "--rate", "0.1", *settings]) == 0
    dift = ["patience=1", "k=5", "n_min=5", "candidate_fraction=0.1", "pool_random=50", "guard_reference_size=100",
            "ft_max_steps=5", "base_lr=0.006", f"restart_mode={restart}", "retrain_epochs=1"]
    assert main(["run", ws_path, "--dift", "--epochs", "3", "--augment-recipe", "aug+", "--arch", "resnet10", "--width", "8", "--image-size", "16",
                 "--batch-size", "64", "--warmup-epochs", "0", "--dift-start", "0", "--no-monitor", "--threads", "1",
                 *[f"--dift-set={d}" for d in dift]]) == 0
    out = capsys.readouterr().out
    assert "naviewer review" in out and "naviewer finetune" in out
    assert ("retrains the encoder from scratch" in out) == (restart == "retrain")
    if restart == "continue":  # a damaged pass id in the run record: said, nothing finished on it (a fuzz)
        import json as _json
        from pathlib import Path as _Path

        record = next((_Path(ws_path) / "runs").glob("*/dift_state.json"))
        good = record.read_text()
        last = next((_Path(ws_path) / "checkpoints").glob("*/last.pt"))
        before = last.read_bytes()
        for bad, words in (("x", "not a pass number"), (999, "does not have")):
            record.write_text(_json.dumps({**_json.loads(good), "pass_id": bad}))
            assert main(["finetune", ws_path, "--accept-all", "--no-monitor"]) == 2
            err = capsys.readouterr().err
            assert words in err and "dift_state.json" in err and "Traceback" not in err
            assert last.read_bytes() == before
        record.write_text(good)
        # a refused setting decides nothing: accept-all had confirmed every flag first, unsaid (a probe, session 29)
        from naviewer.workspace import Workspace

        assert main(["finetune", ws_path, "--accept-all", "--no-monitor", "--dift-set", "restart_fallback=no"]) == 2
        assert "restart_fallback" in capsys.readouterr().err
        with Workspace.open(ws_path) as ws:
            assert not (ws.store.review_states() == "confirmed").any()
    assert main(["finetune", ws_path, "--accept-all", "--no-monitor"]) == 0
    said = capsys.readouterr().out
    if restart == "continue":
        assert "fine-tuned on" in said
    else:  # no Eq. 7 step is taken, so the command must not claim one
        assert "retrained the re-initialised encoder for 1 epoch " in said and "fine-tuned" not in said


def test_dift_set_anchors_per_class_on_chosen_anchors_is_refused(tmp_path, tiny_data, capsys):
    """It ran with the workspace's 10 a class and recorded 1 in the pass: a newcomer read "1 anchor a class"."""
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    assert main(["new", str(tmp_path / "a"), "--dataset", str(tiny_data[0]), "--attack", "patch", "--rate", "0.1",
                 *settings]) == 0
    capsys.readouterr()
    for command in (["detect", str(tmp_path / "a"), "--checkpoint", str(tmp_path / "none.pt")],
                    ["run", str(tmp_path / "a"), "--dift", "--epochs", "1"]):
        assert main([*command, "--dift-set", "anchors_per_class=1"]) == 2
        err = capsys.readouterr().err
        assert "would not change this workspace's anchors" in err and "--anchors-per-class" in err


def test_run_leaves_out_the_confirmed_samples_for_a_retrain_after_a_posthoc_review(tmp_path, tiny_data, capsys):
    """After a post-hoc review the only way to retrain on the decisions was export, a new workspace, then train (the
    own-data newcomer, session 22): `run --leave-out-confirmed` trains the recipe on the samples the review keeps."""
    import json as _json

    ws_path = str(tmp_path / "w")
    assert main(["new", ws_path, "--dataset", str(tiny_data[0]), "--attack", "patch", "--rate", "0.1"]) == 0
    tiny = ["--epochs", "1", "--arch", "resnet10", "--width", "8", "--image-size", "16", "--batch-size", "32",
            "--warmup-epochs", "0", "--no-monitor", "--threads", "1", "--max-steps-per-epoch", "2"]
    assert main(["run", ws_path, "--leave-out-confirmed", *tiny]) == 2
    assert "no sample is confirmed" in capsys.readouterr().err
    assert main(["run", ws_path, "--leave-out-confirmed", "--dift", *tiny]) == 2
    assert "trains without DIFT" in capsys.readouterr().err
    assert main(["run", ws_path, "--leave-out-confirmed", "--floor", *tiny]) == 2  # the floor ignored it
    assert "does not apply" in capsys.readouterr().err
    with Workspace.open(ws_path) as ws:
        n = ws.store.sample_count()
        ws.store.set_review([1, 2, 3], "confirmed", "alice")
        ws.store.set_review([4], "rejected", "alice")
    assert main(["run", ws_path, "--leave-out-confirmed", "--run", "kept", *tiny]) == 0
    out = capsys.readouterr().out
    assert f"leaving out the 3 samples confirmed as poisons; training on the other {n - 3:,}" in out
    # and its end is read: here --no-monitor recorded no evaluation (the window's box says the same lines)
    assert "Trained without the 3 confirmed poisons (run kept): no evaluation recorded" in out
    assert "recorded no ASR: it trained without the monitor's evaluation (--no-monitor)" in out
    with Workspace.open(ws_path) as ws:
        record = next(r for r in ws.store.runs() if r["name"] == "kept")
        assert record["config"]["exclude"] == [1, 2, 3]
        start = next(_json.loads(line) for line in (ws.run_dir("kept") / "metrics.jsonl").read_text().splitlines()
                     if _json.loads(line).get("kind") == "run_start")
        assert start["n_samples"] == n - 3


def test_detect_on_a_workspace_it_cannot_write_refuses_before_the_work(tmp_path, tiny_data, capsys, monkeypatch):
    """On a read-only workspace detect embedded, ran the whole pass and printed its verdict, then failed to save it
    (a bad-input corpus, session 23): it refuses first."""
    ws_path = str(tmp_path / "w")
    assert main(["new", ws_path, "--dataset", str(tiny_data[0])]) == 0
    opened = Workspace.open.__func__

    def read_only_open(cls, path, *args, **kwargs):
        return opened(cls, path, *args, **{**kwargs, "read_only": True})

    monkeypatch.setattr(Workspace, "open", classmethod(read_only_open))
    capsys.readouterr()
    assert main(["detect", ws_path, "--checkpoint", str(tmp_path / "no-such.pt")]) == 2
    err = capsys.readouterr().err
    assert "open read-only" in err and "no-such.pt" not in err  # refused before the checkpoint is looked at


def test_too_many_poisons_for_the_target_class_counts_the_anchors_it_keeps_clean(tmp_path, capsys):
    """`new --num-poisons 40` on 2 x 20 images said "only 10 images; lower the rate": the class has 20 (10 went to the
    anchors) and no rate was given (a bad-input corpus, session 23)."""
    assert main(["new", str(tmp_path / "w"), "--dataset", "digits", "--attack", "patch", "--num-poisons", "200"]) == 2
    err = capsys.readouterr().err
    assert "only 132 images; ask for fewer poisons (of its 142, the 10 drawn first as DIFT anchors are kept out" in err
    # Noisy Alignment's references: the same count of anchors, and no "lower the rate" for a count
    assert main(["new", str(tmp_path / "n"), "--dataset", "digits", "--attack", "na", "--num-poisons", "500"]) == 2
    err = capsys.readouterr().err
    assert "ask for fewer poisons or set num_references" in err and "lower the rate" not in err
    assert "the 10 drawn first as DIFT anchors are kept out of the attack" in err


def test_the_target_class_can_be_named(tmp_path, capsys):
    """`new --target dog` was argparse's "invalid int value: 'dog'" while the window looked the names up (a bad-input
    corpus, session 23): the name (any case) or the number; an unknown name lists the classes."""
    import numpy as np
    from PIL import Image

    from naviewer.attacks.base import resolve_target
    from naviewer.errors import NaviewerError

    for c, name in enumerate(("cat", "dog")):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(24):
            Image.fromarray(np.full((16, 16, 3), (7 * i + 90 * c) % 256, np.uint8)).save(tmp_path / "d" / name / f"{i}.png")
    assert main(["new", str(tmp_path / "w"), "--dataset", str(tmp_path / "d"), "--attack", "patch", "--target", "Dog",
                 "--num-poisons", "4", "--anchors-per-class", "2"]) == 0
    with Workspace.open(tmp_path / "w") as ws:
        assert ws.config["attack"]["target_class"] == 1
    assert main(["new", str(tmp_path / "x"), "--dataset", str(tmp_path / "d"), "--attack", "patch", "--target", "bird",
                 "--num-poisons", "4"]) == 2
    assert "target class 'bird' is not one of the dataset's classes (cat=0, dog=1)" in capsys.readouterr().err
    assert resolve_target("1", ["cat", "dog"]) == 1 and resolve_target(None, []) is None
    with pytest.raises(NaviewerError, match="no class names"):
        resolve_target("dog", [])


def test_an_attacked_workspace_is_whole_before_it_appears(tmp_path, tiny_data, monkeypatch):
    """`new --attack` wrote its crafted set, [anchors], [attack], [evaluation] and [dift] after the staging folder was
    renamed: a SIGKILL in between left a workspace without them (a bad-input probe, session 27). Every write lands in
    the hidden staging folder now, and a failure there leaves nothing, not even a half-crafted dataset."""
    from naviewer.errors import NaviewerError

    written_in: list[str] = []
    real = Workspace.update_config

    def spy(self, section, values):
        written_in.append(self.path.name)
        assert not (tmp_path / "a").exists()  # nothing at the final path while the sections are written
        return real(self, section, values)

    monkeypatch.setattr(Workspace, "update_config", spy)
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    assert main(["new", str(tmp_path / "a"), "--dataset", str(tiny_data[0]), "--attack", "patch", "--rate", "0.1",
                 *settings]) == 0
    assert written_in and all(name.startswith(".a.creating-") for name in written_in), written_in
    with Workspace.open(tmp_path / "a") as ws:
        assert {"anchors", "attack", "evaluation", "dift"} <= set(ws.config)

    def broken(self, section, values):
        if section == "evaluation":
            raise NaviewerError("the disk is full", self.path)
        return real(self, section, values)

    monkeypatch.setattr(Workspace, "update_config", broken)
    assert main(["new", str(tmp_path / "b"), "--dataset", str(tiny_data[0]), "--attack", "patch", "--rate", "0.1",
                 *settings]) == 2
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.creating-*"))


def test_a_run_refused_for_its_method_settings_leaves_no_ghost_run(tmp_path, tiny_data, capsys):
    """`run --set bogus=1` was refused after the run was registered: its folders, a lock and a "never started" row
    stayed, listed by the window and `naviewer review` (a bad-input probe, session 28)."""
    ws_path = str(tmp_path / "w")
    assert main(["new", ws_path, "--dataset", str(tiny_data[0])]) == 0
    for bad in ("bogus=1", "proj_dim=0"):
        assert main(["run", ws_path, "--run", "r", "--set", bad, "--epochs", "1", "--threads", "1"]) == 2
        assert "setting" in capsys.readouterr().err
        assert not (tmp_path / "w" / "runs" / "r").exists() and not (tmp_path / "w" / "checkpoints" / "r").exists()
        with Workspace.open(ws_path) as ws:
            assert not [r for r in ws.store.runs() if r["name"] == "r"]
