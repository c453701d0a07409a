import numpy as np
import pytest
import torch

from matchflow.models.detection.network import DeepSportLabNet
from matchflow.training.detection.data import read_yolo_split
from matchflow.training.detection.encoder import (
    IGNORE,
    PIF_STRIDE,
    build_targets,
    collate_targets,
    deepsportlab_loss,
)
from matchflow.training.detection.train import (
    DetectorTrainConfig,
    TrainingData,
    _crop,
    _flip,
    latest_checkpoint,
    train_steps,
)
from tests.detection_samples import hand_made_sample as _sample
from tests.detection_samples import yolo_root as _yolo_root


def test_pif_targets_point_back_to_the_keypoint():
    t = build_targets(_sample(with_joints=True))
    s = PIF_STRIDE
    # the ball: 16 cells vote for it and every vector leads to it
    pos = np.argwhere(t["ball_positive"][0])
    assert len(pos) == 16
    for i, j in pos:
        x = (j + t["ball_vector"][0, i, j]) * s
        y = (i + t["ball_vector"][1, i, j]) * s
        assert x == pytest.approx(70.3, abs=1e-4) and y == pytest.approx(100.6, abs=1e-4)
    assert np.allclose(t["ball_size"][0][t["ball_positive"][0]], max(3.0 / s, 0.5))  # at least half a cell
    # player centres at the box centres, with the box size and the class at the same cells
    for (x1, y1, x2, y2), cls in zip(_sample().boxes, (0, 2)):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        i, j = int(cy // s), int(cx // s)
        assert t["player_positive"][0, i, j]
        assert (j + t["player_vector"][0, i, j]) * s == pytest.approx(cx, abs=1e-4)
        assert np.exp(t["player_box_log_wh"][:, i, j]) * s == pytest.approx([x2 - x1, y2 - y1], rel=1e-5)
        assert t["player_class"][i, j] == cls
    assert (t["player_class"] != IGNORE).sum() == t["player_positive"].sum() == 32
    # parts: the labelled joints only (occluded ones included), the others stay negative
    assert t["parts_labelled"].all()
    per_type = t["parts_positive"].reshape(17, -1).sum(axis=1)
    assert per_type[0] == per_type[5] == per_type[6] == per_type[15] == 16
    assert per_type[[1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 16]].sum() == 0


def test_nearer_keypoint_owns_a_shared_cell():
    s = _sample()
    s.balls = np.array([[40.0, 40.0, 2.0], [52.0, 40.0, 2.0]], np.float32)
    t = build_targets(s)
    i, j = 40 // PIF_STRIDE, 46 // PIF_STRIDE  # cell (5, 5) at pixel 40: 0 cells from ball 1, 1.5 from ball 2
    x = (j + t["ball_vector"][0, i, j]) * PIF_STRIDE
    assert x == pytest.approx(40.0)


def test_semantic_targets_without_masks_leave_uncertain_pixels_out():
    t = build_targets(_sample())
    sem = t["semantic"]
    assert sem[5, 5] == 0  # far from everything: background
    assert sem[60, 30] == 1  # centre of box 0: player
    assert sem[32, 21] == IGNORE  # box corner: may be grass or player
    assert sem[101, 70] == 2  # the ball's centre
    assert not t["parts_labelled"].any() and not t["parts_positive"].any()
    # offsets of labelled player pixels lead to the box centre
    ys, xs = np.nonzero(t["offset_mask"])
    assert len(ys) > 50
    cx = xs + t["offsets"][0, ys, xs]
    cy = ys + t["offsets"][1, ys, xs]
    centre = np.where(xs < 80, 30.0, 112.0), np.where(xs < 80, 60.0, 52.0)
    assert np.allclose(cx, centre[0]) and np.allclose(cy, centre[1])


def test_semantic_targets_with_masks_label_every_pixel():
    t = build_targets(_sample(with_masks=True))
    assert (t["semantic"] != IGNORE).all()
    assert (t["semantic"] == 1).sum() == 60 * 20 + 64 * 24
    assert (t["semantic"] == 2).sum() == 6 * 5
    assert t["offset_mask"].sum() == 60 * 20 + 64 * 24
    assert t["offsets"][0, 30, 20] == pytest.approx(10.0) and t["offsets"][1, 30, 20] == pytest.approx(30.0)


def test_targets_reject_sizes_the_network_cannot_take():
    with pytest.raises(ValueError, match="multiple of 16"):
        build_targets(_sample(h=120))


def test_flip_mirrors_boxes_and_swaps_left_and_right():
    s = _sample(with_masks=True, with_joints=True)
    f = _flip(s)
    w = s.image.shape[1]
    assert np.allclose(f.boxes[0], [w - 40, 30, w - 20, 90])
    assert np.allclose(f.keypoints[0, 6, :2], [w - 1 - 25.0, 45.0])  # left shoulder became the right one
    assert f.keypoints[0, 6, 2] == 2 and f.keypoints[0, 5, 2] == 1
    assert np.array_equal(f.instances, s.instances[:, ::-1])
    assert f.balls[0, 0] == pytest.approx(w - 1 - 70.3)


def test_crop_renumbers_instances_and_drops_people_outside():
    s = _sample(with_masks=True, with_joints=True)
    c = _crop(s, 64, 0, 64)  # only person 1 (x 100..124) is inside
    assert len(c.boxes) == 1 and c.classes.tolist() == [2]
    assert np.allclose(c.boxes[0], [36, 20, 60, 64])
    assert set(np.unique(c.instances)) == {0, 1}
    assert c.keypoints.shape == (1, 17, 3) and c.keypoints[0, 15, 2] == 0  # the ankle at y 82 left the crop


def test_loss_leaves_unlabelled_parts_out():
    torch.manual_seed(0)
    net = DeepSportLabNet().eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 128, 160))
    _, parts_without = deepsportlab_loss(out, collate_targets([build_targets(_sample())]))
    _, parts_with = deepsportlab_loss(out, collate_targets([build_targets(_sample(with_joints=True))]))
    # the joints only add confidence terms of the parts head
    assert parts_with["confidence"] > parts_without["confidence"]
    assert parts_with["semantic"] == pytest.approx(parts_without["semantic"])


