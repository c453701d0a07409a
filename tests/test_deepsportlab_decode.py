import math

import numpy as np
import pytest
import torch

from matchflow.models.detection.decoder import (
    Decoded,
    DecodeParams,
    assign_masks,
    decode,
    decode_ball,
    decode_keypoints,
    decode_players,
    fuse_confidence,
    vote_scores,
)
from matchflow.models.detection.network import COCO_KEYPOINTS, PERSON_CLASSES, DeepSportLabNet

S = 8  # PIF stride
H, W = 128, 160  # input size
h, w = H // S, W // S


def blank_outputs(n: int = 1) -> dict[str, torch.Tensor]:
    """Network outputs with nothing in them: background everywhere, every PIF cell at probability ~0."""
    out = {"semantic": torch.zeros(n, 3, H, W), "offsets": torch.zeros(n, 2, H, W)}
    out["semantic"][:, 0] = 5.0
    for name, k in (("ball", 1), ("player", 1), ("parts", 17)):
        out[f"{name}_confidence"] = torch.full((n, k, h, w), -10.0)
        out[f"{name}_vector"] = torch.zeros(n, 2 * k, h, w)
        out[f"{name}_log_size"] = torch.full((n, k, h, w), math.log(0.5))
        out[f"{name}_log_scale"] = torch.zeros(n, k, h, w)
    out["player_box_log_wh"] = torch.zeros(n, 2, h, w)
    out["player_class_logits"] = torch.zeros(n, 3, h, w)
    return out


def plant_keypoint(conf, vec, x, y, p, *, field=0, block=4):
    """Make the ``block`` x ``block`` cells nearest to input pixel (x, y) vote for it with probability p.

    ``conf`` (K, h, w) probabilities and ``vec`` (2K, h, w) are edited in place; returns (rows, cols) slices."""
    cx, cy = x / S, y / S
    j0, i0 = math.floor(cx) - block // 2 + 1, math.floor(cy) - block // 2 + 1
    rows, cols = range(i0, i0 + block), range(j0, j0 + block)
    for i in rows:
        for j in cols:
            if not (0 <= i < conf.shape[1] and 0 <= j < conf.shape[2]):
                continue
            conf[field, i, j] = p
            vec[2 * field, i, j] = cx - j
            vec[2 * field + 1, i, j] = cy - i
    return slice(i0, i0 + block), slice(j0, j0 + block)


def reference_fusion(conf, vec, logsize, stride, out_stride, threshold, window=3.0, max_radius=32.0):
    """Eq. 3 with loops over cells and output pixels (same truncation and Sigma floor as the module)."""
    n, k, hh, ww = conf.shape
    ho, wo = math.ceil(hh * stride / out_stride), math.ceil(ww * stride / out_stride)
    out = np.zeros((n, k, ho, wo))
    sc = stride / out_stride
    for b in range(n):
        for f in range(k):
            for i in range(hh):
                for j in range(ww):
                    s_val = float(conf[b, f, i, j])
                    if s_val < threshold:
                        continue
                    cx = (j + float(vec[b, 2 * f, i, j])) * sc
                    cy = (i + float(vec[b, 2 * f + 1, i, j])) * sc
                    sig = max(math.exp(float(logsize[b, f, i, j])) * sc, 0.5)
                    r = min(max(1, math.ceil(3.0 * sig)), math.ceil(max_radius / out_stride))
                    for a in range(round(cy) - r, round(cy) + r + 1):
                        for c in range(round(cx) - r, round(cx) + r + 1):
                            if 0 <= a < ho and 0 <= c < wo:
                                out[b, f, a, c] += s_val * math.exp(-((a - cy) ** 2 + (c - cx) ** 2) / (2 * sig**2))
    return out


# --------------------------------------------------------------------------------------------------------
# Fusion (Eq. 3)
# --------------------------------------------------------------------------------------------------------


