"""Output files a command writes (``--json``, ``--report``, ``--preview``): never over someone else's file.

A sweep of bad input found ``review --report WS/workspace.toml``, ``eval --json D/a/0.png``, ``craft --preview`` on a
dataset image and ``bench detect --json`` on a workspace file all exiting 0 with the file destroyed. The rule now, for
every such option: the value names a file (not empty, not a folder) in a folder that exists, and an existing file is
replaced only when naviewer wrote it as the same kind of output (a marker each writer puts in: ``written_by`` in a
JSON object, a ``generator`` meta in a report, a ``Software`` text chunk in a PNG). Anything else is refused, exit 2,
with the file named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from naviewer.errors import NaviewerError
from naviewer.io import json_loads

WRITTEN_BY = "written_by"
#: what an HTML report carries in its head (naviewer.analysis.report writes it)
REPORT_GENERATOR = '<meta name="generator" content="naviewer">'
PNG_SOFTWARE = "naviewer"
_JSON_READ_LIMIT = 256 * 1024 * 1024


def stamp(record: dict, command: str) -> dict:
    """``record`` with the marker that lets the same command replace it next time."""
    return {WRITTEN_BY: f"naviewer {command}", **record}


def _json_object(path: Path) -> Optional[dict]:
    try:
        if path.stat().st_size > _JSON_READ_LIMIT:
            return None
        data = json_loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def written_by(command: str) -> Callable[[Path], bool]:
    """Whether a JSON file is an earlier output of ``command`` ("eval", "bench"): another command's figures (hours
    of ``bench detect --scale`` rows) are not replaced by an ``eval --json`` of the same name."""
    def earlier(path: Path) -> bool:
        data = _json_object(path)
        return data is not None and str(data.get(WRITTEN_BY, "")).startswith(f"naviewer {command}".strip())
    return earlier


def has_rows(path: Path) -> bool:
    """A ``bench detect --scale`` file (a JSON object with a ``rows`` list), also one written before the marker:
    what ``--resume`` reads and extends."""
    data = _json_object(path)
    return data is not None and isinstance(data.get("rows"), list)


def is_naviewer_report(path: Path) -> bool:
    """A report with the generator meta, or one written before it (an HTML page naming naviewer in its head): an
    upgrade must not make ``review --report review.html`` refuse its own earlier report."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return REPORT_GENERATOR in head or (head.lstrip().lower().startswith("<!doctype html") and "naviewer" in head)


def is_naviewer_png(path: Path) -> bool:
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.format == "PNG" and str(image.info.get("Software", "")).startswith(PNG_SOFTWARE)
    except Exception:  # noqa: BLE001 - any file Pillow cannot read is not ours
        return False


def check_output_file(value: Optional[str], option: str, example: str, what: str,
                      earlier: Optional[Callable[[Path], bool]] = None) -> Optional[Path]:
    """The path ``option`` names, checked before any work: None when the option was not given; refused (exit 2)
    when it is empty, a folder, under a file, or an existing file that is not an earlier ``what`` (``earlier``
    tells). A folder that does not exist yet is left for the writer to make."""
    if value is None:
        return None
    if not str(value).strip():
        raise NaviewerError(f"{option} is empty: give a file name such as {example}")
    path = Path(value).expanduser()
    if path.is_dir():
        raise NaviewerError(f"{option} is a folder: give a file name such as {example}", path)
    if path.exists() or path.is_symlink():
        if earlier is None or not earlier(path):
            raise NaviewerError(f"{option} exists and is not an earlier {what}: choose another file name (naviewer "
                                "replaces only a file it wrote as that output, never another)", path)
    check_output_folder(path, option)
    return path


def check_output_folder(path: Path, option: str) -> None:
    """The folder ``path`` goes into can take a new file: a missing folder is made by the writer, a file on the way
    is refused, and the nearest existing folder is tried (``finetune --out /proc/x/o.pt`` failed only after the
    whole fine-tune; ``--out f/o.pt`` with a file ``f`` said "File exists")."""
    for folder in Path(path).expanduser().absolute().parents:
        if folder.exists():
            if not folder.is_dir():
                raise NaviewerError(f"the folder of {option} is a file, not a folder", folder)
            check_can_create_in(folder, option)
            break


def check_can_create_in(folder: Path, option: str, where: Optional[Path] = None) -> None:
    """A file can be made in ``folder``: tried, not guessed from permission bits (root passes ``os.access`` on
    /proc and on a read-only mount's folders alike), so ``--json /proc/x`` fails before the hour of work, not after.
    The NaviewerError names ``where`` (default the folder)."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".naviewer-probe-"):
            pass
    except OSError as exc:
        from naviewer.io import describe_os_error

        raise NaviewerError(f"{option} cannot be written in this folder: {describe_os_error(exc)}",
                            where if where is not None else folder) from None


def check_json_output(value: Optional[str], option: str = "--json", command: str = "",
                      also: Optional[Callable[[Path], bool]] = None) -> Optional[Path]:
    """``--json FILE`` of ``command``: new, or that command's earlier output (or what ``also`` accepts)."""
    same = written_by(command)
    return check_output_file(value, option, "figures.json", f"naviewer {command} JSON".replace("  ", " "),
                             (lambda p: same(p) or also(p)) if also is not None else same)
