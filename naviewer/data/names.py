"""Which sample names can be written as one ``path label`` line, and why a name cannot.

A manifest line is ``<path> <label>\\n``: a file name holding a line break would end the line
early and forge the next one (``evil\\nINJECTED_LINE 7\\nx.png`` becomes three lines). The rule,
shared by every source (image folders, file lists, CSV manifests, workspace registration) and
every writer of ``path label`` lines (``write_file_list``, the export's ``kept.txt``):

- refused everywhere: control characters (Unicode category Cc: NUL, tab, line feed, carriage
  return, vertical tab, form feed, the C1 controls such as U+0085 NEXT LINE, DEL), the Unicode line
  and paragraph separators (U+2028, U+2029; ``str.splitlines`` breaks on them too), and
  undecodable bytes (a file name that is not UTF-8 arrives as lone surrogates and cannot be stored
  in a UTF-8 manifest or in SQLite);
- refused by the writers of relative ``path label`` lists only: leading or trailing whitespace
  and a leading ``#`` (the reader strips the line and skips comments, so such a name would not
  read back as itself).

Names are refused, never escaped: the research loaders that read these lists know no escapes.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Optional

#: every character that may end a line for some reader, any other control character, lone surrogates
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def bad_name_char(text: str) -> Optional[str]:
    """The first character of ``text`` that no manifest line may hold, or None."""
    match = _BAD.search(text)
    return match.group(0) if match else None


def describe_char(char: str) -> str:
    """``'a line feed (U+000A)'``, ``'an undecodable byte (0xFF)'``..."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the raw byte of a non-UTF-8 file name
        return f"an undecodable byte (0x{code - 0xDC00:02X}: the name is not UTF-8)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X})"
    names = {0x0A: "line feed", 0x0D: "carriage return", 0x09: "tab", 0x00: "NUL", 0x0B: "vertical tab",
             0x0C: "form feed", 0x85: "next-line", 0x7F: "DEL"}
    name = names.get(code) or unicodedata.name(char, "").lower() or "control character"
    article = "an" if name[0] in "aeiou" else "a"
    return f"{article} {name} (U+{code:04X})"


def name_problem(text: str) -> Optional[str]:
    """Why ``text`` cannot be a sample name in a manifest line (None: it can)."""
    char = bad_name_char(text)
    if char is None:
        return None
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"the name {shown(text)} contains {describe_char(char)}, which no UTF-8 manifest can hold"
    return f"the name {shown(text)} contains {describe_char(char)}, which would break a 'path label' line"


def list_line_problem(text: str) -> Optional[str]:
    """Why ``text`` cannot be the path of a relative ``path label`` line that reads back as itself."""
    problem = name_problem(text)
    if problem:
        return problem
    if not text:
        return "an empty path"
    if text != text.strip():
        return f"the path {shown(text)} starts or ends with whitespace, which a list reader strips"
    if text.startswith("#"):
        return f"the path {shown(text)} starts with '#', which a list reader takes for a comment"
    return None


def shown(text: str, limit: int = 120) -> str:
    """``text`` quoted with its control characters escaped (safe to print on one line)."""
    escaped = ascii_escape(text)
    if len(escaped) > limit:
        escaped = escaped[: limit - 3] + "..."
    return "'" + escaped + "'"


def ascii_escape(text: str) -> str:
    """Control characters, separators and surrogates as ``\\n``, ``\\x85``, ``\\u2028``; the rest as is."""

    def escape(match: "re.Match[str]") -> str:
        code = ord(match.group(0))
        if 0xDC80 <= code <= 0xDCFF:
            return f"\\x{code - 0xDC00:02x}"
        return match.group(0).encode("unicode_escape", "backslashreplace").decode("ascii")

    return _BAD.sub(escape, text.replace("\\", "\\\\"))


def names_shown(names: "list[str] | tuple[str, ...]", limit: int = 6) -> str:
    """The first ``limit`` names, comma-separated, then ", ..." where there are more (a message's class list)."""
    names = [str(n) for n in names]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def class_numbering_problem(theirs: "list[str] | tuple[str, ...]", ours: "list[str] | tuple[str, ...]",
                            their_role: str, our_role: str, more_allowed: bool = True) -> "str | None":
    """Why two labelled sets number their classes differently, or None when they agree.

    Numeric names are compared as numbers ("01" is "1"): class folders 0..10 sort as text (0, 1, 10, 2, ...). A
    name that is only its label's number (a file list without classes.txt) matches any name. Used wherever two
    sets must share labels: trusted anchors, evaluation and kNN test sets (a reversed classes.txt gave a kNN
    accuracy of 0 % with exit 0). ``more_allowed=False``: classes beyond ``ours`` are a problem too (a trigger's ASR,
    trusted anchors); a kNN test set may have them (the caller warns)."""
    theirs, ours = [str(n) for n in theirs], [str(n) for n in ours]
    for label in range(min(len(theirs), len(ours))):
        a, b = theirs[label], ours[label]
        if a.isdigit() and b.isdigit():
            differ = int(a) != int(b)
        else:
            differ = a != b and a != str(label) and b != str(label)
        if differ:
            return (f"class {label} is {a!r} in the {their_role} but {b!r} in the {our_role}: number the classes the "
                    "same way (class folders are numbered in their names' text order: 0, 1, 10, 2, ...; a file "
                    "list with a classes.txt sets the order)")
    if not more_allowed and len(theirs) > len(ours):
        # a 10-class test set on a 2-class workspace passed (numeric names match any name) and gave a meaningless
        # ASR; an anchor list labelled 57 said only that no class had an anchor (a GUI probe, session 33)
        extra = theirs[len(ours)]
        return (f"the {their_role} has {len(theirs)} classes, {len(ours)} expected ({names_shown(ours)}): its class "
                f"{len(ours)} ({extra!r}) and any after it are none of them; give a set of those classes only, "
                "numbered the same way")
    return None


def check_class_numbering(theirs: "list[str] | tuple[str, ...]", ours: "list[str] | tuple[str, ...]",
                          their_role: str, our_role: str, where: Any, more_allowed: bool = True) -> None:
    """:func:`class_numbering_problem` as a NaviewerError naming ``where``."""
    from naviewer.errors import NaviewerError

    problem = class_numbering_problem(list(theirs), list(ours), their_role, our_role, more_allowed)
    if problem:
        raise NaviewerError(problem, where)
