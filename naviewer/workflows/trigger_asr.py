"""The attack success rate of a trigger image of the analyst's own, on one encoder of a workspace.

Why: the monitor and the no-poison floor measure a backdoor only with the trigger of an attack naviewer crafted.
With their own data, a newcomer who had found a colour patch in the tiles could not tell a backdoor that formed from
one that did not, short of the command line (session 32). This is ``naviewer eval --attack patch --attack-setting
trigger=IMAGE`` for a workspace: the kNN bank is the workspace's own labelled images, the queries a labelled test
folder with the same classes, each non-target test image with the trigger pasted (SSL-Backdoor's test protocol).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

#: the largest trigger side offered by default (a trigger image is often drawn large and pasted small)
DEFAULT_MAX_SIDE = 8


def trigger_side(trigger: "str | Path") -> int:
    """The trigger image's larger side from its header, with the dataset's checks (a decompression bomb, a damaged or
    foreign file: a NaviewerError naming the file; Pillow's own open raised DecompressionBombError, a probe)."""
    from naviewer.data.imageio import read_image_size

    return int(max(read_image_size(trigger)))


def default_trigger_size(side: Optional[int], image_size: Optional[int] = None) -> int:
    """The trigger's ``side`` (None: unknown), at most :data:`DEFAULT_MAX_SIDE` and a quarter of the images' size."""
    cap = DEFAULT_MAX_SIDE if not image_size else max(2, min(DEFAULT_MAX_SIDE, int(image_size) // 4))
    return int(max(1, min(int(side or DEFAULT_MAX_SIDE), cap)))


def measure_trigger_asr(workspace: "str | Path", checkpoint: "str | Path", trigger: "str | Path",
                        test_dataset: "str | Path", target: int, trigger_size: int,
                        device: Any = "auto", k: int = 200, ctx: Optional[JobContext] = None) -> dict[str, Any]:
    """kNN accuracy on ``test_dataset`` and the ASR of ``trigger`` (``trigger_size`` px, pasted on every non-target
    test image) towards class ``target``, with the encoder of ``checkpoint``. Raises :class:`NaviewerError` naming
    the file at fault."""
    from naviewer.attacks import make_attack
    from naviewer.data import open_dataset
    from naviewer.data.names import check_class_numbering
    from naviewer.data.store import ImageStore
    from naviewer.evaluation.encoder import evaluate_encoder
    from naviewer.ssl.checkpoints import load_encoder
    from naviewer.ssl.device import resolve_device
    from naviewer.workspace import Workspace

    ctx = ensure_context(ctx)
    attack = make_attack("patch", trigger=str(trigger), trigger_size=int(trigger_size), target=int(target))
    encoder = load_encoder(checkpoint)
    with Workspace.open(workspace, read_only=True) as ws:
        bank = ImageStore.from_dataset(ws.checked_dataset(), ctx, "loading the workspace's images (the kNN bank)")
    test = ImageStore.from_dataset(open_dataset(str(test_dataset), split="test"), ctx, "loading the test images")
    check_class_numbering(test.class_names, bank.class_names, "test set", "workspace's classes", test_dataset,
                          more_allowed=False)  # a test image of a class the workspace lacks has no right answer
    if (test.labels < 0).all():
        raise NaviewerError("the test set has no class labels (one folder a class): the ASR needs them", test_dataset)
    if not 0 <= int(target) < len(bank.class_names):
        raise NaviewerError(f"target class {target} does not exist: the workspace has {len(bank.class_names)} classes")
    if not (test.labels[test.labels >= 0] != int(target)).any():
        raise NaviewerError("every test image is of the target class: the ASR counts the others sent to it",
                            test_dataset)
    result = evaluate_encoder(encoder.backbone, bank, test, attack.apply_test_trigger, attack.target_class,
                              image_size=encoder.image_size, device=resolve_device(device), k=min(int(k), len(bank)),
                              linear=False, ctx=ctx)
    return {"knn_acc": result.get("knn_acc"), "asr": result.get("knn_asr_nt"), "checkpoint": str(checkpoint),
            "trigger": str(trigger), "trigger_size": int(trigger_size), "target": int(target),
            "target_name": bank.class_names[int(target)], "test_images": len(test)}


def asr_words(result: dict[str, Any]) -> str:
    """The result in a few sentences, against the bar the project reads a backdoor by."""
    asr, acc = result.get("asr"), result.get("knn_acc")
    checkpoint = Path(str(result.get("checkpoint") or ""))
    which = f" (encoder {checkpoint.parent.name}/{checkpoint.name})" if checkpoint.name else ""
    head = (f"ASR {100 * float(asr):.1f} %{which}: {100 * float(asr):.1f} % of the non-target test images with the trigger "
            f"pasted ({result.get('trigger_size')} px) are classified as \"{result.get('target_name')}\"; kNN accuracy "
            f"{100 * float(acc):.1f} % on the clean test images ({result.get('test_images'):,}).")
    # the bar has two halves: 50 % or more, and twice what a training without the suspect images reads for the same
    # trigger (a large trigger can send images to the target on any encoder); only the first is measured here
    reading = ("At or above the 50 % half of the project's bar for a backdoor; the other half is twice what an "
               "encoder trained without the suspect images reads for this trigger: measure one (Train ▸ Leave out), "
               "then this again on it." if float(asr) >= 0.5 else
               "Below the project's bar for a backdoor (50 %): compare it with an encoder trained without the suspect "
               "images (Train ▸ Leave out), which gives what a clean training reads for this trigger.")
    return head + " " + reading
