"""Scoring the detector on a labelled split (``matchflow eval detector``).

Runs :class:`~matchflow.models.detection.detector.Detector` on every frame of the split (native resolution in,
native pixels out) and pools the metrics of :mod:`matchflow.models.detection.metric` over the split:

- ``ap50_people``: box AP at IoU 0.5 of all people (player, goalkeeper, referee together);
- ``ap50_per_class`` and ``class_accuracy`` (share of matched boxes with the right class);
- ``ball_bdq``: ROC AUC of the top-1 ball per frame (the decoder's ball threshold is set to 0 here so that
  every frame has a scored candidate, as the ROC needs); ``ball_bdq_absent_negatives``: the same with
  the usual ROC negatives (frames without a ball);
- with instance masks: ``psq``, ``pdq``; with joints: ``oks_ap``, ``oks_ar`` (COCO definition);
- ``frames``, ``people``, ``balls`` counted, and ``seconds`` of inference.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from matchflow.models.detection import metric as dm
from matchflow.models.detection.detector import Detector
from matchflow.models.detection.network import PERSON_CLASSES
from matchflow.training.detection.data import DetectionSample, read_yolo_split

__all__ = ["evaluate_detector", "validation_metrics", "read_split"]


def read_split(kind: str, root: str | Path, split: str = "valid") -> Iterable[DetectionSample]:
    """Samples of a labelled split: ``kind`` ``yolo`` (Roboflow root and split) or ``synthetic`` (a
    ``matchflow synth-detection`` folder; ``split`` is ignored)."""
    if kind == "yolo":
        return read_yolo_split(root, split)
    if kind == "synthetic":
        from matchflow.synth.detection import read_detection_dir

        return read_detection_dir(root)
    raise ValueError(f"unknown split kind {kind!r}; expected 'yolo' or 'synthetic'")


def _mask_to_native(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.int32), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(np.int32)


def evaluate_detector(
    detector: Detector, samples: Iterable[DetectionSample], progress: Callable[[str], None] | None = None
) -> dict:
    """Pooled metrics of ``detector`` on ``samples`` (see the module docstring)."""
    params = dataclasses.replace(detector.params, ball_threshold=0.0)
    saved, detector.params = detector.params, params
    pb, ps, pc, gb, gc = [], [], [], [], []
    ball_xy, ball_s, ball_gt, ball_r = [], [], [], []
    pred_masks, gt_masks, pred_kp, gt_kp = [], [], [], []
    n = 0
    seconds = 0.0
    try:
        for s in samples:
            t0 = time.perf_counter()
            d = detector.detect(s.image[None])[0]
            seconds += time.perf_counter() - t0
            n += 1
            pb.append(d.boxes)
            ps.append(d.scores)
            pc.append(d.classes)
            gb.append(s.boxes)
            gc.append(s.classes)
            if d.ball is None:
                ball_xy.append((np.nan, np.nan))
                ball_s.append(np.nan)
            else:
                ball_xy.append(tuple(d.ball[:2]))
                ball_s.append(float(d.ball[2]))
            if len(s.balls):
                ball_gt.append(tuple(s.balls[0, :2]))
                ball_r.append(float(max(s.balls[0, 2], 2.0)))
            else:
                ball_gt.append((np.nan, np.nan))
                ball_r.append(2.0)
            if s.instances is not None:
                gt_masks.append(np.where(s.instances > 0, s.instances, 0))
                pred_masks.append(_mask_to_native(d.masks, s.image.shape[:2]))
            if s.keypoints is not None:
                gt_kp.append(s.keypoints)
                pred_kp.append(d.keypoints)
            if progress and n % 10 == 0:
                progress(f"{n} frames")
    finally:
        detector.params = saved
    if n == 0:
        raise ValueError("no frames to evaluate")
    out: dict = {
        "frames": n,
        "people": int(sum(len(b) for b in gb)),
        "balls": int(sum(np.isfinite(g[0]) for g in ball_gt)),
        "ap50_people": dm.box_ap50(pb, ps, gb),
        "ap50_per_class": {PERSON_CLASSES[int(cast(int, k))]: v for k, v in dm.box_ap_per_class(pb, ps, pc, gb, gc).items()},
        "class_accuracy": dm.class_accuracy(pb, ps, pc, gb, gc),
        "ball_bdq": dm.ball_bdq(np.array(ball_xy), np.array(ball_s), np.array(ball_gt), np.array(ball_r)),
        "ball_bdq_absent_negatives": dm.ball_bdq(
            np.array(ball_xy), np.array(ball_s), np.array(ball_gt), np.array(ball_r), negatives="ball_absent"
        ),
        "seconds": seconds,
        "frames_per_second": n / seconds if seconds else None,
    }
    if gt_masks:
        out["psq"], out["pdq"] = dm.panoptic_sq_dq(pred_masks, gt_masks)
    if gt_kp:
        out["oks_ap"], out["oks_ar"] = dm.keypoint_ap_ar(pred_kp, gt_kp)
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def validation_metrics(weights: str | Path, sources: dict[str, str], backbone: str = "mobilenetv2",
                       device: str = "cpu", input_height: int = 540) -> dict:
    """Metrics of ``weights`` on the ``valid`` split of each Roboflow source (``soccer``, ``basketball``)."""
    det = Detector(weights, backbone=backbone, device=device, input_height=input_height)
    out = {}
    for name, root in sources.items():
        if name in ("soccer", "basketball") and (Path(root) / "valid").is_dir():
            out[name] = evaluate_detector(det, read_split("yolo", root, "valid"))
    return out
