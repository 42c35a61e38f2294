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


def test_a_floor_cut_short_is_trained_on_not_begun_again(tmp_path, tiny_data):
    """Measure the floor again after a cancel started floor-2 from epoch 0 and left floor behind (newcomer, session
    17): the floor cut short is resumed from its checkpoint, with its own recipe, and recorded under its name."""
    from naviewer.jobs import JobCancelled, JobContext, RecordingReporter
    from naviewer.ssl.trainer import TrainConfig
    from naviewer.workflows.floor import floor_recipe, train_floor, unfinished_floors

    ws_path = str(tmp_path / "w")
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    assert main(["new", ws_path, "--dataset", str(tiny_data[0]), "--test-dataset", str(tiny_data[1]),
                 "--attack", "patch", "--rate", "0.1", *settings]) == 0
    config = TrainConfig(epochs=2, backbone={"arch": "resnet10", "cifar_stem": True, "width": 8}, image_size=16,
                         batch_size=64, warmup_epochs=0, knn_every=0)

    class CancelAfterFirstEpoch(RecordingReporter):
        def metric(self, values):
            super().metric(values)
            if values.get("kind") == "epoch":
                ctx.cancel()

    ctx = JobContext(CancelAfterFirstEpoch())
    with Workspace.open(ws_path) as ws:
        ws.store.add_run("r", "train", {"train": config.to_dict()})  # what floor_recipe copies
        try:
            train_floor(ws, config, ctx)
        except JobCancelled:
            pass
        else:  # pragma: no cover - the cancel must land
            raise AssertionError("the floor was not cut short")
        assert read_floor(ws) is None and unfinished_floors(ws) == ["floor"]
        recipe, name = floor_recipe(ws)
        assert name == "floor" and recipe.epochs == 2
        reporter = RecordingReporter()
        floor = train_floor(ws, recipe, JobContext(reporter), run=name)
        assert floor["run"] == "floor" and read_floor(ws)["run"] == "floor"
        starts = [m for m in reporter.metrics if m.get("kind") == "run_start"]
        assert starts and starts[0].get("resumed_from_epoch") == 1  # went on from epoch 1, not 0
        assert unfinished_floors(ws) == [] and floor_recipe(ws)[1] == "floor-2"  # measured again: a new floor
