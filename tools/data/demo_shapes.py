"""Procedural drawing for the demo dataset: one class = shape x texture x hue family.

Everything is drawn with OpenCV/numpy on whole arrays (no per-pixel Python). Randomness comes only
from the ``numpy.random.Generator`` passed in, so an image is a pure function of its seed.
Like an object-centric photograph, an image is one object (sometimes a second, smaller one of another
class) on a cluttered background. The first eight classes each own a hue family, a shape and (with
period 4) a texture; the background clutter is drawn at a third of its saturation with every hue, so a
class is told by the colour, shape and texture *of the object*, not by the colours in the frame.
Version 4 (``demo.DEMO_VERSION``) spaces the eight hue families 45 degrees apart (jitter +-8), draws the
object at 0.34-0.46 of the shorter side and greys the clutter further: in version 3 red, orange and yellow
were 27-28 degrees apart with +-14 of jitter, so colour could not tell them apart even inside the object.
"""

from __future__ import annotations

import colorsys
import functools
import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from tools.data.label_codec import IGNORE_ID

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon", "crescent", "arrow")
TEXTURES = ("solid", "striped", "dotted", "checkered")
HUES = (  # eight hue families 45 degrees apart (the order spreads neighbours over the first classes)
    ("red", 0.0),
    ("green", 135.0),
    ("blue", 225.0),
    ("lime", 90.0),
    ("purple", 270.0),
    ("orange", 45.0),
    ("cyan", 180.0),
    ("pink", 315.0),
)
HUE_JITTER_DEG = 8.0  # per-image jitter of an object's hue around its family's centre
MAX_CLASSES = len(SHAPES) * len(TEXTURES) * len(HUES)
_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point shift: smoother edges on small images


@dataclass(frozen=True)
class ClassLook:
    """How one class is drawn. ``hue_deg`` is the centre of the hue family (jittered per image)."""

    shape: str
    texture: str
    hue: str
    hue_deg: float

    @property
    def description(self) -> str:
        return f"{self.hue} {self.texture} {self.shape}"


