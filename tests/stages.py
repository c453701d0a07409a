"""Stages used only by the tests, importable on every Dask worker as ``tests.stages:<Class>``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from matchflow.models.detection.metric import box_iou
from matchflow.stages.base import GameStage, HalfData, StageParams
from matchflow.stages.tracking import TrackingStage
from matchflow.storage import tables


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


class PausingTracking(TrackingStage):
    """The ``tracking`` stage, which stops in the middle of writing its tracks back while the file named by the
    environment variable ``MATCHFLOW_TEST_PAUSE`` does not exist yet: it writes the tracks of the half's first
    chunk, creates that file and sleeps, so that a test can kill the run there. Otherwise it is the stage."""

    def process_half(self, half: HalfData) -> None:
        flag = os.environ.get("MATCHFLOW_TEST_PAUSE")
        if not flag or os.path.exists(flag):
            super().process_half(half)
            return
        real = tables.replace_columns

        def write_then_pause(*args: object, **kwargs: object) -> None:
            real(*args, **kwargs)  # type: ignore[arg-type]
            Path(flag).touch()
            time.sleep(600)

        tables.replace_columns = write_then_pause  # type: ignore[assignment]
        try:
            super().process_half(half)
        finally:
            tables.replace_columns = real  # type: ignore[assignment]
