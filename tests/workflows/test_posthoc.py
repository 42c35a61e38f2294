from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naviewer.cli import main
from naviewer.errors import NaviewerError
from naviewer.workflows.posthoc import posthoc_detect
from naviewer.workspace import Workspace


def test_posthoc_pass_and_baselines_are_stored_for_review(accepted_run):
    path, outcome = accepted_run
    with Workspace.open(path) as ws:
        before = len(ws.store.passes())
        out = posthoc_detect(ws, outcome.checkpoint, run="post", baselines=("dbscan", "optics"))
        assert out.embeddings_path.is_file() and ws.load_embeddings("post", out.tag).shape[0] == 240
        assert ws.store.latest_pass_id("dift") == out.pass_id
        scores = ws.store.pass_scores(out.pass_id)
        assert {"density", "rank", "candidate", "mindist", "flagged", "cluster"} <= set(scores)
        assert set(out.baseline_passes) == {"dbscan", "optics"}
        for method, pid in out.baseline_passes.items():
            info = ws.store.pass_info(pid)
            assert info["method"] == method and info["run"] == "post"
            assert ws.store.pass_scores(pid)["flagged"].dtype == bool
        assert len(ws.store.passes()) == before + 3
        assert "precision" in out.baseline_metrics["dbscan"]


def test_posthoc_records_the_checkpoint_as_an_absolute_path(accepted_run, monkeypatch):
    """`naviewer detect ws --checkpoint ws/checkpoints/r/last.pt` kept the path as typed: the Overview then named
    a path that is wrong from anywhere else (a newcomer)."""
    import os
    from pathlib import Path

    path, outcome = accepted_run
    monkeypatch.chdir(Path(outcome.checkpoint).parent)
    with Workspace.open(path) as ws:
        out = posthoc_detect(ws, Path(os.path.basename(outcome.checkpoint)), run="rel")
        recorded = ws.store.pass_info(out.pass_id)["settings"]["encoder"]["checkpoint"]
        assert Path(recorded).is_absolute() and Path(recorded) == Path(outcome.checkpoint).absolute()
        assert Path(next(r for r in ws.store.runs() if r["name"] == "rel")["config"]["checkpoint"]).is_absolute()


