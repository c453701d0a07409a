"""Re-identification: torchreid-compatible OSNet, tensor sketch, crops, the embedder and the `reid` stage through
the real flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from matchflow.models.reid.crops import PAD_COLOUR, cut_crops, part_heatmaps
from matchflow.models.reid.embedder import Embedder, colour_histograms, load_osnet
from matchflow.models.reid.osnet import osnet
from matchflow.models.reid.sketch import CompactBilinearPooling
from matchflow.models.weights import WeightsLoadError, sha256_file

SHARED_OSNET = Path(__file__).resolve().parents[2] / "shared" / "weights" / "osnet_x0_25_msmt17.pt"


def test_torchreid_osnet_checkpoint_loads_unchanged():
    sd = torch.load(SHARED_OSNET, map_location="cpu", weights_only=True)
    net = osnet("osnet_x0_25", num_classes=sd["classifier.weight"].shape[0])
    assert set(net.state_dict()) == set(sd)  # every key of torchreid's checkpoint, and no other
    net.load_state_dict(sd, strict=True)
    for name in ("osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_ibn_x1_0"):
        assert osnet(name).fc[0].in_features == {"osnet_x1_0": 512, "osnet_x0_75": 384, "osnet_x0_5": 256,
                                                 "osnet_ibn_x1_0": 512}[name]
    # embeddings of the shared checkpoint are reproducible, and a torchreid-style wrapped checkpoint loads too
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 256, 128, 3), dtype=np.uint8)
    a = Embedder("osnet_x0_25", SHARED_OSNET).embed_crops(crops)
    b = Embedder("osnet_x0_25", SHARED_OSNET).embed_crops(crops)
    assert a.shape == (3, 512) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-6)
    net.eval()
    with torch.no_grad():
        ref = torch.nn.functional.normalize(net(torch.from_numpy(_normalised(crops))), dim=1).numpy()
    np.testing.assert_allclose(a, ref, atol=1e-4)  # the embedder's batch-norm folding changes nothing


def _normalised(crops: np.ndarray) -> np.ndarray:
    from matchflow.models.preprocessing import to_input_tensor

    return to_input_tensor(crops).numpy()


def test_bad_weights_are_named(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsLoadError, match="broken.pt"):
        load_osnet("osnet_x0_25", bad)
    wrong = tmp_path / "wrong.pt"
    torch.save(osnet("osnet_x0_5").state_dict(), wrong)
    with pytest.raises(WeightsLoadError, match=r"wrong.pt: not a torchreid osnet_x0_25 checkpoint"):
        load_osnet("osnet_x0_25", wrong)
    with pytest.raises(WeightsLoadError, match="broken.pt"):
        Embedder("two-stream", bad)
    with pytest.raises(WeightsLoadError, match="not found"):
        Embedder("osnet_x0_25", tmp_path / "nope.pt")


def test_tensor_sketch_preserves_inner_products():
    """<TS(a⊗p), TS(a'⊗p')> approximates <a, a'><p, p'> (exact bilinear pooling's inner product)."""
    torch.manual_seed(0)
    ca, cp, h, w = 16, 6, 3, 2
    a = torch.randn(4, ca, h, w)
    p = torch.randn(4, cp, h, w)
    exact = torch.einsum("nihw,njhw->nij", a, p).flatten(1) / (h * w)  # average-pooled outer products
    want = exact @ exact.T
    for d, tol in ((8192, 0.08), (32768, 0.04)):
        got = torch.stack([CompactBilinearPooling(ca, cp, d, seed)(a, p) for seed in range(4)])
        got = torch.einsum("sid,sjd->ij", got, got) / 4
        scale = torch.sqrt(torch.diag(want)[:, None] * torch.diag(want)[None, :])
        assert torch.max(torch.abs(got - want) / scale) < tol, (d, torch.max(torch.abs(got - want) / scale))
    one = CompactBilinearPooling(ca, cp, 512, seed=3)
    again = CompactBilinearPooling(ca, cp, 512, seed=3)
    assert torch.equal(one(a, p), again(a, p))  # the hashes are fixed by the seed
    with pytest.raises(ValueError, match="one size"):
        one(a, p[:, :, :2])


def test_crops_letterbox_and_heatmaps_follow_the_box():
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:80, 50:80] = (255, 0, 0)  # a red person 30 wide, 60 high
    crops, tf = cut_crops(image, np.array([[50, 20, 80, 80], [0, 0, 0, 0]]), (128, 64))
    assert crops.shape == (2, 128, 64, 3)
    assert (crops[0] == (255, 0, 0)).all()  # 30 x 60 fills 64 x 128 exactly
    assert (crops[1] == PAD_COLOUR).all()  # an empty box: pad colour only
    crops, _ = cut_crops(image, np.array([[50, 20, 80, 50]]), (128, 64))  # 30 wide, 30 high: letterboxed
    assert (crops[0, 32:96] == (255, 0, 0)).all() and (crops[0, :30] == PAD_COLOUR).all()
    kp = np.full((2, 17, 3), np.nan)
    kp[0, 0] = (65, 20, 1.0)  # the nose at the top centre of the box
    heat = part_heatmaps(kp, tf, (8, 4))
    assert heat.shape == (2, 17, 8, 4) and heat[1].max() == 0 and heat[0, 1:].max() == 0
    iy, ix = np.unravel_index(np.argmax(heat[0, 0]), (8, 4))
    assert iy == 0 and ix in (1, 2)


