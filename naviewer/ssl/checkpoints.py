"""Checkpoints: atomic saving, and safe loading of naviewer and foreign encoder weights.

Every load goes through ``torch.load(weights_only=True)``: a checkpoint is data, never code, so a
pickle that tries to build arbitrary objects is refused (and reported as a NaviewerError naming the
file) instead of being executed. Foreign layouts are recognised by their key prefixes
(``module.``, ``encoder_q.``, ``backbone.``, ``online_network.``, ``encoder.``, ``model.`` ...);
projection/classification heads (``fc.*``) are dropped; the backbone architecture is inferred from
the weights when not given.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from naviewer.errors import NaviewerError
from naviewer.ssl.backbones import ARCHS, BackboneConfig, build_backbone

CHECKPOINT_FORMAT = "naviewer-checkpoint"
CHECKPOINT_VERSION = 1

#: wrappers seen in the wild, stripped in any combination; earlier = preferred when several match
KNOWN_PREFIXES = (
    "module.", "model.", "encoder_q.", "online_network.", "online_encoder.", "backbone.", "encoder.",
    "base_encoder.", "net.", "network.", "student.", "teacher.", "encoder_k.", "target_network.",
    "momentum_encoder.",
)
#: first key segments of a torchvision ResNet
_RESNET_ROOTS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")
_DISPREFERRED = ("encoder_k.", "target_network.", "momentum_encoder.", "teacher.", "target_", "backbone_k.")


def save_atomic(payload: Any, path: "str | os.PathLike[str]") -> Path:
    """torch.save to a temporary file in the same folder, fsync, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_file(path: "str | os.PathLike[str]", map_location: "str | torch.device" = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a NaviewerError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise NaviewerError("checkpoint file not found", path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            reason = "refused: the file holds Python objects/code, not just weights (only plain weights are loaded)"
        else:
            reason = f"not a readable PyTorch checkpoint ({type(exc).__name__}: {text[:200]})"
        raise NaviewerError(reason, path) from None


def is_naviewer_checkpoint(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT


#: the backbone copies a naviewer checkpoint may hold: the trained one, then momentum branches
BACKBONE_BRANCHES = ("backbone.", "target_backbone.", "backbone_k.")


def checkpoint_with_backbone(source_obj: Any, encoder: Any, backbone_state: Mapping[str, torch.Tensor],
                             image_size: Optional[int], branches: tuple[str, ...] = ("backbone.",)) -> dict:
    """A checkpoint payload carrying a changed backbone (fine-tuned, pruned). A naviewer source keeps
    everything else and gets the new weights in ``backbone.`` and in each other of ``branches`` it
    holds; a foreign source (torchvision / MoCo / BYOL layouts) becomes an encoder-only file."""
    tensors = {k: v.detach().cpu().clone() for k, v in backbone_state.items()}
    if not is_naviewer_checkpoint(source_obj):
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "method": {"method": encoder.method, "backbone": asdict(encoder.config)},
                "config": {"image_size": int(image_size)} if image_size else {},
                "model": {"backbone." + k: v for k, v in tensors.items()}, "encoder_only": True}
    payload = dict(source_obj)
    model = dict(payload.get("model") or {})
    for prefix in branches:
        if prefix == "backbone." or any(key.startswith(prefix) for key in model):
            model.update({prefix + k: v for k, v in tensors.items()})
    payload["model"] = model
    return payload


def load_training_checkpoint(path: "str | os.PathLike[str]") -> dict[str, Any]:
    """A naviewer training checkpoint (for resume); anything else is a NaviewerError."""
    obj = load_file(path)
    if not is_naviewer_checkpoint(obj):
        raise NaviewerError("not a naviewer training checkpoint", path)
    if int(obj.get("version", 0)) > CHECKPOINT_VERSION:
        raise NaviewerError(f"checkpoint version {obj.get('version')} is newer than this naviewer understands", path)
    return dict(obj)


# -- foreign state dicts -------------------------------------------------------------------------
def _find_state_dict(obj: Any) -> Optional[dict[str, torch.Tensor]]:
    """The largest tensor mapping in a (possibly nested) checkpoint dict."""
    best: Optional[dict[str, torch.Tensor]] = None

    def visit(node: Any, depth: int) -> None:
        nonlocal best
        if depth > 4 or not isinstance(node, Mapping):
            return
        tensors = {k: v for k, v in node.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors and (best is None or len(tensors) > len(best)):
            best = tensors
        for value in node.values():
            if isinstance(value, Mapping):
                visit(value, depth + 1)

    visit(obj, 0)
    return best


def _split_prefix(key: str) -> tuple[str, str]:
    """('module.encoder_q.', 'layer1.0.conv1.weight') for a ResNet key behind any wrapper prefix."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        if part in _RESNET_ROOTS:
            return ".".join(parts[:i]) + ("." if i else ""), ".".join(parts[i:])
    return key, ""


def _prefix_rank(prefix: str) -> tuple[int, int]:
    bad = any(d in prefix for d in _DISPREFERRED)
    rest = prefix
    known = 0
    while rest:
        for p in KNOWN_PREFIXES:
            if rest.startswith(p):
                rest = rest[len(p):]
                known += 1
                break
        else:
            break
    return (1 if bad else 0, 0 if not rest else 1)


def backbone_state_from(obj: Any, path: "str | os.PathLike[str] | None" = None) -> dict[str, torch.Tensor]:
    """The ResNet backbone weights inside any supported checkpoint, with prefixes and heads removed."""
    if is_naviewer_checkpoint(obj):
        model = obj.get("model", {})
        return {k[len("backbone."):]: v for k, v in model.items() if k.startswith("backbone.")}
    state = _find_state_dict(obj)
    if not state:
        raise NaviewerError("no weights found in this file", path)
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        prefix, rest = _split_prefix(key)
        if rest:
            groups.setdefault(prefix, {})[rest] = value
    if not groups:
        raise NaviewerError(
            "no ResNet backbone weights recognised (expected keys like conv1.weight, layer1.0.conv1.weight "
            f"behind an optional prefix such as {', '.join(KNOWN_PREFIXES[:6])}); first keys: "
            + ", ".join(list(state)[:5]), path)

    def score(item: tuple[str, dict[str, torch.Tensor]]) -> tuple:
        prefix, keys = item
        bad, unknown = _prefix_rank(prefix)
        return (-sum(1 for k in keys if not k.startswith("fc.")), bad, unknown, len(prefix))

    _, chosen = min(groups.items(), key=score)
    return {k: v for k, v in chosen.items() if not k.startswith("fc.")}


def infer_backbone_config(state: Mapping[str, torch.Tensor]) -> BackboneConfig:
    """Arch, stem and width from backbone weights (block counts, conv1 kernel, channel count)."""
    conv1 = state.get("conv1.weight")
    if conv1 is None or conv1.ndim != 4:
        raise NaviewerError("cannot infer the backbone: no conv1.weight in the checkpoint")
    width = int(conv1.shape[0])
    cifar_stem = int(conv1.shape[-1]) == 3
    blocks = []
    for stage in range(1, 5):
        ids = {int(m.group(1)) for k in state if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        blocks.append(len(ids))
    bottleneck = any(re.match(r"layer1\.0\.conv3\.", k) for k in state)
    for arch, (block, layers) in ARCHS.items():
        if layers == blocks and (block.expansion == 4) == bottleneck:
            return BackboneConfig(arch=arch, cifar_stem=cifar_stem, width=width)
    raise NaviewerError(f"unsupported ResNet layout: blocks per stage {blocks}, bottleneck={bottleneck}")


def load_backbone_weights(backbone: nn.Module, state: Mapping[str, torch.Tensor],
                          path: "str | os.PathLike[str] | None" = None) -> None:
    """Load ``state`` strictly; mismatches become a NaviewerError listing missing/unexpected keys."""
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith("fc.")]
    unexpected = [k for k in state if k not in expected]
    shape = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
             for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or shape:
        def few(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")

        details = []
        if missing:
            details.append(f"missing keys: {few(missing)}")
        if unexpected:
            details.append(f"unexpected keys: {few(unexpected)}")
        if shape:
            details.append(f"shape mismatches: {few(shape)}")
        raise NaviewerError("checkpoint does not fit the chosen backbone; " + "; ".join(details), path)
    backbone.load_state_dict(dict(state), strict=False)


@dataclass
class LoadedEncoder:
    """A backbone ready for embedding/evaluation, and what the checkpoint said about it."""

    backbone: nn.Module
    config: BackboneConfig
    image_size: Optional[int] = None
    method: Optional[str] = None
    meta: dict[str, Any] = field(default_factory=dict)


def load_encoder(path: "str | os.PathLike[str]", backbone: "BackboneConfig | Mapping[str, Any] | str | None" = None,
                 map_location: "str | torch.device" = "cpu") -> LoadedEncoder:
    """A backbone with weights from a naviewer checkpoint, a torchvision state dict or a common SSL
    layout (MoCo ``encoder_q``, BYOL ``online_network``, SimSiam ``encoder``, DDP ``module.``...).

    ``backbone`` None infers the architecture from the weights (naviewer checkpoints record it).
    """
    obj = load_file(path, map_location)
    state = backbone_state_from(obj, path)
    image_size = method = None
    meta: dict[str, Any] = {}
    if is_naviewer_checkpoint(obj):
        method = obj.get("method", {}).get("method")
        image_size = (obj.get("config") or {}).get("image_size")
        meta = {"epoch": obj.get("completed_epochs"), "global_step": obj.get("global_step"),
                "config": obj.get("config"), "method": obj.get("method")}
        recorded = BackboneConfig.from_any(obj.get("method", {}).get("backbone"))
        config = BackboneConfig.from_any(backbone) if backbone is not None else recorded
    else:
        config = BackboneConfig.from_any(backbone) if backbone is not None else infer_backbone_config(state)
    model = build_backbone(config)
    load_backbone_weights(model, state, path)
    if image_size:
        model.naviewer_image_size = int(image_size)  # type: ignore[attr-defined]
    return LoadedEncoder(model, config, int(image_size) if image_size else None, method, meta)
