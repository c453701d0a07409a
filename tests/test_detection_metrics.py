import math

import numpy as np
import pytest

from matchflow.models.detection.metric import (
    COCO_SIGMAS,
    OKS_THRESHOLDS,
    ball_bdq,
    box_ap50,
    box_ap_per_class,
    box_iou,
    class_accuracy,
    keypoint_ap_ar,
    keypoints_box_area,
    mask_iou,
    oks,
    panoptic_sq_dq,
)

# ------------------------------------------------------------------------------------------------------ boxes


def _box(x: float, y: float, w: float = 10.0, h: float = 20.0) -> list[float]:
    return [x, y, x + w, y + h]


def test_box_iou_known_values():
    iou = box_iou([_box(0, 0, 10, 10)], [_box(0, 0, 10, 10), _box(5, 0, 10, 10), _box(20, 20), [0, 0, 0, 0]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), [_box(0, 0)]).shape == (0, 1)


def test_box_perfect_predictions_score_one():
    gts = [np.array([_box(0, 0), _box(50, 0), _box(100, 30)]), np.array([_box(7, 7)])]
    classes = [np.array(["player", "referee", "player"]), np.array(["goalkeeper"])]
    scores = [np.array([0.9, 0.8, 0.7]), np.array([0.6])]
    assert box_ap50(gts, scores, gts) == 1.0
    assert box_ap_per_class(gts, scores, classes, gts, classes) == {"goalkeeper": 1.0, "player": 1.0, "referee": 1.0}
    assert class_accuracy(gts, scores, classes, gts, classes) == 1.0


def test_box_ap_known_pr_curve():
    # 3 ground truths; predictions in score order: TP, FP, TP, TP.
    # precision 1, 1/2, 2/3, 3/4 at recall 1/3, 1/3, 2/3, 1; the interpolated precision (max at any recall >=)
    # is 1 on (0, 1/3], 3/4 on (1/3, 2/3] and 3/4 on (2/3, 1]: AP = 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6.
    gt = np.array([_box(0, 0), _box(50, 0), _box(100, 0)])
    pred = np.array([_box(0, 0), _box(300, 300), _box(51, 1), _box(100, 2)])
    assert box_ap50([pred], [[0.9, 0.8, 0.7, 0.6]], [gt]) == pytest.approx(5 / 6)
    # the same boxes split over images, listed in any order: the curve is pooled by score
    assert box_ap50(
        [pred[2:], pred[:2]], [[0.7, 0.6], [0.9, 0.8]], [gt[1:], gt[:1]]
    ) == pytest.approx(5 / 6)


def test_box_ap_false_positive_with_highest_score():
    # FP then TP with one ground truth: precision 0, 1/2 at recall 0, 1 -> AP = 1 * 1/2
    gt = [np.array([_box(0, 0)])]
    assert box_ap50([np.array([_box(200, 0), _box(0, 0)])], [[0.9, 0.8]], gt) == pytest.approx(0.5)
    # a second detection of a matched ground truth is a false positive, here after full recall: AP stays 1
    assert box_ap50([np.array([_box(0, 0), _box(1, 0)])], [[0.9, 0.8]], gt) == 1.0
    # ... and at higher score than the true positive of another ground truth, it costs precision
    gt2 = [np.array([_box(0, 0), _box(100, 0)])]
    pred = np.array([_box(0, 0), _box(1, 0), _box(100, 0)])
    # TP, FP, TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    assert box_ap50([pred], [[0.9, 0.8, 0.7]], gt2) == pytest.approx(5 / 6)


def test_box_ap_empty_and_threshold():
    gt = [np.array([_box(0, 0, 10, 10)])]
    assert box_ap50([np.zeros((0, 4))], [np.zeros(0)], gt) == 0.0
    assert math.isnan(box_ap50([], [], []))  # no ground truth
    assert math.isnan(box_ap50([np.array([_box(0, 0)])], [[0.5]], [np.zeros((0, 4))]))
    half = [np.array([[0.0, 0.0, 10.0, 5.0]])]  # IoU exactly 0.5
    assert box_ap50(half, [[0.5]], gt) == 1.0
    assert box_ap50(half, [[0.5]], gt, iou_threshold=0.51) == 0.0


