"""Finding stages by name: the built-in ones, plug-ins from the ``matchflow.stages`` entry points, and stage
classes named by their import path.

A plug-in package declares, in its pyproject.toml::

    [project.entry-points."matchflow.stages"]
    my_stage = "my_package.module:MyStage"

or a configuration names the class directly, ``stages: [frames, "my_package.module:MyStage"]`` (the module
must be importable on every worker); its parameters go under ``stage_params.<MyStage.name>``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from matchflow.stages.base import Stage
from matchflow.stages.calibration import CalibrationStage
from matchflow.stages.detection import DetectionStage
from matchflow.stages.features import FeaturesStage
from matchflow.stages.frames import FramesStage
from matchflow.stages.graph import GraphStage
from matchflow.stages.localization import LocalizationStage
from matchflow.stages.reid import ReidStage
from matchflow.stages.teams import TeamsStage
from matchflow.stages.topview import TopviewStage
from matchflow.stages.tracking import TrackingStage

ENTRY_POINT_GROUP = "matchflow.stages"

BUILTIN: dict[str, type[Stage]] = {
    cls.name: cls
    for cls in (FramesStage, CalibrationStage, DetectionStage, LocalizationStage, GraphStage, TopviewStage,
                FeaturesStage, ReidStage, TrackingStage, TeamsStage)
}


def available() -> dict[str, type[Stage]]:
    """Every stage class by name, built-ins first; a plug-in cannot shadow a built-in."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


def stage_class(name: str) -> type[Stage]:
    """The stage class called ``name``, or imported from ``module:Class``; KeyError lists the known stages."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise KeyError(f"stage {name!r} cannot be imported: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Stage) and getattr(cls, "name", None)):
            raise KeyError(f"stage {name!r} is not a stage class (a subclass of matchflow.stages.base.Stage with a name)")
        return cls
    stages = available()
    try:
        return stages[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; available stages: {sorted(stages)}") from None
