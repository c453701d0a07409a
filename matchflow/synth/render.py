"""Rendering of broadcast frames and their ground truth.

A frame is built back to front: the roof colour, the stands, the grass (with mip levels chosen per band of
image rows), the advertising boards, the soft shadows, then goals, people and the ball in order of decreasing
depth, and the score overlay. Pitch points are metres in SoccerNet's frame (z down); pixels follow OpenCV.
A person-id buffer drawn with the same primitives gives every person's box and visible share.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import cv2
import numpy as np

from matchflow.models.geometry.camera import PinholeCamera, clip_polygon, view_constraints
from matchflow.models.geometry.pitch import GOAL_HEIGHT, GOAL_WIDTH, LINE_WIDTH_M, draw_polylines

from .figure import Looks, draw_figure, figure_extent, figure_joints
from .play import BALL_RADIUS, HalfPlay
from .stadium import Stadium, Team
from .textures import PlanarTexture, board_textures, crowd_textures, grass_texture

__all__ = ["FrameRenderer", "PersonTruth", "FrameTruth"]

_NEAR_M = 0.5  # metres: nothing closer to the camera is drawn
_BAND_PX = 24
_ID_BALL = 255
_ID_OCCLUDER = 254


@dataclass
class PersonTruth:
    """A person seen in a frame: pixel box clipped to the image, share of the figure's pixels visible (in the
    image and not hidden by nearer figures or the overlay), feet on the grass in pitch metres."""

    person: int
    box: tuple[float, float, float, float]
    visible_fraction: float
    pitch_xy: tuple[float, float]


@dataclass
class FrameTruth:
    """Per-frame truth: the ball's pixel centre (NaN when not visible), whether it is visible, and the people."""

    ball_xy: tuple[float, float]
    ball_visible: bool
    persons: list[PersonTruth]


def _goal_geometry(stadium: Stadium) -> list[tuple[float, list[np.ndarray], list[np.ndarray]]]:
    """Per goal: x of its line, frame polylines (posts and crossbar) and net polylines, 3D pitch metres."""
    out = []
    hw, gh = GOAL_WIDTH / 2, GOAL_HEIGHT
    for sign in (-1.0, 1.0):
        x = sign * stadium.pitch.half_length
        top_back, bottom_back = x + sign * 1.0, x + sign * 2.0
        frame = [np.array([[x, -hw, 0.0], [x, -hw, -gh], [x, hw, -gh], [x, hw, 0.0]])]
        net = []
        for y in np.arange(-hw, hw + 1e-6, 0.35):  # across: crossbar, roof, back
            net.append(np.array([[x, y, -gh], [top_back, y, -gh], [bottom_back, y, 0.0]]))
        for s in np.arange(0.0, 1.0 + 1e-6, 0.14):  # along: horizontal strands on roof and back, sides
            zx = (top_back + s * (bottom_back - top_back), -gh * (1 - s))
            net.append(np.array([[zx[0], -hw, zx[1]], [zx[0], hw, zx[1]]]))
        for y in (-hw, hw):
            for z in np.arange(0.0, gh + 1e-6, 0.35):
                back = bottom_back + (top_back - bottom_back) * z / gh
                net.append(np.array([[x, y, -z], [back, y, -z]]))
        out.append((x, frame, net))
    return out


def _plane_to_image(p: np.ndarray, tex: PlanarTexture, kx: int, ky: int) -> np.ndarray:
    """3x3 map from texture pixels of level (kx, ky) to image pixels (w = depth in metres)."""
    return p @ tex.texture_to_pitch(kx, ky)