def test_posthoc_decodes_the_whole_dataset_only_for_a_detector_that_revisits_images(accepted_run, monkeypatch):
    """The embedding reads the folder a chunk at a time; only crop_density (and the crop rule) need all of it."""
    from naviewer.data.store import LazyImageStore
    from workflow_kit import dift_config

    calls = []
    original = LazyImageStore.materialize
    monkeypatch.setattr(LazyImageStore, "materialize", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    path, outcome = accepted_run
    with Workspace.open(path) as ws:
        posthoc_detect(ws, outcome.checkpoint, run="lazy", config=dift_config(crop_agreement=0.0), detectors=("kdist",))
        assert calls == []
        out = posthoc_detect(ws, outcome.checkpoint, run="lazy2", config=dift_config(crop_agreement=0.0),
                             detectors=("kdist", "crop_density"))
        assert calls == [1] and set(out.detector_passes) == {"kdist", "crop_density"}


def test_detect_takes_precomputed_embeddings_after_checking_them(accepted_run, tmp_path, capsys):
    """What naviewer embed wrote (sharded under torchrun at scale) is taken in, not embedded again; a file of the
    wrong shape, dtype or with NaN is refused naming the file, before any pass is stored."""
    path, outcome = accepted_run
    with Workspace.open(path) as ws:
        ref = posthoc_detect(ws, outcome.checkpoint, run="emb-ref")
        features = np.load(ref.embeddings_path)
        n_passes = len(ws.store.passes())
    good = tmp_path / "features.npy"
    np.save(good, features.astype(np.float16))
    bad = {"rows": features[:-1], "ndim": features[:, 0], "ints": features.astype(np.int32),
           "nan": np.where(np.arange(len(features))[:, None] == 5, np.nan, features),
           # another encoder's features (a sweep: 128-d with a 512-d checkpoint saved a pass, rc 0)
           "width": np.concatenate([features, features], axis=1),
           # the same shape, not this checkpoint's rows: another encoder's, or the samples in another order
           "other": np.random.default_rng(0).normal(size=features.shape).astype(np.float32),
           "order": features[np.random.default_rng(1).permutation(len(features))],
           # a part of the rows out of order (42 % reversed got past 16 fixed rows; a probe, session 29)
           "part": np.concatenate([features[: len(features) * 58 // 100],
                                   features[len(features) * 58 // 100:][::-1]])}
    for name, array in bad.items():
        np.save(tmp_path / f"{name}.npy", array)
        rc = main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--embeddings",
                   str(tmp_path / f"{name}.npy")])
        err = capsys.readouterr().err
        assert rc == 2 and f"{name}.npy" in err and "Traceback" not in err, (name, err)
        if name in ("other", "order", "part"):
            assert "not this checkpoint's features" in err, err
    (tmp_path / "pickle.npy").write_bytes(b"not an npy file at all")
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--embeddings",
                 str(tmp_path / "pickle.npy")]) == 2
    err = capsys.readouterr().err
    assert "pickle.npy" in err and "not a .npy file" in err
    np.savez(tmp_path / "arch.npz", features=features)  # said as an archive, not "shape ?"
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--embeddings",
                 str(tmp_path / "arch.npz")]) == 2
    assert "a .npz archive" in capsys.readouterr().err
    with Workspace.open(path) as ws:
        assert len(ws.store.passes()) == n_passes
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--embeddings", str(good),
                 "--run", "emb"]) == 0
    out = capsys.readouterr().out
    with Workspace.open(path) as ws:
        pid = ws.store.latest_pass_id("dift")
        taken = ws.load_embeddings("emb", ws.store.pass_info(pid)["settings"]["embeddings"]["tag"])
        assert taken.dtype == np.float16 and np.array_equal(np.asarray(taken), np.load(good))
        assert ws.store.pass_info(pid)["settings"]["embeddings"]["run"] == "emb"
    assert "DIFT pass" in out


def test_detect_cli(accepted_run, capsys):
    path, outcome = accepted_run
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--run", "clirun",
                 "--dift-set", "k=5", "--dift-set", "candidate_fraction=0.1", "--dift-set", "n_min=5"]) == 0
    text = capsys.readouterr().out
    assert "DIFT pass" in text and "naviewer review" in text
    with Workspace.open(path) as ws:
        assert ws.store.pass_info(ws.store.latest_pass_id())["run"] == "clirun"
    # a pass of nothing: no "review, then finetune" step, but what to try next
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--run", "clirun",
                 "--dift-set", "n_min=1000000"]) == 0
    text = capsys.readouterr().out
    assert "which is not a clean bill" in text and "next: nothing to review" in text and "patchsearch" in text
    assert "naviewer review" not in text


