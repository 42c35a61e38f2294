"""The DIFT passes stored in the matrix runs of sessions 18-20 (their workspaces under /work/exp, not in the
repository): what auc.py, rule.py and smooth.py read."""
import glob

from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

PATHS = sorted(glob.glob('/work/exp/s*/*/cells/*/workspace')) + sorted(glob.glob('/work/exp/s*/*/out/cells/*/workspace'))


def cell_name(path):
    """'demo6/na-paper-simclr-s0-t2': the run's folder and the cell."""
    return path.split('/cells/')[0].split('/')[-1] + '/' + path.split('/cells/')[1].split('/')[0]


def stored_passes(posthoc_only=False):
    """(cell name, open workspace, pass record, its score arrays, ground-truth mask) of every DIFT pass with the
    anchors' reach; with ``posthoc_only`` the post-hoc passes alone (the ones whose embeddings are saved)."""
    for path in PATHS:
        with Workspace.open(path, read_only=True) as ws:
            truth = ground_truth_mask(ws)
            for p in ws.store.passes():
                if p['method'] != 'dift' or 'anchor_reach' not in p['scores']:
                    continue
                if posthoc_only and p['epoch'] is not None:
                    continue
                yield cell_name(path), ws, p, ws.store.pass_scores(p['id']), truth
