"""``naviewer demo``: the whole DIFT workflow on the built-in digits, sized for a 2-core CPU.

What it does, in order (each step is a core function the CLI and the GUI both call):

1. :func:`create_demo_workspace`: a workspace from ``open_dataset("demo")`` (scikit-learn's digits as
   32 px colour images) with Noisy Alignment poisons crafted into it; DIFT anchors are drawn from the
   clean set before poisoning and the ground truth goes to ``ground_truth.json`` only;
2. :func:`train_until_flags`: SimCLR on a narrow ResNet with DIFT in the loop and **no auto-accept**:
   when the flag buffer is stable the flags become a detection pass of the workspace, the run
   checkpoints and stops for review (``naviewer finetune`` / the GUI's fine-tune resume it);
3. :func:`save_review_embeddings`: the encoder at the detection epoch (``last.pt``) embeds every
   workspace sample; the array goes to ``<ws>/embeddings/<run>/review.npy`` so the analyst views
   show the same space DIFT ranked;
4. :func:`finetune_and_finish`: after review, Eq. 7 fine-tuning on the confirmed samples, removal,
   the rest of training, and the before/after numbers the fine-tune gate shows.

Sizing (measured on the 2-core CPU this was built on; see README "What naviewer demo does"): the
defaults in :class:`DemoConfig` are what gave the first flags within a few minutes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from naviewer.defense.config import DIFT_PRESETS
from naviewer.errors import NaviewerError
from naviewer.io import json_loads
from naviewer.jobs import JobContext, ensure_context
from naviewer.workflows.finetune_record import (  # noqa: F401 - REVIEW_TAG, FINAL_TAG, embed_checkpoint: its API too
    FINAL_TAG,
    FINETUNE_BEFORE,
    REVIEW_TAG,
    cluster_density,
    complete_finetune_result,
    embed_checkpoint,
    last_metrics,
)

RUN = "demo"
SUMMARY_FILE = "demo.json"


#: DIFT settings of the demo beyond the detection schedule (each measured on seeds 0-2, docs/results.md "demo"):
#: * ``mindist_scale`` anchor_spread: Eq. 6 cannot tell these poisons from benign samples (their MinDist lies
#:   below the benign median, since every composite holds a real "0"), but class 0's anchors are twice as
#:   tight as the broad classes', so in units of each class's own anchor spread the poisons are far
#:   (median 1.4-1.8 against a benign 95th percentile of 1.3-1.4). With it the GMM no longer splits a
#:   candidate set of poisons in two and the guard (``guard_check_split``, on again) takes it whole; with
#:   plain Eq. 6 the guard had to be switched off and still the buffer kept only 10-19 poisons;
#: * ``ls_alpha`` 0.7 (sklearn's default, which the paper names, is 0.2): the composites form two clusters
#:   (side-by-side and stacked layouts) and only the side-by-side one is dense enough to be a candidate;
#:   with alpha 0.2 a label decays five-fold per hop and spreading stops next to the buffer (recall 70-78%
#:   with the scaled MinDist); 0.7 reaches the stacked cluster too (recall 92-95%), 0.8-0.9 a little more
#:   of it (96-99%) at the price of more clean "0"s (precision 60-97%);
#: * ``restart_mode`` retrain: with the restart at epoch ~37 of 50, the paper's restart (fine-tuned weights,
#:   lr from the start over the remaining 13 epochs) kept the attack success rate at 96% even with every
#:   poison removed; re-initialising and training the 50 epochs on the kept samples removes it.
#: * ``ls_soft_threshold`` 0.1 with ``ls_soft_votes`` 0.9, and ``closure_votes`` 0.7: spreading's argmax still left
#:   5-46 % of the poisons, in two places: the stacked cluster when the buffer reached it only weakly (its
#:   members' poison probability 0.2-0.4, every benign sample's under 0.02 at the 90th percentile) and single
#:   poisons at the flagged cluster's edge (8-10 of their 10 neighbours flagged). Replayed on three review stops
#:   (seeds 0-2, one thread) recall went 94 / 54 / 98 % -> 100 / 96 / 99 % at precision 95 % (docs/results.md).
#: * ``crop_agreement`` 2 with ``crop_agreement_threshold`` 0.05: on seed 2 with 2 threads both rules still left a
#:   loose group (28 poisons, probability 0.04-0.17, half-clean neighbourhoods) that the crop_density detector
#:   ranked high (15 of them in its top 100). Samples that spreading reached above 0.05 AND that crop_density ranks
#:   within twice the flag count: replayed on the seven review stops with rules (docs/results.md), recall on that
#:   run 74 -> 93 %, on the others 92-100 % -> 94-100 %, precision 0-7 points lower; end to end on the six runs
#:   recall 89-100 %. Tuned on NA composites: on CorruptEncoder (SimCLR, seed 0) the weak-reach rule and this one
#:   added 112 clean flags to spreading's 119 (docs/results.md, session 7).
#: naviewer's DIFT preset (``DIFT_PRESETS["naviewer"]``, what ``naviewer new`` writes, crop agreement included since
#: session 12) without its candidate fraction (``DemoConfig.candidate_fraction`` sets it), plus a restart that retrains
#: and the trigger check (:mod:`naviewer.workflows.trigger_check`: seed 0 / 2 threads took 59 clean "0"s out with
#: the poisons; the check leaves 55 of them unconfirmed by accept-all, no poison; session 31), and accept-all's
#: check after the retrain (:mod:`naviewer.workflows.check_after_retrain`: the miss, seed 1 / 2 threads, kept 4 sparse
#: poisons; PatchSearch on the retrained encoder found 3 and no clean sample; session 34)
DEMO_DIFT_SETTINGS = {**{k: v for k, v in DIFT_PRESETS["naviewer"].items() if k != "candidate_fraction"},
                      "restart_mode": "retrain", "trigger_check_reach": 0.5, "check_after_retrain": True}


@dataclass
class DemoConfig:
    """Every knob of the demo; the defaults are the 2-core CPU tuning (README, "What naviewer demo does").

    Measured choices: grey 16 px digits (with random per-image colours the width-16 ResNet-10 reached
    only 12-20% kNN accuracy in 10 epochs and the poisons were not dense; grey, it reaches ~85% by
    epoch 5 and the backdoor forms, ASR 1.0 by epoch 15); an 8 px trigger (half a digit tile); 8%
    poisons. On this data DIFT's anchor-distance stage cannot tell the Noisy Alignment poisons from
    benign samples (their MinDist lies below the benign median: the composites hold a real target
    digit), so detection rests on density: the poisons become the densest samples only after ~25
    epochs, while before that thin "1"s are as dense. Hence detection from epoch 30 with 3%
    candidates and a buffer stable for 3 epochs (detection from epoch 26, or stopping after 2 stable
    epochs, settled 2-4 epochs earlier on embeddings where spreading flagged more clean "0"s; on
    seeds 0-2). Earlier starts flagged a cluster of "1"s in some runs. The DIFT settings beyond that
    are :data:`DEMO_DIFT_SETTINGS` (label spreading that reaches the second poison cluster; a restart
    that retrains).
    """

    epochs: int = 50
    method: str = "simclr"
    arch: str = "resnet10"
    width: int = 16
    image_size: int = 16           # training crop size
    data_size: int = 16            # size of the digits images (composites are 2x this on one side)
    tint: bool = False             # random per-image colours (True: the tinted demo set)
    batch_size: int = 128
    lr: Optional[float] = None
    warmup_epochs: float = 2.0
    attack: str = "na"             # na (Noisy Alignment) | patch (SSL-Backdoor) | ctrl | corruptencoder
    attack_extra: dict = field(default_factory=dict)      # any other setting of the attack
    #: Noisy Alignment's distinct reference "0"s (each reused by ~3 composites); None: one per poison, as the
    #: authors' toolbox does. The references leave the training set, and at one per poison the attack took 107 of
    #: the 142 clean "0"s, so even a retrain with every poison removed stayed 3-25 points above the clean-digits
    #: floor (docs/results.md, session 8); with 36 it ends within 10 (session 14). The matrix keeps the toolbox's.
    na_references: Optional[int] = 36
    rate: float = 0.08             # poison rate
    target: int = 0
    trigger_size: int = 8
    dift_start: int = 29           # 0-based: detection from the 30th epoch
    patience: int = 3
    candidate_fraction: float = 0.03
    k: int = 10
    knn_every: int = 5
    device: str = "auto"
    threads: Optional[int] = None
    seed: int = 0
    max_steps_per_epoch: Optional[int] = None
    dift_settings: dict = field(default_factory=lambda: dict(DEMO_DIFT_SETTINGS))  # other DiftConfig fields
    augment_recipe: str = "aug+"   # the recipe the demo was tuned with (naviewer.catalogue; SimCLR's own is simclr-cifar)
    test_protocol: Optional[str] = None  # the attack's test-time protocol for ASR (None: naviewer's uniform)

    @classmethod
    def from_overrides(cls, values: Optional[Mapping[str, Any]] = None) -> "DemoConfig":
        from naviewer.settings import settings_from_dict

        config = settings_from_dict(cls, values, "demo")  # unknown keys and wrong types named (width=abc)
        return config.validate()

    def validate(self) -> "DemoConfig":
        """Ranges the --set path skipped (--epochs -1 is refused, --set epochs=-1 trained the default 50), and a
        detection start the run never reaches (--epochs 20 trained 20 epochs and never detected)."""
        for name in ("epochs", "data_size", "image_size", "width", "batch_size"):
            value = getattr(self, name)
            if int(value) < 1:
                raise NaviewerError(f"demo setting {name}={value}: must be >= 1")
        from naviewer.catalogue import EPOCHS_MAX

        if int(self.epochs) > EPOCHS_MAX:  # --epochs 1e25 trained until killed (a sweep)
            raise NaviewerError(f"demo setting epochs={self.epochs}: must be at most {EPOCHS_MAX:,}")
        if int(self.dift_start) < 0:
            raise NaviewerError(f"demo setting dift_start={self.dift_start}: must be >= 0")
        if int(self.dift_start) >= int(self.epochs):
            raise NaviewerError(f"the demo's DIFT starts detecting at epoch {int(self.dift_start) + 1} but it trains "
                                f"{self.epochs} epochs: it would never detect (--epochs {int(self.dift_start) + 5} or "
                                f"more, or --set dift_start=N below {self.epochs})")
        return self

    def dataset_spec(self) -> Any:
        """The built-in set as a description, never the bare name: a name would warn beside a ./demo folder."""
        return {"kind": "demo", "image_size": int(self.data_size), **({} if self.tint else {"tint": False})}

    def attack_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"rate": float(self.rate), "target": int(self.target),
                                    "trigger_size": int(self.trigger_size)}
        from naviewer.attacks.base import attack_key

        if attack_key(self.attack) == "na" and self.na_references is not None:  # any of make_attack's names of NA
            settings["num_references"] = int(self.na_references)
        return {**settings, **dict(self.attack_extra)}

    def train_config(self):
        from naviewer.ssl.trainer import TrainConfig

        return TrainConfig(method=self.method, backbone={"arch": self.arch, "cifar_stem": True, "width": int(self.width)},
                           augment_recipe=self.augment_recipe,
                           epochs=int(self.epochs), batch_size=int(self.batch_size), lr=self.lr,
                           warmup_epochs=float(self.warmup_epochs), image_size=int(self.image_size),
                           device=self.device, seed=int(self.seed), checkpoint_every=0, knn_every=int(self.knn_every),
                           num_threads=self.threads, max_steps_per_epoch=self.max_steps_per_epoch)

    def dift_config(self):
        from naviewer.defense.config import DiftConfig

        return DiftConfig.fast(start_epoch=int(self.dift_start), patience=int(self.patience), k=int(self.k),
                               candidate_fraction=float(self.candidate_fraction), seed=int(self.seed),
                               review="pause", **dict(self.dift_settings))


@dataclass
class DemoOutcome:
    """What a demo run did, with the figures the README quotes."""

    workspace: Path
    run: str
    status: str                    # awaiting_review | finished | noop
    pass_id: Optional[int] = None
    flagged: int = 0
    poisons: int = 0
    precision: Optional[float] = None
    recall: Optional[float] = None
    detection_epoch: Optional[int] = None
    timings: dict = field(default_factory=dict)   # seconds: setup, first_flags (from start), embeddings, total
    embeddings: Optional[Path] = None
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["workspace"] = str(self.workspace)
        out["embeddings"] = None if self.embeddings is None else str(self.embeddings)
        return out

    def summary_lines(self) -> list[str]:
        t = self.timings
        lines = [f"workspace: {self.workspace}"]
        if self.pass_id is None:
            lines.append(f"no flags: DIFT did not stabilise within {self.config.get('epochs')} epochs "
                         f"(status {self.status}); try --epochs")
            return lines
        quality = ""
        if self.precision is not None:
            quality = (f"; against the ground truth: precision {self.precision:.1%}, recall {self.recall:.1%} "
                       f"of {self.poisons} poisons")
        lines.append(f"DIFT flagged {self.flagged} samples at epoch {(self.detection_epoch or 0) + 1} "
                     f"(detection pass {self.pass_id}){quality}")
        lines.append(f"time from start to first flags: {t.get('first_flags', float('nan')):.0f} s "
                     f"(workspace {t.get('setup', float('nan')):.0f} s)")
        return lines


def default_workspace_path(base: Optional[Path] = None) -> Path:
    """A fresh folder ``./naviewer-demo-<YYYYmmdd-HHMMSS>`` (suffixed if it exists)."""
    base = Path.cwd() if base is None else Path(base)
    stem = base / f"naviewer-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = stem, 1
    while path.exists():
        n += 1
        path = stem.with_name(f"{stem.name}-{n}")
    return path


def create_demo_workspace(path: Union[str, Path], config: Optional[DemoConfig] = None,
                          ctx: Optional[JobContext] = None):
    """Step 1: the digits + Noisy Alignment poisons in a new workspace (returns the open Workspace)."""
    from naviewer.workflows.workspace_setup import create_attacked_workspace

    config = config or DemoConfig()
    ctx = ensure_context(ctx)
    ctx.progress(0, None, "crafting Noisy Alignment poisons into the digits")
    setup = create_attacked_workspace(Path(path), config.dataset_spec(), config.attack, config.attack_settings(),
                                      seed=config.seed, test_dataset=config.dataset_spec(),
                                      test_protocol=config.test_protocol, ctx=ctx)
    setup.workspace.update_config("demo", {k: v for k, v in asdict(config).items() if v is not None})
    return setup.workspace


def train_until_flags(ws, config: Optional[DemoConfig] = None, ctx: Optional[JobContext] = None, run: str = RUN):
    """Step 2: DIFT-in-training that stops for review when the flags are stable (a DiftRunOutcome)."""
    from naviewer.workflows.dift_training import train_with_dift

    config = config or DemoConfig()
    return train_with_dift(ws, config.train_config(), config.dift_config(), run=run, accept_all=False,
                           gate=None, monitor=True, ctx=ctx)


def save_review_embeddings(ws, run: str = RUN, ctx: Optional[JobContext] = None, device: Optional[str] = None) -> Path:
    """Step 3: the detection-epoch encoder's features of every sample, for the analyst views."""
    features = embed_checkpoint(ws, ws.checkpoint_dir(run) / "last.pt", ctx, device)
    return ws.save_embeddings(run, REVIEW_TAG, features.astype(np.float32))


