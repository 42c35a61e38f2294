"""The check after the retrain: accept-all's second round (``check_after_retrain``, on in the demo's recipe).

Why: one remove-and-retrain can leave poisons that the encoder DIFT flagged with hid among clean samples. On the
demo's miss (seed 1, two threads) the first removal took out only poisons but left 4 that sat far from every other
sample, and its retrain read +10.2 ± 2.3 points above the no-poison floor over six draws. On the *retrained*
encoder those poisons no longer hide in a dense cluster of their kind, and PatchSearch (which looks for the trigger
in each image, not at density) found 3 of the 4 and no clean sample; with them out too the six draws read
+5.8 ± 3.5, and the five runs that held stayed within 10 points (docs/results.md, "A check after the retrain";
session 34). The window's review loop does the same by hand: Detect with patchsearch on the retrained encoder,
confirm, Retrain again.

What it does, after a remove-and-retrain of ``run`` (its ``checkpoints/<run>/last.pt``): PatchSearch over every
image on that encoder, saved as a pass of ``run`` with the embeddings it ranked (the Analyst panel opens it); its
flags that nobody decided on yet are confirmed (accept-all's reviewer, a note naming the pass; a rejection stands);
with any confirmed, the run's recipe is trained again from scratch without every confirmed sample
(:func:`naviewer.workflows.retrain_again.retrain_on_decisions`, a new run ``<run>-again-<k>``). Nothing flagged
among the kept samples: no second training. It costs one embedding pass and one PatchSearch, and, when it adds
flags, one more training of the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context
from naviewer.workspace.store import FOLLOW_UP_KEY

#: the detector the check runs: it reads the trigger in each image, so it sees poisons the density ranking lost
CHECK_DETECTOR = "patchsearch"
#: where the check's pass records what it checked: a follow-up pass, so a review still opens the pass it follows
RECORD_KEY = FOLLOW_UP_KEY


@dataclass
class CheckAfterRetrain:
    """What the check did on one run's retrained encoder."""

    run: str
    checkpoint: Path
    pass_id: int                 # the PatchSearch pass on the retrained encoder
    flagged: int                 # its flags, those removed already included
    added: np.ndarray            # its flags among the kept samples that it confirmed (workspace ids)
    again: Optional[dict] = None  # retrain_on_decisions' record (None: nothing added, no second training)
    truth_added: Optional[int] = None  # of ``added``, poisons by the ground truth (evaluation workspaces only)
    confirmed: bool = True       # False: the window's check, which proposes ``added`` and decides nothing

    def to_dict(self) -> dict:
        """What the window's job hands back (JSON-friendly)."""
        return {"run": self.run, "checkpoint": str(self.checkpoint), "pass_id": self.pass_id, "flagged": self.flagged,
                "added": self.added.tolist(), "truth_added": self.truth_added, "confirmed": self.confirmed,
                "words": self.words()}

    def words(self) -> str:
        """One line for the terminal and the log."""
        head = (f"check after the retrain ({CHECK_DETECTOR} pass {self.pass_id} on the retrained encoder, "
                f"{self.flagged:,} flagged): ")
        if not self.added.size:
            return head + ("every flag was removed already; no second retrain" if self.confirmed else
                           "every flag is removed already or kept by a decision: nothing more to take out")
        from naviewer.workflows.trigger_check import id_ranges

        truth = "" if self.truth_added is None else f" ({self.truth_added} poisons by the ground truth)"
        if not self.confirmed:
            return (head + f"{self.added.size:,} of them still in the training set, undecided{truth}: "
                    f"{id_ranges(self.added)}")
        again = f"; retrained again as run {self.again['again']}" if self.again else ""
        return (head + f"confirmed {self.added.size:,} more among the kept samples{truth}: {id_ranges(self.added)}"
                + again)


def retrained_checkpoint(ws: Any, run: str) -> Path:
    """The encoder ``run``'s finished remove-and-retrain wrote; a NaviewerError when the run has none."""
    from naviewer.workflows.retrain_again import finished_retrain

    if finished_retrain(ws, run) is None:
        raise NaviewerError(f"run {run!r} has no remove-and-retrain to check after (the check after the retrain "
                            "follows a retrain: DIFT setting restart_mode=retrain)", ws.path / "runs" / run)
    path = ws.checkpoint_dir(run) / "last.pt"
    if not path.is_file():
        raise NaviewerError(f"run {run!r} retrained, but its encoder is gone", path)
    return path


