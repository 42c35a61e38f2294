"""Sharded extraction: the same rows as one pass, resumable by shard, and 2 gloo processes under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from naviewer.data.store import ImageStore
from naviewer.errors import NaviewerError
from naviewer.ssl.backbones import BackboneConfig, build_backbone
from naviewer.ssl.embed import extract_embeddings
from naviewer.ssl.sharded import done_shards, partial_path, shard_dir, sharded_embeddings, ShardPlan


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(230, 16, 16, 3), dtype=np.uint8)
    store = ImageStore.from_array(images, np.zeros(230, dtype=np.int64), ["x"])
    torch.manual_seed(0)
    net = build_backbone(BackboneConfig(arch="resnet10", cifar_stem=True, width=4)).eval()
    whole = extract_embeddings(net, store, image_size=16)
    return store, net, whole


def test_shards_write_the_same_rows_as_one_pass(small, tmp_path):
    store, net, whole = small
    out = tmp_path / "e.npy"
    arr = sharded_embeddings(net, store, out, shard_size=64, image_size=16)
    assert arr.dtype == np.float16 and arr.shape == whole.shape
    assert np.allclose(arr.astype(np.float32), whole, rtol=2e-3, atol=2e-3)
    assert not partial_path(out).exists() and not shard_dir(out).exists()
    # a finished file is reused, not recomputed
    assert np.array_equal(np.asarray(sharded_embeddings(net, store, out, shard_size=64, image_size=16)), np.asarray(arr))


def test_a_stopped_run_resumes_with_the_missing_shards(small, tmp_path):
    store, net, whole = small
    out = tmp_path / "e.npy"
    # rank 0 of 2 alone: its shards 0 and 2 get done, then it cannot finish (shards 1 and 3 are missing)
    with pytest.raises(NaviewerError, match="run the same command again"):
        sharded_embeddings(net, store, out, shard_size=64, image_size=16, rank=0, world_size=2)
    plan = ShardPlan(230, whole.shape[1], "float16", 64)
    assert done_shards(out, plan) == {0, 2} and not out.exists()
    # the same command again (one process) embeds only what is missing and finishes
    arr = sharded_embeddings(net, store, out, shard_size=64, image_size=16)
    assert np.allclose(arr.astype(np.float32), whole, rtol=2e-3, atol=2e-3)


def test_a_plan_written_before_plans_recorded_the_input_size_still_resumes(small, tmp_path):
    import json

    store, net, whole = small
    out = tmp_path / "e.npy"
    with pytest.raises(NaviewerError):
        sharded_embeddings(net, store, out, shard_size=64, image_size=16, rank=0, world_size=2)
    plan_file = shard_dir(out) / "plan.json"
    values = json.loads(plan_file.read_text())
    values.pop("image_size")
    plan_file.write_text(json.dumps(values))
    arr = sharded_embeddings(net, store, out, shard_size=64, image_size=16)
    assert np.allclose(arr.astype(np.float32), whole, rtol=2e-3, atol=2e-3)


def test_other_settings_over_an_unfinished_run_are_refused(small, tmp_path):
    store, net, _ = small
    out = tmp_path / "e.npy"
    with pytest.raises(NaviewerError):
        sharded_embeddings(net, store, out, shard_size=64, image_size=16, rank=0, world_size=2)
    with pytest.raises(NaviewerError, match="other settings"):
        sharded_embeddings(net, store, out, shard_size=32, image_size=16)
    # another input size: its rows went beside the first run's, one array embedded at two sizes, without a word
    with pytest.raises(NaviewerError, match="other settings"):
        sharded_embeddings(net, store, out, shard_size=64, image_size=24)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_gloo_processes_under_torchrun(tmp_path):
    from naviewer.cli import main

    run = tmp_path / "run"
    assert main(["train", "--dataset", "demo", "--epochs", "1", "--out", str(run), "--arch", "resnet10", "--width", "4",
                 "--image-size", "16", "--batch-size", "32", "--threads", "1", "--warmup-epochs", "0",
                 "--max-steps-per-epoch", "1"]) == 0
    checkpoint = run / "checkpoints" / "last.pt"
    single = tmp_path / "single.npy"
    assert main(["embed", "--checkpoint", str(checkpoint), "--dataset", "demo", "--out", str(single),
                 "--device", "cpu", "--dtype", "float16"]) == 0
    out = tmp_path / "two.npy"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NAVIEWER_DIST_TIMEOUT": "120"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "naviewer",
           "embed", "--checkpoint", str(checkpoint), "--dataset", "demo", "--out", str(out), "--device", "cpu",
           "--shard-size", "300"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "2 processes" in proc.stdout
    two, one = np.load(out), np.load(single)
    assert two.shape == one.shape and two.dtype == np.float16
    assert np.allclose(two.astype(np.float32), one.astype(np.float32), rtol=2e-3, atol=2e-3)


def test_a_lazy_store_gives_the_same_rows_sharded_or_not(small, tmp_path):
    """Decoded a chunk at a time (a budget of ~10 images here), the rows are the in-memory pass's."""
    from naviewer.data.base import ArrayDataset
    from naviewer.data.store import LazyImageStore

    store, net, whole = small
    images = [store.image(i) for i in range(len(store))]
    lazy = LazyImageStore(ArrayDataset(images, store.labels, store.class_names), decode_mb=10 * 16 * 16 * 3 / 2**20)
    plain = extract_embeddings(net, lazy, image_size=16, batch_size=7)
    assert np.allclose(plain, whole, rtol=1e-4, atol=1e-5)
    arr = sharded_embeddings(net, lazy, tmp_path / "e.npy", shard_size=64, image_size=16)
    assert np.allclose(arr.astype(np.float32), whole, rtol=2e-3, atol=2e-3)