def detection_quality(ws, pass_id: int) -> dict[str, Any]:
    """Precision/recall of a pass's final flags against ``ground_truth.json`` (evaluation only)."""
    from naviewer.workflows.workspace_setup import ground_truth_mask

    flagged = np.asarray(ws.store.pass_scores(pass_id).get("flagged", []), dtype=bool)
    truth = ground_truth_mask(ws)
    out: dict[str, Any] = {"flagged": int(flagged.sum())}
    if truth is None or truth.size != flagged.size:
        return out
    hits = int((flagged & truth).sum())
    out.update(poisons=int(truth.sum()), true_flags=hits,
               precision=hits / max(int(flagged.sum()), 1) if flagged.any() else 0.0,
               recall=hits / max(int(truth.sum()), 1))
    return out


def run_demo(path: Union[str, Path], config: Optional[DemoConfig] = None, ctx: Optional[JobContext] = None,
             on_workspace: Optional[Callable[[Path, str], None]] = None, started: Optional[float] = None) -> DemoOutcome:
    """Steps 1-3: workspace, training until the flags are stable, embeddings; timings from ``started``.

    ``on_workspace(path, run_dir)`` is called once the workspace exists and training is about to
    start (the GUI follows the run from there). The outcome is also written to
    ``<ws>/runs/<run>/demo.json``.
    """
    config = config or DemoConfig()
    ctx = ensure_context(ctx)
    t0 = time.perf_counter() if started is None else started
    wall0 = time.time() - (time.perf_counter() - t0)
    ws = create_demo_workspace(path, config, ctx)
    try:
        timings = {"setup": time.perf_counter() - t0}
        if on_workspace is not None:
            on_workspace(ws.path, str(ws.run_dir(RUN)))
        outcome = train_until_flags(ws, config, ctx)
        result = DemoOutcome(ws.path, outcome.run, outcome.status, outcome.pass_id, config=asdict(config))
        if outcome.pass_id is not None:
            timings["first_flags"] = _pass_time(ws, outcome.pass_id, wall0)
            quality = detection_quality(ws, outcome.pass_id)
            result.flagged = quality["flagged"]
            result.poisons = quality.get("poisons", 0)
            result.precision, result.recall = quality.get("precision"), quality.get("recall")
            state = _state(ws, outcome.run)
            result.detection_epoch = state.get("epoch")
            if outcome.status == "awaiting_review":
                t1 = time.perf_counter()
                result.embeddings = save_review_embeddings(ws, outcome.run, ctx, config.device)
                timings["embeddings"] = time.perf_counter() - t1
        timings["total"] = time.perf_counter() - t0
        timings["train"] = float(outcome.timings.get("train_total", 0.0))
        timings["detection"] = float(outcome.timings.get("detection", 0.0))
        result.timings = timings
        from naviewer.io import atomic_write_json

        atomic_write_json(ws.run_dir(outcome.run) / SUMMARY_FILE, result.to_dict())
        return result
    finally:
        ws.close()


