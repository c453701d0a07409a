"""Calibration on real broadcast frames without ground truth: overlays of the projected pitch lines.

Calibrates every image of a folder (default: the 38 Bundesliga frames of the soccer-players-detection valid
split, Roboflow, CC BY 4.0) one by one (no temporal following: they are separate frames), writes an overlay per
frame (observed line pixels in magenta, the projected IFAB markings in red, the score in the corner) at 960 px
wide under ``--out``, and a CSV of scores. Look at the overlays to judge whether the lines land on the real ones.

    .venv/bin/python bench/calibration_real.py [--images DIR] [--out bench/overlays] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/soccer-players-detection/valid/images"


def main() -> None:
    from matchflow.models.calibration.calibrator import Calibrator
    from matchflow.models.geometry.pitch import PitchModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default=str(DEFAULT))
    ap.add_argument("--out", default="bench/overlays")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    paths = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        sys.exit(f"no images in {args.images}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cal, pitch = Calibrator(), PitchModel()
    rows = []
    for i, p in enumerate(paths):
        bgr = cv2.imread(str(p))
        if bgr is None:
            print(f"{p}: not an image, skipped", file=sys.stderr)
            continue
        cal.reset()
        t0 = time.perf_counter()
        r = cal.calibrate(np.ascontiguousarray(bgr[:, :, ::-1]))
        dt = time.perf_counter() - t0
        obs = cal.segmenter.segment(np.ascontiguousarray(bgr[:, :, ::-1]))
        vis = bgr.copy()
        lines = cv2.resize(obs.lines.astype(np.uint8), (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
        vis[lines > 0] = (255, 0, 255)
        if r.valid:
            mask = pitch.line_mask(r.homography_inv, (bgr.shape[1], bgr.shape[0]), thickness_px=3)
            vis[mask > 0] = (0, 0, 255)
        label = f"score {r.score:.2f} {'valid' if r.valid else 'INVALID'}"
        cv2.putText(vis, label, (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 255, 255), 3, cv2.LINE_AA)
        small = cv2.resize(vis, (960, int(960 * vis.shape[0] / vis.shape[1])), interpolation=cv2.INTER_AREA)
        name = f"{i:02d}.jpg"
        cv2.imwrite(str(out / name), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        rows.append({"overlay": name, "image": p.name, "valid": r.valid, "score": round(r.score, 3),
                     "seconds": round(dt, 3), **{k: r.details.get(k) for k in ("precision", "recall", "field_iou", "native_fit", "native_inliers")}})
        print(f"{name} {p.name[:40]} valid={r.valid} score={r.score:.3f} {dt:.2f}s", flush=True)
    with open(out / "scores.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"{sum(r['valid'] for r in rows)}/{len(rows)} valid; overlays in {out}")
    sys.stdout.flush()
    os._exit(0)  # decoder threads of other libraries must not hold up the exit


if __name__ == "__main__":
    main()
