"""The one rule of the architecture: nothing outside naviewer/gui/ imports Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "naviewer"
QT_MODULES = {"PySide6", "pyqtgraph", "shiboken6", "PyQt5", "PyQt6", "PySide2"}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_never_import_qt() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "gui":
            continue
        bad = _imported_roots(path) & QT_MODULES
        if bad:
            offenders.append(f"{relative}: {sorted(bad)}")
    assert not offenders, "core modules import Qt:\n" + "\n".join(offenders)


def test_importing_the_core_loads_no_qt() -> None:
    """Import every core package in a fresh interpreter and check no Qt module got loaded."""
    # Module names come from the file tree: pkgutil.walk_packages would import naviewer.gui itself.
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1 and parts[1] == "gui" or parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    code = (
        "import sys, importlib\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(QT_MODULES)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core import pulled in Qt: {out.stdout}"


# -- issue 16: the layers as import-linter contracts, and no import cycles ------------------------------

ROOT = PACKAGE.parent


def test_import_linter_contracts_are_kept() -> None:
    """The ``[tool.importlinter]`` contracts in pyproject.toml: no Qt in the core, naviewer.gui
    imported by nothing in the core, and the layers (cli > bench > gui > workflows > analysis >
    defense > ssl : evaluation > attacks | workspace > data)."""
    code = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, f"import-linter contracts broken:\n{out.stdout}\n{out.stderr}"
    assert "0 broken" in out.stdout and "Layers KEPT" in out.stdout, out.stdout


def _cycle_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The circles issue 16 removed; each must stay gone (imports inside functions count).
FIXED_CIRCLES = [
    {"naviewer.data.base", "naviewer.data.store"},
    {"naviewer.gui.tasks", "naviewer.gui.main_window"},
    {"naviewer.ssl.trainer", "naviewer.ssl.distributed"},
    {"naviewer.attacks", "naviewer.attacks.base"},
]


def test_fixed_import_cycles_stay_fixed() -> None:
    components = _cycle_tool().find_cycles(ROOT)
    back = [sorted(pair) for pair in FIXED_CIRCLES if any(pair <= set(c) for c in components)]
    assert not back, f"import cycles are back: {back}; run python tools/import_cycles.py"


def test_no_import_cycle_at_all() -> None:
    """No two naviewer modules import each other, directly or round a loop, counting imports inside
    functions and under TYPE_CHECKING (the last one, workspace.export <-> workspace.workspace, went
    with naviewer/workspace/source_root.py)."""
    components = _cycle_tool().find_cycles(ROOT)
    assert components == [], f"import cycles: {components}; run python tools/import_cycles.py"


def test_cycle_tool_sees_function_local_imports(tmp_path: Path) -> None:
    """The script counts an import inside a function (the kind the fixed circles were made of)."""
    package = tmp_path / "naviewer"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from naviewer import b\n")
    (package / "b.py").write_text("def f():\n    from naviewer.a import x\n")
    (package / "c.py").write_text("import naviewer.a\n")
    tool = _cycle_tool()
    assert tool.find_cycles(tmp_path) == [["naviewer.a", "naviewer.b"]]
    graph = tool.import_graph(tmp_path)
    assert graph["naviewer.a"] == {"naviewer.b": True} and graph["naviewer.b"] == {"naviewer.a": False}
