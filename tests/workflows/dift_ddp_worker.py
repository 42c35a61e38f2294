"""Run by test_dift_ddp under ``torchrun --nproc_per_node=2``: DIFT in training with accept-all on gloo.

Every rank writes OUT/rank<r>.json with what it ended with: the flags it was told, a checksum of
its encoder's weights, its training subset and its schedule position, for the test to compare.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from workflow_kit import dift_config, train_config  # noqa: E402

import naviewer.ssl.trainer as trainer_module  # noqa: E402
from naviewer.ssl.distributed import distributed_session  # noqa: E402
from naviewer.workflows.dift_training import resume_after_review, train_with_dift  # noqa: E402
from naviewer.workspace import Workspace  # noqa: E402

trainers = []
_fit = trainer_module.Trainer.fit


def _recording_fit(self, *args, **kwargs):
    trainers.append(self)
    return _fit(self, *args, **kwargs)


trainer_module.Trainer.fit = _recording_fit


def checksum(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for p in module.parameters():
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def describe(outcome, trainer) -> dict:
    finetune = outcome.finetune or {}
    return {
        "status": outcome.status, "pass_id": outcome.pass_id,
        "flagged": np.asarray(outcome.flagged if outcome.flagged is not None else [], dtype=np.int64).tolist(),
        "finetune_steps": (finetune.get("finetune") or {}).get("steps"), "removed": finetune.get("removed"),
        "weights": checksum(trainer.method), "n_train": len(trainer.store),
        "source_indices": None if trainer.source_indices is None else trainer.source_indices.tolist(),
        "data_version": trainer.data_version, "global_step": trainer.global_step,
        "steps_per_epoch": trainer.steps_per_epoch, "epochs": outcome.fit.get("epochs"),
    }


if __name__ == "__main__":
    workspace, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    with distributed_session():
        report = {}
        with Workspace.open(workspace) as ws:
            # the paper's protocol: accept-all inside the run
            outcome = train_with_dift(ws, train_config(4), dift_config(), accept_all=True, monitor=False)
            report["accept"] = describe(outcome, trainers[-1])
            # the review gate: stop for review, then `naviewer finetune` (accept-all) under torchrun too
            stopped = train_with_dift(ws, train_config(4), dift_config(), run="gated", monitor=False)
            report["stopped"] = describe(stopped, trainers[-1])
            resumed = resume_after_review(ws, "gated", accept_all=True, monitor=False)
            report["resumed"] = describe(resumed, trainers[-1])
        report["world_size"] = trainers[-1].dist.world_size
        (out / f"rank{trainers[-1].dist.rank}.json").write_text(json.dumps(report))