def test_detect_cli_reports_a_bad_checkpoint(accepted_run, tmp_path, capsys):
    path, _ = accepted_run
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["detect", str(path), "--checkpoint", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_posthoc_finetune_after_detect_and_review(tmp_path, tiny_data, capsys):
    import torch

    from workflow_kit import attacked_workspace, dift_config, train_config
    from naviewer.ssl.checkpoints import load_encoder
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workflows.posthoc import finetune_posthoc

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        # a no-defense encoder, then the analyst's way: detect -> review -> fine-tune
        trained = train_with_dift(ws, train_config(1, knn_every=0), dift=False, monitor=False, run="plain")
        posthoc_detect(ws, trained.checkpoint, config=dift_config())
        # the analyst's review (here: the truth, since one epoch is too short for the flags to be complete)
        from naviewer.workflows.workspace_setup import ground_truth_mask

        flagged = np.flatnonzero(ground_truth_mask(ws))
        ws.store.set_review(flagged[:-2], "confirmed", "analyst")
        ws.store.set_review(flagged[-2:], "rejected", "analyst")
        out = finetune_posthoc(ws, config=dift_config(ft_max_steps=10, ft_check_every=5))  # checkpoint: detect's
        assert out.source == trained.checkpoint and out.confirmed == flagged.size - 2
        assert out.checkpoint.is_file() and out.checkpoint.parent == ws.checkpoint_dir("posthoc")
        for values in (out.before, out.after):
            assert {"confirmed_density", "knn_acc", "asr", "cluster_spread"} <= set(values)
            assert 0 <= values["knn_acc"] <= 1 and 0 <= values["asr"] <= 1
        assert out.finetune["steps"] >= 1 and not out.finetune["diverged"]
        # Eq. 7 spreads the confirmed cluster: less dense, wider than before
        assert out.after["confirmed_density"] < out.before["confirmed_density"]
        assert out.after["cluster_spread"] > out.before["cluster_spread"]
        old, new = load_encoder(trained.checkpoint), load_encoder(out.checkpoint)
        assert new.image_size == 16 and new.config == old.config
        changed = [not torch.equal(a, b) for a, b in zip(old.backbone.state_dict().values(),
                                                          new.backbone.state_dict().values())]
        assert any(changed) and all(bool(torch.isfinite(t).all()) for t in new.backbone.state_dict().values())
        bn = [k for k in old.backbone.state_dict() if k.endswith("running_mean")]
        assert all(torch.equal(old.backbone.state_dict()[k], new.backbone.state_dict()[k]) for k in bn)  # BN frozen
        assert any(r["kind"] == "posthoc-finetune" for r in ws.store.runs())
        assert out.embeddings["after"].is_file()
        path = str(ws.path)
    # the CLI: explicit checkpoint and output, then detected automatically (no run waits for a review)
    target = tmp_path / "ft.pt"
    assert main(["finetune", path, "--checkpoint", str(trained.checkpoint), "--out", str(target),
                 "--dift-set", "ft_max_steps=5", "--no-monitor"]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert target.is_file() and "confirmed_density" in text and "before" in text and str(target) in text
    assert "were detected on" not in captured.out + captured.err  # the encoder the flags came from
    assert main(["finetune", path, "--dift-set", "ft_max_steps=2", "--no-monitor"]) == 0
    assert "finetuned-2.pt" in capsys.readouterr().out
    # another encoder than the flags came from is said (it ran without a word: a sweep)
    assert main(["finetune", path, "--checkpoint", str(target), "--out", str(tmp_path / "ft2.pt"),
                 "--dift-set", "ft_max_steps=2", "--no-monitor"]) == 0
    captured = capsys.readouterr()
    assert f"were detected on {trained.checkpoint}, not on {target}" in captured.out + captured.err
    with Workspace.open(path) as ws:
        ws.store.set_review(flagged[1:], "rejected", "analyst")
        with pytest.raises(NaviewerError, match="at least 2 samples confirmed"):
            finetune_posthoc(ws)


def test_baseline_scores_number_only_the_flagged_clusters():
    """OPTICS labels clusters it does not flag; samples.csv must not show those as clusters."""
    from types import SimpleNamespace

    from naviewer.workflows.posthoc import baseline_scores

    labels = np.array([-1, 0, 0, 3, 3, 5, 1])
    flagged = np.isin(labels, [3, 5])
    result = SimpleNamespace(labels=labels, flagged_mask=lambda: flagged)
    scores = baseline_scores(result)
    assert scores["cluster"].tolist() == [-1, -1, -1, 0, 0, 1, -1]
    assert scores["flagged"].tolist() == flagged.tolist()


def test_crop_agreement_post_hoc_is_skipped_when_the_decoded_images_would_not_fit(tmp_path):
    """Crop agreement (in naviewer's preset since session 12) decodes every image at once post-hoc; where that
    would take more than half the free memory it is skipped with a figure, not run into an out-of-memory kill."""
    from PIL import Image

    from naviewer.data.sources import open_dataset
    from naviewer.data.store import streaming_store
    from naviewer.workflows.posthoc import decoded_size_problem

    for i in range(10):
        (tmp_path / "images" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30)).save(tmp_path / "images" / f"c{i % 2}" / f"{i}.png")
    store = streaming_store(open_dataset(tmp_path / "images"))
    assert decoded_size_problem(store, 10, free=10 * 3600 * 2) == ""  # 36 kB needed, 72 kB free: fits
    said = decoded_size_problem(store, 10, free=3600 * 10)
    assert "decoding the 10 images at once would take about" in said and "more than half" in said
    assert decoded_size_problem(store.materialize(), 10, free=1) == ""  # decoded already: nothing more to hold


def test_a_fine_tuning_that_took_no_step_says_nothing_changed():
    """Eq. 7 stops before its first step when the confirmed samples are already spread out; the GUI said "Done:
    fine-tuned the encoder" over every figure unchanged."""
    from naviewer.workflows.posthoc import finetune_unchanged_reason

    said = finetune_unchanged_reason({"steps": 0, "stopped_early": True},
                                     {"cluster_spread": 0.386, "reference_spread": 0.362})
    assert said.startswith("Nothing to fine-tune") and "0.386" in said and "0.362" in said and "0 steps" in said
    assert finetune_unchanged_reason({"steps": 12}, {}) == ""


def test_a_recorded_checkpoint_is_found_again_after_the_workspace_moved(tmp_path):
    """Passes from before session 12 kept the checkpoint as typed (relative to where the command ran), and a
    moved or copied workspace kept the old absolute path: the GUI's fine-tune said "checkpoint file not found"."""
    from types import SimpleNamespace

    from naviewer.workflows.posthoc import locate_recorded_checkpoint

    ws = SimpleNamespace(path=tmp_path / "copy")
    (ws.path / "checkpoints" / "demo").mkdir(parents=True)
    (ws.path / "checkpoints" / "demo" / "last.pt").write_bytes(b"x")
    here = ws.path / "checkpoints" / "demo" / "last.pt"
    assert locate_recorded_checkpoint(ws, "/elsewhere/original/checkpoints/demo/last.pt") == here
    assert locate_recorded_checkpoint(ws, "ws/checkpoints/demo/last.pt") == here
    (ws.path / "mine.pt").write_bytes(b"x")
    assert locate_recorded_checkpoint(ws, "mine.pt") == ws.path / "mine.pt"
    assert locate_recorded_checkpoint(ws, "/nowhere/x.pt") == Path("/nowhere/x.pt")   # said as recorded
    # a copy whose own checkpoints/ is gone: never the original's file (it fine-tuned the original's encoder); another
    # workspace's encoder (a detection with a foreign checkpoint) is still found where it lies
    import shutil

    stamp = '[workspace]\ncreated = "2026-12-04T00:00:00Z"\n[dataset]\ncontent_hash = "abc"\n'
    for root in (tmp_path / "original", tmp_path / "other"):
        (root / "checkpoints" / "demo").mkdir(parents=True)
        (root / "checkpoints" / "demo" / "last.pt").write_bytes(b"x")
        (root / "workspace.toml").write_text(stamp if root.name == "original" else stamp.replace("abc", "xyz"))
    shutil.rmtree(ws.path / "checkpoints")
    ws.config = {"workspace": {"created": "2026-12-04T00:00:00Z"}, "dataset": {"content_hash": "abc"}}
    original = tmp_path / "original" / "checkpoints" / "demo" / "last.pt"
    assert locate_recorded_checkpoint(ws, original) == here and not here.exists()
    foreign = tmp_path / "other" / "checkpoints" / "demo" / "last.pt"
    assert locate_recorded_checkpoint(ws, foreign) == foreign


def test_a_pass_records_the_stamp_of_the_checkpoint_it_embedded_with(accepted_run):
    """Two trainings write last.pt at one path: each detector pass records the file's size and time, so the
    agreement and the Overview can tell the encoders apart."""
    import os

    path, outcome = accepted_run
    with Workspace.open(path) as ws:
        first = posthoc_detect(ws, outcome.checkpoint, run="stamp1", detectors=("kdist",))
        status = os.stat(outcome.checkpoint)
        os.utime(outcome.checkpoint, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))  # "written again"
        second = posthoc_detect(ws, outcome.checkpoint, run="stamp2", detectors=("kdist",))
        stamps = [ws.store.pass_info(out.detector_passes["kdist"])["settings"]["encoder"]["stamp"]
                  for out in (first, second)]
    assert all(stamps) and stamps[0] != stamps[1]
