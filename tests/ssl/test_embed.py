import numpy as np
import pytest
import torch

from naviewer.errors import JobCancelled
from naviewer.jobs import JobContext, RecordingReporter
from naviewer.ssl.backbones import build_backbone
from naviewer.ssl.embed import extract_embeddings
from naviewer.ssl.augment import EvalTransform
from sslkit import TINY, make_store


def test_embeddings_in_sample_order_and_memmap(tmp_path):
    torch.manual_seed(0)
    store = make_store(n=20, wide=5)
    model = build_backbone(TINY)
    model.train()
    reporter = RecordingReporter()
    feats = extract_embeddings(model, store, batch_size=8, ctx=JobContext(reporter))
    assert feats.shape == (25, 64) and feats.dtype == np.float32
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        direct = model(EvalTransform(16)(torch.from_numpy(store.image(22)[None])))
    assert np.allclose(feats[22], direct.numpy()[0], atol=1e-4)
    out = extract_embeddings(model, store, batch_size=8, dtype=np.float16, out_path=tmp_path / "e" / "f.npy")
    assert isinstance(out, np.memmap) and out.dtype == np.float16
    assert np.allclose(out, feats, atol=1e-2)
    assert not [p for p in (tmp_path / "e").iterdir() if p.name != "f.npy"]
    assert reporter.progresses[-1][0] == 25


def test_cancel_leaves_no_file(tmp_path):
    store = make_store(n=20)
    ctx = JobContext()
    ctx.cancel()
    with pytest.raises(JobCancelled):
        extract_embeddings(build_backbone(TINY), store, ctx=ctx, out_path=tmp_path / "f.npy")
    assert not list(tmp_path.iterdir())


def test_default_size_is_the_training_size():
    store = make_store(n=4, size=16)
    model = build_backbone(TINY)
    model.naviewer_image_size = 8  # as the Trainer / load_encoder set it
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
    extract_embeddings(model, store)
    assert seen == [8]


def test_a_full_disk_is_one_message_and_no_temporary(tmp_path, monkeypatch):
    import errno
    import os

    from naviewer.errors import NaviewerError

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    out = tmp_path / "e" / "x.npy"
    with pytest.raises(NaviewerError, match="disk space"):
        extract_embeddings(build_backbone(TINY), make_store(), image_size=16, out_path=out)
    assert not out.exists() and not list(out.parent.glob(".*.tmp"))


def test_views_of_a_composite():
    from naviewer.errors import NaviewerError

    left = np.zeros((1, 16, 16, 3), np.uint8)
    right = np.full((1, 16, 16, 3), 255, np.uint8)
    wide = torch.from_numpy(np.concatenate([left, right], axis=2))  # a 16 x 32 composite
    first = EvalTransform(16, normalize=False, view="first")(wide)
    second = EvalTransform(16, normalize=False, view="second")(wide)
    centre = EvalTransform(16, normalize=False, view="center")(wide)
    # roi_align samples up to the box's far edge, so one boundary column blends in
    assert float(first.mean()) < 0.15 and float(second.mean()) > 0.85
    assert 0.3 < float(centre.mean()) < 0.7
    square = torch.from_numpy(left)
    assert torch.equal(EvalTransform(16, normalize=False, view="center")(square),
                       EvalTransform(16, normalize=False)(square))
    with pytest.raises(NaviewerError, match="view"):
        extract_embeddings(build_backbone(TINY), make_store(), image_size=16, view="sideways")


def test_a_killed_writers_temporary_goes_with_the_next_write(tmp_path):
    """SIGKILL while detect wrote its embeddings left a full-size .TAG.npy.PID.tmp that the next detect of the same tag
    left there (a bad-input probe, session 28): a dead process's temporary goes (the checkpoints' sweep); a live one's
    stays."""
    import os

    store = make_store(n=6)
    dead = tmp_path / ".f.npy.999999999.tmp"
    live = tmp_path / f".f.npy.{os.getppid()}.tmp"
    other = tmp_path / ".g.npy.999999999.tmp"  # another file's, its writer dead too: garbage as well
    for path in (dead, live, other):
        path.write_bytes(b"x" * 64)
    extract_embeddings(build_backbone(TINY), store, out_path=tmp_path / "f.npy")
    assert not dead.exists() and live.exists() and not other.exists()
