"""tools/gpu_check.py stays runnable: its --quick size on the CPU, every section, the table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
TOOL = Path(__file__).resolve().parents[1] / "tools" / "gpu_check.py"


def _tool():
    spec = importlib.util.spec_from_file_location("gpu_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_quick_check_runs_every_section_and_writes_the_table(tmp_path):
    tool = _tool()
    assert tool.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(report["sections"]) == {"train", "embed", "detect", "dift"}
    for name, record in report["sections"].items():
        assert record["ok"], (name, record.get("log_tail"))
        assert "figures" in record, name
    table = (tmp_path / "gpu_check.md").read_text()
    for needle in ("| train |", "| embed |", "| detect |", "| dift |", "ceiling"):
        assert needle in table


def test_a_failing_section_is_recorded_not_fatal(tmp_path, monkeypatch):
    tool = _tool()
    monkeypatch.setattr(tool, "sections", lambda out, quick: {"detect": ["bench", "detect", "--scale", "x"]})
    assert tool.main(["--quick", "--out", str(tmp_path)]) == 1
    record = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]["detect"]
    assert record["ok"] is False and record["exit_code"] == 2 and "--scale" in record["log_tail"]
    assert "failed" in (tmp_path / "gpu_check.md").read_text()
    assert tool.main(["--out", str(tmp_path), "--only", "nope"]) == 2


def test_a_spent_budget_skips_the_sections_left_and_says_so(tmp_path, monkeypatch):
    """A device lease is short: once the budget is spent, the rest are skipped (not started to be killed)."""
    tool = _tool()
    monkeypatch.setattr(tool, "sections", lambda out, quick: {"detect": ["bench", "detect", "--scale", "x"],
                                                              "dift": ["reproduce", "--help"]})
    assert tool.main(["--quick", "--out", str(tmp_path), "--budget", "10"]) == 1
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert sections["detect"]["skipped"] == sections["dift"]["skipped"] == "budget spent"
    assert "| dift | skipped (budget spent) |" in (tmp_path / "gpu_check.md").read_text()
