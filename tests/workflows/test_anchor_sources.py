"""Trusted anchors from each source kind, recorded in the workspace and used by DIFT."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.cli import main
from naviewer.errors import NaviewerError
from naviewer.workflows.anchor_sources import (
    load_anchor_set,
    parse_anchor_spec,
    set_workspace_anchors,
)
from naviewer.workflows.posthoc import posthoc_detect
from naviewer.workflows.workspace_setup import create_workspace
from naviewer.workspace import Workspace
from workflow_kit import dift_config


@pytest.fixture()
def plain_ws(tmp_path, tiny_data):
    ws = create_workspace(tmp_path / "plain", str(tiny_data[0]), test_dataset=str(tiny_data[1]))
    yield ws
    ws.close()


def test_spec_grammar(tmp_path):
    assert parse_anchor_spec("labels").kind == "labels"
    assert parse_anchor_spec("ids:3, 17,42").ids == (3, 17, 42)
    ids = tmp_path / "ids.txt"
    ids.write_text("# trusted\n5\n6  # a comment\n\n7\n")
    assert parse_anchor_spec(f"ids:@{ids}").ids == (5, 6, 7)
    assert parse_anchor_spec("keys:a.png,b.png").keys == ("a.png", "b.png")
    assert parse_anchor_spec("dataset:/x/list.txt").dataset == "/x/list.txt"
    assert parse_anchor_spec("/x/folder").kind == "external"
    bad = tmp_path / "bad.txt"
    bad.write_text("5\nfive\n")
    with pytest.raises(NaviewerError, match="bad.txt"):
        parse_anchor_spec(f"ids:@{bad}")
    with pytest.raises(NaviewerError, match="missing.txt"):
        parse_anchor_spec(f"keys:@{tmp_path / 'missing.txt'}")


def test_default_anchors_are_recorded_as_untrusted(plain_ws):
    described = load_anchor_set(plain_ws).describe()
    assert described["kind"] == "labels" and described["trusted"] is False and "notice" in described


def test_named_ids_and_keys(plain_ws):
    samples = plain_ws.store.samples()
    ids = [int(np.flatnonzero(samples["label"] == c)[0]) for c in range(4)]
    section = set_workspace_anchors(plain_ws, "ids:" + ",".join(map(str, ids)), per_class=1)
    assert section["trusted"] and section["indices"] == sorted(ids)
    keys = [samples["source_key"][i] for i in ids]
    section = set_workspace_anchors(plain_ws, "keys:" + ",".join(keys), per_class=2)
    assert section["kind"] == "keys" and section["indices"] == sorted(ids)
    assert any("has 1 anchors (wanted 2)" in w for w in section["warnings"])
    with pytest.raises(NaviewerError, match="no anchor for class 3") as refused:
        set_workspace_anchors(plain_ws, "ids:" + ",".join(map(str, ids[:3])))
    name = plain_ws.class_names[3]  # said by name too ("class 3" alone; a newcomer, session 30)
    assert name == "3" or f"class 3 ({name})" in str(refused.value)
    with pytest.raises(NaviewerError, match="not in the training set"):
        set_workspace_anchors(plain_ws, "keys:nowhere.png")
    assert plain_ws.config["anchors"]["kind"] == "keys"  # a refused spec changes nothing


def test_external_anchors_outside_the_training_set(plain_ws, tiny_data):
    section = set_workspace_anchors(plain_ws, str(tiny_data[1]), per_class=5)
    assert section["kind"] == "external" and section["indices"] == [] and len(section["external"]["ids"]) == 20
    anchor_set = load_anchor_set(plain_ws)
    assert anchor_set.trusted and len(anchor_set) == 20 and anchor_set.counts() == {c: 5 for c in range(4)}
    assert len(anchor_set.external) == 20
    features = np.random.default_rng(0).normal(size=(plain_ws.store.sample_count(), 6)).astype(np.float32)
    joined, anchors = anchor_set.for_features(features, lambda store: np.ones((len(store), 6), np.float32))
    assert joined.shape[0] == len(features) + 20 and anchors.indices.min() == len(features)
    # replacing them leaves nothing of the external set behind
    set_workspace_anchors(plain_ws, "labels")
    assert "external" not in plain_ws.config["anchors"] and load_anchor_set(plain_ws).external is None


def test_a_trusted_set_of_training_images_is_said(plain_ws, tiny_data, tmp_path):
    """The training folder itself (or its images relabelled) was accepted as trusted anchors "outside the training
    set" without a word (a sweep); the test folder is outside and says nothing."""
    section = set_workspace_anchors(plain_ws, str(tiny_data[0]), per_class=2)
    # all of them: said as the training data, whose labels an attack controls (a newcomer, session 30)
    assert any("every one of the 8 trusted anchor images is a training sample" in w and "a poison can be an anchor"
               in w for w in section["warnings"])
    assert "outside the training set" not in section["source"] and "every one of them a training sample" in section["source"]
    root = tiny_data[0].parent  # a list's paths stay inside its folder
    lines = [f"{path.relative_to(root)} {(int(path.parent.name[-1]) + 1) % 4}"
             for path in sorted(tiny_data[0].rglob("*.png"))[::15]]
    (root / "relabelled-s16.txt").write_text("\n".join(lines) + "\n")
    relabelled = set_workspace_anchors(plain_ws, str(root / "relabelled-s16.txt"), per_class=1)
    assert any("carry another label" in w for w in relabelled["warnings"]), relabelled["warnings"]
    outside = set_workspace_anchors(plain_ws, str(tiny_data[1]), per_class=2)
    assert not any("training samples" in w for w in outside["warnings"])


