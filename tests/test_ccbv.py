"""Learned calibration (CCBV): pitch zones, the three networks, their training loop and the calibration pieces."""

import json

import numpy as np
import pytest
import torch

from matchflow.models.calibration.base import FieldObservation, FieldSegmenter, HomographyRefiner, ViewRetriever
from matchflow.models.calibration.ccbv import (
    SiameseRetriever,
    STNRefiner,
    UNetSegmenter,
    corner_error,
    load_network,
    reprojection_error,
    weights_available,
)
from matchflow.models.calibration.ccbv_network import (
    EMBED_DIM,
    NET_SIZE,
    TEMPLATE_SIZE,
    HomographyRegressor,
    ZoneEncoder,
    ZoneUNet,
    corners_to_homography,
    count_parameters,
    homography_to_corners,
    one_hot,
)
from matchflow.models.geometry.camera import PinholeCamera, apply_homography, look_at_rotation
from matchflow.models.geometry.camera_prior import load_camera_prior
from matchflow.models.geometry.zones import N_ZONES, ZONE_NAMES, zone_edges, zone_map, zone_of

WORK = (640, 360)


# ------------------------------------------------------------------------------------------------ zones
def test_zone_of_known_points():
    pts = {
        (-1.0, 0.5): "left centre circle",
        (0.0, 0.0): "right centre circle",  # the halfway line belongs to the right half
        (5.0, -7.0): "right centre circle",
        (-30.0, 0.0): "left half",
        (-20.0, 30.0): "left half",
        (-50.0, 0.0): "left goal area",
        (-47.0, 9.3): "left penalty area",
        (-47.0, 9.16): "left goal area",  # the corner of the goal area, on its lines
        (-40.0, 15.0): "left penalty area",
        (-36.0, 0.0): "left penalty area",  # the penalty area includes its line
        (-34.0, 0.0): "left penalty arc",
        (-34.0, 6.0): "left half",  # 9.2 m from the spot
        (34.0, 0.0): "right penalty arc",
        (45.0, -15.0): "right penalty area",
        (50.0, 5.0): "right goal area",
        (20.0, 10.0): "right half",
        (52.5, 34.0): "right half",  # the corner, on both lines
        (0.0, 40.0): "outside",
        (60.0, 0.0): "outside",
        (-53.0, 0.0): "outside",
    }
    xy = np.array(list(pts))
    got = zone_of(xy)
    assert got.dtype.kind == "i"
    assert [ZONE_NAMES[g] for g in got] == list(pts.values())
    assert zone_of(np.zeros((2, 3, 2))).shape == (2, 3)
    assert N_ZONES == len(ZONE_NAMES) == 11
    assert set(np.unique(zone_of(np.random.default_rng(0).uniform(-60, 60, (20000, 2))))) == set(range(N_ZONES))


def _spot_camera() -> tuple[str, np.ndarray, np.ndarray]:
    prior = load_camera_prior()
    for name in sorted(prior):
        h = prior[name]
        xy, w = apply_homography(h, np.zeros((1, 2)))
        if w[0] * np.sign(h[2, 2]) > 0 and 200 < xy[0, 0] < 1080 and 150 < xy[0, 1] < 570:
            return name, h, xy[0]
    raise AssertionError("no prior camera sees the centre spot")


def test_zone_map_of_a_prior_camera_has_the_centre_circle_at_the_centre_spot():
    name, h, spot = _spot_camera()
    z = zone_map(h, (1280, 720))
    assert z.shape == (720, 1280) and z.dtype == np.uint8
    x, y = int(round(spot[0])), int(round(spot[1]))
    patch = z[y - 3 : y + 4, x - 3 : x + 4]
    circle = {ZONE_NAMES.index("left centre circle"), ZONE_NAMES.index("right centre circle")}
    assert set(np.unique(patch)) <= circle, name
    assert set(np.unique(patch)) == circle  # the halfway line splits the circle at the spot
    # the zone map agrees with zone_of at a few pixels
    inv = np.linalg.inv(h)
    for px in [(100, 600), (640, 400), (1200, 500)]:
        p, w = apply_homography(inv, np.array([px], float))
        assert z[px[1], px[0]] == zone_of(p)[0]


