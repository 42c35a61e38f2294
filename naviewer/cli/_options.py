"""Range checks for the numeric options every command shares, applied once after parsing.

argparse checks only the type, so ``--seed -1``, ``--image-size 0`` or ``--lr nan`` used to reach the
code and end in a traceback (or, worse, in a silent default: ``--epochs 0`` trained 200 epochs). Each
rule names the option as the user typed it and what it accepts; ``None`` (not given) is never checked.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, Optional

from naviewer.catalogue import EPOCHS_MAX, LR_MAX, WEIGHT_DECAY_MAX
from naviewer.errors import NaviewerError

SEED_MAX = 2**32 - 1
#: dest -> (option, kind, low, high, low inclusive); kind "int" or "float" (floats must be finite)
RULES: dict[str, tuple[str, str, Optional[float], Optional[float], bool]] = {
    "seed": ("--seed", "int", 0, SEED_MAX, True),
    # 0 passed here and the attack then refused it as "num_poisons must be at least 1" (a probe, session 28)
    "num_poisons": ("--num-poisons", "int", 1, None, True),
    # the attack's own words named no option ("opacity must be in (0, 1]", "setting opacity=inf"; the same probe)
    "rate": ("--rate", "float", 0, 1, False),
    "opacity": ("--opacity", "float", 0, 1, False),
    "epochs": ("--epochs", "int", 1, EPOCHS_MAX, True),  # 1e20 trained until killed (a sweep, session 21)
    "image_size": ("--image-size", "int", 8, 4096, True),
    "batch_size": ("--batch-size", "int", 1, None, True),
    "threads": ("--threads", "int", 1, 1024, True),
    "lr": ("--lr", "float", 0, LR_MAX, False),  # 1e300 passed and overflowed in torch's optimiser (a traceback)
    "wd": ("--wd", "float", 0, WEIGHT_DECAY_MAX, True),
    "warmup_epochs": ("--warmup-epochs", "float", 0, None, True),
    "min_crop_scale": ("--min-crop-scale", "float", 0, 1, False),
    "knn_t": ("--knn-t", "float", 0, None, False),
    "knn_k": ("--knn-k", "int", 1, None, True),
    "gap": ("--gap", "float", 0, 10, True),
    "magnitude": ("--magnitude", "float", 0, None, False),
    "trigger_size": ("--trigger-size", "int", 1, 4096, True),
    "anchors_per_class": ("--anchors-per-class", "int", 1, None, True),
    "max_steps_per_epoch": ("--max-steps-per-epoch", "int", 1, None, True),
    "pass_id": ("--pass", "int", 1, 2**62, True),  # ids count from 1 (-1 read "<= 4,611,686,018,427,387,904")
    "width": ("--width", "int", 1, 4096, True),
    "target": ("--target", "int", 0, None, True),
    "checkpoint_every": ("--checkpoint-every", "int", 1, None, True),
    "knn_every": ("--knn-every", "int", 0, None, True),
    "dift_start": ("--dift-start", "int", 0, None, True),
    "workers": ("--workers", "int", 0, 256, True),
    "n": ("--n", "int", 1, None, True),
    "k": ("--k", "int", 0, None, True),
    # a second bad-input sweep: each of these passed argparse and ended in a traceback, a hang or a silent no-op
    "per_class": ("--per-class", "int", 1, 1_000_000, True),
    "log_every": ("--log-every", "int", 1, None, True),
    "linear_epochs": ("--linear-epochs", "int", 1, EPOCHS_MAX, True),
    "repeat": ("--repeat", "int", 1, 1000, True),
    "timeout": ("--timeout", "float", 0, None, False),
    "dim": ("--dim", "int", 1, 65536, True),
    "classes": ("--classes", "int", 1, None, True),
    "intrinsic_dim": ("--intrinsic-dim", "int", 1, 65536, True),
    "poison_fraction": ("--poison-fraction", "float", 0, 0.5, True),  # 0: no planted cluster (a clean run)
    "poison_spread": ("--poison-spread", "float", 0, None, False),
    "ef": ("--ef", "int", 0, 1_000_000, True),
    "ef_construction": ("--ef-construction", "int", 1, 1_000_000, True),
    "hnsw_m": ("--hnsw-m", "int", 1, 4096, True),
    "knn_dims": ("--knn-dims", "int", 0, 65536, True),
    "baseline_n": ("--baseline-n", "int", 1, None, True),
    "large": ("--large", "int", 0, None, True),
    "large_dim": ("--large-dim", "int", 1, 65536, True),
    "large_knn_dims": ("--large-knn-dims", "int", 0, 65536, True),
    "nprobe": ("--nprobe", "int", 0, None, True),
    "memory_mb": ("--memory-mb", "int", 1, None, True),
    # a third sweep (session 16): inf passed their own "> 0" checks (a traceback; a prune that pruned nothing)
    "decode_mb": ("--decode-mb", "float", 0, None, False),
    "u": ("--u", "float", 0, None, True),
    "top": ("--top", "int", 1, None, True),
    # bench and reproduce sizes: 0 or -1 ended in tracebacks (StopIteration, ZeroDivisionError), nonsense figures
    # with rc 0, or a measurement that started anyway (a third sweep); lists (--scale 0 5) are checked item by item
    "images": ("--images", "int", 1, None, True),
    "steps": ("--steps", "int", 1, None, True),
    "scale": ("--scale", "int", 1, None, True),
    "points": ("--points", "int", 1, None, True),
    "rounds": ("--rounds", "int", 1, None, True),
    "old_limit_gb": ("--old-limit-gb", "float", 0, None, False),
    "files": ("--files", "int", 1, None, True),
    "seconds": ("--seconds", "float", 0, None, False),
    "retrains": ("--retrains", "int", 1, None, True),
    "floors": ("--floors", "int", 1, None, True),
    # a fourth sweep (session 17): bench gui / workspace sizes of 0 or -1 ended in numpy tracebacks
    "image_points": ("--image-points", "int", 0, None, True),  # 0 skips the density-image mode
    "gallery": ("--gallery", "int", 1, None, True),
    "sort": ("--sort", "int", 1, None, True),
    "stall": ("--stall", "int", 1, None, True),
    "crossover": ("--crossover", "int", 1, None, True),
    "register": ("--register", "int", 0, None, True),  # 0 skips the registration
    "baseline_up_to": ("--baseline-up-to", "int", 1, None, True),
    "file_list": ("--file-list", "int", 1, None, True),  # (a path elsewhere: only numbers are checked)
}


def _check(dest: str, value: Any) -> None:
    option, kind, low, high, low_inclusive = RULES[dest]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # another command's option of the same name with another type (a path, a list)
    if kind == "float" and not math.isfinite(float(value)):
        raise NaviewerError(f"{option} must be a finite number, got {value}")
    def show(x: float) -> str:
        return f"{int(x):,}" if kind == "int" else f"{x:g}"

    accepted = []
    if low is not None:
        accepted.append(f"{'>=' if low_inclusive else '>'} {show(low)}")
    if high is not None:
        accepted.append(f"<= {show(high)}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    if too_low and high is not None and high >= 2**31:  # a far bound such as 2**62 said only when crossed: noise
        accepted = accepted[:1]
    too_high = high is not None and value > high
    if too_low or too_high:
        raise NaviewerError(f"{option} must be {' and '.join(accepted)}, got {value if kind == 'int' else show(value)}")


#: text options whose empty value used to pass as "not given" ('' became the default run, the login name, the
#: current folder for export's manifests): refused for every command that has them
NOT_EMPTY = {"out": "--out", "run": "--run", "reviewer": "--reviewer", "embeddings": "--embeddings", "tag": "--tag",
             # "no dataset given (empty path)" named no option, and new said it after registering every sample
             "dataset": "--dataset", "test_dataset": "--test-dataset", "train_dataset": "--train-dataset",
             "knn_dataset": "--knn-dataset", "knn_test_dataset": "--knn-test-dataset",
             # '' trained on the automatic device, and an empty checkpoint read as "CWD: the file is a folder" (a
             # bad-input probe, session 27)
             "device": "--device", "checkpoint": "--checkpoint"}


def check_options(args: argparse.Namespace) -> None:
    """Every shared numeric option of the parsed ``args`` in its range, and no named text option empty (a
    NaviewerError naming it)."""
    for dest, value in vars(args).items():
        if dest in RULES and value is not None:
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                _check(dest, item)
        elif dest in NOT_EMPTY and isinstance(value, str) and not value.strip():
            raise NaviewerError(f"{NOT_EMPTY[dest]} is empty: give a value, or leave the option out")
    batch = getattr(args, "batch_size", None)
    if (getattr(args, "command", None) in ("train", "run", "reproduce") and isinstance(batch, int)
            and not isinstance(batch, bool) and batch < 2):  # the trainer's words named no option (a probe, session 28)
        raise NaviewerError(f"--batch-size must be >= 2 for a training (contrastive pairs need another sample), got "
                            f"{batch}")
    threads = getattr(args, "threads", None)
    cores = os.cpu_count() or 1
    if isinstance(threads, int) and not isinstance(threads, bool) and threads > 2 * cores:
        # 1,000 threads on 2 cores took 50 s an epoch against 0.05 s with one, without a word (a sweep, session 18)
        print(f"naviewer: warning: --threads {threads} is more than twice this machine's {cores} core"
              f"{'s' if cores != 1 else ''}: the threads wait on each other and everything slows down; "
              f"--threads {cores} or fewer is faster", file=sys.stderr)
    width, arch = getattr(args, "width", None), getattr(args, "arch", None)
    if isinstance(width, int) and not isinstance(width, bool) and width % 4:
        # said by the backbone without the option's name (a bad-input probe, session 27)
        raise NaviewerError(f"--width must be a multiple of 4 (the backbone asks for it), got {width}: e.g. "
                            f"--width {max(4, width - width % 4)}")
    if isinstance(width, int) and not isinstance(width, bool) and isinstance(arch, str) and width % 4 == 0:
        # before any folder is made: a width the machine cannot train (4096 stalled allocating ~40 GB)
        from naviewer.ssl.backbones import ARCHS, check_backbone_fits

        if arch in ARCHS:
            check_backbone_fits({"arch": arch, "width": width})


def typed(args: argparse.Namespace, flag: str) -> bool:
    """Whether ``flag`` was typed (``--flag V`` or ``--flag=V``): argparse cannot tell a default from a typed one."""
    return any(w == flag or w.startswith(flag + "=") for w in getattr(args, "given_words", None) or [])


def refuse_ignored_anchor_count(overrides: dict, ws: Any, anchor_spec: Optional[str], count_typed: bool = False) -> None:
    """``--dift-set anchors_per_class=N`` does not change anchors a workspace has chosen already: it ran with its
    ten a class and recorded N in the pass (a newcomer then read "1 a class" where 10 were used). Refused (exit 2)
    with the options that do change them. So is ``--anchors-per-class N`` (``count_typed``) without ``--anchors``,
    which nothing read (a bad-input sweep, session 26)."""
    if count_typed and anchor_spec is None:
        raise NaviewerError("--anchors-per-class changes nothing without --anchors SPEC: give --anchors labels "
                            "--anchors-per-class N (or a trusted set), or --dift-set anchors_per_class=N, or run "
                            "naviewer anchors WORKSPACE SPEC --per-class N")
    if "anchors_per_class" not in overrides or anchor_spec is not None:
        return
    section = ws.config.get("anchors") or {}
    if section.get("indices") or section.get("external"):
        raise NaviewerError(f"--dift-set anchors_per_class={overrides['anchors_per_class']} would not change this "
                            f"workspace's anchors (a chosen set, {section.get('per_class', '?')} a class): give "
                            "--anchors SPEC --anchors-per-class N, or run naviewer anchors WORKSPACE SPEC --per-class N",
                            ws.config_path)