def test_box_ap_per_class_and_class_accuracy():
    gt = [np.array([_box(0, 0), _box(50, 0), _box(100, 0)])]
    gt_cls = [np.array(["player", "player", "referee"])]
    pred = [np.array([_box(0, 0), _box(50, 0), _box(100, 0)])]
    pred_cls = [np.array(["player", "referee", "referee"])]
    scores = [np.array([0.9, 0.8, 0.7])]
    # player: 2 gts, one TP -> AP 1/2. referee: FP (on a player) at 0.8, then TP -> AP 1/2.
    ap = box_ap_per_class(pred, scores, pred_cls, gt, gt_cls)
    assert ap == pytest.approx({"player": 0.5, "referee": 0.5})
    # class-agnostic matching: all three matched, two with the right class
    assert class_accuracy(pred, scores, pred_cls, gt, gt_cls) == pytest.approx(2 / 3)
    # integer labels, a class without ground truth is not scored, no match -> NaN accuracy
    ap_int = box_ap_per_class(pred, scores, [np.array([0, 1, 2])], gt, [np.array([0, 0, 1])])
    assert ap_int == pytest.approx({0: 0.5, 1: 0.0})
    assert math.isnan(class_accuracy([np.zeros((0, 4))], [[]], [[]], gt, gt_cls))


def test_box_lists_must_agree():
    with pytest.raises(ValueError):
        box_ap50([np.zeros((0, 4))], [], [np.zeros((0, 4))])
    with pytest.raises(ValueError):
        box_ap50([np.array([_box(0, 0)])], [[0.1, 0.2]], [np.zeros((0, 4))])


# ------------------------------------------------------------------------------------------------------- ball

NAN2 = [np.nan, np.nan]


def _ball_set(ball_scores: list[float], empty_scores: list[float]):
    """Images with a ball found exactly (scores ``ball_scores``), then images without a ball where the detector
    still fires (scores ``empty_scores``)."""
    gt = [[100.0 + i, 50.0] for i in range(len(ball_scores))] + [NAN2] * len(empty_scores)
    pred = [[100.0 + i, 51.0] for i in range(len(ball_scores))] + [[300.0, 300.0]] * len(empty_scores)
    return np.array(pred), np.array(ball_scores + empty_scores), np.array(gt)


def test_bdq_separated_reversed_tied():
    sep = _ball_set([0.9, 0.8, 0.7, 0.6], [0.4, 0.3, 0.2, 0.1])
    rev = _ball_set([0.4, 0.3, 0.2, 0.1], [0.9, 0.8, 0.7, 0.6])
    tie = _ball_set([0.5] * 4, [0.5] * 4)
    # usual ROC (negatives: the images without a ball)
    assert ball_bdq(*sep, radius=5.0, negatives="ball_absent") == 1.0
    assert ball_bdq(*rev, radius=5.0, negatives="ball_absent") == 0.0
    assert ball_bdq(*tie, radius=5.0, negatives="ball_absent") == 0.5
    # the paper's FPr is over all 8 images; the 4 ball images, found, never hold a false positive.
    assert ball_bdq(*sep, radius=5.0) == 1.0
    # reversed: the curve rises to FPr = 4/8 at TPr 0, then to TPr 1, then flat: area 1/2
    # (rank view: each found ball beats the 4 negatives without false positive, 16 of 32 pairs)
    assert ball_bdq(*rev, radius=5.0) == 0.5
    # tied: one diagonal step to (1/2, 1), area 1/4, then flat: 1/4 + 1/2 = 3/4
    assert ball_bdq(*tie, radius=5.0) == 0.75


