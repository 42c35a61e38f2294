"""The benchmarks' machine-readable side: what tools/gpu_check.py and docs/performance.md read."""

from __future__ import annotations

import json
import math

import pytest

from naviewer.cli import main

pytestmark = pytest.mark.slow


def test_bench_detect_scale_reports_each_size_and_the_growth_exponent(tmp_path):
    out = tmp_path / "scale.json"
    assert main(["bench", "detect", "--scale", "2000,4000", "--backends", "hnsw,exact", "--dim", "16",
                 "--threads", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    rows = figures["rows"]
    assert [(r["backend"], r["n"]) for r in rows] == [("hnsw", 2000), ("hnsw", 4000), ("exact", 2000), ("exact", 4000)]
    for row in rows:
        # measured and reported (the figures themselves are the bench's output, not checked here)
        assert all(math.isfinite(row[key]) and row[key] >= 0 for key in ("wall_s", "peak_rss_mb"))
        assert 0.0 <= row["metrics"]["final_recall"] <= 1.0  # the planted cluster's figures, every size
    assert rows[0]["knn_recall"] is not None and rows[2]["knn_recall"] is None  # exact needs no recall check
    assert set(figures["exponents"]) == {"hnsw", "exact"}


def test_bench_detect_scale_refuses_bad_sizes(capsys):
    assert main(["bench", "detect", "--scale", "10,x"]) == 2
    assert main(["bench", "detect", "--scale", "5000", "--backends", "annoy"]) == 2


def test_bench_embed_writes_its_figures(tmp_path):
    out = tmp_path / "embed.json"
    assert main(["bench", "embed", "--dataset", "demo", "--arch", "resnet10", "--width", "4", "--image-size", "16",
                 "--batch-size", "16", "--images", "32", "--steps", "1", "--threads", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["bench"] == "embed" and figures["naviewer_ips"] > 0 and figures["ceiling_ips"] > 0


def test_bench_detect_scale_from_a_memory_map_resumes_with_the_rows_it_has(tmp_path, capsys):
    out, data = tmp_path / "scale.json", tmp_path / "data"
    common = ["bench", "detect", "--backends", "ivfsq", "--dim", "16", "--k", "10", "--threads", "1",
              "--mmap-dir", str(data), "--dtype", "float16", "--memory-mb", "1", "--json", str(out), "--resume"]
    assert main(common[:2] + ["--scale", "2000"] + common[2:]) == 0
    first = json.loads(out.read_text())["rows"]
    assert [(r["backend"], r["n"], r["mapped"], r["dtype"]) for r in first] == [("ivfsq", 2000, True, "float16")]
    assert main(common[:2] + ["--scale", "2000,3000"] + common[2:]) == 0
    figures = json.loads(out.read_text())
    assert [r["n"] for r in figures["rows"]] == [2000, 3000] and figures["rows"][0] == first[0]  # kept, not rerun
    assert "kept from the earlier run" in capsys.readouterr().out
    assert set(figures["exponents"]) == {"ivfsq"}
    assert len(list(data.iterdir())) == 2  # one cached data set per size


def test_endless_loads_every_batch_afresh_past_the_first_epoch():
    """itertools.cycle replayed a DataLoader's first pass from memory: a GPU run timed a 'PIL baseline' at the
    model's ceiling and its augmentation at 67M images/s. Every batch past the first epoch must be loaded again."""
    import itertools

    import torch

    from naviewer.bench._ssl_common import endless

    class Counting(torch.utils.data.Dataset):
        loads = 0

        def __len__(self) -> int:
            return 4

        def __getitem__(self, index: int) -> torch.Tensor:
            Counting.loads += 1
            return torch.tensor(index)

    loader = torch.utils.data.DataLoader(Counting(), batch_size=2)
    batches = list(itertools.islice(endless(loader), 6))  # three epochs
    assert Counting.loads == 12
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3]] * 3


def test_bench_detect_refuses_a_mmap_dir_that_is_a_file(tmp_path, capsys):
    """--mmap-dir naming a file failed inside the scale's child process with a traceback (a bad-input probe,
    session 30): refused before anything runs, naming it."""
    user = tmp_path / "userfile.txt"
    user.write_text("mine\n")
    assert main(["bench", "detect", "--scale", "1000", "--backends", "hnsw", "--mmap-dir", str(user),
                 "--skip-baseline"]) == 2
    err = capsys.readouterr().err
    assert f"{user}: --mmap-dir is a file, not a folder" in err and "Traceback" not in err
    assert user.read_text() == "mine\n"
