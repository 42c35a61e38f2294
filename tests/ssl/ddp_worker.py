"""Run by test_distributed under ``torchrun --nproc_per_node=2``: a tiny gloo DDP training run."""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from sslkit import TINY, make_store  # noqa: E402

from naviewer.ssl.distributed import shutdown_distributed  # noqa: E402
from naviewer.ssl.trainer import TrainConfig, build_trainer  # noqa: E402

if __name__ == "__main__":
    root = Path(sys.argv[1])
    torch.set_num_threads(1)
    for method in sys.argv[2:]:  # several runs in one process group: torchrun start-up is the slow part
        settings = {"queue_size": 32} if method == "mocov2" else {}
        cfg = TrainConfig(method=method, method_settings=settings, backbone=TINY, epochs=2, batch_size=16,
                          image_size=16, log_every=1, warmup_epochs=0, max_steps_per_epoch=2, device="cpu")
        trainer = build_trainer(cfg, make_store(n=48), root / method)
        assert trainer.dist.world_size == 2 and trainer.local_batch == 8
        trainer.fit()
        # every rank ends with identical weights (DDP averaged the gradients)
        flat = torch.cat([p.detach().flatten() for p in trainer.method.backbone.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(2)]
        torch.distributed.all_gather(gathered, flat)
        assert torch.equal(gathered[0], gathered[1]), method
    # Both ranks meet before the teardown (naviewer's own store barrier, as the CLI does) and then leave
    # without the interpreter's finalisation: with a plain barrier + destroy, a rank still aborted
    # now and then ("terminate called without an active exception", SIGABRT: gloo's worker threads
    # torn down with the interpreter; once in CI on 2026-12-04), failing a run whose work was done.
    assert shutdown_distributed(ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