@functools.lru_cache(maxsize=8)
def class_looks(num_classes: int) -> tuple[ClassLook, ...]:
    """Distinct looks for classes ``0..num_classes-1`` (deterministic, no randomness).

    Consecutive classes get different shapes; the first ``len(HUES)`` classes get different hue families
    and textures repeat with period 4. Collisions are resolved by a fixed scan.
    """
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"the demo dataset supports 1..{MAX_CLASSES} classes, got {num_classes}")
    n_s, n_t, n_h = len(SHAPES), len(TEXTURES), len(HUES)
    used: set[tuple[int, int, int]] = set()
    looks = []
    for i in range(num_classes):
        s, t0, h0 = i % n_s, (i + i // n_s) % n_t, (i + 3 * (i // n_h)) % n_h
        for dt, dh in itertools.product(range(n_t), range(n_h)):
            combo = (s, (t0 + dt) % n_t, (h0 + dh) % n_h)
            if combo not in used:
                break
        used.add(combo)
        name, deg = HUES[combo[2]]
        looks.append(ClassLook(SHAPES[s], TEXTURES[combo[1]], name, deg))
    return tuple(looks)


# ------------------------------------------------------------------------------------------ geometry


def _regular(n: int, radius: float = 1.0, start: float = -np.pi / 2) -> np.ndarray:
    a = start + np.arange(n) * 2 * np.pi / n
    return np.stack([np.cos(a), np.sin(a)], axis=1) * radius


def _star() -> np.ndarray:
    pts = _regular(10)
    pts[1::2] *= 0.45
    return pts


def shape_parts(shape: str) -> list[tuple[np.ndarray, int]]:
    """Unit-radius polygons ``[N, 2]`` (x, y) with fill value 1 (add) or 0 (cut a hole), in order."""
    w = 0.33  # half-width of the cross/arrow bars
    parts = {
        "circle": [(_regular(48), 1)],
        "square": [(_regular(4, start=np.pi / 4) * 1.0, 1)],
        "triangle": [(_regular(3, start=-np.pi / 2) * 1.1, 1)],
        "star": [(_star(), 1)],
        "cross": [
            (
                np.array(
                    [
                        [-w, -1],
                        [w, -1],
                        [w, -w],
                        [1, -w],
                        [1, w],
                        [w, w],
                        [w, 1],
                        [-w, 1],
                        [-w, w],
                        [-1, w],
                        [-1, -w],
                        [-w, -w],
                    ]
                ),
                1,
            ),
        ],
        "ring": [(_regular(48), 1), (_regular(48, radius=0.55), 0)],
        "diamond": [(np.array([[0, -1], [0.62, 0], [0, 1], [-0.62, 0]]), 1)],
        "hexagon": [(_regular(6, start=0.0), 1)],
        "crescent": [(_regular(48), 1), (_regular(48, radius=0.85) + [0.45, -0.15], 0)],
        "arrow": [
            (np.array([[-1, -w], [0.1, -w], [0.1, -0.8], [1, 0], [0.1, 0.8], [0.1, w], [-1, w]]), 1),
        ],
    }
    return [(np.asarray(p, dtype=np.float64), v) for p, v in parts[shape]]


def draw_shape_mask(
    shape: str,
    height: int,
    width: int,
    center: tuple[float, float],
    radius: float,
    angle: float,
    stretch: float,
) -> np.ndarray:
    """Binary ``[H, W]`` uint8 mask of a posed shape. ``stretch`` scales x by s and y by 1/s."""
    mask = np.zeros((height, width), dtype=np.uint8)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    scale = radius * np.array([stretch, 1.0 / stretch])
    for pts, value in shape_parts(shape):
        xy = (pts * scale) @ rot.T + np.asarray(center)
        fixed = np.round(xy * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(mask, [fixed], int(value), lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return mask


# ------------------------------------------------------------------------------------------- colour


def hsv_rgb(hue_deg: float, sat: float, val: float) -> np.ndarray:
    """One colour as float32 ``[3]`` in 0..255."""
    return np.asarray(colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, sat, val), dtype=np.float32) * 255


def texture_fill(
    look: ClassLook, height: int, width: int, radius: float, rng: np.random.Generator
) -> np.ndarray:
    """Float32 ``[H, W, 3]`` fill of a class's texture over the whole frame (masked by the caller)."""
    hue = look.hue_deg + rng.uniform(-HUE_JITTER_DEG, HUE_JITTER_DEG)
    base = hsv_rgb(hue, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
    if rng.random() < 0.5:
        other = base * rng.uniform(0.25, 0.45)  # a darker shade of the same hue
    else:
        other = hsv_rgb(look.hue_deg, rng.uniform(0.0, 0.2), rng.uniform(0.85, 1.0))  # near white
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phi = rng.uniform(0, np.pi)
    u = xx * np.cos(phi) + yy * np.sin(phi)
    v = -xx * np.sin(phi) + yy * np.cos(phi)
    period = max(3.0, radius * rng.uniform(0.25, 0.45))  # texture scales with the object
    pu, pv = u / period + rng.uniform(), v / period + rng.uniform()
    if look.texture == "solid":
        # A soft gradient, so "solid" is not one exact colour.
        ramp = 1.0 + rng.uniform(0.1, 0.25) * (u - u.mean()) / (np.ptp(u) + 1e-6)
        return base[None, None, :] * ramp[:, :, None]
    if look.texture == "striped":
        on = (pu % 1.0) < 0.5
    elif look.texture == "dotted":
        on = ((pu % 1.0) - 0.5) ** 2 + ((pv % 1.0) - 0.5) ** 2 < 0.3**2
    elif look.texture == "checkered":
        on = (np.floor(pu) + np.floor(pv)) % 2 == 0
    else:
        raise ValueError(f"unknown texture {look.texture!r}")
    return np.where(on[:, :, None], base[None, None, :], other[None, None, :])


CLUTTER_SATURATION = 0.35  # the clutter's colours are pulled two thirds of the way to grey


def clutter_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Float32 ``[H, W, 3]``: a smooth colour field with random blobs, bars and irregular patches,
    desaturated by ``CLUTTER_SATURATION``."""
    coarse = rng.uniform(30, 225, size=(int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3))
    img = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    side = min(height, width)
    for _ in range(int(rng.integers(3, 9))):
        colour = hsv_rgb(rng.uniform(0, 360), rng.uniform(0.1, 0.9), rng.uniform(0.2, 1.0)).tolist()
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.uniform(0.04, 0.25) * side) + 1, int(rng.uniform(0.04, 0.25) * side) + 1)
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    for _ in range(int(rng.integers(0, 4))):
        colour = hsv_rgb(rng.uniform(0, 360), rng.uniform(0.1, 0.9), rng.uniform(0.2, 1.0)).tolist()
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(img, p1, p2, colour, int(rng.integers(2, 7)))
    for _ in range(int(rng.integers(0, 3))):
        # Irregular patches: many-vertex, self-intersecting polygons, so they rarely read as a class shape.
        colour = hsv_rgb(rng.uniform(0, 360), rng.uniform(0.1, 0.9), rng.uniform(0.2, 1.0)).tolist()
        centre = rng.uniform([0, 0], [width, height])
        pts = centre + rng.normal(0.0, 0.15 * side, size=(int(rng.integers(6, 10)), 2))
        cv2.fillPoly(img, [pts.astype(np.int32)], colour)
    grey = img.mean(axis=2, keepdims=True)
    return grey + CLUTTER_SATURATION * (img - grey)


# -------------------------------------------------------------------------------------------- scene


@dataclass(frozen=True)
class SceneObject:
    """One object to paint: its class id (1-based) and look."""

    class_id: int
    look: ClassLook


def render_scene(
    height: int, width: int, objects: list[SceneObject], rng: np.random.Generator, ignore_band: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the objects in order (later ones on top, smaller) on clutter.

    Returns the ``[H, W, 3]`` uint8 image and the ``[H, W]`` int32 labels (0 = background, object
    pixels = their class id, ``IGNORE_ID`` on a band around every label boundary when
    ``ignore_band`` is 1 or 2, its width in pixels).
    """
    img = clutter_background(height, width, rng)
    labels = np.zeros((height, width), dtype=np.int32)
    side = min(height, width)
    centres: list[tuple[float, float]] = []
    radius = side * rng.uniform(0.34, 0.46)
    for k, obj in enumerate(objects):
        if k == 0:
            r = radius
            centre = (rng.uniform(0.8 * r, width - 0.8 * r), rng.uniform(0.8 * r, height - 0.8 * r))
        else:
            r = radius * rng.uniform(0.4, 0.6)
            # Far from the objects already drawn, so the first one stays mostly visible.
            cands = rng.uniform([r, r], [width - r, height - r], size=(8, 2))
            dist = np.min([np.hypot(*(cands - c).T) for c in centres], axis=0)
            centre = tuple(cands[int(np.argmax(dist))])
        centres.append(centre)
        mask = draw_shape_mask(
            obj.look.shape, height, width, centre, r, rng.uniform(0, 2 * np.pi), rng.uniform(0.85, 1.18)
        ).astype(bool)
        fill = texture_fill(obj.look, height, width, r, rng)
        img[mask] = fill[mask]
        labels[mask] = obj.class_id
    # Slight blur (anti-aliasing, like a camera) then sensor noise.
    img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.4, 0.9))
    img += rng.normal(0.0, rng.uniform(2.0, 8.0), size=img.shape).astype(np.float32)
    if ignore_band:
        kernel = np.ones((ignore_band + 1, ignore_band + 1), dtype=np.uint8)
        lab16 = labels.astype(np.uint16)
        band = cv2.dilate(lab16, kernel) != cv2.erode(lab16, kernel)
        labels[band] = IGNORE_ID
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), labels
