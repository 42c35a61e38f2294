"""The DDP helpers that need no second process: teardown, the timeout, rank-0 sections inline, and
a follower adopting rank 0's training subset and schedule (two trainers in one process)."""

import socket
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.distributed as dist

from naviewer.errors import NaviewerError
from naviewer.ssl.distributed import (MainRankSection, adopt_data_state, dist_timeout, distributed_session,
                                      shutdown_distributed, trainer_data_state)
from naviewer.ssl.trainer import TrainConfig, build_trainer
from sslkit import TINY, make_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_process_group() -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1,
                            timeout=timedelta(seconds=30))


def test_timeout_from_the_environment(monkeypatch):
    monkeypatch.delenv("NAVIEWER_DIST_TIMEOUT", raising=False)
    assert dist_timeout() == timedelta(minutes=30)
    monkeypatch.setenv("NAVIEWER_DIST_TIMEOUT", "90")
    assert dist_timeout() == timedelta(seconds=90)
    monkeypatch.setenv("NAVIEWER_DIST_TIMEOUT", "soon")
    with pytest.raises(NaviewerError, match="NAVIEWER_DIST_TIMEOUT"):
        dist_timeout()


def test_session_destroys_the_group_on_success_and_on_error():
    assert shutdown_distributed() is True  # no group: nothing to do
    _one_process_group()
    with distributed_session():
        assert dist.is_initialized()
    assert not dist.is_initialized()
    _one_process_group()
    with pytest.raises(RuntimeError, match="boom"):
        with distributed_session():
            raise RuntimeError("boom")
    assert not dist.is_initialized()


def _trainer(store):
    cfg = TrainConfig(backbone=TINY, epochs=4, batch_size=8, image_size=16, warmup_epochs=0, num_threads=1)
    return build_trainer(cfg, store)


def test_a_follower_adopts_rank_zeros_subset_and_schedule():
    store = make_store(n=40)
    leader, follower = _trainer(store), _trainer(store)
    for trainer in (leader, follower):
        trainer.completed_epochs, trainer.global_step = 2, 2 * trainer.steps_per_epoch
    before = id(leader.optimizer)
    keep = np.setdiff1d(np.arange(40), [3, 7, 11])
    leader.replace_data(store.subset(keep), reset_schedule=True, source_indices=keep)
    leader.replace_data(leader.store.subset(np.arange(30)), reset_schedule=True, source_indices=np.arange(30))
    adopt_data_state(follower, trainer_data_state(leader), optimizer_rebuilt=id(leader.optimizer) != before)
    assert np.array_equal(follower.source_indices, leader.source_indices) and len(follower.store) == 30
    assert follower.data_version == leader.data_version and follower.steps_per_epoch == leader.steps_per_epoch
    assert follower.schedule == leader.schedule and follower.total_epochs == leader.total_epochs
    images = [store.image(int(i)) for i in leader.source_indices[:3]]
    assert all(np.array_equal(follower.store.image(k), im) for k, im in enumerate(images))


def test_a_section_runs_inline_in_one_process():
    store = make_store(n=24)
    trainer = _trainer(store)
    section = MainRankSection({"embed": lambda t: "embedded"})
    value = section.run(trainer, lambda t: section.call(t, "embed"), share=lambda t, v: {"saw": v})
    assert value == "embedded" and section.shared == {"saw": "embedded"}
    assert torch.distributed.is_available()
