"""Label vocabularies shared by the detector, its data and the synthetic renders (no heavy imports)."""

from __future__ import annotations

__all__ = ["COCO_KEYPOINTS", "PERSON_CLASSES", "SEMANTIC_CLASSES"]

# The 17 COCO body keypoints in COCO order; "left" is the person's own left.
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

# Person classes of the `players` table that the detector predicts (DESIGN.md also allows "other").
PERSON_CLASSES: tuple[str, ...] = ("player", "goalkeeper", "referee")

# Semantic classes of the segmentation head.
SEMANTIC_CLASSES: tuple[str, ...] = ("background", "player", "ball")
