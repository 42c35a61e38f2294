"""Checkpoints: atomic saving, and safe loading of naviewer and foreign encoder weights.

Every load goes through ``torch.load(weights_only=True)``: a checkpoint is data, never code, so a
pickle that tries to build arbitrary objects is refused (and reported as a NaviewerError naming the
file) instead of being executed. Foreign layouts are recognised by their key prefixes
(``module.``, ``encoder_q.``, ``backbone.``, ``online_network.``, ``encoder.``, ``model.`` ...);
projection/classification heads (``fc.*``) are dropped; the backbone architecture is inferred from
the weights when not given.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from naviewer.errors import NaviewerError
from naviewer.io import _pid_alive, atomic_path, cleanup_stale_temps, describe_os_error, sniff_checkpoint
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


class _WholeWrites:
    """A raw file for ``torch.save`` that writes every byte it is given and keeps the OSError it met.

    torch turns a failed write into a RuntimeError such as "unexpected pos 704 vs 598"; the error
    kept here (ENOSPC, EDQUOT, EIO...) is what the user is told instead.
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.error: Optional[OSError] = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                written = self.handle.write(view[done:])
                if not written:
                    raise OSError(errno.EIO, "the file system accepted no more bytes")
                done += written
        except OSError as exc:
            self.error = exc
            raise
        return done

    def flush(self) -> None:
        self.handle.flush()


