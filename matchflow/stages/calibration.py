"""The ``calibration`` stage: a pitch homography, its plausibility and validity for every sampled frame.

Parameters (``stage_params.calibration`` in the configuration):

- ``segmenter``: ``classical`` (default, no weights) or ``unet`` (learned CCBV zone segmentation);
- ``retriever``: ``chamfer`` (default) or ``siamese``; ``refiner``: ``linefit`` (default) or ``stn``
  (the learned refiner, followed by the line fit);
- ``weights_dir``: folder of the learned pieces' weights (default: the ones shipped in the package);
- ``valid_score`` (0.55), ``keep_score`` (0.7), ``candidates`` (4): see
  :class:`matchflow.models.calibration.calibrator.Calibrator`;
- ``native_fit`` (true): finish each valid calibration with the fit against the markings found at the
  frame's native resolution (:mod:`matchflow.models.calibration.native`); false keeps the working-resolution
  (640 px wide) result;
- ``use_released`` (false): when a game folder holds SoccerNet's released CCBV calibrations
  (``<half>_field_calib_ccbv.json``, one per 2 fps frame), take them instead of computing;
  ``released_threshold`` (0.75) is the confidence under which such a frame is invalid.

Frames are calibrated in order within a half: the camera is followed from one sampled frame to the next
while it does not cut. Each chunk starts afresh, so results do not depend on how chunks are spread over
workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from matchflow.stages.base import IMAGE, Batch, FrameStage, StageParams

if TYPE_CHECKING:
    from matchflow.models.calibration.calibrator import Calibrator
    from matchflow.storage.soccernet import CcbvCalibration


class CalibrationParams(StageParams):
    """``stage_params.calibration`` (see the module docstring); None: the calibrator's own default."""

    segmenter: Literal["classical", "unet"] = "classical"
    retriever: Literal["chamfer", "siamese"] = "chamfer"
    refiner: Literal["linefit", "stn"] = "linefit"
    weights_dir: str | None = None
    valid_score: float | None = Field(None, ge=0, le=1)
    keep_score: float | None = Field(None, ge=0, le=1)
    candidates: int | None = Field(None, ge=1)
    native_fit: bool = True
    use_released: bool = False
    released_threshold: float = Field(0.75, ge=0, le=1)


def _released_path(video_path: str, half: int) -> str:
    base = video_path.rsplit("/", 1)[0] if "/" in video_path else "."
    return f"{base}/{half}_field_calib_ccbv.json"


