"""`matchflow train detector` (a Prefect flow) and `matchflow eval detector` as a user runs them."""

import json
import subprocess
import sys

import pytest
import torch

from matchflow.models.weights import sha256_file
from matchflow.synth.detection import render_detection_dataset
from tests.detection_samples import yolo_root

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "matchflow.cli", *args], capture_output=True, text=True)


def test_train_resume_and_evaluate(tmp_path):
    yolo = yolo_root(tmp_path)
    synth = tmp_path / "synth"
    render_detection_dataset(synth, frames=2, seed=3, width=320, height=176, workers=1)
    out = tmp_path / "run"
    common = ["train", "detector", "--out", str(out), "--soccer", str(yolo), "--synthetic", str(synth),
              "--mix", "0.5", "0", "0.5", "--batch", "2", "--crop", "64", "--input-height", "128",
              "--segment", "2", "--checkpoint-every", "2"]
    res = _cli(*common, "--steps", "2", "--no-eval")
    assert res.returncode == 0, res.stderr
    assert "step 2/2" in res.stdout
    res = _cli(*common, "--steps", "4")
    assert res.returncode == 0, res.stderr
    assert "resumed from checkpoint_0000002.pt" in res.stdout
    report = json.loads((out / "training.json").read_text())
    weights = out / report["weights"]
    assert report["steps"] == 4 and report["sha256"] == sha256_file(weights)
    assert report["data"]["soccer"]["frames"] == 2 and report["data"]["synthetic"]["frames"] == 2
    assert "CC BY 4.0" in report["data"]["soccer"]["credit"]
    m = report["metrics"]["soccer"]
    assert m["frames"] == 2 and m["people"] == 4 and m["balls"] == 2
    assert 0.0 <= m["ap50_people"] <= 1.0
    # the weights load with weights_only=True and hold the whole network
    state = torch.load(weights, weights_only=True)
    assert any(k.startswith("pif.player.") for k in state) and any(k.startswith("segmentation.") for k in state)

    res = _cli("eval", "detector", str(synth), "--kind", "synthetic", "--weights", str(weights),
               "--input-height", "176", "--json", str(tmp_path / "eval.json"))
    assert res.returncode == 0, res.stderr
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["frames"] == 2 and ev["sha256"] == report["sha256"]
    for key in ("psq", "pdq", "oks_ap", "oks_ar", "ap50_people", "ball_bdq"):
        assert key in ev
        assert ev[key] is None or 0.0 <= ev[key] <= 1.0


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    from matchflow.models.weights import resolve_weights

    yolo = yolo_root(tmp_path)
    common = ["train", "detector", "--soccer", str(yolo), "--mix", "1", "0", "0", "--batch", "1", "--crop", "64",
              "--input-height", "128", "--steps", "1", "--lr", "0", "--no-eval"]
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a state dict")
    res = _cli(*common, "--out", str(tmp_path / "bad"), "--init", str(bad))
    assert res.returncode == 2 and "broken.pt" in res.stderr
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").glob("checkpoint_*"))

    out = tmp_path / "tuned"
    res = _cli(*common, "--out", str(out), "--init", "shipped")
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "training.json").read_text())
    shipped = resolve_weights("deepsportlab_mobilenetv2")
    assert report["init"] == {"path": str(shipped), "sha256": sha256_file(shipped)}
    # a step at learning rate 0 leaves every parameter where the shipped weights put it (running batch-norm
    # statistics are buffers, not parameters, and do move)
    start, tuned = torch.load(shipped, weights_only=True), torch.load(out / report["weights"], weights_only=True)
    params = [k for k in start if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(params) > 100
    for k in params:
        assert torch.equal(start[k], tuned[k]), k


def test_train_and_eval_name_bad_input(tmp_path):
    res = _cli("train", "detector", "--out", str(tmp_path / "o"), "--soccer", str(tmp_path / "nowhere"))
    assert res.returncode == 2 and "nowhere" in res.stderr
    res = _cli("eval", "detector", str(tmp_path), "--weights", str(tmp_path / "missing.pt"))
    assert res.returncode == 2 and "missing.pt" in res.stderr
    yolo = yolo_root(tmp_path)
    (yolo / "valid" / "images" / "f0.jpg").write_bytes(b"not a jpeg")
    weights = tmp_path / "w.pt"
    from matchflow.models.detection.network import DeepSportLabNet

    torch.save(DeepSportLabNet().state_dict(), weights)
    res = _cli("eval", "detector", str(yolo), "--weights", str(weights), "--input-height", "128")
    assert res.returncode == 2 and "f0.jpg" in res.stderr