def test_bdq_distance_threshold_and_missing():
    gt = np.array([[10.0, 10.0], NAN2])
    pred = np.array([[13.0, 14.0], [0.0, 0.0]])  # 5 px from the ball
    scores = np.array([0.9, 0.1])
    for negatives in ("all_images", "ball_absent"):
        assert ball_bdq(pred, scores, gt, radius=5.0, negatives=negatives) == 1.0
        assert ball_bdq(pred, scores, gt, radius=[4.9, 4.9], negatives=negatives) == 0.0  # missed: scores 0
        # no prediction at all: nothing is ever found
        assert ball_bdq(np.full((2, 2), np.nan), [np.nan, np.nan], gt, radius=5.0, negatives=negatives) == 0.0
    # an off-ball prediction in a ball image is a false positive for the paper, only a miss otherwise
    gt3 = np.array([[10.0, 10.0], [10.0, 10.0], NAN2])
    pred3 = np.array([[10.0, 10.0], [90.0, 90.0], NAN2])
    scores3 = np.array([0.5, 0.9, np.nan])
    # paper: P = 2, N = 3; one found ball (0.5) vs false positives {0.9} and two images without: 2 wins of 6
    assert ball_bdq(pred3, scores3, gt3, radius=5.0) == pytest.approx(2 / 6)
    # usual: P = 2, N = 1 (no false positive there): the found ball wins its one pair, the missed one scores 0
    assert ball_bdq(pred3, scores3, gt3, radius=5.0, negatives="ball_absent") == pytest.approx(1 / 2)
    assert math.isnan(ball_bdq([[0.0, 0.0]], [0.3], [NAN2], radius=5.0))  # no ball annotated
    with pytest.raises(ValueError):
        ball_bdq(pred, scores, gt, radius=5.0, negatives="all")


def _roc_area(pred, scores, gt, radius, negatives):
    """The paper's curve, built point by point: TPr(tau), FPr(tau) for every score tau, joined by straight
    lines, flat from the last point to FPr = 1; area by the trapezoid rule."""
    has_ball = np.isfinite(gt).all(axis=1)
    has_pred = np.isfinite(scores)
    hit = has_pred & has_ball & (np.linalg.norm(pred - gt, axis=1) <= radius)
    if negatives == "all_images":
        fp, n_neg = has_pred & ~hit, len(scores)
    else:
        fp, n_neg = has_pred & ~has_ball, np.sum(~has_ball)
    pts = [(0.0, 0.0)]
    for tau in sorted(set(scores[has_pred]), reverse=True):
        pts.append((np.sum(fp & (scores >= tau)) / n_neg, np.sum(hit & (scores >= tau)) / np.sum(has_ball)))
    pts.append((1.0, pts[-1][1]))
    x, y = np.array(pts).T
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


@pytest.mark.parametrize("negatives", ["all_images", "ball_absent"])
def test_bdq_equals_area_under_the_paper_curve(negatives):
    rng = np.random.default_rng(3)
    n = 300
    gt = rng.uniform(0, 1000, (n, 2))
    gt[rng.random(n) < 0.3] = np.nan
    pred = gt + rng.normal(0, 6, (n, 2))
    far = rng.random(n) < 0.2
    pred[far] = rng.uniform(0, 1000, (far.sum(), 2))
    pred[np.isnan(pred)] = rng.uniform(0, 1000, (np.isnan(pred).sum(),))
    scores = np.round(rng.random(n), 1)  # many ties
    scores[rng.random(n) < 0.1] = np.nan
    got = ball_bdq(pred, scores, gt, radius=8.0, negatives=negatives)
    assert got == pytest.approx(_roc_area(pred, scores, gt, 8.0, negatives), abs=1e-12)
    assert 0.0 < got < 1.0


# ------------------------------------------------------------------------------------------------------ masks


def _masks():
    gt = np.zeros((4, 6), dtype=np.int32)
    gt[0:2, 0:2] = 1  # 4 px
    gt[0:2, 4:6] = 2  # 4 px
    pred = np.zeros_like(gt)
    pred[0:2, 0:2] = 5
    pred[1, 1] = 0
    pred[2, 0] = 5  # 3 px of gt 1 + 1 outside: IoU 3 / 5 = 0.6
    pred[0, 4:6] = 7  # 2 px of gt 2: IoU 2 / 4 = 0.5, not a match (IoU must be > 0.5)
    return pred, gt


def test_mask_iou_known_values():
    pred, gt = _masks()
    iou, g_ids, p_ids = mask_iou(pred, gt)
    assert g_ids.tolist() == [1, 2] and p_ids.tolist() == [5, 7]
    np.testing.assert_allclose(iou, [[0.6, 0.0], [0.0, 0.5]])