def checked_encoder(ws: Any, run: str) -> Path:
    """The encoder a check looks at: the newest finished retrain again of ``run`` (the window's Retrain again, or an
    earlier check's), else the run's own remove-and-retrain (:func:`retrained_checkpoint`)."""
    from naviewer.workflows.retrain_again import latest_again_result

    retrained = retrained_checkpoint(ws, run)  # the run must have retrained, again or not
    again = latest_again_result(ws, run)
    if again is not None and (ws.checkpoint_dir(again["again"]) / "last.pt").is_file():
        return ws.checkpoint_dir(again["again"]) / "last.pt"
    return retrained


def check_after_retrain(ws: Any, run: str, *, ctx: Optional[JobContext] = None, device: Any = None,
                        retrain: bool = True, confirm: bool = True) -> CheckAfterRetrain:
    """PatchSearch on ``run``'s retrained encoder (:func:`checked_encoder`), its flags among the kept samples
    confirmed (``confirm``; the window's check leaves them to the analyst: ``added`` are then the undecided ones it
    proposes), and (``retrain``, with ``confirm``) the recipe trained again without them. See the module's
    docstring."""
    from naviewer.analysis.embeddings import embeddings_record
    from naviewer.data.store import ImageStore, streaming_store
    from naviewer.ssl.checkpoints import load_encoder
    from naviewer.ssl.device import resolve_device
    from naviewer.workflows.detector_passes import run_detectors
    from naviewer.workflows.posthoc import _tag_for, embed_workspace, encoder_record
    from naviewer.workflows.workspace_setup import evaluation_truth
    from naviewer.workspace.runs import confirm_flags, undecided_flags

    ctx = ensure_context(ctx)
    ws.store.check_writable()
    # the retrain records its device in the run's config (JSON): a name there; a torch.device for the embedding
    device_name = None if device is None else str(device)
    device = resolve_device(device) if device is not None else None
    checkpoint = checked_encoder(ws, run)
    encoder = load_encoder(checkpoint)
    size = encoder.image_size
    tag = _tag_for(checkpoint)
    ctx.event("log", message=f"check after the retrain: {CHECK_DETECTOR} on run {run}'s retrained encoder")
    store = streaming_store(ws.checked_dataset())
    features = embed_workspace(ws, encoder.backbone, run=run, tag=tag, image_size=size, device=device, store=store,
                               ctx=ctx)

    def images():  # decoded whole only now: PatchSearch revisits every image
        return store if isinstance(store, ImageStore) else store.materialize(ctx, "loading the images for PatchSearch")

    truth = evaluation_truth(ws, ctx)  # the pass's metrics only; the check never reads it
    passes, metrics = run_detectors(
        ws, features, [CHECK_DETECTOR], run=run, truth=truth, ctx=ctx, encoder=encoder.backbone, images=images,
        image_size=size, device=device, encoder_record=encoder_record(encoder, checkpoint, size, inferred=True),
        record_extra={"embeddings": embeddings_record(ws, run, tag),
                      # a retrain's restart (checked_encoder found one), so the pass's Fine-tune tab acts as the
                      # run's (Retrain again)
                      RECORD_KEY: {"of": f"run {run}'s retrained encoder", "checkpoint": str(checkpoint),
                                   "restart_mode": "retrain"}})
    pass_id = int(passes[CHECK_DETECTOR])
    # confirmed as accept-all confirms; the window's check proposes the same ones, deciding nothing
    added = confirm_flags(ws, pass_id) if confirm else undecided_flags(ws, pass_id)
    outcome = CheckAfterRetrain(run, checkpoint, pass_id, int(metrics[CHECK_DETECTOR]["flagged"]),
                                np.asarray(added, np.int64),
                                truth_added=None if truth is None else int(np.count_nonzero(np.asarray(truth, bool)[added])),
                                confirmed=confirm)
    ctx.event("log", message=outcome.words())
    if added.size and retrain and confirm:
        from naviewer.workflows.retrain_again import retrain_on_decisions

        outcome.again = retrain_on_decisions(ws, run, ctx, device_name)
    return outcome