def test_yolo_reader_maps_classes(tmp_path):
    root = _yolo_root(tmp_path)
    samples = list(read_yolo_split(root, "train"))
    assert len(samples) == 2
    s = samples[0]
    assert s.classes.tolist() == [0, 0] and len(s.boxes) == 2  # "player" -> 0; the hoop is dropped
    assert np.allclose(s.boxes[0], [20, 30, 40, 90], atol=1e-3)
    assert np.allclose(s.balls[0], [70, 100, 3], atol=1e-3)
    (root / "train" / "labels" / "f1.txt").write_text("2 0.5 0.5\n")
    with pytest.raises(ValueError, match="f1.txt:1"):
        list(read_yolo_split(root, "train"))


def test_training_resumes_to_the_same_weights(tmp_path):
    root = _yolo_root(tmp_path)
    torch.set_num_threads(2)
    cfg = DetectorTrainConfig(steps=4, batch=2, crop=64, input_height=128, checkpoint_every=2, warmup=2,
                              mix={"soccer": 1.0})

    def data():
        return TrainingData({"soccer": read_yolo_split(root, "train")}, cfg.input_height)

    def net():
        torch.manual_seed(0)
        return DeepSportLabNet()

    straight = net()
    r = train_steps(straight, data(), cfg, tmp_path / "a", 4)
    assert r["step"] == 4 and np.isfinite(r["loss"])
    first = net()
    train_steps(first, data(), cfg, tmp_path / "b", 2)
    assert latest_checkpoint(tmp_path / "b")[0] == 2
    resumed = net()
    train_steps(resumed, data(), cfg, tmp_path / "b", 4)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    # another seed cannot continue this run's checkpoints
    with pytest.raises(ValueError, match="seed"):
        train_steps(net(), data(), DetectorTrainConfig(**{**cfg.__dict__, "seed": 1}), tmp_path / "b", 6)


def test_class_weights_weigh_the_rare_classes():
    torch.manual_seed(0)
    net = DeepSportLabNet().eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 128, 160))
    tg = collate_targets([build_targets(_sample())])  # a player (class 0) and a referee (class 2)
    logits = torch.zeros_like(out["player_class_logits"])
    logits[:, 0] = 5.0  # every cell says "player": right for the player, wrong for the referee
    out = dict(out, player_class_logits=logits)
    _, plain = deepsportlab_loss(out, tg)
    _, weighted = deepsportlab_loss(out, tg, class_weights=(1.0, 4.0, 3.0))
    assert weighted["class"] > plain["class"] * 1.3  # the referee's mistake counts three times
    _, same = deepsportlab_loss(out, tg, class_weights=(1.0, 1.0, 1.0))
    assert same["class"] == pytest.approx(plain["class"], rel=1e-5)