def test_panoptic_sq_dq_known_values():
    pred, gt = _masks()
    # TP = 1 (IoU 0.6), FP = 1 (pred 7), FN = 1 (gt 2): pSQ = 0.6, pDQ = 1 / (1 + 1/2 + 1/2) = 1/2
    sq, dq = panoptic_sq_dq([pred], [gt])
    assert sq == pytest.approx(0.6) and dq == pytest.approx(0.5)
    # pooled with a perfect image of two players (ids relabelled) and an extra false positive:
    # TP 3 (IoU 0.6, 1, 1), FP 2, FN 1 -> pSQ = 2.6 / 3, pDQ = 2 * 3 / (5 + 4) = 2/3
    gt2 = np.zeros((5, 5), dtype=np.uint16)
    gt2[0:2, 0:2], gt2[3:5, 3:5] = 3, 4
    pred2 = np.where(gt2 > 0, gt2 + 10, 0)
    pred2[4, 0] = 99
    sq, dq = panoptic_sq_dq([pred, pred2], [gt, gt2])
    assert sq == pytest.approx(2.6 / 3) and dq == pytest.approx(2 / 3)


def test_panoptic_perfect_and_empty():
    _, gt = _masks()
    assert panoptic_sq_dq([gt, gt * 3], [gt, gt]) == (1.0, 1.0)
    assert panoptic_sq_dq([np.zeros_like(gt)], [gt]) == (0.0, 0.0)
    assert all(math.isnan(v) for v in panoptic_sq_dq([np.zeros((3, 3))], [np.zeros((3, 3))]))
    with pytest.raises(ValueError):
        panoptic_sq_dq([np.zeros((3, 3))], [np.zeros((3, 4))])


# ------------------------------------------------------------------------------------------------------- pose


def _skeleton(x0: float, y0: float, rng: np.random.Generator) -> np.ndarray:
    k = np.zeros((17, 3))
    k[:, 0] = x0 + rng.uniform(0, 40, 17)
    k[:, 1] = y0 + rng.uniform(0, 100, 17)
    k[:, 2] = 2
    return k


def _displaced(gt: np.ndarray, area: float, target: float) -> np.ndarray:
    """A prediction whose every keypoint term exp(-d^2 / (2 s^2 kappa^2)) equals ``target``: OKS = target."""
    d = np.sqrt(-2 * area * (2 * COCO_SIGMAS) ** 2 * np.log(target))
    pred = gt.copy()
    pred[:, 0] += d
    pred[:, 2] = 0.8
    return pred


def test_oks_identical_is_one_and_shapes():
    rng = np.random.default_rng(0)
    g = np.stack([_skeleton(0, 0, rng), _skeleton(200, 0, rng)])
    sim = oks(g, g, [4000.0, 5000.0])
    assert sim.shape == (2, 2)
    assert sim[0, 0] == pytest.approx(1.0) and sim[1, 1] == pytest.approx(1.0)
    assert sim[0, 1] < 1e-6 and sim[1, 0] < 1e-6
    assert oks(g[0], g[0], 4000.0).shape == (1, 1)
    assert oks(_displaced(g[0], 4000.0, 0.72), g[0], 4000.0)[0, 0] == pytest.approx(0.72)


def test_oks_single_keypoint_formula():
    k, area = 9, 900.0  # left wrist
    gt = np.zeros((17, 3))
    gt[:, :2] = 100.0
    gt[k, 2] = 2  # the only labelled keypoint
    values = []
    for d in [0.0, 1.0, 3.0, 5.0, 10.0, 30.0]:
        pred = gt.copy()
        pred[k, :2] += [0.6 * d, 0.8 * d]
        pred[(k + 1) % 17, :2] += 500.0  # unlabelled keypoints do not count
        got = oks(pred, gt, area)[0, 0]
        assert got == pytest.approx(math.exp(-(d**2) / (2 * area * (2 * COCO_SIGMAS[k]) ** 2)), rel=1e-12)
        values.append(got)
    assert values[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(values, values[1:]))
    # no labelled keypoint: 0; a non-finite predicted point contributes 0
    assert oks(gt, np.zeros((17, 3)), area)[0, 0] == 0.0
    nan_pred = gt.copy()
    nan_pred[k, 0] = np.nan
    assert oks(nan_pred, gt, area)[0, 0] == 0.0


