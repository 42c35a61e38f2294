"""Print the whole matrix on today's recipe: session 23's eleven backdoor cells and session 27's other sixteen, in the
plan's order (run from the repository root; the records are the cells/ folders beside the two scripts)."""
import glob
import json
from pathlib import Path

from naviewer.workflows.matrix import default_plan, matrix_markdown

HERE = Path(__file__).parent
records = {}
for folder in (HERE.parent / "session23" / "cells", HERE / "cells"):
    for f in sorted(glob.glob(str(folder / "*.json"))):
        record = json.loads(Path(f).read_text())
        records[record["key"]] = record  # session 27's own, where a cell was run in both
done = set(records)
print(matrix_markdown(list(records.values()), [c for c in default_plan() if c.key in done]))
