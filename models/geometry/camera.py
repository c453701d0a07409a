"""Pinhole broadcast camera and its pitch-plane homography, in SoccerNet's conventions.

Frames:
- pitch (world): metres, SoccerNet frame: origin at the centre spot, x along the touchlines
  (+52.5 = right goal line as seen from the main camera), +y toward the main camera's touchline, z down
  (a point 1.8 m above the grass has z = -1.8).
- camera: x right, y down, z along the optical axis; ``x_cam = R @ (X - C)``.
- image: OpenCV pixels (x right, y down), principal point at ``(width / 2, height / 2)`` as SoccerNet.

Angles follow SoccerNet's calibration toolkit: ``R = (Rz(pan) @ Rx(tilt) @ Rz(roll)).T``; pan 0 looks along
-y (from the main camera across the pitch), positive pan turns toward +x, tilt 0 looks straight down and
tilt 90 degrees looks at the horizon.

The module also holds the projective clipping helpers used to draw pitch geometry: constraints that are linear
in homogeneous coordinates (in front of the camera, inside an image box), Liang-Barsky segment clipping and
Sutherland-Hodgman polygon clipping against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

__all__ = [
    "PinholeCamera",
    "pan_tilt_roll_to_rotation",
    "rotation_to_pan_tilt_roll",
    "look_at_rotation",
    "camera_from_homography",
    "reprojection_errors",
    "camera_to_soccernet_dict",
    "camera_from_soccernet_dict",
    "normalize_homography",
    "apply_homography",
    "front_sign",
    "view_constraints",
    "clip_segments",
    "clip_polygon",
]


# --------------------------------------------------------------------------------------------- rotations
def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def pan_tilt_roll_to_rotation(pan: float, tilt: float, roll: float) -> np.ndarray:
    """World-to-camera rotation R (3x3) from pan, tilt, roll in radians (SoccerNet convention)."""
    return (_rz(pan) @ _rx(tilt) @ _rz(roll)).T


def rotation_to_pan_tilt_roll(rotation: np.ndarray) -> tuple[float, float, float]:
    """Pan, tilt, roll in radians of a world-to-camera rotation; of the two solutions, the one with least roll."""
    o = np.asarray(rotation, dtype=float).T
    tilt = float(np.arccos(np.clip(o[2, 2], -1.0, 1.0)))
    best: tuple[float, float, float] | None = None
    for t in (tilt, -tilt):
        s = 1.0 if np.sin(t) > 0 else -1.0
        pan = float(np.arctan2(s * o[0, 2], -s * o[1, 2]))
        roll = float(np.arctan2(s * o[2, 0], s * o[2, 1]))
        if best is None or abs(roll) < abs(best[2]):
            best = (pan, t, roll)
    assert best is not None
    return best


def look_at_rotation(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """World-to-camera rotation of a camera at ``position`` whose optical axis passes through ``target``
    (both pitch metres), with the given roll in radians (0: horizon level)."""
    axis = np.asarray(target, dtype=float) - np.asarray(position, dtype=float)
    axis /= np.linalg.norm(axis)
    tilt = float(np.arccos(np.clip(axis[2], -1.0, 1.0)))
    pan = float(np.arctan2(axis[0], -axis[1]))
    return pan_tilt_roll_to_rotation(pan, tilt, roll)


# --------------------------------------------------------------------------------------------- camera
@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """Distortion-free pinhole camera with square pixels and the principal point at the image centre.

    ``focal_px``: focal length in pixels; ``rotation``: world-to-camera 3x3; ``position``: camera centre in
    pitch metres (z < 0 above the grass); ``image_size``: (width, height) in pixels.
    """

    focal_px: float
    rotation: np.ndarray
    position: np.ndarray
    image_size: tuple[int, int] = (1280, 720)

    @property
    def principal_point(self) -> tuple[float, float]:
        return (self.image_size[0] / 2.0, self.image_size[1] / 2.0)

    @property
    def intrinsics(self) -> np.ndarray:
        """3x3 calibration matrix K."""
        cx, cy = self.principal_point
        return np.array([[self.focal_px, 0.0, cx], [0.0, self.focal_px, cy], [0.0, 0.0, 1.0]])

    @property
    def pan_tilt_roll(self) -> tuple[float, float, float]:
        """(pan, tilt, roll) in radians."""
        return rotation_to_pan_tilt_roll(self.rotation)

    def projection_matrix(self) -> np.ndarray:
        """3x4 P = K [R | -R C]: homogeneous pitch metres (x, y, z, 1) to image pixels; w is the depth in metres."""
        r = np.asarray(self.rotation, dtype=float)
        return self.intrinsics @ np.hstack([r, (-r @ np.asarray(self.position, dtype=float))[:, None]])

    def homography(self) -> np.ndarray:
        """3x3 pitch-plane (z = 0, metres) to image homography, scaled so that w is the depth in metres."""
        return self.projection_matrix()[:, [0, 1, 3]]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project pitch points (N, 3) metres (or (N, 2) on the grass) to pixels (N, 2); also returns depth (N,)
        in metres (<= 0 behind the camera, where the pixels are meaningless)."""
        pts = np.asarray(points, dtype=float)
        if pts.shape[-1] == 2:
            pts = np.concatenate([pts, np.zeros(pts.shape[:-1] + (1,))], axis=-1)
        p = self.projection_matrix()
        q = pts @ p[:, :3].T + p[:, 3]
        depth = q[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = q[..., :2] / depth[..., None]
        return xy, depth

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Depth in metres along the optical axis of pitch points (N, 3)."""
        pts = np.asarray(points, dtype=float)
        return (pts - self.position) @ np.asarray(self.rotation)[2]

    def with_size(self, width: int, height: int) -> PinholeCamera:
        """The same camera for another image size (focal length scaled with the width)."""
        scale = width / self.image_size[0]
        return PinholeCamera(self.focal_px * scale, self.rotation, self.position, (int(width), int(height)))


# --------------------------------------------------------------------------------------------- homographies
def normalize_homography(h: np.ndarray) -> np.ndarray:
    """The 3x3 homography scaled so that h[2, 2] == 1."""
    h = np.asarray(h, dtype=float)
    return h / h[2, 2]


def apply_homography(h: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map (N, 2) points through a 3x3 homography; returns the mapped points (N, 2) and w (N,)."""
    pts = np.asarray(points, dtype=float)
    q = pts @ np.asarray(h, dtype=float)[:, :2].T + np.asarray(h, dtype=float)[:, 2]
    w = q[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return q[..., :2] / w[..., None], w


def _pitch_grid(step: float = 2.0, margin: float = 6.0) -> np.ndarray:
    """(N, 2) points every ``step`` metres over a 105 x 68 m pitch and ``margin`` metres around it."""
    xs = np.arange(-52.5 - margin, 52.5 + margin + 1e-9, step)
    ys = np.arange(-34.0 - margin, 34.0 + margin + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def front_sign(h_pitch_to_image: np.ndarray, image_size: tuple[int, int]) -> float:
    """+1 or -1: the sign of w that points in front of the camera get from this pitch-to-image homography.

    A homography is defined up to scale, sign included. The side whose pitch points land in the image most
    often is taken as the front (pitch points behind the camera only land in the image above the horizon,
    and rarely); when no pitch point is seen, the pitch origin is assumed in front of the camera.
    """
    xy, w = apply_homography(h_pitch_to_image, _pitch_grid(1.0, 0.0))
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < image_size[0]) & (xy[:, 1] >= 0) & (xy[:, 1] < image_size[1])
    vote = np.sum(np.sign(w[inside]))
    if vote == 0:
        return 1.0 if h_pitch_to_image[2, 2] >= 0 else -1.0
    return 1.0 if vote > 0 else -1.0


def _rotation_from_vector(rvec: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(rvec))
    if theta < 1e-12:
        return np.eye(3)
    k = rvec / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * (kx @ kx)


def _rotation_to_vector(r: np.ndarray) -> np.ndarray:
    theta = float(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)))
    if theta < 1e-12:
        return np.zeros(3)
    if np.pi - theta < 1e-6:
        w, v = np.linalg.eigh((r + np.eye(3)) / 2)
        return v[:, -1] * theta
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2 * np.sin(theta))
    return axis * theta