def test_keypoints_box_area():
    k = np.zeros((17, 3))
    k[0] = [10, 20, 2]
    k[1] = [40, 60, 1]
    k[2] = [500, 500, 0]  # not labelled
    np.testing.assert_allclose(keypoints_box_area(np.stack([k, np.zeros((17, 3))])), [30 * 40, 0.0])


@pytest.mark.parametrize("definition", ["coco", "paper"])
def test_keypoint_ap_ar_perfect(definition):
    rng = np.random.default_rng(1)
    gts = [np.stack([_skeleton(0, 0, rng), _skeleton(100, 0, rng)]), _skeleton(50, 50, rng)[None]]
    preds = [g.copy() for g in gts]
    for p in preds:
        p[..., 2] = rng.uniform(0.2, 1.0, p.shape[:2])
    assert keypoint_ap_ar(preds, gts, definition=definition) == (1.0, 1.0)
    assert keypoint_ap_ar(preds, gts, [[4000, 4000], [4000]], definition=definition) == (1.0, 1.0)


def test_keypoint_ap_ar_known_values():
    rng = np.random.default_rng(2)
    area = 4000.0
    g1, g2 = _skeleton(0, 0, rng), _skeleton(300, 0, rng)
    # OKS 0.72 for every prediction: a TP at thresholds 0.50 .. 0.70 (5 of 10) -> AP = AR = 1/2
    p = np.stack([_displaced(g1, area, 0.72), _displaced(g2, area, 0.72)])
    for definition in ("coco", "paper"):
        ap, ar = keypoint_ap_ar([p], [np.stack([g1, g2])], [[area, area]], definition=definition)
        assert ap == pytest.approx(0.5) and ar == pytest.approx(0.5)
    # one exact prediction, two ground truths: coco AP = area under (recall 1/2, precision 1) = 1/2,
    # AR = 1/2; the paper's precision |TP| / N_pred = 1
    one = g1[None].copy()
    assert keypoint_ap_ar([one], [np.stack([g1, g2])], [[area, area]]) == pytest.approx((0.5, 0.5))
    assert keypoint_ap_ar([one], [np.stack([g1, g2])], [[area, area]], definition="paper") == pytest.approx((1.0, 0.5))
    # a far false positive scored above an exact prediction, one ground truth: precision 0, 1/2 at recall 0, 1
    fp = g1.copy()
    fp[:, 0] += 500.0
    both = np.stack([fp, g1])
    assert keypoint_ap_ar([both], [g1[None]], [[area]], [[0.9, 0.8]]) == pytest.approx((0.5, 1.0))
    assert keypoint_ap_ar([both], [g1[None]], [[area]], [[0.9, 0.8]], definition="paper") == pytest.approx(
        (0.5, 1.0)
    )
    # default score = mean keypoint score: the FP has higher keypoint scores, so it ranks first
    both[0, :, 2], both[1, :, 2] = 0.9, 0.3
    assert keypoint_ap_ar([both], [g1[None]], [[area]])[0] == pytest.approx(0.5)
    assert keypoint_ap_ar([both], [g1[None]], [[area]], [[0.1, 0.8]])[0] == pytest.approx(1.0)


def test_keypoint_ap_ar_empty_and_ignored():
    rng = np.random.default_rng(4)
    g = _skeleton(0, 0, rng)[None]
    assert keypoint_ap_ar([np.zeros((0, 17, 3))], [g]) == (0.0, 0.0)
    assert all(math.isnan(v) for v in keypoint_ap_ar([g], [np.zeros((0, 17, 3))]))
    # a ground truth without labelled keypoints is left out: it is neither missed nor matchable
    unlabelled = np.zeros((1, 17, 3))
    assert keypoint_ap_ar([g], [np.concatenate([g, unlabelled])]) == (1.0, 1.0)
    assert len(OKS_THRESHOLDS) == 10 and OKS_THRESHOLDS[0] == 0.5 and OKS_THRESHOLDS[-1] == pytest.approx(0.95)
