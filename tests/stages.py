"""Stages used only by the tests, importable on every Dask worker as ``tests.stages:<Class>``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from matchflow.models.detection.metric import box_iou
from matchflow.stages.base import GameStage, HalfData, StageParams


def link_boxes(frame: np.ndarray, boxes: np.ndarray, min_iou: float) -> np.ndarray:
    """Track ids for the rows (``frame`` (N,), ``boxes`` (N, 4)) of one half, sampled frame after sampled frame:
    a box takes the id of the free box of the previous frame it overlaps most (IoU >= ``min_iou``), else a new
    id. Sequential over the whole half: an answer that depends on every earlier frame."""
    ids = np.full(len(frame), -1, np.int32)
    prev_rows = np.zeros(0, np.int64)
    next_id = 0
    for f in np.unique(frame):
        rows = np.flatnonzero(frame == f)
        iou = box_iou(boxes[rows], boxes[prev_rows]) if len(prev_rows) else np.zeros((len(rows), 0))
        taken: set[int] = set()
        for i in np.argsort(-iou.max(axis=1) if iou.size else np.zeros(len(rows)), kind="stable"):
            j = int(np.argmax(iou[i])) if iou.shape[1] else -1
            if j >= 0 and iou[i, j] >= min_iou and j not in taken:
                ids[rows[i]] = ids[prev_rows[j]]
                taken.add(j)
            else:
                ids[rows[i]] = next_id
                next_id += 1
        prev_rows = rows
    return ids


class LinkParams(StageParams):
    min_iou: float = Field(0.3, gt=0, le=1)


class BoxLinkStage(GameStage):
    """A game-level stage for the tests: ``players.track`` by linking boxes over the half (:func:`link_boxes`)."""

    name = "box_link"
    Params = LinkParams
    params: LinkParams
    reads: ClassVar = ("players.x1", "players.y1", "players.x2", "players.y2")
    writes: ClassVar = ("players.track",)

    def process_half(self, half: HalfData) -> None:
        p = half.table("players")
        boxes = np.stack([p["x1"], p["y1"], p["x2"], p["y2"]], axis=1).astype(np.float64)
        half.put_columns("players", track=link_boxes(p["frame"], boxes, self.params.min_iou))
