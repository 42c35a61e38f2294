import math

import pytest
import torch
import torch.nn.functional as F

from naviewer.errors import NaviewerError
from naviewer.ssl.methods import METHODS, build_method, nt_xent

from sslkit import TINY


def _build(name, **kw):
    if name == "mocov2":
        kw.setdefault("queue_size", 64)
    return build_method(name, backbone=TINY, **kw)


def test_registry_and_unknown():
    assert set(METHODS) == {"simclr", "mocov2", "byol", "simsiam"}
    with pytest.raises(NaviewerError):
        build_method("dino")
    with pytest.raises(NaviewerError):
        build_method("simclr", backbone=TINY, temprature=0.3)


def test_spec_defaults():
    assert build_method("simclr", backbone=TINY).settings.temperature == 0.5
    moco = build_method("mocov2", backbone=TINY)
    assert (moco.settings.queue_size, moco.settings.momentum, moco.settings.temperature) == (4096, 0.99, 0.2)
    byol = build_method("byol", backbone=TINY)
    assert (byol.settings.proj_hidden, byol.settings.proj_dim, byol.settings.tau_base) == (2048, 256, 0.996)


def test_nt_xent_matches_reference():
    torch.manual_seed(0)
    z1, z2, t = torch.randn(5, 7), torch.randn(5, 7), 0.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z)
    total = 0.0
    for i in range(n):
        j = (i + 5) % n
        num = math.exp(float(z[i] @ z[j]) / t)
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total += -math.log(num / den)
    assert float(nt_xent(z1, z2, t)) == pytest.approx(total / n, rel=1e-5)


@pytest.mark.parametrize("name", ["simclr", "mocov2", "byol", "simsiam"])
def test_loss_finite_and_decreasing(name):
    torch.manual_seed(0)
    method = _build(name)
    opt = torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9)
    x = torch.rand(16, 3, 16, 16)
    v1, v2 = x + 0.05 * torch.randn_like(x), x + 0.05 * torch.randn_like(x)
    losses = []
    for step in range(8):
        if name == "mocov2":  # a fixed batch would fill the queue with its own keys: keep the negatives fixed
            torch.manual_seed(1)
            method.reset_queue()
        loss = method.training_loss(v1, v2)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step(step / 8)
        losses.append(float(loss.detach()))
    assert min(losses[-3:]) < losses[0]


def test_byol_momentum_update_and_sync():
    torch.manual_seed(0)
    byol = _build("byol", tau_schedule="constant", tau_base=0.5)
    online = next(byol.backbone.parameters())
    target = next(byol.target_backbone.parameters())
    with torch.no_grad():
        online.add_(1.0)
    before = target.clone()
    byol.after_step(0.0)
    assert torch.allclose(target, 0.5 * before + 0.5 * online)
    pred_before = [p.clone() for p in byol.predictor.parameters()]
    with torch.no_grad():
        for p in byol.projector.parameters():
            p.add_(0.3)
    byol.sync_momentum_branch()
    for name, value in byol.backbone.state_dict().items():
        assert torch.equal(value, byol.target_backbone.state_dict()[name])
    for name, value in byol.projector.state_dict().items():
        assert torch.equal(value, byol.target_projector.state_dict()[name])
    assert all(torch.equal(a, b) for a, b in zip(pred_before, byol.predictor.parameters()))
    assert not any(p.requires_grad for p in byol.target_backbone.parameters())


def test_byol_tau_schedule():
    byol = _build("byol")
    assert byol.tau_at(0.0) == pytest.approx(0.996)
    assert byol.tau_at(1.0) == pytest.approx(1.0)


def test_moco_queue_and_sync():
    torch.manual_seed(0)
    moco = _build("mocov2", queue_size=40)
    old = moco.queue.clone()
    moco.training_loss(torch.rand(16, 3, 16, 16), torch.rand(16, 3, 16, 16))
    assert int(moco.queue_ptr) == 16 and not torch.equal(moco.queue[:16], old[:16])
    assert torch.equal(moco.queue[16:], old[16:])
    with torch.no_grad():
        next(moco.backbone.parameters()).add_(1.0)
    moco.after_step(0.5)
    k = next(moco.backbone_k.parameters())
    assert not torch.equal(k, next(moco.backbone.parameters()))
    moco.sync_momentum_branch()
    assert torch.equal(k, next(moco.backbone.parameters()))
    assert int(moco.queue_ptr) == 0
    assert torch.allclose(moco.queue.norm(dim=1), torch.ones(40))


def test_simsiam_stop_gradient():
    torch.manual_seed(0)
    sim = _build("simsiam")
    x1, x2 = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)
    z = sim.projector(sim.backbone(torch.cat([x1, x2])))
    z.retain_grad()
    p = sim.predictor(z)
    from naviewer.ssl.methods.simsiam import negative_cosine

    loss = 0.5 * (negative_cosine(p[:8], z[8:]) + negative_cosine(p[8:], z[:8]))
    loss.backward()
    # z reaches the loss only through the predictor: its gradient equals the one through p alone
    z2 = z.detach().requires_grad_(True)
    p2 = sim.predictor(z2)
    loss2 = 0.5 * (negative_cosine(p2[:8], z2[8:]) + negative_cosine(p2[8:], z2[:8]))
    loss2.backward()
    assert torch.allclose(z.grad, z2.grad, atol=1e-6)


def test_simsiam_fixed_predictor_lr_group():
    groups = _build("simsiam").parameter_groups()
    assert [g.get("fixed_lr", False) for g in groups] == [False, True]


def test_a_model_too_large_for_memory_is_said_by_its_settings(monkeypatch):
    """`--set proj_hidden=100000000` printed torch's allocator words raw ("[enforce fail at alloc_cpu.cpp:127]";
    a bad-input probe, session 27): the refusal names the settings and the memory."""
    import pytest
    import torch

    from naviewer.errors import NaviewerError
    from naviewer.ssl.methods import build_method

    def no_room(*_a, **_k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried "
                           "to allocate 2560000000 bytes")

    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", no_room)
    with pytest.raises(NaviewerError) as caught:
        build_method("simclr", {"arch": "resnet10", "width": 8, "cifar_stem": True}, proj_hidden=10**8)
    said = caught.value.message
    assert "proj_hidden=100000000" in said and "memory" in said and "alloc_cpu" not in said


@pytest.mark.parametrize("method, key, value", [("simclr", "temperature", 1e-30), ("mocov2", "temperature", 1e4),
                                                ("mocov2", "momentum", 5.0), ("byol", "tau_base", 1.5)])
def test_settings_out_of_their_working_range_are_refused(method, key, value):
    """temperature=1e-30 was taken (positive), training diverged and the advice blamed the learning rate (a bad-input
    probe, session 30): the settings that break training inside the positive numbers have a range, said."""
    with pytest.raises(NaviewerError, match=rf"{method} setting {key} must be within .*, got {value:g} \("):
        METHODS[method].make_settings({key: value})
    METHODS[method].make_settings({key: {"temperature": 0.2, "momentum": 0.99, "tau_base": 0.99}[key]})
