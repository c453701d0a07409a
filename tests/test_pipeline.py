from typing import ClassVar

import numpy as np
import pytest

from matchflow.config import PipelineConfig
from matchflow.pipeline import Pipeline, PipelineError, build_pipeline
from matchflow.stages.base import Batch, FrameStage, HalfContext, StageContractError
from matchflow.stages.frames import FramesStage
from matchflow.video import VideoInfo


class _Det(FrameStage):
    name = "det"
    reads = ("image",)
    writes: ClassVar = ("players.det", "players.x1", "players.score")

    def process(self, batch):
        n = len(batch)
        batch.put_rows("players", np.repeat(batch.frame, 2), det=np.tile([0, 1], n).astype(np.int16),
                       x1=np.zeros(2 * n, np.float32), score=np.ones(2 * n, np.float32))


class _Loc(FrameStage):
    name = "loc"
    reads = ("players.x1",)
    writes: ClassVar = ("players.pitch_x",)

    def process(self, batch):
        batch.put_columns("players", pitch_x=batch.tables["players"]["x1"] + 1)


class _Sneaky(FrameStage):
    name = "sneaky"
    reads = ("image",)
    writes: ClassVar = ("ball.x",)

    def process(self, batch):
        batch.put_rows("ball", batch.frame, x=np.zeros(len(batch)), y=np.zeros(len(batch)))


def _batch(n=3):
    info = VideoInfo("v.mp4", 100, 25.0, 64, 36)
    ctx = HalfContext("g", "gid", 1, info, 2.0)
    f = np.arange(n, dtype=np.int32)
    return Batch(ctx, f, f * 12, f * 12 / 25.0, np.zeros((n, 36, 64, 3), np.uint8))


def test_chain_is_checked_before_work():
    Pipeline([FramesStage(), _Det(), _Loc()])
    with pytest.raises(PipelineError, match="reads 'players.x1', which no earlier stage writes"):
        Pipeline([FramesStage(), _Loc(), _Det()])
    with pytest.raises(PipelineError, match="already writes"):
        Pipeline([FramesStage(), FramesStage()])


def test_writes_must_be_contract_columns():
    class Bad(FrameStage):
        name = "bad"
        writes: ClassVar = ("players.nonsense",)

        def process(self, batch):
            pass

    class BadArray(FrameStage):
        name = "bad_array"
        writes: ClassVar = ("arrays/whatever",)

        def process(self, batch):
            pass

    with pytest.raises(PipelineError, match="no such column"):
        Pipeline([Bad()])
    with pytest.raises(PipelineError, match="output contract does not have"):
        Pipeline([BadArray()])


def test_run_merges_rows_and_columns_and_enforces_declarations():
    pipe = Pipeline([FramesStage(), _Det(), _Loc()])
    b = _batch()
    seconds: dict[str, float] = {}
    pipe.run(b, seconds)
    assert set(seconds) == {"frames", "det", "loc"}
    assert list(b.tables["frames"]["video_frame"]) == [0, 12, 24]
    assert list(b.tables["frames"]["width"]) == [64, 64, 64]
    assert np.all(b.tables["players"]["pitch_x"] == 1.0)
    assert pipe.tables == ["frames", "players"]
    with pytest.raises(StageContractError, match="ball.y"):
        Pipeline([_Sneaky()]).run(_batch(), {})


def test_build_pipeline_from_config():
    assert [s.name for s in build_pipeline(PipelineConfig(stages=["frames"])).stages] == ["frames"]
    with pytest.raises(PipelineError, match="unknown stage 'nope'"):
        build_pipeline(PipelineConfig(stages=["nope"]))
    with pytest.raises(PipelineError, match="stage_params"):
        build_pipeline(PipelineConfig(stages=["frames"], stage_params={"other": {}}))


def test_a_pipeline_without_models_is_set_up_without_torch():
    import subprocess
    import sys

    assert not build_pipeline(PipelineConfig(stages=["frames"])).needs_device
    assert build_pipeline(PipelineConfig(stages=["frames", "calibration", "detection"])).needs_device
    # a fresh process, as a Dask worker is: device "auto" is not resolved (torch not imported) for frames alone
    code = ("import sys; from matchflow.config import PipelineConfig; from matchflow.pipeline import worker_pipeline; "
            "worker_pipeline(PipelineConfig(stages=['frames'], device='auto')); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "False"
