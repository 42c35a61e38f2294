"""Reading a workspace's ``[anchors]`` record: its kind, whether it is trusted, and the words for it.

Below every reader (the DIFT workflows, the export's provenance, the HTML report, the GUI's notice),
so that "trusted" is decided, and said, in one place. Writing the record is
:mod:`naviewer.workflows.anchor_sources`'s job.
"""

from __future__ import annotations

from typing import Any, Mapping

ANCHOR_KINDS = ("external", "ids", "keys", "clean-before-poisoning", "labels")
TRUSTED_KINDS = ("external", "ids", "keys", "clean-before-poisoning")

UNTRUSTED_REASON = ("DIFT's anchors were drawn from this dataset's own labels, which an attack controls: a poisoned "
                    "anchor can hide every poison.")
TRUSTED_SET_ADVICE = ("Give a trusted clean set: a file list, CSV or image folder of images you know are clean, or "
                      "their sample ids.")
UNTRUSTED_NOTICE = f"{UNTRUSTED_REASON} {TRUSTED_SET_ADVICE}"


def section_kind(section: Mapping[str, Any]) -> str:
    """The kind of an ``[anchors]`` section, also for workspaces written before kinds were recorded."""
    kind = section.get("kind")
    if kind in ANCHOR_KINDS:
        return str(kind)
    if section.get("clean_ids") is not None or "before poisoning" in str(section.get("source", "")):
        return "clean-before-poisoning"
    return "labels"


#: what names a set of anchors in ``[anchors]`` (the rest, its warnings or source words, may be rewritten as is)
IDENTITY_KEYS = ("kind", "indices", "labels", "external", "per_class", "seed")
#: a detection pass made with anchors the workspace has replaced since
REPLACED_WARNING = ("This pass was made with anchors replaced since (naviewer anchors, or Anchors…): its MinDist, "
                    "anchor reach and flags read the earlier ones. Detect again to judge with the anchors now.")


def section_fingerprint(section: Any) -> str:
    """A short hash of which anchors ``[anchors]`` names: recorded with a detection pass (and a DIFT run), so that a
    pass made with anchors since replaced is said to be (a newcomer replaced the anchors and read the old pass as
    judged by the new ones, session 30)."""
    import hashlib
    import json

    section = section if isinstance(section, Mapping) else {}
    identity = {key: section.get(key) for key in IDENTITY_KEYS if section.get(key) is not None}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def anchors_replaced(settings: Any, section: Any) -> bool:
    """Whether a pass's ``settings`` record anchors other than the workspace's ``section`` names now (False for a
    pass saved before passes recorded them)."""
    recorded = settings.get("anchors_fingerprint") if isinstance(settings, Mapping) else None
    return isinstance(recorded, str) and recorded != section_fingerprint(section)


def section_trusted(section: Mapping[str, Any]) -> bool:
    """Whether the anchors are trusted: the record's own ``trusted`` (a TOML boolean), else by their kind. A
    hand-edited ``trusted = "false"`` was read as trusted (a non-empty string) and the caveat of untrusted anchors
    dropped: a value that is not a boolean is refused."""
    if "trusted" in section:
        value = section["trusted"]
        if not isinstance(value, bool):
            from naviewer.errors import NaviewerError

            raise NaviewerError(f"workspace.toml [anchors] trusted = {value!r}: write true or false (no quotes)")
        return value
    return section_kind(section) in TRUSTED_KINDS


def anchor_trust(section: Mapping[str, Any], consequence: str = "") -> dict[str, Any]:
    """Where the anchors came from, said plainly (for provenance and reports); ``consequence`` is
    added to the notice of untrusted ones."""
    if not section:
        return {"trusted": None, "note": "no anchors recorded"}
    trusted = section_trusted(section)
    out: dict[str, Any] = {"kind": section_kind(section), "trusted": trusted, "source": section.get("source")}
    if not trusted:
        out["notice"] = f"{UNTRUSTED_REASON} {consequence}".strip()
    return out