def _footprint(m0: np.ndarray, pts: np.ndarray, tex_size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Level-0 texels per image pixel along u and v at image points (N, 2), and whether each point sees the
    texture (of ``tex_size`` = (width, height) texels) in front of the camera."""
    g = np.linalg.inv(m0)
    q = np.column_stack([pts, np.ones(len(pts))]) @ g.T
    w = q[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = q[:, 0] / w, q[:, 1] / w
        du = (g[0, :2][None, :] - g[2, :2][None, :] * u[:, None]) / w[:, None]
        dv = (g[1, :2][None, :] - g[2, :2][None, :] * v[:, None]) / w[:, None]
        ok = (w > 0) & (u > -1) & (v > -1) & (u < tex_size[0]) & (v < tex_size[1])
    return np.max(np.abs(du), axis=1), np.max(np.abs(dv), axis=1), ok


def warp_plane(frame: np.ndarray, tex: PlanarTexture, p: np.ndarray) -> None:
    """Draw the textured rectangle ``tex`` into ``frame`` in place through the 3x4 projection ``p`` (pitch
    metres to pixels, w = depth): only the part in front of the camera, the mip level chosen per band of rows
    from the texel footprint."""
    size = (frame.shape[1], frame.shape[0])
    m0 = _plane_to_image(p, tex, 0, 0)
    h0, w0 = tex.image.shape[:2]
    rect = np.array([[-0.5, -0.5], [w0 - 0.5, -0.5], [w0 - 0.5, h0 - 0.5], [-0.5, h0 - 0.5]])
    scale = np.abs(m0).max()
    front = view_constraints(m0 / scale, size, near=_NEAR_M / scale)[:1]
    in_front = clip_polygon(rect, front)
    if len(in_front) < 3:
        return
    seen = clip_polygon(in_front, view_constraints(m0 / scale, size, margin=2.0, near=_NEAR_M / scale))
    if len(seen) < 3:
        return
    q = np.column_stack([seen, np.ones(len(seen))]) @ m0.T
    xy = q[:, :2] / q[:, 2:3]
    x0, y0 = np.clip(np.floor(xy.min(axis=0)).astype(int), 0, [size[0], size[1]])
    x1, y1 = np.clip(np.ceil(xy.max(axis=0)).astype(int) + 1, 0, [size[0], size[1]])
    if x1 <= x0 or y1 <= y0:
        return
    whole = len(in_front) == 4 and np.allclose(in_front, rect)
    mask = None
    if not whole:
        qf = np.column_stack([in_front, np.ones(len(in_front))]) @ m0.T
        poly = qf[:, :2] / qf[:, 2:3] - np.array([x0, y0])
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        poly = np.clip(poly, -1e6, 1e6)
        cv2.fillConvexPoly(mask, np.round(poly * 16).astype(np.int32), 255, cv2.LINE_8, 4)

    max_kx = max(k[0] for k in tex.levels)
    max_ky = max(k[1] for k in tex.levels)
    starts = np.arange(y0, y1, _BAND_PX)
    ends = np.minimum(starts + _BAND_PX, y1)
    xs = np.linspace(x0, x1 - 1, 7)
    gx, gy = np.meshgrid(xs, 0.5 * (starts + ends - 1))
    fu, fv, ok = (a.reshape(gx.shape) for a in _footprint(m0, np.column_stack([gx.ravel(), gy.ravel()]), (w0, h0)))
    with np.errstate(all="ignore"):  # mip level: log2 of the geometric mean footprint over the band
        n_ok = ok.sum(axis=1)
        level_x = np.floor(np.where(ok, np.log2(fu), 0.0).sum(axis=1) / np.maximum(n_ok, 1))
        level_y = np.floor(np.where(ok, np.log2(fv), 0.0).sum(axis=1) / np.maximum(n_ok, 1))
    level_x = np.clip(np.where(n_ok > 0, level_x, max_kx), 0, max_kx).astype(int).tolist()
    level_y = np.clip(np.where(n_ok > 0, level_y, max_ky), 0, max_ky).astype(int).tolist()
    bands: list[tuple[int, int, int, int]] = []
    for r0, r1, kx, ky in zip(starts.tolist(), ends.tolist(), level_x, level_y):
        if bands and bands[-1][2:] == (kx, ky):
            bands[-1] = (bands[-1][0], r1, kx, ky)
        else:
            bands.append((r0, r1, kx, ky))
    for r0, r1, kx, ky in bands:
        m = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -r0], [0.0, 0.0, 1.0]]) @ _plane_to_image(p, tex, kx, ky)
        src = tex.levels[(kx, ky)]
        if mask is None:
            cv2.warpPerspective(
                src, m, (x1 - x0, r1 - r0), dst=frame[r0:r1, x0:x1], flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_TRANSPARENT,
            )
        else:
            tmp = frame[r0:r1, x0:x1].copy()
            cv2.warpPerspective(
                src, m, (x1 - x0, r1 - r0), dst=tmp, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT
            )
            cv2.copyTo(tmp, mask[r0 - y0 : r1 - y0], frame[r0:r1, x0:x1])


class FrameRenderer:
    """Renders the frames of one half: static textures are made once, then :meth:`render` draws a frame for a
    camera and the state of play at a frame index."""

    def __init__(
        self, stadium: Stadium, teams: tuple[Team, Team], play: HalfPlay, rng: np.random.Generator,
        size: tuple[int, int], half: int = 1,
    ) -> None:
        self.stadium, self.teams, self.play, self.size, self.half = stadium, teams, play, size, half
        kit_colours = [teams[0].kit.shirt, teams[1].kit.shirt]
        detail = float(np.clip(size[0] / 1280.0, 0.5, 1.0))  # texture resolution follows the frame's
        self.stands = crowd_textures(stadium, rng, kit_colours, 10.0 * detail)
        self.grass = grass_texture(stadium, rng, 20.0 * detail)
        self.boards = board_textures(stadium, rng, 20.0 * detail)
        self.goals = _goal_geometry(stadium)
        self.overlay_box = self._overlay_box()
        self._background = np.full((size[1], size[0], 4), (*stadium.roof_bgr, 255), np.uint8)
        self._overlay_cache: dict[int, np.ndarray] = {}
        speed = np.linalg.norm(play.velocity, axis=2)
        heights = np.array([p.height for p in play.persons])
        self.joints = [
            figure_joints(play.position[f], play.heading[f], play.phase[f], speed[f], heights)
            for f in range(play.frames)
        ]
        self.looks = [
            Looks(
                shirt=p.kit.shirt, shorts=p.kit.shorts, socks=p.kit.socks, skin=p.skin, hair=p.hair, boots=p.boots,
                number=p.number, long_sleeves=p.long_sleeves, hair_style=p.hair_style,
            )
            for p in play.persons
        ]

    # ----------------------------------------------------------------------------------------- overlay
    def _overlay_box(self) -> tuple[int, int, int, int]:
        w, h = self.size
        s = h / 720.0
        return int(30 * s), int(26 * s), int(30 * s + 250 * s), int(26 * s + 34 * s)

    def _overlay(self, t: float) -> np.ndarray:
        second = int(t) + (self.half - 1) * 45 * 60
        if second not in self._overlay_cache:
            x0, y0, x1, y1 = self.overlay_box
            h = y1 - y0
            img = np.full((h, x1 - x0, 3), (45, 25, 20), np.uint8)
            scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, max(6, int(h * 0.45)), 1)
            thick = max(1, int(round(h / 20)))
            sw = max(2, h // 7)
            for k, team in enumerate(self.teams):
                bx = int((0.02 + 0.36 * k) * (x1 - x0))
                img[int(h * 0.2) : int(h * 0.8), bx : bx + sw] = team.kit.shirt
                cv2.putText(img, team.code, (bx + 2 * sw, int(h * 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                            (240, 240, 240), thick, cv2.LINE_AA)
            cv2.putText(img, "0-0", (int(0.22 * (x1 - x0)), int(h * 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (240, 240, 240), thick, cv2.LINE_AA)
            img[:, int(0.72 * (x1 - x0)) :] = (20, 20, 20)
            clock = f"{second // 60:02d}:{second % 60:02d}"
            cv2.putText(img, clock, (int(0.75 * (x1 - x0)), int(h * 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (240, 240, 240), thick, cv2.LINE_AA)
            self._overlay_cache = {second: cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)}
        return self._overlay_cache[second]

    # ----------------------------------------------------------------------------------------- shadows
    def _shadows(self, frame: np.ndarray, h: np.ndarray, polys: np.ndarray, alphas: np.ndarray,
                 blur_m: np.ndarray, px_per_m: np.ndarray, strength: np.ndarray) -> None:
        """Darken the grass under groups of pitch polygons ``polys`` (G, K, N, 2) metres, polygon k of each
        group with opacity ``alphas[k]``, softened by ``blur_m`` (G,) metres, darkening by ``strength`` (G,)."""
        w, hgt = self.size
        g, k, n, _ = polys.shape
        q = polys.reshape(-1, 2) @ h[:, :2].T + h[:, 2]
        q = q.reshape(g, k * n, 3)
        in_front = np.all(q[:, :, 2] > _NEAR_M, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            pix = q[:, :, :2] / q[:, :, 2:3]
        sigma = np.maximum(0.7, blur_m * px_per_m)
        pad = (3 * sigma).astype(int) + 2
        for i in np.flatnonzero(in_front):
            lo = np.floor(pix[i].min(axis=0)).astype(int) - pad[i]
            hi = np.ceil(pix[i].max(axis=0)).astype(int) + pad[i]
            cx0, cy0, cx1, cy1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], hgt)
            if cx1 <= cx0 or cy1 <= cy0 or (hi[0] - lo[0]) * (hi[1] - lo[1]) > w * hgt:
                continue
            mask = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.float32)
            local = np.round((pix[i] - lo) * 16).astype(np.int32).reshape(k, n, 2)
            for j in range(k):
                cv2.fillPoly(mask, [local[j]], float(alphas[j]), cv2.LINE_AA, 4)
            mask = cv2.GaussianBlur(mask, (0, 0), float(sigma[i]))[cy0 - lo[1] : cy1 - lo[1], cx0 - lo[0] : cx1 - lo[0]]
            roi = frame[cy0:cy1, cx0:cx1]
            roi[:] = (roi * (1.0 - strength[i] * np.minimum(mask, 1.0))[:, :, None]).astype(np.uint8)

    # ----------------------------------------------------------------------------------------- frame
    def render(self, cam: PinholeCamera, f: int) -> tuple[np.ndarray, FrameTruth]:
        """The BGR frame (height, width, 3) uint8 at frame index ``f`` seen by ``cam``, and its truth."""
        image, truth, _ = self.render_with_ids(cam, f)
        return image, truth

    def render_with_ids(self, cam: PinholeCamera, f: int) -> tuple[np.ndarray, FrameTruth, np.ndarray]:
        """As :meth:`render`, also returning the instance buffer (height, width) uint8 of what is seen at each
        pixel: 0 nothing tracked, k + 1 person k, 254 an occluder (goal frame), 255 the ball; the score
        overlay's pixels are 0."""
        w, h = self.size
        st = self.stadium
        frame = self._background.copy()
        p = cam.projection_matrix()
        hom = cam.homography()
        for tex in self.stands:
            warp_plane(frame, tex, p)
        warp_plane(frame, self.grass, p)
        for tex in self.boards:
            warp_plane(frame, tex, p)

        play = self.play
        sun = np.array(st.sun_direction)
        across = np.array([-sun[1], sun[0]])
        depth = cam.depth(np.column_stack([play.position[f], np.zeros(len(play.persons))]))
        ball = play.ball[f]
        ball_depth = float(cam.depth(ball[None])[0])
        ring = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        circle = np.stack([np.cos(ring), np.sin(ring)], axis=1)
        heights = np.array([person.height for person in play.persons])
        length = st.shadow_length * heights[:, None, None]
        at = play.position[f][:, None, :]
        cast = at + sun * (0.5 * length) + (0.5 * length + 0.15) * circle[:, :1] * sun + 0.22 * circle[:, 1:] * across
        contact = at + 0.32 * circle
        seen = depth > _NEAR_M
        n_seen = int(seen.sum())
        self._shadows(
            frame, hom, np.stack([cast, contact], axis=1)[seen], np.array([0.75, 1.0]), np.full(n_seen, 0.12),
            cam.focal_px / depth[seen], np.full(n_seen, st.shadow_strength),
        )
        if ball_depth > _NEAR_M:
            lift = max(0.0, -ball[2] - BALL_RADIUS)
            spot = ball[:2] + sun * lift * st.shadow_length + 0.12 * (1 + 0.05 * lift) * circle
            self._shadows(
                frame, hom, spot[None, None], np.array([1.0]), np.array([0.05 + 0.03 * lift]),
                np.array([cam.focal_px / ball_depth]), np.array([st.shadow_strength / (1.0 + lift / 3.0)]),
            )

        ids = np.zeros((h, w), np.uint8)
        items: list[tuple[float, str, int]] = [(d, "person", k) for k, d in enumerate(depth) if d > _NEAR_M]
        for g, (gx, _, _) in enumerate(self.goals):
            items.append((float(cam.depth(np.array([[gx, 0.0, -1.2]]))[0]), "goal", g))
        if ball_depth > _NEAR_M:
            items.append((ball_depth, "ball", 0))
        truths: list[PersonTruth] = []
        ball_px = (float("nan"), float("nan"))
        ball_visible = False
        ball_count = 0
        full_counts: dict[int, tuple[int, tuple[float, float, float, float], tuple[int, int, int, int]]] = {}
        ball_roi = (0, 0, 0, 0)
        for d, kind, k in sorted(items, key=lambda it: -it[0]):
            if kind == "goal":
                self._draw_goal(frame, ids, cam, p, k)
            elif kind == "person":
                drawn = self._draw_person(frame, ids, cam, p, f, k, d)
                if drawn is not None:
                    full_counts[k] = drawn
            else:
                ball_count, ball_px, ball_roi = self._draw_ball(frame, ids, cam, ball, d)
        x0, y0, x1, y1 = self.overlay_box
        frame[y0:y1, x0:x1] = self._overlay(f / play.fps)
        ids[y0:y1, x0:x1] = 0
        for k, (total, box, (cx0, cy0, cx1, cy1)) in sorted(full_counts.items()):
            seen_px = int(np.count_nonzero(ids[cy0:cy1, cx0:cx1] == k + 1))
            truths.append(
                PersonTruth(
                    k,
                    box,
                    seen_px / max(total, 1),
                    typing.cast("tuple[float, float]", tuple(float(v) for v in play.position[f, k])),
                )
            )
        bx0, by0, bx1, by1 = ball_roi
        if ball_count > 0 and np.count_nonzero(ids[by0:by1, bx0:bx1] == _ID_BALL) >= 0.3 * ball_count:
            ball_visible = True
        if not ball_visible:
            ball_px = (float("nan"), float("nan"))
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR), FrameTruth(ball_px, ball_visible, truths), ids

    def _draw_goal(self, frame: np.ndarray, ids: np.ndarray, cam: PinholeCamera, p: np.ndarray, g: int) -> None:
        gx, posts, net = self.goals[g]
        d = float(cam.depth(np.array([[gx, 0.0, -1.2]]))[0])
        if d <= _NEAR_M:
            return
        px_per_m = cam.focal_px / d
        # the net: thin light strands, half transparent
        q = np.vstack(net) @ p[:, :3].T + p[:, 3]
        if np.all(q[:, 2] > _NEAR_M):
            xy = q[:, :2] / q[:, 2:3]
            x0, y0 = np.clip(np.floor(xy.min(axis=0)).astype(int) - 2, 0, [self.size[0], self.size[1]])
            x1, y1 = np.clip(np.ceil(xy.max(axis=0)).astype(int) + 2, 0, [self.size[0], self.size[1]])
            if x1 > x0 and y1 > y0:
                roi = frame[y0:y1, x0:x1]
                layer = roi.copy()
                shifted = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ p
                draw_polylines(layer, shifted, net, (225, 225, 225), 1, True)
                cv2.addWeighted(layer, 0.45, roi, 0.55, 0.0, dst=roi)
        thick = max(1, int(round(LINE_WIDTH_M * px_per_m)))
        draw_polylines(frame, p, posts, (245, 245, 245), thick, True)
        draw_polylines(ids, p, posts, _ID_OCCLUDER, thick, False)

    def _draw_person(
        self, frame: np.ndarray, ids: np.ndarray, cam: PinholeCamera, p: np.ndarray, f: int, k: int, d: float
    ) -> tuple[int, tuple[float, float, float, float], tuple[int, int, int, int]] | None:
        """Draw person ``k``; returns its full pixel count, its box clipped to the image and the image region
        it was drawn in, or None when out of the image."""
        joints = self.joints[f][k]
        q = joints @ p[:, :3].T + p[:, 3]
        if np.any(q[:, 2] <= _NEAR_M):
            return None
        pts = q[:, :2] / q[:, 2:3]
        px_per_m = cam.focal_px / d
        height = self.play.persons[k].height
        x0, y0, x1, y1 = figure_extent(pts, px_per_m, height)
        w, h = self.size
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or (x1 - x0) * (y1 - y0) > 4 * w * h:
            return None
        depth_l = cam.depth(joints[[2]])[0]
        depth_r = cam.depth(joints[[3]])[0]
        local = np.zeros((y1 - y0, x1 - x0), np.uint8)
        draw_figure(local, pts, (x0, y0), px_per_m, height, self.looks[k], bool(depth_l > depth_r), fill=1)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        inside = local[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        if not inside.any():
            return None
        total = int(np.count_nonzero(local))
        bx, by, bw, bh = cv2.boundingRect(local)
        box = (
            float(max(x0 + bx, 0)), float(max(y0 + by, 0)),
            float(min(x0 + bx + bw, w)), float(min(y0 + by + bh, h)),
        )
        roi = frame[cy0:cy1, cx0:cx1]
        draw_figure(roi, pts, (cx0, cy0), px_per_m, height, self.looks[k], bool(depth_l > depth_r))
        ids[cy0:cy1, cx0:cx1][inside > 0] = k + 1
        return total, box, (cx0, cy0, cx1, cy1)

    def _draw_ball(
        self, frame: np.ndarray, ids: np.ndarray, cam: PinholeCamera, ball: np.ndarray, d: float
    ) -> tuple[int, tuple[float, float], tuple[int, int, int, int]]:
        """Draw the ball; returns its pixel count, pixel centre (NaN when not in the image) and region."""
        (xy,), _ = cam.project(ball[None])
        w, h = self.size
        r = BALL_RADIUS * cam.focal_px / d
        if not (0 <= xy[0] < w and 0 <= xy[1] < h):
            return 0, (float("nan"), float("nan")), (0, 0, 0, 0)
        c = (int(round(xy[0] * 16)), int(round(xy[1] * 16)))
        rr = int(round(max(r, 1.0) * 16))
        x0, y0 = max(int(xy[0] - r) - 2, 0), max(int(xy[1] - r) - 2, 0)
        x1, y1 = min(int(xy[0] + r) + 3, w), min(int(xy[1] + r) + 3, h)
        local = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.circle(local, (c[0] - x0 * 16, c[1] - y0 * 16), rr, 1, -1, cv2.LINE_8, 4)
        cv2.circle(frame, c, rr, (225, 228, 228), -1, cv2.LINE_AA, 4)
        if r >= 2.5:
            shade, shine = (c[0] + int(r * 4), c[1] + int(r * 5)), (c[0] - int(r * 4), c[1] - int(r * 4))
            cv2.circle(frame, shade, int(rr * 0.55), (170, 172, 172), -1, cv2.LINE_AA, 4)
            cv2.circle(frame, shine, int(rr * 0.35), (252, 252, 252), -1, cv2.LINE_AA, 4)
        ids[y0:y1, x0:x1][local > 0] = _ID_BALL
        return int(np.count_nonzero(local)), (float(xy[0]), float(xy[1])), (x0, y0, x1, y1)