def _initial_camera(h: np.ndarray, image_size: tuple[int, int]) -> PinholeCamera | None:
    """Closed-form decomposition (square pixels, centred principal point); None when it has no solution."""
    cx, cy = image_size[0] / 2.0, image_size[1] / 2.0
    hc = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]]) @ normalize_homography(h)
    (a, b), (c, d), (e, f_) = hc[0, :2], hc[1, :2], hc[2, :2]
    # h1^T w h2 = 0 and h1^T w h1 = h2^T w h2 with w = diag(1/f^2, 1/f^2, 1): two linear equations in 1/f^2.
    rows = np.array([[a * b + c * d, e * f_], [a * a + c * c - b * b - d * d, e * e - f_ * f_]])
    denom = float(rows[:, 0] @ rows[:, 0])
    if denom <= 0:
        return None
    inv_f2 = -float(rows[:, 0] @ rows[:, 1]) / denom
    if not np.isfinite(inv_f2) or inv_f2 <= 0:
        return None
    focal = 1.0 / np.sqrt(inv_f2)
    m = np.diag([1.0 / focal, 1.0 / focal, 1.0]) @ hc
    scale = 2.0 / (np.linalg.norm(m[:, 0]) + np.linalg.norm(m[:, 1]))
    r1, r2, t = m[:, 0] * scale, m[:, 1] * scale, m[:, 2] * scale
    r = np.column_stack([r1, r2, np.cross(r1, r2)])
    u, _, vt = np.linalg.svd(r)
    r = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    if (-r.T @ t)[2] > 0:  # the sign of a homography is free: take the camera above the grass (z down)
        r = r @ np.diag([-1.0, -1.0, 1.0])
        t = -t
    position = -r.T @ t
    return PinholeCamera(float(focal), r, position, (int(image_size[0]), int(image_size[1])))


