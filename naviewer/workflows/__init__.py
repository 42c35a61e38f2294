"""Workflows: the end-to-end jobs that join data, attacks, SSL training, DIFT and the workspace.

Qt-free core functions (``ctx: JobContext | None``) that the CLI and the GUI both call:

- :mod:`.workspace_setup`: a workspace from a dataset, or from a clean dataset + an attack
  (anchors drawn before poisoning, crafted set written into the workspace, ground truth apart);
- :mod:`.dift_training`: SSL training with DIFT in the loop, the review gate, Eq. 7 fine-tuning
  on the confirmed flags and the restart on the cleaned data;
- :mod:`.posthoc`: one DIFT pass (and the B1 DBSCAN/OPTICS baselines) over a finished encoder;
- :mod:`.reproduce`: craft -> train -> B1 -> DIFT -> evaluate, with a Markdown/JSON results table.
"""
