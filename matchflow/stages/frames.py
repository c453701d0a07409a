"""The ``frames`` stage: one row per sampled frame with its source frame number and size."""

from __future__ import annotations

import numpy as np

from matchflow.stages.base import IMAGE, Batch, FrameStage


class FramesStage(FrameStage):
    """Writes the ``frames`` table: ``video_frame`` (source frame number), ``width``, ``height`` (pixels)."""

    name = "frames"
    reads = (IMAGE,)
    writes = ("frames.video_frame", "frames.width", "frames.height")

    def process(self, batch: Batch) -> None:
        n = len(batch)
        _, h, w, _ = batch.image.shape
        batch.put_rows(
            "frames",
            batch.frame,
            video_frame=batch.video_frame.astype(np.int32),
            width=np.full(n, w, dtype=np.int32),
            height=np.full(n, h, dtype=np.int32),
        )