def test_colour_histograms_tell_kits_apart():
    red = np.zeros((4, 128, 64, 3), np.uint8)
    red[..., 0] = 200
    blue = red[..., ::-1].copy()
    h = colour_histograms(np.concatenate([red, blue]))
    sim = h @ h.T
    assert sim[0, 1] > 0.99 and sim[0, 4] < 0.01


def test_reid_without_detection_fails_before_any_work_naming_both():
    from matchflow.config import PipelineConfig
    from matchflow.pipeline import PipelineError, build_pipeline

    for stages in (["frames", "reid"], ["frames", "reid", "detection"]):
        with pytest.raises(PipelineError, match=r"stage 'reid' reads 'players\..*'detection' writes it"):
            build_pipeline(PipelineConfig(stages=stages, stage_params={"reid": {"model": "histogram"}}))
    with pytest.raises(ValueError, match="needs `weights`"):
        build_pipeline(PipelineConfig(stages=["frames", "detection", "reid"],
                                      stage_params={"reid": {"model": "osnet_x0_25"}}))


@pytest.mark.e2e
def test_reid_stage_in_the_flow(tmp_path, prefect_api):
    """frames, detection, reid on a synthetic half through the real flow and Dask cluster: one reid row per
    player, the half's (N, D) array assembled from the chunks, rows pointing into it."""
    from matchflow.config import PipelineConfig
    from matchflow.flows.corpus import run_corpus
    from matchflow.storage.query import connect
    from matchflow.synth import synthesize_corpus

    root = tmp_path / "corpus"
    synthesize_corpus(root, games=1, halves=1, seconds=4.0, seed=5, width=640, height=360)
    out = tmp_path / "out"
    cfg = PipelineConfig(workers=2, chunk_frames=4, batch_frames=2, retries=0, memory_limit="3GiB",
                         stages=["frames", "detection", "reid"],
                         stage_params={"reid": {"model": "osnet_x0_25", "weights": str(SHARED_OSNET)}})
    summary = run_corpus(str(root), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    db = connect(str(out))
    players = db.execute("SELECT frame, det FROM players ORDER BY frame, det").fetchall()
    reid = db.execute("SELECT frame, det, row FROM reid ORDER BY frame, det").fetchall()
    assert len(players) >= 8 and [r[:2] for r in reid] == players  # one row per detected person
    rows = sorted(r[2] for r in reid)
    assert rows == list(range(len(reid)))  # every row of the array, once
    group = zarr.open_group(str(next((out / "arrays").glob("*.zarr"))), mode="r")
    arr = group["1"]["reid"]
    assert arr.shape == (len(reid), 512) and arr.dtype == np.float16 and "_parts" not in group["1"]
    vectors = np.asarray(arr[:], np.float32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=2e-3)
    assert arr.attrs["model"] == "osnet_x0_25" and arr.attrs["sha256"] == sha256_file(SHARED_OSNET)
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["model_checksums"]["reid_osnet_x0_25"] == sha256_file(SHARED_OSNET)
    # the rows' embeddings are those of their people: recompute one frame's from the decoded video
    from matchflow.video import iter_frames, sample_indices

    frame0 = [r for r in reid if r[0] == reid[0][0]]
    boxes = np.array(db.execute(f"SELECT x1, y1, x2, y2 FROM players WHERE frame = {reid[0][0]} ORDER BY det")
                     .fetchall())
    video = next(root.rglob("1_*.mp4"))
    idx = sample_indices(100, 25.0, 2.0)[[reid[0][0]]]
    _, images = next(iter(iter_frames(str(video), idx, 1)))
    again = Embedder("osnet_x0_25", SHARED_OSNET).embed(images[0], boxes)
    np.testing.assert_allclose(vectors[[r[2] for r in frame0]], again, atol=2e-2)


def test_shipped_two_stream_weights_load_with_their_checksum():
    from matchflow.models.weights import REGISTRY

    emb = Embedder()  # the default: two-stream, shipped weights
    assert emb.model == "two-stream" and emb.sha256 == REGISTRY["reid_twostream_resnet18"][1]
    assert emb.dim == 512 and tuple(emb.input_size) == (128, 64)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    boxes = np.array([[100, 100, 130, 170], [300, 80, 330, 160]], np.float64)
    e = emb.embed(image, boxes)  # without keypoints: empty part maps
    assert e.shape == (2, 512) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(e, emb.embed(image, boxes), atol=1e-6)