def test_zone_map_is_outside_above_the_horizon():
    # a wide-angle camera 15 m above the pitch looking level along -y: the top rows see the sky, where the
    # inverse homography lands on pitch points behind the camera
    pos = np.array([0.0, 20.0, -15.0])
    cam = PinholeCamera(150.0, look_at_rotation(pos, np.array([0.0, -100.0, -15.0])), pos, WORK)
    z = zone_map(cam.homography(), WORK)
    back, _ = apply_homography(np.linalg.inv(cam.homography()), np.array([[320.0, 0.0]]))
    assert zone_of(back)[0] != 0  # the back-projection alone would say "on the pitch"
    assert np.all(z[: WORK[1] // 2 - 2] == 0)
    assert z[-1, 320] != 0 and z[WORK[1] // 2 + 60, 320] != 0  # 22 degrees down: 37 m ahead


def test_zone_edges_follow_the_markings():
    name, h, _ = _spot_camera()
    s = np.diag([0.5, 0.5, 1.0])
    z = zone_map(s @ h, WORK)
    edges = zone_edges(z)
    from matchflow.models.geometry.pitch import PitchModel

    lines = PitchModel().line_mask(s @ h, WORK, thickness_px=5) > 0
    assert edges.sum() > 500
    assert np.mean(lines[edges]) > 0.95


# ------------------------------------------------------------------------------------------------ networks
def test_network_shapes_and_sizes():
    unet = ZoneUNet()
    x = torch.rand(2, 3, NET_SIZE[1], NET_SIZE[0])
    assert unet(x).shape == (2, N_ZONES, NET_SIZE[1], NET_SIZE[0])
    enc = ZoneEncoder()
    z = one_hot(np.random.default_rng(0).integers(0, N_ZONES, (3, TEMPLATE_SIZE[1], TEMPLATE_SIZE[0])))
    assert z.shape == (3, N_ZONES, TEMPLATE_SIZE[1], TEMPLATE_SIZE[0])
    e = enc(z)
    assert e.shape == (3, EMBED_DIM)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    stn = HomographyRegressor()
    d = stn(z[:2], z[1:])
    assert d.shape == (2, 8)
    assert torch.all(d == 0)  # starts at the identity
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in stn.modules())
    for net in (unet, enc, stn):
        assert count_parameters(net) * 4 < 3_000_000


def test_corner_parameterisation_round_trip():
    size = (640, 360)
    d = np.array([0.02, -0.01, -0.03, 0.015, 0.01, 0.02, -0.02, -0.005])
    h = corners_to_homography(d, size)
    assert np.allclose(homography_to_corners(h, size), d, atol=1e-9)
    assert np.allclose(corners_to_homography(np.zeros(8), size), np.eye(3))


# ------------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Weights of a 3-step training run (tiny batches), and its report."""
    from matchflow.training.calibration.train import train_calibration

    out = tmp_path_factory.mktemp("ccbv")
    lines: list[str] = []
    report = train_calibration(out, steps=3, seed=1, batch=1, checkpoint_every=2, log_every=1, validation_frames=0,
                               validation_pairs=2, progress=lines.append)
    return out, report, lines


def test_training_writes_checkpoints_weights_and_report(trained):
    out, report, lines = trained
    assert sorted(p.name for p in out.glob("ckpt_*.pt")) == ["ckpt_0000002.pt", "ckpt_0000003.pt"]
    for name in ("ccbv_unet.pt", "ccbv_siamese.pt", "ccbv_stn.pt", "training.json"):
        assert (out / name).is_file()
    saved = json.loads((out / "training.json").read_text())
    assert saved["steps"] == 3 and saved["seed"] == 1 and saved["resumed_from"] is None
    assert set(saved["weights"]) == {"ccbv_unet.pt", "ccbv_siamese.pt", "ccbv_stn.pt"}
    assert all(len(w["sha256"]) == 64 for w in saved["weights"].values())
    assert saved["final_losses"]["unet_cross_entropy"] > 0
    assert "stn_synthetic_pairs" in saved["validation"]
    assert any(line.startswith("step 3/3") for line in lines)
    ck = torch.load(out / "ckpt_0000003.pt", weights_only=True)
    assert ck["step"] == 3 and set(ck["nets"]) == {"unet", "siamese", "stn"} and "optimizers" in ck
    for kind, name in (("unet", "ccbv_unet.pt"), ("siamese", "ccbv_siamese.pt"), ("stn", "ccbv_stn.pt")):
        payload = torch.load(out / name, weights_only=True)
        assert payload["kind"] == kind and all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())
        assert not load_network(kind, out / name).training


def test_training_resumes_from_the_last_checkpoint(trained, tmp_path):
    import shutil

    from matchflow.training.calibration.train import train_calibration

    src, _, _ = trained
    for p in src.glob("ckpt_*.pt"):
        shutil.copy(p, tmp_path / p.name)
    lines: list[str] = []
    report = train_calibration(tmp_path, steps=5, seed=1, batch=1, checkpoint_every=2, log_every=1,
                               validation_frames=0, validation_pairs=0, progress=lines.append)
    assert report["resumed_from"] == 3 and report["steps"] == 5
    assert any("resuming from ckpt_0000003.pt at step 3" in line for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["4/5", "5/5"]
    ck = torch.load(tmp_path / "ckpt_0000005.pt", weights_only=True)
    assert ck["step"] == 5
    first = torch.load(src / "ckpt_0000003.pt", weights_only=True)
    assert not torch.equal(first["nets"]["unet"]["head.weight"], ck["nets"]["unet"]["head.weight"])
    with pytest.raises(ValueError, match="seed"):
        train_calibration(tmp_path, steps=6, seed=2, batch=1, validation_frames=0, validation_pairs=0)


def test_cli_has_train_calibration():
    from matchflow.cli import build_parser, cmd_train_calibration

    args = build_parser().parse_args(
        ["train", "calibration", "--out", "x", "--steps", "7", "--seed", "3", "--device", "cpu", "--no-resume"]
    )
    assert args.func is cmd_train_calibration
    assert (args.out, args.steps, args.seed, args.device, args.no_resume) == ("x", 7, 3, "cpu", True)


# ------------------------------------------------------------------------------------------------ pieces
def _frame() -> tuple[np.ndarray, np.ndarray]:
    """A rendered 1280x720 RGB frame and its pitch-to-working-image homography."""
    from matchflow.training.calibration.train import _Scene

    scene = _Scene(np.random.SeedSequence([5, 2, 0]), 1.0, "heldout", (1280, 720))
    rgb, cam = scene.sample(np.random.default_rng(0), follow=1.0)
    h = np.diag([0.5, 0.5, 1.0]) @ cam.homography()
    return rgb, h / h[2, 2]


def test_pieces_satisfy_the_protocols(trained):
    out, _, _ = trained
    rgb, h_true = _frame()
    seg = UNetSegmenter(out / "ccbv_unet.pt", device="cpu")
    assert isinstance(seg, FieldSegmenter)
    obs = seg.segment(rgb)
    assert obs.size == WORK and obs.scale == pytest.approx(0.5)
    assert obs.field.shape == obs.lines.shape == obs.zones.shape == (360, 640)
    assert obs.field.dtype == bool and obs.lines.dtype == bool and obs.zones.dtype == np.int16
    assert 0 <= obs.zones.min() and obs.zones.max() < N_ZONES
    assert 0.0 <= obs.extras["zone_confidence"] <= 1.0
    assert len(seg.segment_batch([rgb, rgb[:360, :640].copy()])) == 2

    prior = load_camera_prior()
    dictionary = np.stack([np.diag([0.5, 0.5, 1.0]) @ h for h in list(prior.values())[:20]])
    ret = SiameseRetriever(out / "ccbv_siamese.pt", dictionary, WORK)
    assert isinstance(ret, ViewRetriever)
    cands = ret.candidates(obs, 3)
    assert len(cands) == 3 and all(c.shape == (3, 3) and c.dtype == np.float64 for c in cands)
    assert ret.embeddings.shape == (20, EMBED_DIM)

    ref = STNRefiner(out / "ccbv_stn.pt", iterations=2)
    assert isinstance(ref, HomographyRefiner)
    h = ref.refine(obs, cands[0])
    assert h.shape == (3, 3) and h.dtype == np.float64 and np.all(np.isfinite(h))

    no_zones = FieldObservation(WORK, 0.5, obs.field, obs.lines)
    with pytest.raises(ValueError, match="zones"):
        ret.candidates(no_zones, 1)


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="matchflow train calibration"):
        UNetSegmenter(tmp_path / "nope.pt")


def test_metrics():
    _, h = _frame()
    assert corner_error(h, h, WORK) == pytest.approx(0.0, abs=1e-6)
    assert reprojection_error(h, h, WORK) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert corner_error(shift @ h, h, WORK) == pytest.approx(10.0)
    assert reprojection_error(shift @ h, h, WORK) == pytest.approx(10.0)


@pytest.mark.skipif(not weights_available(), reason="no CCBV weights shipped in matchflow/data/ccbv")
def test_shipped_stn_reduces_the_corner_error_of_a_perturbed_template():
    from matchflow.training.calibration.train import _base_cameras, perturb, random_view

    ref = STNRefiner(None, iterations=3)
    rng = np.random.default_rng(123)
    bases = _base_cameras("heldout")
    before, after = [], []
    while len(before) < 12:
        cam = random_view(rng, bases[int(rng.integers(len(bases)))].camera).with_size(*WORK)
        h = cam.homography()
        z = zone_map(h, WORK)
        if np.mean(z != 0) < 0.2:
            continue
        h_t = perturb(rng, cam, 0.5).homography()
        e0 = corner_error(h_t, h, WORK)
        if not 5.0 < e0 < 150.0:
            continue
        obs = FieldObservation(WORK, 1.0, z != 0, zone_edges(z), z.astype(np.int16))
        before.append(e0)
        after.append(corner_error(ref.refine(obs, h_t), h, WORK))
    assert np.median(after) < 0.8 * np.median(before)
    assert np.mean(np.array(after) < np.array(before)) >= 0.6