def _fit_points(h: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pitch points (N, 2) seen by ``h`` inside the image (with a margin), and their pixels (N, 2)."""
    grid = _pitch_grid(2.0, 6.0)
    xy, w = apply_homography(h, grid)
    mx, my = 0.25 * image_size[0], 0.25 * image_size[1]
    ok = (w * front_sign(h, image_size) > 0) & (xy[:, 0] > -mx) & (xy[:, 0] < image_size[0] + mx)
    ok &= (xy[:, 1] > -my) & (xy[:, 1] < image_size[1] + my)
    return grid[ok], xy[ok]


def camera_from_homography(
    h_pitch_to_image: np.ndarray, image_size: tuple[int, int] = (1280, 720), refine: bool = True
) -> PinholeCamera | None:
    """Decompose a pitch-to-image homography (pitch plane z = 0, metres, to pixels) into a pinhole camera.

    Square pixels and a centred principal point are assumed, so the 8 degrees of freedom of the homography
    are fitted by the camera's 7 (focal length, rotation, position): closed form first, then (``refine``)
    least squares on the pixel reprojection of the pitch points the homography sees. Returns None when the
    homography has no such camera.
    """
    h = np.asarray(h_pitch_to_image, dtype=float)
    cam = _initial_camera(h, image_size)
    if cam is None or not refine:
        return cam
    pts, target = _fit_points(h, image_size)
    if len(pts) < 6:
        return cam
    pts3 = np.column_stack([pts, np.zeros(len(pts))])

    def residuals(p: np.ndarray) -> np.ndarray:
        c = PinholeCamera(float(np.exp(p[0])), _rotation_from_vector(p[1:4]), p[4:7], cam.image_size)
        xy, depth = c.project(pts3)
        res = xy - target
        res[depth <= 1e-6] = 1e4
        return res.ravel()

    p0 = np.concatenate([[np.log(cam.focal_px)], _rotation_to_vector(cam.rotation), cam.position])
    sol = least_squares(residuals, p0, method="lm", x_scale="jac", max_nfev=2000)
    out = PinholeCamera(float(np.exp(sol.x[0])), _rotation_from_vector(sol.x[1:4]), sol.x[4:7], cam.image_size)
    return out if np.all(np.isfinite(out.position)) else cam


def reprojection_errors(h_pitch_to_image: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Pixel distances between the homography's and the camera's images of the pitch points that the
    homography sees inside the image (grid every 2 m over the pitch and 6 m around it); (N,)."""
    size = camera.image_size
    pts, target = _fit_points(np.asarray(h_pitch_to_image, dtype=float), size)
    inside = (target[:, 0] >= 0) & (target[:, 0] < size[0]) & (target[:, 1] >= 0) & (target[:, 1] < size[1])
    xy, _ = camera.project(pts[inside])
    return np.linalg.norm(xy - target[inside], axis=1)


# --------------------------------------------------------------------------------------------- SoccerNet json
def camera_to_soccernet_dict(camera: PinholeCamera) -> dict:
    """The camera as a SoccerNet calibration dictionary (degrees, pixels, metres, no distortion)."""
    pan, tilt, roll = camera.pan_tilt_roll
    return {
        "pan_degrees": float(np.degrees(pan)),
        "tilt_degrees": float(np.degrees(tilt)),
        "roll_degrees": float(np.degrees(roll)),
        "position_meters": [float(v) for v in camera.position],
        "x_focal_length": float(camera.focal_px),
        "y_focal_length": float(camera.focal_px),
        "principal_point": [float(v) for v in camera.principal_point],
        "radial_distortion": [0.0] * 6,
        "tangential_distortion": [0.0] * 2,
        "thin_prism_distortion": [0.0] * 4,
    }


def camera_from_soccernet_dict(d: dict) -> PinholeCamera:
    """A camera from a SoccerNet calibration dictionary; the image size is twice the principal point, the
    focal length the mean of x and y focal lengths; distortion is ignored."""
    rotation = pan_tilt_roll_to_rotation(*(np.radians(d[k]) for k in ("pan_degrees", "tilt_degrees", "roll_degrees")))
    size = (int(round(2 * d["principal_point"][0])), int(round(2 * d["principal_point"][1])))
    focal = 0.5 * (float(d["x_focal_length"]) + float(d["y_focal_length"]))
    return PinholeCamera(focal, rotation, np.asarray(d["position_meters"], dtype=float), size)


# --------------------------------------------------------------------------------------------- clipping
def view_constraints(
    m: np.ndarray, image_size: tuple[int, int], margin: float = 0.0, near: float = 1e-6
) -> np.ndarray:
    """Half-space constraints ``c @ [X, 1] >= 0`` on affine points X (dimension d) that a projective map
    ``m`` (3 x (d+1), to image pixels, w > 0 in front) sends in front of the camera (w >= near) and inside
    the image box widened by ``margin`` pixels. Returns (5, d+1)."""
    m = np.asarray(m, dtype=float)
    w_, h_ = image_size
    return np.stack(
        [
            m[2] - near * np.eye(1, m.shape[1], m.shape[1] - 1)[0],
            m[0] + margin * m[2],
            (w_ + margin) * m[2] - m[0],
            m[1] + margin * m[2],
            (h_ + margin) * m[2] - m[1],
        ]
    )


def clip_segments(
    a: np.ndarray, b: np.ndarray, constraints: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Liang-Barsky clipping of segments a[i]-b[i] ((N, d) affine points) against ``c @ [X, 1] >= 0``.

    Returns the clipped ends (N, d) each, ``keep`` (N,) and ``whole`` (N, 2): whether each end was kept as is.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    fa = a @ constraints[:, :-1].T + constraints[:, -1]
    fb = b @ constraints[:, :-1].T + constraints[:, -1]
    t0 = np.zeros(len(a))
    t1 = np.ones(len(a))
    keep = ~np.any((fa < 0) & (fb < 0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = fa / (fa - fb)
    enter = (fa < 0) & (fb >= 0)
    leave = (fa >= 0) & (fb < 0)
    t0 = np.maximum(t0, np.max(np.where(enter, t, 0.0), axis=1))
    t1 = np.minimum(t1, np.min(np.where(leave, t, 1.0), axis=1))
    keep &= t0 < t1
    d = b - a
    return a + t0[:, None] * d, a + t1[:, None] * d, keep, np.stack([t0 == 0.0, t1 == 1.0], axis=1)


def clip_polygon(polygon: np.ndarray, constraints: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman clipping of a convex or simple polygon (N, d) against ``c @ [X, 1] >= 0``;
    returns the clipped polygon (M, d), M = 0 when nothing is left."""
    poly = np.asarray(polygon, dtype=float)
    for c in constraints:
        if len(poly) == 0:
            break
        f = poly @ c[:-1] + c[-1]
        out = []
        n = len(poly)
        for i in range(n):
            j = (i + 1) % n
            if f[i] >= 0:
                out.append(poly[i])
            if (f[i] >= 0) != (f[j] >= 0):
                out.append(poly[i] + (f[i] / (f[i] - f[j])) * (poly[j] - poly[i]))
        poly = np.array(out).reshape(-1, poly.shape[1])
    return poly