def test_leftovers_of_another_run_are_never_taken_as_this_ones(small, tmp_path):
    """A file of another shape at --out, a damaged plan, and finished shards of another encoder are refused,
    not reported as the result."""
    store, net, whole = small
    stale = tmp_path / "stale.npy"
    np.save(stale, np.ones((5, 3), np.float16))
    with pytest.raises(NaviewerError, match="not this extraction's result"):
        sharded_embeddings(net, store, stale, shard_size=64, image_size=16)
    out = tmp_path / "c.npy"
    shard_dir(out).mkdir()
    (shard_dir(out) / "plan.json").write_text("{bad json")
    np.save(partial_path(out), np.zeros((230, whole.shape[1]), np.float16))
    with pytest.raises(NaviewerError, match="plan is damaged"):
        sharded_embeddings(net, store, out, shard_size=64, image_size=16)
    other = tmp_path / "o.npy"  # rank 0 of 2 of another encoder leaves shards 0 and 2 done
    torch.manual_seed(1)
    other_net = build_backbone(BackboneConfig(arch="resnet10", cifar_stem=True, width=4)).eval()
    with pytest.raises(NaviewerError, match="not embedded"):
        sharded_embeddings(other_net, store, other, shard_size=64, image_size=16, rank=0, world_size=2)
    with pytest.raises(NaviewerError, match="other settings"):
        sharded_embeddings(net, store, other, shard_size=64, image_size=16)


def test_a_finished_extraction_of_another_checkpoint_is_not_taken_as_this_ones(small, tmp_path):
    """Re-run with a new checkpoint over a finished --out of the same shape, `embed --shard-size` printed "wrote",
    exit 0, and kept the first checkpoint's rows; detect --embeddings then credited them to the new one (a bad-input
    probe, session 28). The finished file's source is kept beside it and compared; one it cannot tell is refused."""
    from naviewer.ssl.sharded import source_path

    store, net, _whole = small
    out = tmp_path / "e.npy"
    from naviewer.interrupts import clear_saved_notes, saved_notes

    clear_saved_notes()
    sharded_embeddings(net, store, out, shard_size=64, image_size=16)
    assert source_path(out).is_file()
    # what a stop would have said: how many shards are kept, and that the same command goes on (a probe, session 29)
    plan_count = -(-len(store) // 64)
    assert saved_notes() == [f"{plan_count} of {plan_count} shards of e.npy (the same command goes on from there)"]
    clear_saved_notes()
    torch.manual_seed(1)
    other_net = build_backbone(BackboneConfig(arch="resnet10", cifar_stem=True, width=4)).eval()
    with pytest.raises(NaviewerError, match="another checkpoint, dataset or image size"):
        sharded_embeddings(other_net, store, out, shard_size=64, image_size=16)
    with pytest.raises(NaviewerError, match="another checkpoint, dataset or image size"):
        sharded_embeddings(net, store, out, shard_size=64, image_size=12)
    source_path(out).unlink()  # (a file of the same shape naviewer did not finish)
    with pytest.raises(NaviewerError, match="cannot tell"):
        sharded_embeddings(net, store, out, shard_size=64, image_size=16)


def test_a_plain_embed_over_a_finished_sharded_out_drops_its_record(small, tmp_path):
    """A plain embed replaced OUT and left OUT.source.json: a later sharded run of the first checkpoint took the other
    checkpoint's rows as its own (a review, session 28)."""
    from naviewer.ssl.sharded import source_path

    store, net, _whole = small
    out = tmp_path / "e.npy"
    sharded_embeddings(net, store, out, shard_size=64, image_size=16)
    torch.manual_seed(1)
    other_net = build_backbone(BackboneConfig(arch="resnet10", cifar_stem=True, width=4)).eval()
    extract_embeddings(other_net, store, image_size=16, dtype=np.float16, out_path=out)
    assert not source_path(out).exists()
    with pytest.raises(NaviewerError, match="cannot tell"):
        sharded_embeddings(net, store, out, shard_size=64, image_size=16)