def save_atomic(payload: Any, path: "str | os.PathLike[str]", replace: bool = True) -> Path:
    """torch.save to a hidden temporary file in the same folder, fsync, then os.replace.

    A failed write (disk full, quota, read-only folder) is a NaviewerError naming the checkpoint and
    leaves nothing behind: neither the temporary nor a changed ``path``. Temporaries left by a killed
    process are removed first (:func:`cleanup_checkpoint_temps`). ``replace`` False: a ``path`` that exists when the
    file is put in place (another command wrote it meanwhile) is refused and left as it is.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        cleanup_checkpoint_temps(path.parent)
        with atomic_path(path, replace=replace) as tmp:
            with open(tmp, "wb", buffering=0) as raw:
                sink = _WholeWrites(raw)
                try:
                    torch.save(payload, sink)
                except RuntimeError:
                    if sink.error is not None:
                        raise sink.error from None
                    raise
    except FileExistsError as exc:
        if not replace and exc.filename is not None and Path(exc.filename) == path:
            raise NaviewerError("the checkpoint exists already (another command wrote it while this one ran): "
                                "nothing was written; choose a new name", path) from None
        raise NaviewerError(f"cannot save the checkpoint: {describe_os_error(exc)}; nothing was written", path) from None
    except OSError as exc:
        raise NaviewerError(f"cannot save the checkpoint: {describe_os_error(exc)}; nothing was written", path) from None
    return path


#: ``.last.pt.<pid>.tmp``: the temporary name of checkpoints written before naviewer.io.atomic_path was used
_LEGACY_TEMP_RE = re.compile(r"^\..+\.(?:pt|pth|ckpt|tar|npy)\.(\d+)\.tmp$")  # also embed's `.<out>.npy.<pid>.tmp`


def cleanup_checkpoint_temps(directory: "str | os.PathLike[str]") -> list[Path]:
    """Remove checkpoint temporaries whose writer is gone (SIGKILL during a save), both naming schemes."""
    directory = Path(directory)
    removed = cleanup_stale_temps(directory)
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        match = _LEGACY_TEMP_RE.match(entry.name)
        if match and entry.is_file() and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def _sniff(path: Path) -> Optional[str]:
    """What the file plainly is when it is not a checkpoint torch could read (:func:`naviewer.io.sniff_checkpoint`)."""
    return sniff_checkpoint(path)


def load_file(path: "str | os.PathLike[str]", map_location: "str | torch.device" = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a NaviewerError naming the file.

    The message says what is wrong in naviewer's words (empty, truncated, not a checkpoint, a pickle
    that asks to run code); torch's advice to re-load with ``weights_only=False`` is never passed on.
    """
    path = Path(path)
    if not path.is_file():
        found = "a folder" if path.is_dir() else "a pipe or a device, not a regular file"  # a FIFO read as "a folder"
        raise NaviewerError("checkpoint file not found" if not path.exists() else f"expected a checkpoint file, found {found}",
                            path)
    problem = _sniff(path)
    if problem is not None:
        raise NaviewerError(f"not a readable checkpoint: {problem}", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        reason = _load_failure(exc)
        raise NaviewerError(reason if reason.startswith("refused") else f"not a readable checkpoint: {reason}",
                            path) from None
    hollow = _meta_tensor(obj)
    if hollow is not None:  # every later read of it raised torch's RuntimeError, a traceback (a bad-input probe, session 30)
        raise NaviewerError(f"the checkpoint's tensors hold no values (meta tensors, first {hollow}): it was saved from "
                            "a model that was never materialised (built on the meta device); save the trained "
                            "model's weights instead", path)
    return obj


def _meta_tensor(obj: Any, depth: int = 0, where: str = "") -> Optional[str]:
    """The key of the first tensor with no data (``device.type == "meta"``) in a loaded checkpoint, or None."""
    if isinstance(obj, torch.Tensor):
        return (where or "the top level") if obj.device.type == "meta" else None
    if depth > 6:
        return None
    items = obj.items() if isinstance(obj, Mapping) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = _meta_tensor(value, depth + 1, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _load_failure(exc: BaseException) -> str:
    """torch's error, said plainly and in whole sentences."""
    text = str(exc)
    code = re.search(r"unsupported GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)", text)
    if code:
        name = code.group(1) or code.group(2)
        return (f"refused: loading it would call {name} (the file holds Python code or objects, not only weights; "
                "only plain weights are loaded)")
    if "Unsupported operand" in text or "WeightsUnpickler" in text or isinstance(exc, (KeyError, pickle.UnpicklingError)):
        return "a pickle that is not a PyTorch checkpoint (only weights saved with torch.save are read)"
    if "unexpected EOF" in text or isinstance(exc, EOFError) or "central directory" in text:
        return "the file is truncated or damaged (it ends before the checkpoint does)"
    if isinstance(exc, OSError):
        return f"cannot read it: {describe_os_error(exc)}"
    text = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", text).strip()
    first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0] if text else ""
    if not first or len(first) > 160 or "weights_only" in first:
        first = type(exc).__name__
    return f"damaged, or not a PyTorch checkpoint ({first})"


def is_naviewer_checkpoint(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT


def _kind(value: Any) -> str:
    """What a field holds, in words: "NoneType None" read as Python's, not the file's (a GUI probe, session 33)."""
    if value is None:
        return "nothing (the field is missing or empty)"
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    kinds = {bool: "true/false", int: "the number", float: "the number", str: "the text", list: "a list",
             tuple: "a list", dict: "a table"}
    kind = next((word for cls, word in kinds.items() if type(value) is cls), f"a {type(value).__name__}")
    return f"{kind} {text}"


def check_naviewer_checkpoint(obj: Mapping[str, Any], path: "str | os.PathLike[str] | None" = None,
                              training: bool = False) -> None:
    """The fields naviewer reads from its own checkpoints have the right types (a forged or edited file is
    a NaviewerError naming the file and the field, not an AttributeError later)."""
    def bad(field_name: str, expected: str, value: Any) -> NaviewerError:
        return NaviewerError(f"damaged naviewer checkpoint: '{field_name}' should be {expected}, found {_kind(value)}",
                             path)

    version = obj.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad("version", "a whole number", version)
    if version > CHECKPOINT_VERSION:
        raise NaviewerError(f"checkpoint version {version} is newer than this naviewer understands", path)
    method = obj.get("method")
    if not isinstance(method, Mapping):
        raise bad("method", "a table (method name, backbone, settings)", method)
    if method.get("method") is not None and not isinstance(method.get("method"), str):  # None: an encoder-only file
        raise bad("method.method", "a method name", method.get("method"))
    if method.get("backbone") is not None and not isinstance(method.get("backbone"), (Mapping, str)):
        raise bad("method.backbone", "a table", method.get("backbone"))
    if not isinstance(method.get("settings", {}), Mapping):
        raise bad("method.settings", "a table", method.get("settings"))
    config = obj.get("config")
    if config is not None and not isinstance(config, Mapping):
        raise bad("config", "a table", config)
    size = (config or {}).get("image_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 65536):
        raise bad("config.image_size", "a size in pixels", size)
    model = obj.get("model")
    if not isinstance(model, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in model.items()):
        if isinstance(model, Mapping):
            raise NaviewerError("damaged naviewer checkpoint: 'model' should hold only named tensors, found other "
                                "entries", path)
        raise bad("model", "a table of named tensors", model)
    if not training:
        return
    if not isinstance(method.get("method"), str):
        raise bad("method.method", "a method name", method.get("method"))
    if not isinstance(method.get("settings"), Mapping):
        raise bad("method.settings", "a table", method.get("settings"))
    if not isinstance(config, Mapping):
        raise bad("config", "a table", config)
    for name in ("optimizer", "schedule"):
        if not isinstance(obj.get(name), Mapping):
            raise bad(name, "a table", obj.get(name))
    for name in ("completed_epochs", "step_in_epoch", "global_step"):
        value = obj.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(name, "a whole number", value)


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
    check_naviewer_checkpoint(obj, path, training=True)
    model = obj.get("model")
    if isinstance(model, Mapping):  # NaN weights resumed to "training diverged ...: lower the learning rate" (a sweep)
        bad = [name for name, tensor in model.items() if isinstance(tensor, torch.Tensor) and tensor.is_floating_point()
               and (not torch.isfinite(tensor).all() or (name.endswith("running_var") and (tensor < 0).any()))]
        if bad:
            raise NaviewerError(f"the checkpoint's weights hold NaN, infinite or impossible values ({len(bad)} tensors, "
                                f"first {bad[0]}): a training that diverged before this checkpoint, or a damaged file; "
                                "resume from an earlier epoch_XXXX.pt", path)
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
        check_naviewer_checkpoint(obj, path)
        model = obj["model"]
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


def _describe(config: BackboneConfig) -> str:
    # both stems named: "resnet10 width 8 (CIFAR stem)" against "resnet10 width 8" read as the same network (a
    # bad-input probe, session 30)
    stem = "CIFAR stem, 3x3 conv1" if config.cifar_stem else "ImageNet stem, 7x7 conv1"
    return f"{config.arch} width {config.width} ({stem})"


def _overridden(backbone: "BackboneConfig | Mapping[str, Any] | str", base: Optional[BackboneConfig]) -> BackboneConfig:
    """``backbone``'s fields over the checkpoint's own (recorded or inferred): ``--no-cifar-stem`` alone put the
    arch and width back to resnet18 / 64 and the error listed every key of another network (a probe, session 32)."""
    if isinstance(backbone, Mapping) and base is not None:
        return BackboneConfig.from_any({**asdict(base), **dict(backbone)})
    return BackboneConfig.from_any(backbone)


def _infer_or_none(state: Mapping[str, torch.Tensor]) -> Optional[BackboneConfig]:
    try:
        return infer_backbone_config(state)
    except NaviewerError:
        return None


def infer_backbone_config(state: Mapping[str, torch.Tensor],
                          path: "str | os.PathLike[str] | None" = None) -> BackboneConfig:
    """Arch, stem and width from backbone weights (block counts, conv1 kernel, channel count)."""
    conv1 = state.get("conv1.weight")
    if conv1 is None:
        raise NaviewerError("cannot infer the backbone: no conv1.weight in the checkpoint", path)
    if getattr(conv1, "ndim", None) != 4:  # "no conv1.weight" was said of one that is there, 2-D (a newcomer)
        shape = tuple(conv1.shape) if hasattr(conv1, "shape") else type(conv1).__name__
        raise NaviewerError(f"cannot infer the backbone: conv1.weight has shape {shape}; a ResNet's first "
                            "convolution is 4-D (out, in, k, k)", path)
    if int(conv1.shape[0]) < 4 or int(conv1.shape[0]) % 4:
        raise NaviewerError(f"cannot infer the backbone: conv1 has {int(conv1.shape[0])} channels "
                            "(a positive multiple of 4 expected)", path)
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
    raise NaviewerError(f"unsupported ResNet layout: blocks per stage {blocks}, bottleneck={bottleneck}", path)


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
    if is_naviewer_checkpoint(obj):
        check_naviewer_checkpoint(obj, path)
    state = backbone_state_from(obj, path)
    if not state:
        raise NaviewerError("no backbone weights in this checkpoint ('model' holds no 'backbone.' entries)", path)
    image_size = method = None
    meta: dict[str, Any] = {}
    if is_naviewer_checkpoint(obj):
        method = obj["method"]["method"]
        image_size = (obj.get("config") or {}).get("image_size")
        meta = {"epoch": obj.get("completed_epochs"), "global_step": obj.get("global_step"),
                "config": obj.get("config"), "method": obj.get("method")}
        try:
            recorded = BackboneConfig.from_any(obj["method"].get("backbone"))
        except (NaviewerError, TypeError, ValueError) as exc:
            raise NaviewerError(f"damaged naviewer checkpoint: its backbone record is unusable "
                                f"({getattr(exc, 'message', exc)})", path) from None
        inferred = _infer_or_none(state)
        if backbone is None and inferred is not None and inferred != recorded:
            raise NaviewerError(f"damaged naviewer checkpoint: it records the backbone {_describe(recorded)} but its "
                                f"weights are of {_describe(inferred)}", path)
        config = _overridden(backbone, recorded) if backbone is not None else recorded
    else:
        config = (_overridden(backbone, _infer_or_none(state)) if backbone is not None
                  else infer_backbone_config(state, path))
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, (int, float))
                                   or not 8 <= image_size <= 4096 or int(image_size) != image_size):
        raise NaviewerError(f"damaged naviewer checkpoint: its training size {image_size!r} is not an image size "
                            "(8-4096 px)", path)
    sparse = [name for name, tensor in state.items() if isinstance(tensor, torch.Tensor) and tensor.layout != torch.strided]
    if sparse:  # torch's checks below have no sparse kernel: a NotImplementedError traceback
        raise NaviewerError(f"the checkpoint holds a sparse tensor ({sparse[0]}); an encoder's weights are dense",
                            path)
    complex_ = [name for name, tensor in state.items() if isinstance(tensor, torch.Tensor) and tensor.is_complex()]
    if complex_:  # "lt_cpu not implemented for ComplexFloat" from the checks below (a bad-input probe, session 32)
        raise NaviewerError(f"the checkpoint's weights are complex numbers ({len(complex_)} tensors, first "
                            f"{complex_[0]}): an encoder's weights are real", path)
    bad = [name for name, tensor in state.items()
           if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:  # the embeddings would be all NaN, and every detector's verdict meaningless
        raise NaviewerError(f"the checkpoint's weights hold NaN or infinite values ({len(bad)} tensors, first "
                            f"{bad[0]}): a training that diverged, or a damaged file", path)
    integer = [name for name, tensor in state.items()
               if isinstance(tensor, torch.Tensor) and tensor.dim() > 0 and not tensor.is_floating_point()
               and not tensor.is_complex() and tensor.dtype != torch.bool and name.endswith(("weight", "bias"))]
    if integer:  # a quantised export cast to float silently, embeddings written, rc 0 (a bad-input probe, session 28)
        dtype = str(state[integer[0]].dtype).replace("torch.", "")
        raise NaviewerError(f"the checkpoint's weights are integers ({dtype}, {len(integer)} tensors, first "
                            f"{integer[0]}): a quantised export, not a float encoder; export its float weights",
                            path)
    negative = [name for name, tensor in state.items()
                if name.endswith("running_var") and isinstance(tensor, torch.Tensor) and (tensor < 0).any()]
    if negative:  # a variance below 0: every output NaN, every later number meaningless (a sweep: rc 0, knn_acc 0.1)
        raise NaviewerError(f"the checkpoint is damaged: a BatchNorm's running variance is negative ({negative[0]})",
                            path)
    model = build_backbone(config)
    load_backbone_weights(model, state, path)
    _probe_forward(model, int(image_size) if image_size else 32, path)
    if image_size:
        model.naviewer_image_size = int(image_size)  # type: ignore[attr-defined]
    return LoadedEncoder(model, config, int(image_size) if image_size else None, method, meta)


def _probe_forward(model: nn.Module, size: int, path: "str | os.PathLike[str]") -> None:
    """Two random images through the encoder: finite weights can still give NaN or infinite features (weights of
    1e30; embed wrote all-NaN embeddings, eval reported chance accuracy, prune "pruned 0", each with rc 0)."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)))
    except (RuntimeError, ValueError) as exc:
        raise NaviewerError(f"the encoder fails on a {size} px image: {str(exc).splitlines()[0]}", path) from None
    finally:
        model.train(training)
    if isinstance(out, torch.Tensor) and out.is_floating_point() and not torch.isfinite(out).all():
        raise NaviewerError("the encoder's features are NaN or infinite on an ordinary image (weights too large, or "
                            "a damaged BatchNorm): a training that diverged, or a damaged file", path)
