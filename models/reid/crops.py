"""Person crops for re-identification: cut from a frame by box, letterboxed to the model's input, and the
body-part confidence maps of their keypoints.

Coordinates: boxes and keypoints in the frame's pixels (OpenCV convention, x right, y down); a crop's transform
maps them to the crop's pixels, ``u = x * sx + dx``, ``v = y * sy + dy``. Letterboxing keeps the aspect
ratio, centres the box and fills the rest with the ImageNet mean colour (0 after normalisation).
"""

from __future__ import annotations

import cv2
import numpy as np

from matchflow.models.preprocessing import IMAGENET_MEAN

__all__ = ["cut_crops", "part_heatmaps", "PAD_COLOUR"]

#: The letterbox fill: ImageNet's mean colour (RGB, 0..255).
PAD_COLOUR = tuple(int(round(255 * m)) for m in IMAGENET_MEAN)


def cut_crops(image: np.ndarray, boxes: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Crops (n, h, w, 3) uint8 of ``image`` (H, W, 3) inside ``boxes`` (n, 4: x1, y1, x2, y2, pixels), each
    scaled to fit ``size`` = (h, w) and centred; and their transforms (n, 4): sx, sy, dx, dy
    (``u = x * sx + dx``, ``v = y * sy + dy``).

    Boxes are widened to whole pixels and clipped to the image; a box of no area gives a crop of the pad colour.
    """
    h, w = size
    n = len(boxes)
    crops = np.empty((n, h, w, 3), np.uint8)
    crops[:] = PAD_COLOUR
    transforms = np.zeros((n, 4), np.float64)
    height, width = image.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        if not np.all(np.isfinite([x1, y1, x2, y2])):
            continue
        xa, xb = (int(v) for v in np.clip([np.floor(x1), np.ceil(x2)], 0, width))
        ya, yb = (int(v) for v in np.clip([np.floor(y1), np.ceil(y2)], 0, height))
        rw, rh = xb - xa, yb - ya
        if rw < 1 or rh < 1:
            continue
        s = min(w / rw, h / rh)
        nw, nh = min(w, max(1, round(rw * s))), min(h, max(1, round(rh * s)))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        ox, oy = (w - nw) // 2, (h - nh) // 2
        crops[i, oy:oy + nh, ox:ox + nw] = cv2.resize(image[ya:yb, xa:xb], (nw, nh), interpolation=interp)
        sx, sy = nw / rw, nh / rh
        transforms[i] = (sx, sy, ox - xa * sx, oy - ya * sy)
    return crops, transforms


def part_heatmaps(
    keypoints: np.ndarray | None, transforms: np.ndarray, map_size: tuple[int, int], stride: int = 16,
    sigma: float = 0.75,
) -> np.ndarray:
    """Confidence maps (n, 17, h, w) float32 of each crop's keypoints: a Gaussian of ``sigma`` cells at each
    keypoint, scaled by its score; a missing keypoint (NaN or score 0) gives an empty map.

    ``keypoints``: (n, 17, 3) x, y, score in frame pixels (None: all empty); ``transforms`` from :func:`cut_crops`;
    ``map_size`` = (h, w) cells of ``stride`` crop pixels.
    """
    h, w = map_size
    n = len(transforms)
    out = np.zeros((n, 17, h, w), np.float32)
    if keypoints is None or n == 0:
        return out
    kp = np.asarray(keypoints, np.float64).reshape(n, 17, 3)
    sx, sy, dx, dy = (transforms[:, i:i + 1] for i in range(4))
    cx = (kp[..., 0] * sx + dx) / stride - 0.5  # cell coordinates of cell centres
    cy = (kp[..., 1] * sy + dy) / stride - 0.5
    score = np.nan_to_num(kp[..., 2], nan=0.0)
    ok = np.isfinite(cx) & np.isfinite(cy) & (score > 0)
    gx, gy = np.arange(w)[None, None, None, :], np.arange(h)[None, None, :, None]
    cxm, cym = np.where(ok, cx, -1e3)[..., None, None], np.where(ok, cy, -1e3)[..., None, None]
    g = np.exp(-((gx - cxm) ** 2 + (gy - cym) ** 2) / (2 * sigma**2))
    out[:] = (g * np.where(ok, np.clip(score, 0, 1), 0.0)[..., None, None]).astype(np.float32)
    return out