def test_posthoc_detection_with_external_anchors(accepted_run, tiny_data, tmp_path, capsys):
    import shutil

    shared, outcome = accepted_run
    path = tmp_path / "copy"  # the shared run stays as other tests expect it
    shutil.copytree(shared, path)
    with Workspace.open(path) as ws:
        set_workspace_anchors(ws, str(tiny_data[1]), per_class=5)
        out = posthoc_detect(ws, outcome.checkpoint, config=dift_config(), run="ext")
        scores = ws.store.pass_scores(out.pass_id)
        assert all(len(v) == ws.store.sample_count() for v in scores.values())
        assert out.anchors["kind"] == "external" and out.summary["anchors"] == 20
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--run", "ext2",
                 "--anchors", "labels", "--dift-set", "k=5", "--dift-set", "n_min=5"]) == 0
    assert "NOT trusted" in capsys.readouterr().out
    # the anchors replaced after a pass: the pass says it read the earlier ones (a newcomer read it as the new ones')
    from naviewer.gui.analyst.trust import read_trust
    from naviewer.workspace.anchor_record import REPLACED_WARNING, anchors_replaced

    assert main(["review", str(path), "--pass", str(out.pass_id)]) == 0
    assert REPLACED_WARNING in capsys.readouterr().out  # made on the external ones, the workspace has labels now
    with Workspace.open(path) as ws:
        latest = ws.store.pass_info(ws.store.latest_pass_id())["settings"]
        section = ws.config.get("anchors")
        assert not anchors_replaced(latest, section) and anchors_replaced(ws.store.pass_info(out.pass_id)["settings"], section)
        assert REPLACED_WARNING in read_trust(ws.store.pass_info(out.pass_id)["settings"], section, has_workspace=True).warnings
        assert REPLACED_WARNING not in read_trust(latest, section, has_workspace=True).warnings
    assert main(["review", str(path)]) == 0
    assert REPLACED_WARNING not in capsys.readouterr().out


