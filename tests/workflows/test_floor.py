"""The no-poison floor: the same recipe on the clean set, recorded and shown beside ASR."""

from __future__ import annotations

from naviewer.cli import main
from naviewer.workflows.floor import floor_text, read_floor
from naviewer.workspace import Workspace
from workflow_kit import PATCH


def test_floor_is_trained_on_the_clean_set_and_recorded(tmp_path, tiny_data, capsys):
    ws = str(tmp_path / "w")
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    assert main(["new", ws, "--dataset", str(tiny_data[0]), "--test-dataset", str(tiny_data[1]), "--attack", "patch",
                 "--rate", "0.1", "--test-protocol", "paper", *settings]) == 0
    assert "ASR test-time protocol: paper" in capsys.readouterr().out
    with Workspace.open(ws) as opened:
        assert read_floor(opened) is None and "not measured" in floor_text(None)
    assert main(["run", ws, "--floor", "--epochs", "1", "--arch", "resnet10", "--width", "8", "--image-size", "16",
                 "--batch-size", "64", "--warmup-epochs", "0", "--knn-every", "0"]) == 0
    out = capsys.readouterr().out
    assert "no-poison floor: ASR" in out and "protocol paper" in out
    with Workspace.open(ws) as opened:
        floor = read_floor(opened)
        assert floor["protocol"] == "paper" and 0.0 <= floor["asr"] <= 1.0 and floor["method"] == "simclr"
        assert floor["augment_recipe"] == "simclr-cifar"
        assert "floor" in floor_text(floor) and "(paper)" in floor_text(floor)
        # trained on the clean set: the poisoned workspace's samples are 240, the clean set has as many
        assert opened.store.sample_count() == 240
    assert main(["run", ws, "--floor", "--dift", "--epochs", "1"]) == 2
    assert main(["run", ws, "--floor", "--epochs", "1", "--arch", "resnet10", "--width", "8"]) == 2  # exists


def test_floor_needs_an_attacked_workspace(tmp_path, tiny_data, capsys):
    ws = str(tmp_path / "plain")
    assert main(["new", ws, "--dataset", str(tiny_data[0])]) == 0
    assert main(["run", ws, "--floor", "--epochs", "1", "--arch", "resnet10", "--width", "8"]) == 2
    assert "--attack" in capsys.readouterr().err


def test_demo_chooses_the_crafting_and_the_test_time_protocol(tmp_path):
    from naviewer.workflows.demo import DemoConfig, create_demo_workspace

    config = DemoConfig.from_overrides({"test_protocol": "code", "attack_extra": {"layout": "code", "opacity": 0.8}})
    with create_demo_workspace(tmp_path / "demo", config) as ws:
        attack = ws.config["attack"]
        assert attack["test_protocol"] == "code"
        assert attack["settings"]["layout"] == "code" and attack["settings"]["opacity"] == 0.8


def test_the_result_of_an_in_training_finetune_is_read_back(accepted_run):
    from naviewer.workflows.posthoc import latest_finetune_result

    path, outcome = accepted_run
    with Workspace.open(path) as ws:
        result = latest_finetune_result(ws, outcome.run, outcome.pass_id)
        assert result["kind"] in ("finetune", "retrain") and result["confirmed"] == outcome.finetune["removed"]
        assert latest_finetune_result(ws, "no-such-run") is None
