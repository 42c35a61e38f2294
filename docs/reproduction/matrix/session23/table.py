"""Print the session-23 matrix table from the records beside this script (run from the repository root)."""
import glob
import json
from pathlib import Path

from naviewer.workflows.matrix import Cell, matrix_markdown

HERE = Path(__file__).parent
ORDER = ("na-paper:simclr:0:2 na-paper:simclr:0:1 na-code:simclr:2:2 na-paper:simclr:1:1 na-paper:simclr:2:1 "
         "na-code:simclr:0:2 na-paper:simclr:1:2 corruptencoder:simsiam:0:2 na-code:simclr:1:2 na-paper:simclr:2:2 "
         "corruptencoder:simclr:0:2").split()
records = [json.loads(Path(f).read_text()) for f in sorted(glob.glob(str(HERE / "cells" / "*.json")))]
done = {r["key"] for r in records}
print(matrix_markdown(records, [c for c in map(Cell.parse, ORDER) if c.key in done]))