def test_cli_new_and_anchors_commands(tmp_path, tiny_data, capsys):
    ws = tmp_path / "ws"
    assert main(["new", str(ws), "--dataset", str(tiny_data[0]), "--anchors", str(tiny_data[1]),
                 "--anchors-per-class", "3"]) == 0
    assert "anchors: 12 trusted" in capsys.readouterr().out
    assert main(["anchors", str(ws)]) == 0
    assert "class 3 (c3): 3" in capsys.readouterr().out
    assert main(["anchors", str(ws), "ids:0"]) == 2
    err = capsys.readouterr().err
    assert "every class needs" in err and "Traceback" not in err
    with Workspace.open(ws) as opened:
        assert opened.config["anchors"]["kind"] == "external"


def test_a_refused_trusted_set_leaves_no_half_made_workspace(tmp_path, tiny_data, capsys):
    ws = tmp_path / "half"
    assert main(["new", str(ws), "--dataset", str(tiny_data[0]), "--anchors", "ids:0"]) == 2
    assert "every class needs" in capsys.readouterr().err and not ws.exists()
    empty = tmp_path / "mine"
    empty.mkdir()
    assert main(["new", str(empty), "--dataset", str(tiny_data[0]), "--anchors", "ids:0"]) == 2
    assert empty.is_dir() and not any(empty.iterdir())


def test_describing_anchors_never_writes(tmp_path, tiny_data):
    from naviewer.workflows.anchor_sources import load_anchor_set

    ws = create_workspace(tmp_path / "w", str(tiny_data[0]))
    try:
        ws.update_config("anchors", {key: None for key in ws.config["anchors"]})  # as if never recorded
        assert not ws.config.get("anchors")
        described = load_anchor_set(ws, record=False).describe()
        assert described["kind"] == "labels" and not described["trusted"]
        assert not ws.reload_config().get("anchors")
    finally:
        ws.close()


def test_numeric_class_names_are_compared_as_numbers():
    """Class folders 0..10 are numbered in text order (0, 1, 10, 2, ...): their "10" is label 2, which a list
    labelled 0..10 calls "2". The check skipped all-digit names, and class 2 was anchored by images of class 10."""
    from types import SimpleNamespace

    from naviewer.errors import NaviewerError
    from naviewer.workflows.anchor_sources import _check_names

    folder = SimpleNamespace(class_names=["0", "1", "10", "2", "3", "4", "5", "6", "7", "8", "9"])
    with pytest.raises(NaviewerError, match="class 2 is '10' in the trusted anchor set but '2'"):
        _check_names(folder, [str(c) for c in range(11)], "anchors")
    _check_names(SimpleNamespace(class_names=["00", "01"]), ["0", "1"], "anchors")  # the same numbers
    _check_names(SimpleNamespace(class_names=["cat", "dog"]), ["0", "1"], "anchors")  # unnamed list: any names
    with pytest.raises(NaviewerError, match="class 0 is 'dog'"):
        _check_names(SimpleNamespace(class_names=["dog", "cat"]), ["cat", "dog"], "anchors")


def test_an_anchor_id_past_int64_is_a_named_error():
    from naviewer.errors import NaviewerError
    from naviewer.workflows.anchor_sources import parse_anchor_spec

    with pytest.raises(NaviewerError, match="99999999999999999999 is not a sample of any training set"):
        parse_anchor_spec("ids:0,12,99999999999999999999")


def test_an_anchor_id_file_may_start_with_a_byte_order_mark(tmp_path):
    from naviewer.workflows.anchor_sources import parse_anchor_spec

    ids = tmp_path / "ids.txt"
    ids.write_bytes("\ufeff0\n3\n".encode("utf-8"))
    assert parse_anchor_spec(f"ids:@{ids}").ids == (0, 3)


def test_anchors_that_would_take_every_labelled_sample_are_refused():
    """`naviewer anchors WS labels --per-class 100000` made every sample an anchor and exited 0: nothing was left
    for DIFT to check (a sweep, session 17). A thin class alone is still a warning."""
    from naviewer.workflows.anchor_sources import parse_anchor_spec, resolve_anchor_section

    labels = np.array([0] * 5 + [1] * 30)
    keys = np.array([f"k{i}" for i in range(labels.size)])
    with pytest.raises(NaviewerError, match="every labelled sample"):
        resolve_anchor_section(parse_anchor_spec("labels"), labels, keys, ["a", "b"], 100_000, 0)
    section = resolve_anchor_section(parse_anchor_spec("labels"), labels, keys, ["a", "b"], 10, 0)
    assert len(section["indices"]) == 15 and any("class 0 has 5" in w for w in section["warnings"])