def test_fusion_single_cell_peak_position_and_value():
    conf = torch.zeros(1, 1, h, w)
    vec = torch.zeros(1, 2, h, w)
    logsize = torch.full((1, 1, h, w), math.log(0.25))  # Sigma = 2 px
    conf[0, 0, 3, 4] = 0.9
    vec[0, :, 3, 4] = torch.tensor([0.3, -0.2])
    fused = fuse_confidence(conf, vec, logsize, S, out_stride=4)
    assert fused.shape == (1, 1, H // 4, W // 4)
    # keypoint at ((4.3) * 8, (2.8) * 8) = (34.4, 22.4) px = (8.6, 5.6) on the stride-4 grid -> pixel (row 6, col 9)
    peak = int(fused.argmax())
    assert divmod(peak, W // 4) == (6, 9)
    expected = 0.9 * math.exp(-(0.4**2 + 0.4**2) / (2 * 0.5**2))
    assert float(fused.max()) == pytest.approx(expected, rel=1e-5)
    # stride 2: (17.2, 11.2) -> pixel (row 11, col 17)
    fused2 = fuse_confidence(conf, vec, logsize, S, out_stride=2)
    assert fused2.shape == (1, 1, H // 2, W // 2)
    assert divmod(int(fused2.argmax()), W // 2) == (11, 17)


def test_fusion_votes_add_up_and_exceed_one():
    conf = torch.zeros(1, 1, h, w)
    vec = torch.zeros(1, 2, h, w)
    logsize = torch.full((1, 1, h, w), math.log(0.5))
    conf[0, 0, 3, 4] = conf[0, 0, 4, 5] = 0.6
    vec[0, :, 3, 4] = torch.tensor([0.5, 0.5])  # both -> cell (4.5, 3.5) = (36, 28) px = grid (9, 7)
    vec[0, :, 4, 5] = torch.tensor([-0.5, -0.5])
    fused = fuse_confidence(conf, vec, logsize, S, out_stride=4)
    assert divmod(int(fused.argmax()), W // 4) == (7, 9)
    assert float(fused[0, 0, 7, 9]) == pytest.approx(1.2, rel=1e-5)  # not bounded by 1
    one = conf.clone()
    one[0, 0, 4, 5] = 0
    two = conf.clone()
    two[0, 0, 3, 4] = 0
    total = fuse_confidence(one, vec, logsize, S) + fuse_confidence(two, vec, logsize, S)
    torch.testing.assert_close(fused, total)


def test_fusion_threshold_skips_cells():
    conf = torch.zeros(1, 1, h, w)
    vec = torch.zeros(1, 2, h, w)
    logsize = torch.zeros(1, 1, h, w)
    conf[0, 0, 5, 5] = 0.04
    assert float(fuse_confidence(conf, vec, logsize, S, threshold=0.05).abs().max()) == 0.0
    conf[0, 0, 13, 17] = 0.5  # far from the low cell
    with_low = fuse_confidence(conf, vec, logsize, S, threshold=0.05)
    conf[0, 0, 5, 5] = 0.0
    torch.testing.assert_close(with_low, fuse_confidence(conf, vec, logsize, S, threshold=0.05))
    assert float(with_low[0, 0, 5 * 2, 5 * 2]) < 1e-6  # no trace of the low cell at its own position


def test_fusion_matches_reference_loops():
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(2, 3, 6, 7, generator=g) ** 3
    vec = torch.randn(2, 6, 6, 7, generator=g)
    logsize = torch.randn(2, 3, 6, 7, generator=g) * 0.7 - 0.5
    for out_stride in (4, 2):
        got = fuse_confidence(conf, vec, logsize, S, out_stride=out_stride, threshold=0.1, chunk_elems=50)
        ref = reference_fusion(conf, vec, logsize, S, out_stride, 0.1)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------------------------
# Ball
# --------------------------------------------------------------------------------------------------------


def _ball_fields(x, y, p):
    conf = torch.full((1, h, w), 0.001)
    vec = torch.zeros(2, h, w)
    logsize = torch.full((1, h, w), math.log(0.5))
    plant_keypoint(conf, vec, x, y, p)
    fused = fuse_confidence(conf[None], vec[None], logsize[None], S, out_stride=4)[0]
    return fused, conf, vec


@pytest.mark.parametrize("x,y", [(100.0, 60.0), (37.3, 91.8), (5.0, 120.0)])
def test_ball_position(x, y):
    fused, conf, vec = _ball_fields(x, y, 0.8)
    ball = decode_ball(fused, conf, vec, stride=S, out_stride=4)
    assert ball is not None
    bx, by, score = ball
    assert math.hypot(bx - x, by - y) <= 4.0
    assert score == pytest.approx(0.8, abs=1e-6)  # the probability of the voting cells


def test_ball_none_when_low():
    conf = torch.full((1, h, w), 0.01)
    fused = fuse_confidence(conf[None], torch.zeros(1, 2, h, w), torch.zeros(1, 1, h, w), S)[0]
    assert decode_ball(fused, conf, torch.zeros(2, h, w)) is None
    # fused map not empty, but the voting cells are under the ball threshold
    fused, conf, vec = _ball_fields(80.0, 40.0, 0.2)
    assert decode_ball(fused, conf, vec, threshold=0.3) is None
    ball = decode_ball(fused, conf, vec, threshold=0.1)
    assert ball is not None and ball[2] == pytest.approx(0.2, abs=1e-6)


# --------------------------------------------------------------------------------------------------------
# Players
# --------------------------------------------------------------------------------------------------------

PLAYERS = [  # x, y, probability, box w, box h, class
    (40.0, 48.0, 0.7, 24.0, 64.0, PERSON_CLASSES.index("referee")),
    (112.0, 72.0, 0.9, 16.0, 40.0, PERSON_CLASSES.index("goalkeeper")),
]


def _player_fields(players=PLAYERS):
    conf = torch.full((1, h, w), 0.001)
    vec = torch.zeros(2, h, w)
    logsize = torch.full((1, h, w), math.log(0.5))
    box = torch.zeros(2, h, w)
    cls = torch.zeros(3, h, w)
    for x, y, p, bw, bh, c in players:
        rows, cols = plant_keypoint(conf, vec, x, y, p)
        box[0, rows, cols] = math.log(bw / S)
        box[1, rows, cols] = math.log(bh / S)
        cls[c, rows, cols] = 4.0
    fused = fuse_confidence(conf[None], vec[None], logsize[None], S, out_stride=4)[0]
    return fused, conf, vec, box, cls


def test_players_boxes_classes_order():
    fused, conf, vec, box, cls = _player_fields()
    det = decode_players(fused, conf, vec, box, cls, stride=S, out_stride=4)
    assert len(det) == 2
    expected = [PLAYERS[1], PLAYERS[0]]  # by score
    np.testing.assert_allclose(det.scores.numpy(), [0.9, 0.7], atol=1e-6)
    for k, (x, y, _p, bw, bh, c) in enumerate(expected):
        np.testing.assert_allclose(det.centres[k].numpy(), [x, y], atol=2.0)
        np.testing.assert_allclose(det.boxes[k].numpy(), [x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2], atol=2.0)
        assert int(det.classes[k]) == c
        probs = det.class_probs[k].numpy()
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert probs[c] == pytest.approx(math.exp(4) / (math.exp(4) + 2), abs=1e-5)


def test_players_threshold_and_top_k():
    fused, conf, vec, box, cls = _player_fields()
    det = decode_players(fused, conf, vec, box, cls, threshold=0.8)
    assert len(det) == 1 and float(det.scores[0]) == pytest.approx(0.9)
    det = decode_players(fused, conf, vec, box, cls, top_k=1)
    assert len(det) == 1 and int(det.classes[0]) == PLAYERS[1][5]


@pytest.mark.parametrize("mode", ["common_target", "zero_vectors_sigma_half", "zero_vectors_sigma_one"])
def test_players_nms_no_duplicates_for_a_block(mode):
    conf = torch.full((1, h, w), 0.001)
    vec = torch.zeros(2, h, w)
    sigma = {"common_target": 0.5, "zero_vectors_sigma_half": 0.5, "zero_vectors_sigma_one": 1.0}[mode]
    logsize = torch.full((1, h, w), math.log(sigma))
    if mode == "common_target":
        plant_keypoint(conf, vec, 68.0, 52.0, 0.9)
    else:
        conf[0, 5:9, 7:11] = 0.9  # 4x4 confident cells, each voting for its own position
    fused = fuse_confidence(conf[None], vec[None], logsize[None], S)[0]
    det = decode_players(fused, conf, vec, torch.zeros(2, h, w), torch.zeros(3, h, w))
    assert len(det) == 1
    assert float(det.scores[0]) == pytest.approx(0.9)
    if mode == "common_target":
        np.testing.assert_allclose(det.centres[0].numpy(), [68.0, 52.0], atol=2.0)
    else:
        np.testing.assert_allclose(det.centres[0].numpy(), [8.5 * S, 6.5 * S], atol=4.0)


def test_players_empty():
    conf = torch.full((1, h, w), 0.001)
    fused = fuse_confidence(conf[None], torch.zeros(1, 2, h, w), torch.zeros(1, 1, h, w), S)[0]
    det = decode_players(fused, conf, torch.zeros(2, h, w), torch.zeros(2, h, w), torch.zeros(3, h, w))
    assert len(det) == 0
    assert det.boxes.shape == (0, 4) and det.centres.shape == (0, 2) and det.class_probs.shape == (0, 3)


# --------------------------------------------------------------------------------------------------------
# Masks (Eq. 4)
# --------------------------------------------------------------------------------------------------------

CENTRES = torch.tensor([[40.0, 48.0], [72.0, 56.0]])


def _mask_inputs(seed=0):
    """Player region x in [24, 104), y in [16, 96); its left part points (noisily) to centre 0, its right part
    to centre 1, and a strip near centre 0 points to centre 1; everything else is background."""
    g = torch.Generator().manual_seed(seed)
    sem = torch.zeros(3, H, W)
    sem[0] = 3.0
    sem[1, 16:96, 24:104] = 6.0
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    target = torch.zeros(2, H, W)
    owner = (xs >= 60).long()
    owner[16:40, 44:52] = 1  # pixels near centre 0 whose offsets point to centre 1
    target[0] = CENTRES[owner, 0]
    target[1] = CENTRES[owner, 1]
    noise = torch.randn(2, H, W, generator=g) * 6.0
    off = torch.stack([target[0] - xs, target[1] - ys]) + noise
    off[:, sem.argmax(0) == 0] = torch.randn(2, int((sem.argmax(0) == 0).sum()), generator=g) * 3  # near p
    return sem, off, owner


@pytest.mark.parametrize("out_stride", [4, 2])
def test_masks_follow_eq4(out_stride):
    sem, off, owner = _mask_inputs()
    inst = assign_masks(sem, off, CENTRES, out_stride, max_distance_factor=None)
    assert inst.dtype == torch.int16
    assert inst.shape == (H // out_stride, W // out_stride)
    # brute force Eq. 4 on the output grid
    expected = np.zeros((H // out_stride, W // out_stride), np.int16)
    for a in range(expected.shape[0]):
        for b in range(expected.shape[1]):
            y, x = a * out_stride, b * out_stride
            if int(sem[:, y, x].argmax()) != 1:
                continue
            q = np.array([x + float(off[0, y, x]), y + float(off[1, y, x])])
            expected[a, b] = 1 + int(np.argmin(np.linalg.norm(CENTRES.numpy() - q, axis=1)))
    np.testing.assert_array_equal(inst.numpy(), expected)
    o = out_stride
    assert (inst.numpy()[: 16 // o] == 0).all() and (inst.numpy()[:, : 24 // o] == 0).all()  # background
    strip = inst.numpy()[16 // o: 40 // o, 44 // o: 52 // o]
    assert (strip == 2).mean() > 0.9  # assigned by offset, not by position
    assert set(np.unique(inst.numpy())) == {0, 1, 2}


def test_masks_guard():
    sem = torch.zeros(3, H, W)
    sem[1, 40:72, 32:64] = 5.0  # player region
    off = torch.zeros(2, H, W)
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    off[0], off[1] = 48.0 - xs, 56.0 - ys  # all point to (48, 56)
    off[0, 40:48, 32:64] = 500.0  # these point far away from every centre
    centres = torch.tensor([[48.0, 56.0]])
    plain = assign_masks(sem, off, centres, 4, max_distance_factor=None)
    guarded = assign_masks(sem, off, centres, 4, box_heights=torch.tensor([40.0]), max_distance_factor=0.75)
    assert (plain.numpy()[10:18, 8:16] == 1).all()  # paper's rule: every player pixel is assigned
    assert (guarded.numpy()[10:12, 8:16] == 0).all()
    assert (guarded.numpy()[12:18, 8:16] == 1).all()
    by_px = assign_masks(sem, off, centres, 4, max_distance_px=30.0)
    np.testing.assert_array_equal(by_px.numpy(), guarded.numpy())
    assert (assign_masks(sem, off, centres[:0], 4).numpy() == 0).all()


# --------------------------------------------------------------------------------------------------------
# Keypoints
# --------------------------------------------------------------------------------------------------------


def test_keypoints_grouping_threshold_and_uniqueness():
    o = 4
    inst = torch.zeros(H // o, W // o, dtype=torch.int16)
    inst[4:20, 5:12] = 1  # player 0: x in [20, 48), y in [16, 80)
    inst[8:28, 22:32] = 2  # player 1: x in [88, 128), y in [32, 112)
    conf = torch.full((17, h, w), 0.001)
    vec = torch.zeros(34, h, w)
    logsize = torch.full((17, h, w), math.log(0.5))
    lw, nose, rk, la = (COCO_KEYPOINTS.index(n) for n in ("left_wrist", "nose", "right_knee", "left_ankle"))
    plant_keypoint(conf, vec, 32.0, 40.0, 0.8, field=lw, block=2)  # inside player 0
    plant_keypoint(conf, vec, 144.0, 16.0, 0.9, field=nose, block=2)  # outside both masks
    plant_keypoint(conf, vec, 104.0, 48.0, 0.08, field=rk, block=2)  # inside player 1, too low
    plant_keypoint(conf, vec, 96.0, 64.0, 0.5, field=la, block=2)  # inside player 1, weaker
    plant_keypoint(conf, vec, 112.0, 96.0, 0.9, field=la, block=2)  # inside player 1, stronger
    fused = fuse_confidence(conf[None], vec[None], logsize[None], S, out_stride=o)[0]

    kps = decode_keypoints(fused, inst, 2, confidence=conf, vector=vec, stride=S, out_stride=o)
    assert kps.shape == (2, 17, 3) and kps.dtype == torch.float32
    k = kps.numpy()
    np.testing.assert_allclose(k[0, lw], [32.0, 40.0, 0.8], atol=1.0)
    assert k[1, lw, 2] == 0 and np.isnan(k[1, lw, :2]).all()
    assert (k[:, nose, 2] == 0).all() and np.isnan(k[:, nose, :2]).all()
    assert (k[:, rk, 2] == 0).all()
    np.testing.assert_allclose(k[1, la], [112.0, 96.0, 0.9], atol=1.0)
    assert k[0, la, 2] == 0
    present = k[..., 2] > 0
    assert present.sum() == 2  # one per type and player, nothing else
    assert np.isnan(k[~present][:, :2]).all()

    # Without the raw confidences the score is the fused value (clipped to 1), a sum of votes: the four
    # cells at 0.08 now add up to a kept knee.
    kf = decode_keypoints(fused, inst, 2, out_stride=o).numpy()
    assert kf[1, rk, 2] == pytest.approx(4 * 0.08, abs=1e-5)
    assert kf[0, lw, 2] == 1.0 and kf[1, la, 2] == 1.0 and kf[1, nose, 2] == 0
    np.testing.assert_allclose(kf[1, la, :2], [112.0, 96.0], atol=1.0)


def test_vote_scores():
    conf = torch.full((2, h, w), 0.001)
    vec = torch.zeros(4, h, w)
    plant_keypoint(conf, vec, 50.0, 60.0, 0.7, field=1)
    pts = torch.tensor([[[50.0, 60.0], [50.0, 60.0]], [[55.0, 60.0], [70.0, 60.0]]])
    sc = vote_scores(pts, conf, vec, S, radius=8.0).numpy()
    np.testing.assert_allclose(sc, [[0.0, 0.7], [0.0, 0.0]], atol=1e-6)


# --------------------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------------------


def _check_well_formed(d: Decoded, height: int, width: int, stride: int) -> None:
    p = d.scores.shape[0]
    assert d.boxes.shape == (p, 4) and d.boxes.dtype == np.float32
    assert d.scores.dtype == np.float32 and ((d.scores >= 0) & (d.scores <= 1)).all()
    assert (np.diff(d.scores) <= 1e-7).all()
    assert d.classes.shape == (p,) and d.classes.dtype == np.int64
    assert ((d.classes >= 0) & (d.classes < len(PERSON_CLASSES))).all()
    assert d.class_probs.shape == (p, 3) and d.class_probs.dtype == np.float32
    np.testing.assert_allclose(d.class_probs.sum(1), 1.0, atol=1e-5)
    assert d.centres.shape == (p, 2) and d.centres.dtype == np.float32
    assert (d.boxes[:, 2:] >= d.boxes[:, :2]).all()
    assert d.keypoints.shape == (p, 17, 3) and d.keypoints.dtype == np.float32
    present = d.keypoints[..., 2] > 0
    assert np.isfinite(d.keypoints[present]).all() and np.isnan(d.keypoints[~present][:, :2]).all()
    assert (d.keypoints[..., 2] <= 1).all()
    assert d.masks.dtype == np.int16
    assert d.masks.shape == (math.ceil(height / stride), math.ceil(width / stride)) and d.mask_stride == stride
    assert d.masks.min() >= 0 and d.masks.max() <= p
    assert d.ball is None or (d.ball.shape == (3,) and d.ball.dtype == np.float32 and 0 <= d.ball[2] <= 1)
    assert d.image_size == (height, width)


@pytest.mark.parametrize("height,width,out_stride", [(H, W, 4), (H, W, 2), (120, 150, 4)])
def test_decode_random_network(height, width, out_stride):
    torch.manual_seed(0)
    net = DeepSportLabNet().eval()
    with torch.inference_mode():
        outputs = net(torch.randn(2, 3, height, width))
    res = decode(outputs, DecodeParams(out_stride=out_stride))
    assert len(res) == 2
    for d in res:
        _check_well_formed(d, height, width, out_stride)
    assert sum(len(d.scores) for d in res) > 0  # untrained: confidences ~0.5 everywhere, so players are found


@pytest.mark.parametrize("height,width,out_stride", [(H, W, 4), (120, 150, 4), (120, 150, 2)])
def test_decoding_on_the_grid_matches_the_full_size_maps(height, width, out_stride):
    """Inference asks the network for the segmentation maps at the decoders' grid only; masks, players, ball and
    keypoints must come out as from the full-size maps."""
    from matchflow.models.detection.network import upsample_at_grid

    torch.manual_seed(1)
    small = torch.randn(2, 3, math.ceil(height / 4), math.ceil(width / 4))
    dense = torch.nn.functional.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    grid = upsample_at_grid(small, (height, width), out_stride)
    torch.testing.assert_close(grid, dense[..., ::out_stride, ::out_stride], rtol=0, atol=1e-5)

    net = DeepSportLabNet().eval()
    x = torch.randn(2, 3, height, width)
    with torch.inference_mode():
        sem = net(x)["semantic"]
        others = torch.cat([sem[:, :1], sem[:, 2:]], 1).amax(1)
        net.segmentation.semantic[-1].bias[1] += float((others - sem[:, 1]).median())  # about half are "player"
        full, on_grid = net(x), net(x, grid_stride=out_stride)
    assert on_grid["semantic"].shape[-2:] == (math.ceil(height / out_stride), math.ceil(width / out_stride))
    params = DecodeParams(out_stride=out_stride)
    a, b = decode(full, params), decode(on_grid, params, image_size=(height, width))
    assert sum(len(d.scores) for d in a) > 0 and sum(int((d.masks > 0).sum()) for d in a) > 0
    for da, db in zip(a, b):
        assert db.image_size == da.image_size
        np.testing.assert_array_equal(db.masks, da.masks)
        np.testing.assert_allclose(db.boxes, da.boxes)
        np.testing.assert_allclose(db.keypoints, da.keypoints)
    with pytest.raises(ValueError, match="fits neither"):
        decode(on_grid, params, image_size=(height + 40, width))


def test_decode_planted_scene():
    out = blank_outputs(2)
    b = 0
    conf = torch.full((1, h, w), 0.0)
    for x, y, p, bw, bh, c in PLAYERS:
        rows, cols = plant_keypoint(conf, out["player_vector"][b], x, y, p)
        out["player_box_log_wh"][b, 0, rows, cols] = math.log(bw / S)
        out["player_box_log_wh"][b, 1, rows, cols] = math.log(bh / S)
        out["player_class_logits"][b, c, rows, cols] = 4.0
    out["player_confidence"][b] = torch.where(conf > 0, torch.logit(conf.clamp(1e-6, 1 - 1e-6)), -10.0)
    bconf = torch.zeros(1, h, w)
    plant_keypoint(bconf, out["ball_vector"][b], 140.0, 20.0, 0.85)
    out["ball_confidence"][b] = torch.where(bconf > 0, torch.logit(bconf.clamp(1e-6, 1 - 1e-6)), -10.0)
    # player masks: two boxes, offsets pointing to their centres
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    for x, y, _p, bw, bh, _c in PLAYERS:
        r = (slice(int(y - bh / 2), int(y + bh / 2)), slice(int(x - bw / 2), int(x + bw / 2)))
        out["semantic"][b, 1][r] = 8.0
        out["offsets"][b, 0][r] = x - xs[r]
        out["offsets"][b, 1][r] = y - ys[r]
    pconf = torch.zeros(17, h, w)
    lw = COCO_KEYPOINTS.index("left_wrist")
    plant_keypoint(pconf, out["parts_vector"][b], 44.0, 52.0, 0.75, field=lw, block=2)  # in player (40, 48)
    out["parts_confidence"][b] = torch.where(pconf > 0, torch.logit(pconf.clamp(1e-6, 1 - 1e-6)), -10.0)

    res = decode(out)
    d = res[0]
    _check_well_formed(d, H, W, 4)
    assert d.scores.shape == (2,)
    np.testing.assert_allclose(d.scores, [0.9, 0.7], atol=1e-5)
    np.testing.assert_allclose(d.centres, [[112.0, 72.0], [40.0, 48.0]], atol=2.0)
    np.testing.assert_allclose(d.boxes[1], [28.0, 16.0, 52.0, 80.0], atol=2.0)
    assert d.classes.tolist() == [PLAYERS[1][5], PLAYERS[0][5]]
    assert d.ball is not None
    np.testing.assert_allclose(d.ball, [140.0, 20.0, 0.85], atol=4.0)
    assert d.ball[2] == pytest.approx(0.85, abs=1e-5)
    np.testing.assert_allclose(d.keypoints[1, lw], [44.0, 52.0, 0.75], atol=1.0)
    assert (d.keypoints[0, :, 2] == 0).all() and (d.keypoints[1, :, 2] > 0).sum() == 1
    # masks: the box of player (40, 48) is label 2 (second by score), that of (112, 72) label 1
    assert (d.masks[16 // 4: 80 // 4, 28 // 4: 52 // 4] == 2).all()
    assert (d.masks[52 // 4: 92 // 4, 104 // 4: 120 // 4] == 1).all()
    assert (d.masks[:, 132 // 4:] == 0).all()
    # the second image is empty
    e = res[1]
    _check_well_formed(e, H, W, 4)
    assert e.scores.shape == (0,) and e.ball is None and (e.masks == 0).all() and e.keypoints.shape == (0, 17, 3)
