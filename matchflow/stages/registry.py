"""Finding stages by name: the built-in ones and plug-ins from the ``matchflow.stages`` entry points.

A plug-in package declares, in its pyproject.toml::

    [project.entry-points."matchflow.stages"]
    my_stage = "my_package.module:MyStage"
"""

from __future__ import annotations

from importlib.metadata import entry_points

from matchflow.stages.base import Stage
from matchflow.stages.calibration import CalibrationStage
from matchflow.stages.detection import DetectionStage
from matchflow.stages.frames import FramesStage

ENTRY_POINT_GROUP = "matchflow.stages"

BUILTIN: dict[str, type[Stage]] = {
    FramesStage.name: FramesStage, CalibrationStage.name: CalibrationStage, DetectionStage.name: DetectionStage,
}

from matchflow.stages.graph import GraphStage  # noqa: E402
from matchflow.stages.localization import LocalizationStage  # noqa: E402

BUILTIN.update({LocalizationStage.name: LocalizationStage, GraphStage.name: GraphStage})

from matchflow.stages.features import FeaturesStage  # noqa: E402
from matchflow.stages.topview import TopviewStage  # noqa: E402

BUILTIN.update({TopviewStage.name: TopviewStage, FeaturesStage.name: FeaturesStage})


def available() -> dict[str, type[Stage]]:
    """Every stage class by name, built-ins first; a plug-in cannot shadow a built-in."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


def stage_class(name: str) -> type[Stage]:
    """The stage class called ``name``; KeyError lists the known stages."""
    stages = available()
    try:
        return stages[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; available stages: {sorted(stages)}") from None
