"""Labelled frames for the detection network: one in-memory form for real and synthetic data.

:class:`DetectionSample` holds one RGB frame and what is known of it. Pixels follow OpenCV's convention
(x right, y down, the centre of the top-left pixel at (0, 0)) in the frame's own resolution. Fields that a
source does not label are None (Roboflow frames have boxes and the ball but no masks or joints), and the
training losses leave them out rather than treating them as negatives.

Readers:

- :func:`read_yolo_split`: a Roboflow YOLO split (``images/``, ``labels/`` of ``class cx cy w h``
  normalised rows, ``data.yaml`` naming the classes). Class names are mapped to :data:`PERSON_CLASSES`
  (player, goalkeeper, referee) and the ball; other classes (hoop, clock, scoreboard...) are dropped.
- synthetic renders with masks and joints are read by :func:`matchflow.synth.detection.read_detection_dir`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

__all__ = ["DetectionSample", "DatasetError", "YOLO_CLASS_MAP", "yolo_class_map", "read_yolo_split", "read_image_rgb"]

# Roboflow class names (lower-cased) -> index into PERSON_CLASSES, or "ball"; absent names are dropped.
YOLO_CLASS_MAP: dict[str, int | str] = {
    "player": 0,
    "goalkeeper": 1,
    "referee": 2,
    "ref": 2,
    "ball": "ball",
}


class DatasetError(ValueError):
    """A labelled split could not be read; the message names the file."""


@dataclass
class DetectionSample:
    """One labelled RGB frame.

    - ``image``: (H, W, 3) uint8 RGB.
    - ``boxes``: (N, 4) float32 x1, y1, x2, y2 pixels of the people; ``classes``: (N,) int64 index into
      :data:`PERSON_CLASSES`.
    - ``balls``: (B, 3) float32 ball centre x, y and radius in pixels (B is 0 or 1 in practice).
    - ``keypoints``: (N, 17, 3) float32 COCO-order x, y, visibility (0 unlabelled, 1 occluded, 2 visible)
      or None when the source has no joints.
    - ``instances``: (H, W) int32 instance map (0 background, i + 1 person i, -1 the ball) or None when the
      source has no masks.
    - ``name``: the file the frame came from.
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    balls: np.ndarray
    keypoints: np.ndarray | None = None
    instances: np.ndarray | None = None
    name: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def read_image_rgb(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; :class:`DatasetError` naming the file when unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def yolo_class_map(data_yaml: str | Path) -> dict[int, int | str]:
    """YOLO class id -> person class index or ``"ball"`` from a Roboflow ``data.yaml``."""
    path = Path(data_yaml)
    try:
        names = yaml.safe_load(path.read_text())["names"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read the class names ({exc})") from exc
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    return {i: YOLO_CLASS_MAP[n.lower()] for i, n in enumerate(names) if n.lower() in YOLO_CLASS_MAP}


def _read_labels(path: Path, cmap: dict[int, int | str], width: int, height: int) -> tuple[np.ndarray, ...]:
    boxes, classes, balls = [], [], []
    text = path.read_text() if path.exists() else ""
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            cid = int(parts[0])
            cx, cy, w, h = (float(v) for v in parts[1:5])
        except (ValueError, IndexError) as exc:
            raise DatasetError(f"{path}:{lineno}: expected 'class cx cy w h', got {line!r}") from exc
        if cid not in cmap:
            continue
        cx, cy, w, h = cx * width, cy * height, w * width, h * height
        if cmap[cid] == "ball":
            balls.append((cx, cy, 0.25 * (w + h)))
        else:
            boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
            classes.append(cmap[cid])
    return (
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(classes, np.int64),
        np.asarray(balls, np.float32).reshape(-1, 3),
    )


def read_yolo_split(root: str | Path, split: str) -> Iterator[DetectionSample]:
    """The frames of ``root/split`` (a Roboflow YOLO export; ``root/data.yaml`` names the classes), sorted
    by file name."""
    root = Path(root)
    cmap = yolo_class_map(root / "data.yaml")
    images = root / split / "images"
    if not images.is_dir():
        raise DatasetError(f"{images}: no such folder (expected a Roboflow YOLO split)")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise DatasetError(f"{images}: no images")
    for f in files:
        image = read_image_rgb(f)
        boxes, classes, balls = _read_labels(root / split / "labels" / (f.stem + ".txt"), cmap, image.shape[1], image.shape[0])
        yield DetectionSample(image, boxes, classes, balls, name=str(f))