def _state(ws, run: str) -> dict:
    from naviewer.workspace.runs import read_state

    return read_state(ws, run) or {}


def _pass_time(ws, pass_id: int, wall0: float) -> float:
    """Seconds from the demo's start to the moment the pass was saved (the run's dift_review event)."""
    metrics = ws.path / "runs" / RUN / "metrics.jsonl"
    when = None
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            try:
                record = json_loads(line)
            except ValueError:
                continue
            if record.get("kind") == "event" and record.get("event") in ("dift_review", "dift_stop"):
                when = float(record.get("time", 0.0))
                if record.get("event") == "dift_review":
                    break
    return (when if when is not None else time.time()) - wall0


# -- after the review ------------------------------------------------------------------------------

def finetune_and_finish(ws, run: str = RUN, ctx: Optional[JobContext] = None,
                        config_overrides: Optional[dict] = None) -> dict[str, Any]:
    """Step 4: fine-tune on the CONFIRMED samples, remove them, finish training; before/after numbers.

    Returns ``{"before": {...}, "after": {...}, "confirmed": n, "finetune": record, "checkpoint": str,
    "embeddings": {"before": tag, "after": tag}}`` with the fine-tune gate's keys (confirmed_density,
    knn_acc, asr), also written to ``<ws>/runs/<run>/finetune_result.json``. The new encoder embeds
    every sample (tag ``final``: the GUI's map shows whether the confirmed samples' pile dissolved);
    ``confirmed_density`` before / after is the mean kNN density of the confirmed samples among all
    samples on the detection-epoch (``review``) and the final embeddings."""
    from naviewer.workflows.dift_training import resume_after_review
    from naviewer.workspace.runs import confirmed_ids

    ctx = ensure_context(ctx)
    confirmed = confirmed_ids(ws)
    if confirmed.size == 0:
        raise NaviewerError("no sample is confirmed as a poison: confirm some flags first", ws.path)
    metrics = ws.path / "runs" / run / "metrics.jsonl"
    before = last_metrics(metrics)
    try:
        review = ws.load_embeddings(run, REVIEW_TAG, mmap=False)
    except (NaviewerError, OSError):
        review = None
    if (review is None or len(review) != ws.store.sample_count()) and (ws.checkpoint_dir(run) / "last.pt").is_file():
        # a run that stopped for review without the demo's review embeddings (naviewer run, the GUI): the
        # detection-epoch encoder embeds the workspace now, so the removed samples' neighbourhood density
        # has a "before" and the map can set the kept set before and after side by side
        ctx.progress(0, None, "embedding the workspace with the detection-epoch encoder (before)")
        save_review_embeddings(ws, run, ctx, (config_overrides or {}).get("device"))
        review = ws.load_embeddings(run, REVIEW_TAG, mmap=False)
    if review is not None and len(review) == ws.store.sample_count():
        density = cluster_density(review, confirmed)
        if density is not None:
            before["confirmed_density"] = density
    from naviewer.io import atomic_write_json

    # what the table's "before" column needs, kept until the run ends: a retrain cancelled and resumed later (Run ▸
    # Resume interrupted run, run --resume) finishes without this call, and its table was lost (newcomer session 18)
    atomic_write_json(ws.run_dir(run) / FINETUNE_BEFORE, {"before": before, "confirmed": confirmed.tolist(),
                                                          "started": time.time()})
    resume_after_review(ws, run, accept_all=False, monitor=True, config_overrides=config_overrides, ctx=ctx)
    record = complete_finetune_result(ws, run, ctx, (config_overrides or {}).get("device"))
    if record is None:  # pragma: no cover - the run just finished and its "before" was just written
        raise NaviewerError("the retrain finished but its before/after record could not be written", ws.path)
    return record


def demo_config_from_args(values: Mapping[str, Any]) -> DemoConfig:
    """CLI/GUI helper: keep only the set values (None = the default)."""
    return DemoConfig.from_overrides({k: v for k, v in values.items() if v is not None})