def test_a_ctrl_c_after_the_anchors_are_recorded_says_so(tmp_path, tiny_data, monkeypatch, capsys):
    """Stopped after the new anchors were written, `naviewer anchors` said only "cancelled" (a bad-input probe,
    session 30): the stop line says they are recorded."""
    import naviewer.workflows.anchor_sources as sources
    from naviewer.cli import main

    ws = str(tmp_path / "ws")
    assert main(["new", ws, "--dataset", str(tiny_data[0])]) == 0
    capsys.readouterr()

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sources, "load_anchor_set", interrupted)
    assert main(["anchors", ws, "labels", "--per-class", "3"]) == 130
    err = capsys.readouterr().err
    assert "cancelled; saved before it: the new anchors (labels) are recorded in workspace.toml" in err


def test_a_trusted_label_that_is_no_class_of_the_workspace_is_named(plain_ws, tiny_data):
    """A trusted list labelling one class's images 7 in a 4-class workspace was refused for the class left without an
    anchor, and label 7 never named (a bad-input probe, session 30)."""
    root = tiny_data[1].parent
    lines = [f"{path.relative_to(root)} {7 if path.parent.name.endswith('3') else int(path.parent.name[-1])}"
             for path in sorted(tiny_data[1].rglob("*.png"))]
    (root / "label7-s30.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(NaviewerError, match=r"no anchor for class 3.*carry label\(s\) 7, which are not classes of the "
                                            r"workspace \(0-3"):
        set_workspace_anchors(plain_ws, str(root / "label7-s30.txt"), per_class=2)
    # every image labelled 57: "anchors: no class has a clean sample to use as an anchor" named neither the file nor
    # the label (a GUI probe, session 33)
    lines = [f"{path.relative_to(root)} 57" for path in sorted(tiny_data[1].rglob("*.png"))[:3]]
    (root / "label57-s33.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(NaviewerError, match=r"none of the trusted set's 3 labelled images carries a class of the "
                                            r"workspace: their label\(s\) 57, the workspace's classes 0-3") as info:
        set_workspace_anchors(plain_ws, str(root / "label57-s33.txt"), per_class=2)
    assert "label57-s33.txt" in str(info.value)


def test_a_trusted_set_of_numbered_classes_is_not_taken_for_a_workspace_of_named_ones(plain_ws, tiny_data):
    """The built-in digits (classes "0".."9") became trusted anchors of the workspace's named classes (a bad-input
    probe, session 30): a whole numbered set with more classes than the workspace is another dataset."""
    from PIL import Image

    root = tiny_data[1].parent / "numbered-s30"
    for c in range(6):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16, 3), 30 * c + i, np.uint8)).save(root / str(c) / f"{i}.png")
    if all(str(name).isdigit() for name in plain_ws.class_names):
        pytest.skip("this workspace's classes are numbered too")
    with pytest.raises(NaviewerError, match=r"classes are numbered 0-5 \(6 classes\) and the workspace's are .*: they "
                                            r"are not the same classes"):
        set_workspace_anchors(plain_ws, str(root), per_class=2)


def test_the_summary_says_an_even_count_once():
    """"anchors: 40 trusted (10-10 a class)" read oddly (a newcomer following the docs, session 34)."""
    from naviewer.workflows.anchor_sources import anchors_summary

    even = {"trusted": True, "count": 40, "per_class": {"a": 10, "b": 10}, "source": "data/trusted"}
    assert anchors_summary(even) == "anchors: 40 trusted (10 a class) from data/trusted"
    assert "(3-10 a class)" in anchors_summary({**even, "per_class": {"a": 3, "b": 10}})
