"""The user documentation stays true to the code.

- ``docs/cli.md`` is generated from the parsers (``python -m naviewer.cli._docgen``); it must match.
- Every ``naviewer ...`` command line in the docs' shell blocks must parse with the real parser, so
  a page cannot show an option that does not exist (or miss a required one).
- Relative links between the pages point at files that exist.
- The desktop entry and the AppStream metadata validate when the tools are installed
  (``desktop-file-validate`` from desktop-file-utils, ``appstreamcli`` from appstream). CI images
  usually lack them: those two tests skip there.
"""

from __future__ import annotations

import difflib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from naviewer.cli import build_parser
from naviewer.cli._docgen import REGENERATE, render

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESOURCES = ROOT / "resources"
#: pages whose shell blocks are checked against the parser (others' pages are theirs to keep)
CHECKED_PAGES = (
    "index.md", "getting-started.md", "workflow-craft.md", "workflow-inspect.md", "workflow-dift-training.md",
    "workflow-review-export.md", "workspace-format.md", "packaging.md",
)


def test_cli_reference_is_up_to_date():
    page = DOCS / "cli.md"
    expected = render()
    current = page.read_text(encoding="utf-8") if page.is_file() else ""
    if current != expected:
        diff = "".join(difflib.unified_diff(current.splitlines(True), expected.splitlines(True),
                                            "docs/cli.md (committed)", "docs/cli.md (from the parser)", n=1))
        lines = diff.splitlines()
        shown = "\n".join(lines[:40]) + (f"\n... ({len(lines) - 40} more diff lines)" if len(lines) > 40 else "")
        pytest.fail(f"docs/cli.md is out of date with the command-line parser.\n"
                    f"Regenerate it from the repository root with:\n\n    {REGENERATE}\n\n{shown}")


def test_cli_reference_covers_every_command_and_benchmark():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        if name == "init":  # alias of new
            continue
        assert f"## naviewer {name}" in text
    bench = sub.choices["bench"]
    benches = next(a for a in bench._actions if a.__class__.__name__ == "_SubParsersAction")
    assert benches.choices, "naviewer bench has no benchmarks"
    for name in benches.choices:
        assert f"### naviewer bench {name}" in text


def _shell_commands(page: Path) -> list[tuple[int, str]]:
    """``naviewer ...`` lines (continuations joined, comments and prompts removed) of bash/sh/console blocks."""
    out: list[tuple[int, str]] = []
    in_block = False
    pending = ""
    start = 0
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = line.strip().startswith("```")
        if fence:
            in_block = (not in_block) and line.strip()[3:].strip() in ("bash", "sh", "console", "shell")
            pending = ""
            continue
        if not in_block:
            continue
        text = line.strip()
        if text.startswith("$ "):
            text = text[2:]
        if not pending:
            start = number
        pending += text
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        command, pending = pending, ""
        command = re.split(r"\s+#", " " + command, maxsplit=1)[0].strip()
        for part in re.split(r"\s*(?:&&|\|\||;)\s*", command):
            if part.startswith("naviewer ") or part == "naviewer":
                out.append((start, part))
    return out


def _page_commands() -> list[tuple[str, int, str]]:
    found = []
    for name in CHECKED_PAGES:
        page = DOCS / name
        if page.is_file():
            found.extend((name, number, command) for number, command in _shell_commands(page))
    return found


def test_documented_commands_parse():
    commands = _page_commands()
    assert len(commands) >= 20, "the workflow pages should show their commands in ```bash blocks"
    parser = build_parser()
    bad = []
    for page, number, command in commands:
        argv = shlex.split(command)[1:]
        if "|" in argv:
            argv = argv[: argv.index("|")]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                bad.append(f"docs/{page}:{number}: {command}")
    assert not bad, "documented commands that the parser rejects:\n" + "\n".join(bad)


def test_relative_links_resolve():
    broken = []
    for page in sorted(DOCS.glob("*.md")):
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"docs/{page.name}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_index_links_every_page_and_readme_links_the_docs():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for name in CHECKED_PAGES[1:] + ("cli.md", "performance.md", "results.md"):
        assert f"({name}" in index, f"docs/index.md does not link {name}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/index.md" in readme


def _validate(tool: str, args: list[str], files: list[Path]) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (CI images usually lack it)")
    assert files, f"no files to validate in {RESOURCES}"
    proc = subprocess.run([tool, *args, *map(str, files)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{tool} failed:\n{proc.stdout}\n{proc.stderr}"


def test_desktop_entry_validates():
    _validate("desktop-file-validate", [], sorted(RESOURCES.glob("*.desktop")))


def test_appstream_metadata_validates():
    _validate("appstreamcli", ["validate", "--no-net"], sorted(RESOURCES.glob("*.xml")))


def test_docgen_renders_a_toy_parser():
    """Aliases, required options, choices hidden behind a metavar, exclusive groups, escaping."""
    import argparse

    parser = argparse.ArgumentParser(prog="naviewer", description="top")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    tool = sub.add_parser("tool", aliases=["t"], help="a | tool", description="Does <things>.\n\n- **a**: one;\n- b.\nAfter.")
    tool.add_argument("path", metavar="PATH", help="input")
    tool.add_argument("--mode", required=True, choices=["x", "y"], metavar="M", help="mode (default %(default)s)")
    group = tool.add_mutually_exclusive_group()
    group.add_argument("--on", action="store_true", help="on")
    group.add_argument("--off", action="store_true", help="off")
    text = render(parser)
    assert "| [`naviewer tool`](#naviewer-tool) (alias: `t`) | a \\| tool |" in text
    assert "naviewer tool --mode M [options] PATH" in text
    assert "| `--mode M` | **required.** mode (default None) (one of `x`, `y`) |" in text
    assert "Mutually exclusive: `--on` / `--off`." in text
    assert "Does &lt;things&gt;." in text and "- **a**: one;\n- b.\n\nAfter." in text
