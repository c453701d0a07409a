"""Small labelled frames for the detector tests."""

import numpy as np

from matchflow.training.detection.data import DetectionSample


def hand_made_sample(h=128, w=160, with_masks=False, with_joints=False):
    """Two people (a player and a referee), a ball; optional instance masks and a few joints."""
    img = np.full((h, w, 3), 60, np.uint8)
    boxes = np.array([[20, 30, 40, 90], [100, 20, 124, 84]], np.float32)
    classes = np.array([0, 2])
    balls = np.array([[70.3, 100.6, 3.0]], np.float32)
    inst = None
    if with_masks:
        inst = np.zeros((h, w), np.int32)
        inst[30:90, 20:40] = 1
        inst[20:84, 100:124] = 2
        inst[98:104, 68:73] = -1
    kp = None
    if with_joints:
        kp = np.zeros((2, 17, 3), np.float32)
        kp[0, 0] = (30.2, 35.7, 2)  # nose of person 0
        kp[0, 5] = (25.0, 45.0, 2)  # left shoulder
        kp[0, 6] = (35.0, 45.0, 1)  # right shoulder, occluded but labelled
        kp[1, 15] = (105.0, 82.0, 2)  # left ankle of person 1
    return DetectionSample(img, boxes, classes, balls, kp, inst, "hand-made")


def yolo_root(tmp_path):
    """A tiny Roboflow-style YOLO root (train and valid, 2 frames each) under ``tmp_path``."""
    import cv2

    root = tmp_path / "yolo"
    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for k in range(2):
            s = hand_made_sample()
            img = s.image.copy()
            for x1, y1, x2, y2 in s.boxes.astype(int):
                img[y1:y2, x1:x2] = (200, 40 + 60 * k, 40)
            cv2.circle(img, (70, 100), 3, (255, 255, 255), -1)
            cv2.imwrite(str(root / split / "images" / f"f{k}.jpg"), img)
            h, w = img.shape[:2]
            rows = [f"2 {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}"
                    for x1, y1, x2, y2 in s.boxes]
            rows.append(f"0 {70 / w} {100 / h} {6 / w} {6 / h}")
            rows.append("5 0.5 0.5 0.1 0.1")  # a class the detector does not learn (Hoop)
            (root / split / "labels" / f"f{k}.txt").write_text("\n".join(rows))
    (root / "data.yaml").write_text("names: [ball, goalkeeper, player, referee, clock, hoop]\nnc: 6\n")
    return root
