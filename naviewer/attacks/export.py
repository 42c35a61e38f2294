"""Write a crafted (poisoned) dataset to disk in the research-code layout.

::

    OUT/images/<class name>/<index>.png   every sample, poisons included (index = position in the crafted
                                          set): a file's name never tells a reviewer what it is
    OUT/train.txt                         ``path label`` list, paths relative to OUT, crafted order
    OUT/classes.txt                       one class name per line (read by the file-list source)
    OUT/ground_truth.json                 the ground truth, each sample with its ``path``

``naviewer.data.open_dataset("OUT/train.txt")`` reads it back in the same order with the same
pixels (PNG is lossless). The ground truth sits next to the images for evaluation; a workspace
keeps its own copy apart from detection.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from naviewer.attacks.base import CraftResult
from naviewer.errors import NaviewerError
from naviewer.io import atomic_write_text, json_loads
from naviewer.jobs import JobContext, ensure_context

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A folder name for a class name: letters, digits, ``._-``; never empty, never ``.``/``..``."""
    cleaned = _UNSAFE.sub("_", name.strip()).strip("._") or "class"
    return cleaned


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    list_path: Path
    ground_truth_path: Path
    images: int
    poisons: int


def write_json_atomic(path: Path, data: dict) -> None:
    """``data`` as JSON at ``path``, whole or not at all (no temporary left on a failed write)."""
    from naviewer.io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def export_crafted(
    result: CraftResult,
    out_dir: "str | os.PathLike[str]",
    ctx: Optional[JobContext] = None,
    overwrite: bool = False,
    compress_level: int = 1,
) -> ExportSummary:
    """Write ``result`` as PNG files + ``train.txt`` + ``classes.txt`` + ``ground_truth.json``."""
    from PIL import Image

    from naviewer.data.filelist import write_file_list

    ctx = ensure_context(ctx)
    out = Path(out_dir)
    _sweep_dead_staging(out)  # first: a set left hidden by a kill between the swap's renames comes back
    if out.exists() and not out.is_dir():
        raise NaviewerError("output exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise NaviewerError("output folder is not empty (choose a new folder)", out)
        if not (out / "ground_truth.json").is_file():  # --overwrite replaced a user's own train.txt (a sweep)
            raise NaviewerError("output folder holds other files and no crafted set (no ground_truth.json): "
                                "--overwrite replaces only an earlier craft output; choose a new folder", out)
    final = out
    # --overwrite writes the new set beside the old and swaps it in at the end: written in place, a stop left the new
    # images under the old ground_truth.json, which then named the wrong samples as poisons (a probe, session 28)
    replacing = out.is_dir() and any(out.iterdir())
    if replacing:
        out = out.parent / f".{out.name}.crafting-{os.getpid()}"
        shutil.rmtree(out, ignore_errors=True)
    dataset = result.dataset
    gt = result.ground_truth
    samples = gt["samples"]
    if len(samples) != len(dataset):
        raise ValueError(f"ground truth has {len(samples)} samples but the dataset {len(dataset)}")
    names = list(dataset.class_names)
    folders = []
    used: dict[str, int] = {}
    for name in names:  # distinct folder per class, even when two names sanitise alike
        folder = safe_name(name)
        if folder == "poison" or folder in used:
            folder = f"{folder}_{len(used)}"
        used[folder] = 1
        folders.append(folder)
    labels = np.asarray(dataset.labels)
    total = len(dataset)
    with _removed_on_failure(out):
        keys: list[str] = []
        message = "writing crafted images"
        try:
            (out / "images").mkdir(parents=True, exist_ok=True)
            for folder in set(folders):
                (out / "images" / folder).mkdir(exist_ok=True)
            written_gt = dict(gt)
            written_samples = []
            poison_k = 0
            ctx.progress(0, total, message)
            for i in range(total):
                if i % 256 == 0:
                    ctx.check()
                record = dict(samples[i])
                # poisons are named like clean samples of their (target) label: the inspector's source key must
                # not give the ground truth away (it lives in ground_truth.json, apart from detection)
                label = int(labels[i])
                folder = folders[label] if 0 <= label < len(folders) else "unlabeled"
                if folder == "unlabeled":
                    (out / "images" / folder).mkdir(exist_ok=True)
                rel = f"images/{folder}/{i:06d}.png"
                poison_k += record["kind"] == "poison"
                image = np.asarray(dataset.image(i), dtype=np.uint8)
                _check_readable_size(image, record, final)
                Image.fromarray(image).save(out / rel, compress_level=compress_level)
                record["path"] = rel
                written_samples.append(record)
                keys.append(rel)
                if (i + 1) % 256 == 0 or i + 1 == total:
                    ctx.progress(i + 1, total, message)
            list_path = write_file_list(out / "train.txt", keys, labels)
            from naviewer.data.names import name_problem

            for name in names:  # one class a line: a name with a line break would forge another class
                problem = name_problem(str(name))
                if problem:
                    raise NaviewerError(f"classes.txt cannot hold this class: {problem}", out)
            atomic_write_text(out / "classes.txt", "".join(f"{n}\n" for n in names))
            written_gt["samples"] = written_samples
            gt_path = out / "ground_truth.json"
            write_json_atomic(gt_path, written_gt)
            if replacing:  # the old set goes whole, the new one comes whole
                ctx.check()
                old_set = final.parent / f".{final.name}.replaced-{os.getpid()}"
                os.rename(final, old_set)
                try:
                    os.rename(out, final)
                except BaseException:  # the old set back under its name (a review, session 28)
                    os.rename(old_set, final)
                    raise
                shutil.rmtree(old_set, ignore_errors=True)
                list_path, gt_path = final / list_path.name, final / gt_path.name
        except OSError as exc:
            where = getattr(exc, "filename", None)
            if replacing or not where:  # the staging folder is gone when the message is read: name the output
                where = final
            raise NaviewerError(f"cannot write the crafted dataset: {exc.strerror or exc}", where) from None
        except NaviewerError as exc:
            if replacing and exc.path and Path(exc.path).is_relative_to(out):
                raise NaviewerError(exc.message, final / Path(exc.path).relative_to(out)) from None
            raise
        return ExportSummary(final, list_path, gt_path, total, poison_k)


def _check_readable_size(image: np.ndarray, record: dict, out: Path) -> None:
    """Refuse a crafted image naviewer itself would not read back (``new`` and ``train`` refuse images over
    :data:`~naviewer.data.imageio.DEFAULT_MAX_PIXELS`): a 1 x 10,000 px reference made a 20,000 x 10,000 px Noisy
    Alignment poison, exit 0, that the next step refused (a bad-input probe, session 30). Named by its sources."""
    from naviewer.data.imageio import DEFAULT_MAX_PIXELS

    height, width = int(image.shape[0]), int(image.shape[1])
    if height * width <= DEFAULT_MAX_PIXELS:
        return
    sources = record.get("sources") if isinstance(record.get("sources"), dict) else {}
    named = [f"{role} {value.get('key', value.get('id'))}" for role, value in sources.items() if isinstance(value, dict)]
    made = f" from {', '.join(named)}" if named else (f" from {record['source_key']}" if record.get("source_key") else "")
    raise NaviewerError(f"a crafted image would be {width:,} x {height:,} px{made}, over the {DEFAULT_MAX_PIXELS:,}-pixel "
                        "limit naviewer reads images at (new and train would refuse it): an image of extreme shape or "
                        "size in the clean set; leave it out, or shrink it; nothing was written", out)


def _sweep_dead_staging(out: Path) -> None:
    """The staging folders of earlier ``--overwrite`` crafts into ``out`` whose process is gone (a SIGKILL)."""
    from naviewer.io import _pid_alive

    for folder in out.parent.glob(f".{glob.escape(out.name)}.crafting-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    for folder in out.parent.glob(f".{glob.escape(out.name)}.replaced-*"):  # killed between its two renames
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            if not out.exists():
                os.rename(folder, out)  # the earlier set, back under its name
            else:
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _removed_on_failure(out: Path) -> Iterator[None]:
    """A crafted set that fails half-way (a broken image) is taken away when ``out`` was new or empty: its
    PNGs blocked the retry ("output folder is not empty"). An overwritten folder is left as it is."""
    existed = out.is_dir()
    fresh = not existed or not any(out.iterdir())
    try:
        yield
    except BaseException:
        if fresh:
            if existed:
                for child in list(out.iterdir()):
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            else:
                shutil.rmtree(out, ignore_errors=True)
        raise


def read_ground_truth(path: "str | os.PathLike[str]") -> dict:
    """Read a ``ground_truth.json`` written by :func:`export_crafted`; NaviewerError if unreadable."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json_loads(handle.read())
    except FileNotFoundError:
        raise NaviewerError("ground truth file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NaviewerError(f"cannot read ground truth: {exc}", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
        raise NaviewerError("not a naviewer ground truth file (no 'samples' list)", path)
    return data