class CalibrationStage(FrameStage):
    """Writes the ``calibration`` table (see DESIGN.md): ``homography`` (image pixels to pitch metres, 9
    values row-major, null when invalid), ``homography_inv``, ``score`` (0..1) and ``valid``."""

    name = "calibration"
    Params = CalibrationParams
    params: CalibrationParams
    reads = (IMAGE,)
    writes = ("calibration.homography", "calibration.homography_inv", "calibration.score", "calibration.valid")
    version = "2"  # 2: the native-resolution fit

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        self._choice = {"segmenter": self.params.segmenter, "retriever": self.params.retriever,
                        "refiner": self.params.refiner}
        self._device = "cpu"
        self._calibrators: dict[tuple[int, int], Any] = {}
        self._position: tuple[str, int, int] | None = None
        self._released: dict[tuple[str, int], Any] = {}

    # ------------------------------------------------------------------------------------------- set-up
    def setup(self, device: str) -> None:
        self._device = device

    def _weights(self, kind: str) -> Path | None:
        d = self.params.weights_dir
        return Path(d) / f"ccbv_{kind}.pt" if d else None

    def model_checksums(self) -> dict[str, str]:
        from matchflow.models.calibration.dictionary import recipe_checksum

        out = {"calibration_dictionary": recipe_checksum()}
        learned = [v for v in self._choice.values() if v in ("unet", "siamese", "stn")]
        if learned:
            from matchflow.models.calibration.ccbv import shipped_weights

            for kind in learned:
                path = self._weights(kind) or shipped_weights(kind)
                out[f"ccbv_{kind}"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return out

    def _calibrator(self, size: tuple[int, int]) -> Calibrator:
        from matchflow.models.calibration.base import working_size
        from matchflow.models.calibration.calibrator import Calibrator, ChamferRetriever
        from matchflow.models.calibration.dictionary import default_dictionary
        from matchflow.models.calibration.segmentation import ClassicalSegmenter

        if size in self._calibrators:
            return self._calibrators[size]
        work = working_size(size)  # the size ClassicalSegmenter resizes frames to
        dictionary = default_dictionary(work)
        kw: dict[str, Any] = {}
        for key in ("valid_score", "keep_score", "candidates"):
            value = getattr(self.params, key)
            if value is not None:
                kw[key] = value
        if self._choice["segmenter"] == "unet":
            from matchflow.models.calibration.ccbv import UNetSegmenter

            kw["segmenter"] = UNetSegmenter(self._weights("unet"), device=self._device)
        else:
            kw["segmenter"] = ClassicalSegmenter()
        if self._choice["retriever"] == "siamese":
            from matchflow.models.calibration.ccbv import SiameseRetriever

            kw["retriever"] = SiameseRetriever(self._weights("siamese"), dictionary.homographies, work)
        else:
            kw["retriever"] = ChamferRetriever(dictionary)
        if self._choice["refiner"] == "stn":
            from matchflow.models.calibration.ccbv import STNRefiner
            from matchflow.models.calibration.refine import LineFitRefiner

            kw["refiner"] = _Chain(STNRefiner(self._weights("stn"), device=self._device), LineFitRefiner())
        if not self.params.native_fit:
            kw["native_fit"] = None
        cal = Calibrator(**kw)
        self._calibrators[size] = cal
        return cal

    # ------------------------------------------------------------------------------------------- running
    def _released_for(self, batch: Batch) -> CcbvCalibration | None:
        if not self.params.use_released:
            return None
        key = (batch.ctx.video.path, batch.ctx.half)
        if key not in self._released:
            from matchflow.storage import fs
            from matchflow.storage.soccernet import read_ccbv

            path = _released_path(batch.ctx.video.path, batch.ctx.half)
            self._released[key] = read_ccbv(path) if fs.exists(path) else None
            if self._released[key] is not None and abs(batch.ctx.fps - 2.0) > 1e-9:
                raise ValueError(f"{path}: released CCBV calibrations are at 2 fps; the run samples at {batch.ctx.fps} fps")
        return self._released[key]

    def process(self, batch: Batch) -> None:
        n = len(batch)
        h = np.full((n, 9), np.nan)
        hi = np.full((n, 9), np.nan)
        score = np.zeros(n, np.float32)
        valid = np.zeros(n, bool)
        released = self._released_for(batch)
        if released is not None:
            self._from_released(batch, released, h, hi, score, valid)
        else:
            _, height, width, _ = batch.image.shape
            cal = self._calibrator((width, height))
            pos = (batch.ctx.game_id, batch.ctx.half, int(batch.frame[0]))
            if self._position != pos:  # not the continuation of the previous batch: start afresh
                cal.reset()
            for i in range(n):
                r = cal.calibrate(batch.image[i])
                score[i] = r.score
                valid[i] = r.valid
                if r.valid:
                    assert r.homography is not None and r.homography_inv is not None
                    h[i] = r.homography.ravel()
                    hi[i] = r.homography_inv.ravel()
            self._position = (batch.ctx.game_id, batch.ctx.half, int(batch.frame[-1]) + 1)
        batch.put_rows(
            "calibration", batch.frame,
            homography=[None if not v else row.tolist() for row, v in zip(h, valid)],
            homography_inv=[None if not v else row.tolist() for row, v in zip(hi, valid)],
            score=score, valid=valid,
        )

    def _from_released(self, batch: Batch, released, h, hi, score, valid) -> None:
        from matchflow.storage.soccernet import rescale

        native = (batch.image.shape[2], batch.image.shape[1])
        thr = self.params.released_threshold
        for i, k in enumerate(batch.frame):
            if k >= len(released.confidence):
                continue
            conf = float(released.confidence[k])
            score[i] = conf
            if conf < thr:
                continue
            m = rescale(released.homographies[k], released.size, native)
            m = m / m[2, 2]
            inv = np.linalg.inv(m)
            hi[i] = m.ravel()
            h[i] = (inv / inv[2, 2]).ravel()
            valid[i] = True


class _Chain:
    """Refiners applied in turn (the learned spatial transformer, then the line fit)."""

    def __init__(self, *refiners: Any) -> None:
        self.refiners = refiners

    def refine(self, obs, h):  # HomographyRefiner
        for r in self.refiners:
            h = r.refine(obs, h)
        return h
