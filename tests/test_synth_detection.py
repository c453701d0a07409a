"""Synthetic detection frames: files, masks, boxes, COCO keypoints and the ball agree with each other, and the
generator is deterministic."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from matchflow.cli import main as cli_main
from matchflow.models.detection.network import PERSON_CLASSES as MODEL_CLASSES
from matchflow.synth.corpus import _rng
from matchflow.synth.detection import (
    BALL_INSTANCE,
    COCO_KEYPOINTS,
    PERSON_CLASSES,
    coco_keypoints_3d,
    project_keypoints,
    read_detection_dir,
    render_detection_dataset,
)
from matchflow.synth.director import pick_base_camera
from matchflow.synth.figure import figure_joints
from matchflow.training.detection.data import DatasetError

FRAMES, WIDTH, HEIGHT, SEED = 4, 640, 360, 3
K = {name: i for i, name in enumerate(COCO_KEYPOINTS)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("detection")
    info = render_detection_dataset(out, FRAMES, seed=SEED, width=WIDTH, height=HEIGHT, workers=1)
    return out, info


@pytest.fixture(scope="module")
def samples(dataset):
    return list(read_detection_dir(dataset[0]))


def _labels(out: Path) -> list[dict]:
    return [json.loads((out / "labels" / f"{i:06d}.json").read_text()) for i in range(FRAMES)]


def test_files_exist_and_read_back(dataset, samples):
    out, info = dataset
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["seed"] == SEED and meta["frames"] == FRAMES and (meta["width"], meta["height"]) == (WIDTH, HEIGHT)
    assert meta["cameras"] == "all" and meta["generator_version"] and meta["note"]
    assert info["frames"] == FRAMES and info["persons"] == sum(len(s.boxes) for s in samples)
    assert tuple(PERSON_CLASSES) == tuple(MODEL_CLASSES) and meta["classes"] == list(MODEL_CLASSES)
    for sub, ext in (("images", "jpg"), ("masks", "png"), ("labels", "json")):
        assert sorted(p.name for p in (out / sub).iterdir()) == [f"{i:06d}.{ext}" for i in range(FRAMES)]
    assert len(samples) == FRAMES
    for i, s in enumerate(samples):
        assert s.name == str(out / "images" / f"{i:06d}.jpg")
        assert s.image.shape == (HEIGHT, WIDTH, 3) and s.image.dtype == np.uint8
        bgr = cv2.imread(s.name)
        assert np.array_equal(s.image, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        mask = cv2.imread(str(out / "masks" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint16 and mask.shape == (HEIGHT, WIDTH)
        n = len(s.boxes)
        assert s.boxes.shape == (n, 4) and s.boxes.dtype == np.float32
        assert s.classes.shape == (n,) and s.classes.dtype == np.int64 and np.all(s.classes < len(MODEL_CLASSES))
        assert s.keypoints.shape == (n, 17, 3) and s.keypoints.dtype == np.float32
        assert s.instances.shape == (HEIGHT, WIDTH) and s.instances.dtype == np.int32
        assert s.balls.shape in ((0, 3), (1, 3))
        # every listed person has pixels; nothing but listed persons and the ball in the map
        values = set(np.unique(s.instances).tolist())
        assert values <= {-1, 0, *range(1, n + 1)} and set(range(1, n + 1)) <= values
        assert (-1 in values) == (len(s.balls) == 1)
        assert np.array_equal(s.instances == -1, mask == BALL_INSTANCE)


def test_several_persons_in_a_frame(samples):
    assert max(len(s.boxes) for s in samples) >= 5
    assert sum(len(s.boxes) for s in samples) >= 20


def test_boxes_are_the_extent_of_the_masks(samples):
    for s in samples:
        for i, box in enumerate(s.boxes):
            ys, xs = np.nonzero(s.instances == i + 1)
            extent = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            assert np.abs(extent - box).max() <= 1.0, (s.name, i, box, extent)
            assert 0 <= box[0] < box[2] <= WIDTH and 0 <= box[1] < box[3] <= HEIGHT


def test_keypoint_visibility_follows_the_masks(samples):
    visible = 0
    for s in samples:
        inst = np.pad(s.instances, 1)
        for i, kps in enumerate(s.keypoints):
            for x, y, v in kps:
                rx, ry = int(round(float(x))), int(round(float(y)))
                inside = 0 <= rx < WIDTH and 0 <= ry < HEIGHT
                assert (v == 0) == (not inside)
                if v == 2:  # on this person's mask, within a pixel
                    assert np.any(inst[ry : ry + 3, rx : rx + 3] == i + 1), (s.name, i, x, y)
                    visible += 1
                    # and inside its box, give or take a pixel
                    x1, y1, x2, y2 = s.boxes[i]
                    assert x1 - 1.5 <= x <= x2 + 0.5 and y1 - 1.5 <= y <= y2 + 0.5
    assert visible >= 100


def test_keypoints_left_right_and_up_down(samples):
    upright = 0
    for s in samples:
        for kps in s.keypoints:
            for a, b in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_ear", "right_ear")):
                assert np.abs(kps[K[a], :2] - kps[K[b], :2]).max() > 0.05
            body = [K[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
            if np.all(kps[body, 2] > 0):
                upright += 1
                shoulders = kps[[K["left_shoulder"], K["right_shoulder"]], 1].mean()
                hips = kps[[K["left_hip"], K["right_hip"]], 1].mean()
                ankles = kps[[K["left_ankle"], K["right_ankle"]], 1].mean()
                assert kps[K["nose"], 1] < shoulders < hips < ankles
    assert upright >= 10


def test_own_left_is_on_the_image_right_when_facing_the_camera():
    cam = pick_base_camera(_rng(0, 1)).camera
    where = np.array([[5.0, -3.0]])
    to_cam = cam.position[:2] - where[0]
    ids = np.full((cam.image_size[1], cam.image_size[0]), 7, np.uint8)
    for facing in (1.0, -1.0):
        heading = np.array([np.arctan2(facing * to_cam[1], facing * to_cam[0])])
        joints = figure_joints(where, heading, np.array([0.7]), np.array([3.0]), np.array([1.8]))
        points, normals = coco_keypoints_3d(joints, heading, np.array([1.8]))
        kps = project_keypoints(points[0], normals[0], cam, ids, 7)
        for a, b in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_eye", "right_eye")):
            assert facing * (kps[K[a], 0] - kps[K[b], 0]) > 0, (facing, a, b)
        # the face is seen from the front, the back of the head from behind
        face = [K["nose"], K["left_eye"], K["right_eye"]]
        assert np.all(kps[face, 2] == (2 if facing > 0 else 1))
        assert np.all(kps[5:, 2] == 2)
        # face points lie on the head sphere
        head_r = 0.066 * 1.8
        dist = np.linalg.norm(points[0, :5] - joints[0, 0], axis=1)
        assert np.allclose(dist, head_r)


def test_the_ball_is_on_its_mask(samples):
    balls = [(s, s.balls[0]) for s in samples if len(s.balls)]
    assert balls
    centred = 0
    for s, (x, y, r) in balls:
        assert r > 0
        ys, xs = np.nonzero(s.instances == -1)
        assert len(xs) > 0
        assert np.hypot(xs - x, ys - y).max() <= max(r, 1.0) + 1.5
        at = s.instances[int(round(float(y))), int(round(float(x)))]
        assert at == -1 or at > 0  # the ball, or a person in front of it
        centred += int(at == -1)
    assert centred >= 1


def test_same_seed_same_frames_whatever_the_workers(tmp_path):
    a = render_detection_dataset(tmp_path / "a", 9, seed=11, width=320, height=180, workers=1)
    b = render_detection_dataset(tmp_path / "b", 9, seed=11, width=320, height=180, workers=2)
    assert a["persons"] == b["persons"] > 0
    for i in range(9):
        name = f"{i:06d}"
        assert (tmp_path / "a" / "labels" / f"{name}.json").read_text() == (
            tmp_path / "b" / "labels" / f"{name}.json"
        ).read_text()
        ma = cv2.imread(str(tmp_path / "a" / "masks" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        mb = cv2.imread(str(tmp_path / "b" / "masks" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(ma, mb)
    # scenes differ from frame to frame (a new camera for each) and between seeds
    labels = [json.loads((tmp_path / "a" / "labels" / f"{i:06d}.json").read_text()) for i in range(9)]
    assert len({json.dumps(lab) for lab in labels}) == 9


def test_missing_or_corrupt_files_name_the_file(dataset, tmp_path):
    out, _ = dataset
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    label = bad / "labels" / "000001.json"
    good = label.read_text()
    label.write_text(good[: len(good) // 2])
    it = read_detection_dir(bad)
    next(it)
    with pytest.raises(DatasetError, match="000001.json"):
        next(it)
    label.write_text(good)
    (bad / "masks" / "000002.png").unlink()
    with pytest.raises(DatasetError, match="000002.png"):
        list(read_detection_dir(bad))
    shutil.copy(out / "masks" / "000002.png", bad / "masks" / "000002.png")
    (bad / "images" / "000003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="000003.jpg"):
        list(read_detection_dir(bad))
    (bad / "dataset.json").unlink()
    with pytest.raises(DatasetError, match="dataset.json"):
        read_detection_dir(bad)


def test_cli_renders_a_dataset(tmp_path, capsys):
    rc = cli_main(["synth-detection", str(tmp_path / "d"), "--frames", "2", "--width", "320", "--height", "180",
                   "--seed", "5", "--workers", "1"])
    assert rc == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("rendered 2 detection frames") and str(tmp_path / "d") in line
    meta = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert (meta["frames"], meta["seed"], meta["width"], meta["height"]) == (2, 5, 320, 180)
    assert len(list(read_detection_dir(tmp_path / "d"))) == 2
    with pytest.raises(SystemExit) as exit_:  # a bad option: one line, exit 2, before any work
        cli_main(["synth-detection", str(tmp_path / "e"), "--frames", "0"])
    assert exit_.value.code == 2 and "--frames" in capsys.readouterr().err and not (tmp_path / "e").exists()


def test_persons_have_team_unique_shirt_numbers(dataset):
    out, _ = dataset
    for label in _labels(out):
        by_team: dict[int, list[int]] = {}
        for p in label["persons"]:
            by_team.setdefault(p["team"], []).append(p["number"])
            if p["class"] == "goalkeeper":
                assert p["number"] == 1
        for team, numbers in by_team.items():
            if team >= 0:
                assert len(set(numbers)) == len(numbers) and all(1 <= n <= 99 for n in numbers)
            else:
                assert numbers == [0] * len(numbers)


def _draw_big_figure(looks, heading: float, fill: int | None = None) -> np.ndarray:
    """A 1.8 m figure facing ``heading`` drawn 300 px tall, seen from -y (the camera looks toward +y)."""
    from matchflow.synth.figure import draw_figure

    j = figure_joints(np.zeros((1, 2)), np.array([heading]), np.zeros(1), np.zeros(1), np.array([1.8]))[0]
    px_per_m = 300 / 1.8
    pts = np.stack([200 + j[:, 0] * px_per_m, 350 + j[:, 2] * px_per_m], axis=1)
    image = np.zeros((400, 400) if fill is not None else (400, 400, 3), np.uint8)
    draw_figure(image, pts, (0, 0), px_per_m, 1.8, looks, left_is_far=False, fill=fill)
    return image


def test_shirt_number_is_drawn_big_on_the_back_small_on_the_chest_and_not_in_the_mask():
    from matchflow.synth.figure import Looks

    plain = Looks(shirt=(40, 40, 200), shorts=(250, 250, 250), socks=(40, 40, 200), skin=(120, 160, 215),
                  hair=(20, 20, 25))
    numbered = Looks(**{**plain.__dict__, "number": 88})
    assert numbered.number_colour == (245, 245, 245)  # white on a dark red shirt
    # heading +y: the back faces the camera at -y; heading -y: the chest does
    for heading, back in ((np.pi / 2, True), (-np.pi / 2, False)):
        a, b = _draw_big_figure(plain, heading), _draw_big_figure(numbered, heading)
        changed = np.argwhere(np.any(a != b, axis=2))
        assert len(changed), "the number is not drawn"
        px = b[changed[:, 0], changed[:, 1]].astype(int)
        # on the shirt, in white (anti-aliased)
        assert np.mean(px[:, 0] > 40) > 0.99 and np.count_nonzero(px.min(axis=1) > 200) > 20
        area = len(changed)
        if back:
            back_area = area
        else:
            assert 0 < area < back_area / 2
    # masks keep the silhouette only
    np.testing.assert_array_equal(_draw_big_figure(plain, np.pi / 2, fill=1),
                                  _draw_big_figure(numbered, np.pi / 2, fill=1))
