"""Re-identification data: person crops with identities that are valid within an action only.

Two sources, each read into a :class:`ReidSet` of crops already letterboxed to the model's input:

- a ``matchflow synth-detection`` folder (generator version 2): every scene (one stadium, teams and play filmed
  from several cameras) is an action; a person's identity is its id in the scene's play; the part maps come from
  the rendered keypoints (v = 2 visible: score 1; v = 1 hidden: 0.5; v = 0 outside: absent). The first frame
  of a scene is its query view, the others its gallery;
- a SoccerNet-ReID folder as released (``train/``, ``valid/``, ``test/``, ``challenge/``, each with its
  league / season / game / action folders, and ``query/`` and ``gallery/`` in ``valid`` and ``test``), with the
  file-name convention ``<bbox_idx>-<action_idx>-<person_uid>-<frame_idx>-<class>-<ID>-<UAI>-<height>x<width>.png``
  (``<bbox_idx>-<action_idx>-<height>x<width>.png`` in ``challenge``, whose identities are secret): the action
  is ``action_idx``, the identity ``(action_idx, person_uid)``. Thumbnails carry no keypoints: their part maps
  are empty (the two-stream model then pools appearance against its constant part channel).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from matchflow.models.reid.crops import cut_crops, part_heatmaps

__all__ = ["DatasetError", "ReidSet", "concat_sets", "read_soccernet_reid", "read_synthetic_reid",
           "parse_soccernet_name"]


class DatasetError(ValueError):
    """A dataset folder that cannot be read; the message names the path and the problem."""


@dataclass
class ReidSet:
    """Person crops (n, h, w, 3) RGB uint8 with their part maps (n, 17, h/16, w/16) float16, identity (n,) int64
    (unique over the set), action (n,) int64, view (n,) int64 (the frame or camera), team (n,) int8 (0, 1, -1 for
    referees or unknown), query (n,) bool (the query views of their action)."""

    crops: np.ndarray
    heatmaps: np.ndarray
    identity: np.ndarray
    action: np.ndarray
    view: np.ndarray
    team: np.ndarray
    query: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.identity)

    def subset(self, keep: np.ndarray) -> ReidSet:
        """The items where ``keep`` (bool or indices)."""
        return ReidSet(self.crops[keep], self.heatmaps[keep], self.identity[keep], self.action[keep], self.view[keep],
                       self.team[keep], self.query[keep], self.source)


def _rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{path}: cannot read as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _keypoints(raw: list[list[float]]) -> np.ndarray:
    kp = np.asarray(raw, np.float64).reshape(17, 3)
    score = np.select([kp[:, 2] >= 2, kp[:, 2] >= 1], [1.0, 0.5], 0.0)
    return np.concatenate([kp[:, :2], score[:, None]], axis=1)


def read_synthetic_reid(
    root: str | Path, input_size: tuple[int, int] = (128, 64), min_height: float = 32.0,
    progress: Callable[[str], None] | None = None,
) -> ReidSet:
    """The persons of a ``matchflow synth-detection`` folder at least ``min_height`` pixels tall (box), as crops of
    ``input_size`` (h, w)."""
    root = Path(root)
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DatasetError(f"{root}: no dataset.json (not a `matchflow synth-detection` folder, or not finished)")
    meta = json.loads(meta_path.read_text())
    if str(meta.get("generator_version")) < "2":
        raise DatasetError(f"{root}: generator version {meta.get('generator_version')} labels no person ids; "
                           "render it again with this version of `matchflow synth-detection`")
    map_size = (input_size[0] // 16, input_size[1] // 16)
    crops, heats, ident, action, view, team, first = [], [], [], [], [], [], []
    ids: dict[tuple[int, int], int] = {}
    seen_scene: set[int] = set()
    labels = sorted((root / "labels").glob("*.json"))
    if not labels:
        raise DatasetError(f"{root}/labels: no label files")
    for i, lp in enumerate(labels):
        label = json.loads(lp.read_text())
        if "scene" not in label:
            raise DatasetError(f"{lp}: no scene (labels of generator version 2 name it)")
        scene = int(label["scene"])
        persons = [p for p in label["persons"] if p["box"][3] - p["box"][1] >= min_height]
        is_first = scene not in seen_scene
        seen_scene.add(scene)
        if not persons:
            continue
        image = _rgb(root / "images" / f"{lp.stem}.jpg")
        boxes = np.array([p["box"] for p in persons], np.float64)
        c, tf = cut_crops(image, boxes, input_size)
        kps = np.stack([_keypoints(p["keypoints"]) for p in persons])
        crops.append(c)
        heats.append(part_heatmaps(kps, tf, map_size).astype(np.float16))
        for p in persons:
            ident.append(ids.setdefault((scene, int(p["person"])), len(ids)))
            team.append(int(p.get("team", -1)))
        action += [scene] * len(persons)
        view += [int(lp.stem)] * len(persons)
        first += [is_first] * len(persons)
        if progress and (i + 1) % 200 == 0:
            progress(f"read {i + 1}/{len(labels)} frames, {len(ident)} crops")
    if not crops:
        raise DatasetError(f"{root}: no person at least {min_height:g} pixels tall")
    return ReidSet(np.concatenate(crops), np.concatenate(heats), np.asarray(ident, np.int64),
                   np.asarray(action, np.int64), np.asarray(view, np.int64), np.asarray(team, np.int8),
                   np.asarray(first, bool), f"synthetic:{root}")


_NAME = re.compile(r"^(?P<bbox>\d+)-(?P<action>\d+)-(?P<person>\d+)-(?P<frame>\d+)-(?P<cls>[A-Za-z_]+)-(?P<id>[^-]+)-"
                   r"(?P<uai>[^-]+)-(?P<h>\d+)x(?P<w>\d+)$")
_CHALLENGE = re.compile(r"^(?P<bbox>\d+)-(?P<action>\d+)-(?P<h>\d+)x(?P<w>\d+)$")


def parse_soccernet_name(name: str) -> dict[str, str | int | None]:
    """The fields of a SoccerNet-ReID file name (without extension): bbox, action, person, frame, cls, id, uai,
    height, width (person ... uai None for the challenge set's names). DatasetError for another name."""
    m = _NAME.match(name)
    if m:
        d = m.groupdict()
        return {"bbox": int(d["bbox"]), "action": int(d["action"]), "person": int(d["person"]),
                "frame": int(d["frame"]), "cls": d["cls"], "id": d["id"], "uai": d["uai"],
                "height": int(d["h"]), "width": int(d["w"])}
    m = _CHALLENGE.match(name)
    if m:
        d = m.groupdict()
        return {"bbox": int(d["bbox"]), "action": int(d["action"]), "person": None, "frame": None, "cls": None,
                "id": None, "uai": None, "height": int(d["h"]), "width": int(d["w"])}
    raise DatasetError(f"{name}: not a SoccerNet-ReID file name (<bbox_idx>-<action_idx>-<person_uid>-<frame_idx>-"
                       "<class>-<ID>-<UAI>-<height>x<width>)")


def _team(cls: str | None) -> int:
    if not cls:
        return -1
    c = cls.lower()
    return 0 if c.endswith("team_left") else 1 if c.endswith("team_right") else -1


def read_soccernet_reid(
    root: str | Path, split: str, input_size: tuple[int, int] = (128, 64), limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReidSet:
    """The thumbnails of ``split`` (train, valid, test) of a SoccerNet-ReID folder as crops of ``input_size``;
    ``query`` marks the ``query/`` items (none in ``train``). ``limit``: at most this many files (sorted)."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder (a SoccerNet-ReID root holds train/, valid/, test/, challenge/)")
    files = sorted(folder.rglob("*.png"))
    if limit is not None:
        files = files[:limit]
    if not files:
        raise DatasetError(f"{folder}: no .png thumbnails")
    map_size = (input_size[0] // 16, input_size[1] // 16)
    crops = np.empty((len(files), *input_size, 3), np.uint8)
    ident, action, view, team, query = [], [], [], [], []
    ids: dict[tuple[int, int], int] = {}
    for i, f in enumerate(files):
        fields = parse_soccernet_name(f.stem)
        if fields["person"] is None:
            raise DatasetError(f"{f}: a challenge-set name without identity; evaluate on valid or test")
        image = _rgb(f)
        h, w = image.shape[:2]
        crops[i] = cut_crops(image, np.array([[0, 0, w, h]], np.float64), input_size)[0][0]
        a = int(fields["action"])  # type: ignore[arg-type]
        ident.append(ids.setdefault((a, int(fields["person"])), len(ids)))  # type: ignore[arg-type]
        action.append(a)
        view.append(int(fields["frame"]))  # type: ignore[arg-type]
        team.append(_team(fields["cls"]))  # type: ignore[arg-type]
        query.append("query" in f.relative_to(folder).parts)
        if progress and (i + 1) % 2000 == 0:
            progress(f"read {i + 1}/{len(files)} thumbnails")
    heat = np.zeros((len(files), 17, *map_size), np.float16)
    return ReidSet(crops, heat, np.asarray(ident, np.int64), np.asarray(action, np.int64), np.asarray(view, np.int64),
                   np.asarray(team, np.int8), np.asarray(query, bool), f"soccernet:{folder}")


def concat_sets(sets: list[ReidSet]) -> ReidSet:
    """One set of several: identities and actions renumbered so that no two sources share one."""
    if len(sets) == 1:
        return sets[0]
    ident, action, id_off, act_off = [], [], 0, 0
    for s in sets:
        ident.append(s.identity + id_off)
        action.append(s.action - s.action.min() + act_off if len(s) else s.action)
        id_off += int(s.identity.max()) + 1 if len(s) else 0
        act_off = int(action[-1].max()) + 1 if len(s) else act_off
    return ReidSet(np.concatenate([s.crops for s in sets]), np.concatenate([s.heatmaps for s in sets]),
                   np.concatenate(ident), np.concatenate(action), np.concatenate([s.view for s in sets]),
                   np.concatenate([s.team for s in sets]), np.concatenate([s.query for s in sets]),
                   " + ".join(s.source for s in sets))
