"""Synthetic motion clips in the style of Something-Something, so a TDN can be trained without downloads.

Each clip shows one *acting* object doing one of :data:`CLASSES` over a random background, among 0-3
slowly drifting distractors, with pixel noise. Everything the eye sees in a single frame (shape,
texture, colours, background, distractors, noise) is drawn independently of the class, and the second
class of every reversal pair is rendered as the literal time reversal of the first. Any single frame,
and any order-blind average of frames such as TSN's, therefore says nothing about the direction of a
motion; only the temporal order does.

Three random streams per seed: *look* (background, the actor's appearance and base pose, distractors,
noise level), *motion* (what the actor does; one stream per kind of action) and *pixel noise*. The same
seed with another label keeps the scene and changes only the action; the same seed with the reversal
twin gives exactly the same frames in reverse order.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# (class name, kind of action, played backwards): the second class of a pair is the first one reversed.
_TABLE: list[tuple[str, str, bool]] = [
    ("Moving something from left to right", "move_x", False),
    ("Moving something from right to left", "move_x", True),
    ("Moving something up", "move_y", False),
    ("Moving something down", "move_y", True),
    ("Moving something towards the camera", "scale", False),
    ("Moving something away from the camera", "scale", True),
    ("Rotating something clockwise", "rotate", False),
    ("Rotating something counter-clockwise", "rotate", True),
    ("Making something appear", "fade", False),
    ("Making something disappear", "fade", True),
    ("Squeezing something", "squeeze", False),
    ("Stretching something", "squeeze", True),
    ("Holding something still", "still", False),
    ("Shaking something", "shake", False),
]
_KINDS: tuple[str, ...] = ("move_x", "move_y", "scale", "rotate", "fade", "squeeze", "still", "shake")

CLASSES: list[str] = [name for name, _, _ in _TABLE]
REVERSE_OF: dict[int, int] = {
    k: next((j for j, row in enumerate(_TABLE) if row[1] == kind and row[2] != back), k)
    for k, (_, kind, back) in enumerate(_TABLE)
}
# A horizontal flip swaps left/right and the sense of rotation; vertical motion, scale, fades and
# squeezes (along the object's own axis) look the same in the mirror.
HFLIP_LABEL_MAP: dict[int, int] = {k: k for k in range(len(CLASSES))} | {0: 1, 1: 0, 6: 7, 7: 6}

SHAPES: tuple[str, ...] = ("disc", "ring", "square", "triangle", "star", "cross")
TEXTURES: tuple[str, ...] = ("solid", "stripes", "checker", "noise")
BACKGROUNDS: tuple[str, ...] = ("solid", "gradient", "texture", "noise")
MASK_MIN_OPACITY = 0.05
"""Mask = pixels at least half covered by the actor's shape, in frames where its opacity reaches this."""

DATASET_VERSION = 4
"""What :func:`generate_clip` draws. Written to ``metadata.json`` of every generated folder, part of the cache
folder's name and stored in checkpoints trained on it (``synth_version``); a folder or checkpoint without
it is from version 2. Version 4: an appearing object also grows (:data:`FADE_GROWTH`) while it fades in, a
disappearing one shrinks while it fades out. Version 3: fades over a bounded window with a larger colour
contrast, squeezes with a bulge and a 3.4-4.4x change of aspect (version 2: fades over 50-85 % of the clip,
squeezes along one axis by 1.7-2.2x, colours 90 apart)."""
ACTION_WINDOW = (0.5, 0.85)
"""Share of the clip the action takes, for every kind but fades."""
FADE_WINDOW = (0.2, 0.4)
"""Share of the clip an appearance/disappearance takes: the actor is fully absent before, fully opaque after."""
FADE_GROWTH = (1.6, 2.0)
"""An appearing object grows by this factor to its look's size while it fades in (version 4). A pure fade's
direction is written only in the sign of the change times the sign of object minus background, and the
background under the object cannot be seen locally; growth adds an edge that moves outwards, whose direction
the S-TDM reads whatever the colours (version 3's demo TDN was at chance on the appear/disappear pair)."""
SQUEEZE_FACTOR = (2.5, 3.0)
"""A squeeze shrinks the object's own u axis by this factor (a stretch, its reversal, grows it)..."""
SQUEEZE_BULGE = 0.35
"""... while its v axis grows by the factor to this power: the aspect changes by k^1.35 (3.4-4.4x), the
area by only k^0.65 (1.8-2.0x), so a squeeze does not pass for a move away from the camera (area 3-5x)."""
METADATA_FILE = "metadata.json"
"""Written by :func:`write_dataset` beside ``labels.csv``: generator version and parameters."""
MIN_COLOUR_DISTANCE = 120.0
"""Every object colour is at least this far (RGB distance) from the background's colours."""


@dataclass(frozen=True)
class SynthClip:
    """One generated clip; ``mask`` marks the acting object's pixels in every frame."""

    frames: np.ndarray  # (F, H, W, 3) uint8 RGB
    mask: np.ndarray  # (F, H, W) bool
    label: int
    label_name: str
    seed: int
    action: tuple[int, int]  # first and last frame of the action window (inclusive)


@dataclass(frozen=True)
class _Look:
    shape: str
    texture: str
    colours: np.ndarray  # (2, 3) float32: texture weight 0 -> colours[0], 1 -> colours[1]
    freq: float
    angle: float
    grid: np.ndarray  # (n, n) texture weights for the "noise" texture


@dataclass(frozen=True)
class _Track:
    """Per-frame pose: centre (px), radius (px), scales along the object's axes, angle, opacity."""

    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    angle: np.ndarray  # radians; positive turns clockwise on screen (y points down)
    alpha: np.ndarray


# Signed distance (negative inside) in object units; every shape fits in the unit circle. The disc and
# the ring carry a notch so that turning them is visible, otherwise "Rotating" would be unlearnable.
def _notch(u: np.ndarray, v: np.ndarray, half_angle: float) -> np.ndarray:
    return u * np.sin(half_angle) - np.abs(v) * np.cos(half_angle)


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    phase = (np.arctan2(v, u) * (5 / (2 * np.pi))) % 1.0
    return (np.hypot(u, v) - (0.45 + 0.55 * np.abs(2 * phase - 1))) * 0.6


_SDF: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "disc": lambda u, v: np.maximum(np.hypot(u, v) - 1.0, _notch(u, v, np.radians(30))),
    "ring": lambda u, v: np.maximum(np.abs(np.hypot(u, v) - 0.72) - 0.26, _notch(u, v, np.radians(22))),
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) - 0.7,
    "triangle": lambda u, v: np.maximum(np.maximum(-v, 0.866 * u + 0.5 * v), -0.866 * u + 0.5 * v) - 0.5,
    "star": _star,
    "cross": lambda u, v: np.minimum(
        np.maximum(np.abs(u) - 0.95, np.abs(v) - 0.3), np.maximum(np.abs(u) - 0.3, np.abs(v) - 0.95)
    ),
}


def _texture(look: _Look, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Weight in [0, 1] between the two colours, in object coordinates so it moves with the object."""
    if look.texture == "solid":
        return np.zeros_like(u)
    if look.texture == "stripes":
        return np.floor((u * np.cos(look.angle) + v * np.sin(look.angle)) * look.freq) % 2
    if look.texture == "checker":
        return (np.floor(u * look.freq) + np.floor(v * look.freq)) % 2
    n = look.grid.shape[0]
    rows = np.clip(((v + 1) * (n / 2)).astype(np.intp), 0, n - 1)
    cols = np.clip(((u + 1) * (n / 2)).astype(np.intp), 0, n - 1)
    return look.grid[rows, cols]


def _draw(canvas: np.ndarray, track: _Track, look: _Look, mask: np.ndarray | None, paint: bool) -> None:
    """Blend one object into ``canvas`` (F, S, S, 3) float32, frame by frame inside a moving crop."""
    frames, size = canvas.shape[:2]
    pose = {name: np.asarray(getattr(track, name), np.float32) for name in _Track.__dataclass_fields__}
    reach = pose["radius"] * np.maximum(pose["sx"], pose["sy"]) * 1.05 + 1.5
    crop = min(size, 2 * int(np.ceil(reach.max())) + 2)
    # A crop pushed back inside the frame still covers the object's visible part.
    ox = np.clip(np.floor(pose["cx"]).astype(np.intp) - crop // 2, 0, size - crop)
    oy = np.clip(np.floor(pose["cy"]).astype(np.intp) - crop // 2, 0, size - crop)
    grid = np.arange(crop, dtype=np.float32) + 0.5
    dx = (ox[:, None] + grid - pose["cx"][:, None])[:, None, :]
    dy = (oy[:, None] + grid - pose["cy"][:, None])[:, :, None]
    cos, sin = np.cos(pose["angle"])[:, None, None], np.sin(pose["angle"])[:, None, None]
    u = (cos * dx + sin * dy) / (pose["radius"] * pose["sx"])[:, None, None]
    v = (cos * dy - sin * dx) / (pose["radius"] * pose["sy"])[:, None, None]
    pixel = (pose["radius"] * np.minimum(pose["sx"], pose["sy"]))[:, None, None]
    cover = np.clip(0.5 - _SDF[look.shape](u, v) * pixel, 0.0, 1.0)
    steps = np.arange(crop)
    flat = (np.arange(frames)[:, None, None] * size + oy[:, None, None] + steps[None, :, None]) * size
    flat = flat + ox[:, None, None] + steps[None, None, :]
    if mask is not None:  # the mask starts all False, so only pixels inside need writing
        mask.reshape(-1)[flat[(cover >= 0.5) & (pose["alpha"] >= MASK_MIN_OPACITY)[:, None, None]]] = True
    if paint:
        cover = cover * pose["alpha"][:, None, None]
        hit = cover > 0  # most of a crop is empty: blend only the pixels the object touches
        weight = _texture(look, u[hit], v[hit])[:, None]
        colour = look.colours[0] + weight * (look.colours[1] - look.colours[0])
        pixels, flat = canvas.reshape(-1, 3), flat[hit]
        under = pixels[flat]
        pixels[flat] = under + cover[hit][:, None] * (colour - under)


def _far_colour(
    rng: np.random.Generator, avoid: np.ndarray, min_dist: float = MIN_COLOUR_DISTANCE
) -> np.ndarray:
    """A random RGB colour at least ``min_dist`` from every row of ``avoid`` (or the farthest of 64 tries)."""
    tries = rng.uniform(0, 255, (64, 3))
    dist = np.linalg.norm(tries[:, None, :] - avoid[None, :, :], axis=-1).min(axis=1)
    good = np.flatnonzero(dist >= min_dist)
    return tries[good[0] if good.size else int(dist.argmax())]


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Static background (S, S, 3) float32 and the colours objects must stand out from."""
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    first = rng.uniform(0, 255, 3)
    second = np.clip(first + rng.uniform(-70, 70, 3), 0, 255)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if kind == "solid":
        weight = np.zeros((size, size), np.float32)
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        proj = x * np.cos(theta) + y * np.sin(theta)
        weight = (proj - proj.min()) / np.ptp(proj)
    elif kind == "texture":
        period, theta = rng.uniform(6, 20), rng.uniform(0, np.pi)
        if rng.random() < 0.5:
            weight = np.floor((x * np.cos(theta) + y * np.sin(theta)) / period) % 2
        else:
            weight = (np.floor(x / period) + np.floor(y / period)) % 2
    else:  # smooth value noise: a coarse random grid, bilinearly upsampled
        cells = int(rng.integers(3, 9))
        coarse = rng.random((cells, cells))
        at = np.linspace(0, cells - 1, size)
        low = np.minimum(at.astype(np.intp), cells - 2)
        frac = at - low
        rows = coarse[low] * (1 - frac)[:, None] + coarse[low + 1] * frac[:, None]
        weight = rows[:, low] * (1 - frac) + rows[:, low + 1] * frac
    image = first + weight[..., None] * (second - first)
    return image.astype(np.float32), np.stack([first, second, (first + second) / 2])


def _look(rng: np.random.Generator, avoid: np.ndarray) -> _Look:
    first = _far_colour(rng, avoid)
    second = _far_colour(rng, np.vstack([avoid, first]))
    return _Look(
        shape=SHAPES[rng.integers(len(SHAPES))],
        texture=TEXTURES[rng.integers(len(TEXTURES))],
        colours=np.stack([first, second]).astype(np.float32),
        freq=float(rng.uniform(1.2, 2.5)),
        angle=float(rng.uniform(0, np.pi)),
        grid=rng.random((5, 5)).astype(np.float32),
    )


def _distractor(rng: np.random.Generator, avoid: np.ndarray, size: int, frames: int) -> tuple[_Look, _Track]:
    """A smaller object drifting and turning slowly: motion no class describes, symmetric in time."""
    look = _look(rng, avoid)
    radius = rng.uniform(0.05, 0.09) * size
    aspect = np.exp(rng.uniform(np.log(0.7), np.log(1.4)))
    centre = rng.uniform(0, size, 2)
    heading = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0, 0.0025) * size
    spin = np.radians(rng.uniform(-1.0, 1.0))
    t = np.arange(frames) - (frames - 1) / 2
    ones = np.ones(frames)
    track = _Track(
        cx=centre[0] + speed * np.cos(heading) * t,
        cy=centre[1] + speed * np.sin(heading) * t,
        radius=radius * ones,
        sx=np.sqrt(aspect) * ones,
        sy=ones / np.sqrt(aspect),
        angle=rng.uniform(0, 2 * np.pi) + spin * t,
        alpha=ones,
    )
    return look, track


def _actor_track(
    kind: str, rng: np.random.Generator, frames: int, size: int, radius: float, aspect: float, angle: float
) -> tuple[_Track, tuple[int, int]]:
    """The acting object's forward pose over time, and the action window (first, last frame)."""
    t = np.arange(frames, dtype=np.float64)
    share = FADE_WINDOW if kind == "fade" else ACTION_WINDOW
    duration = max(2, round(rng.uniform(*share) * frames))
    start = int(rng.integers(0, frames - duration))
    # Progress 0 -> 1 inside the window with a random amount of easing; p(1 - u) = 1 - p(u), so the
    # time reversal of a window is a window of the same law.
    u = np.clip((t - start) / duration, 0.0, 1.0)
    ease = rng.uniform()
    p = (1 - ease) * u + ease * (1 - np.cos(np.pi * u)) / 2
    ones = np.ones(frames)
    r, sx, sy = radius * ones, np.sqrt(aspect) * ones, ones / np.sqrt(aspect)
    theta, alpha = angle * ones, ones
    if kind == "scale":  # log-size centred on the look's size, so single frames match other classes
        r = radius * rng.uniform(1.7, 2.2) ** (p - 0.5)
    elif kind == "squeeze":  # the object's u axis shrinks k-fold while v bulges by k^SQUEEZE_BULGE
        k = rng.uniform(*SQUEEZE_FACTOR)
        sx, sy = sx * k ** (0.5 - p), sy * k ** (SQUEEZE_BULGE * (p - 0.5))
    elif kind == "rotate":
        theta = angle + np.radians(rng.uniform(2.5, 4.0)) * duration * p
    elif kind == "fade":
        alpha = p
        r = radius * rng.uniform(*FADE_GROWTH) ** (p - 1)
    shake = rng.uniform(0.035, 0.06) * size if kind == "shake" else 0.0
    reach = float((r * np.maximum(sx, sy)).max()) * 1.05 + 2 + shake
    low, high = reach, size - reach
    if kind in ("move_x", "move_y"):
        length = min(rng.uniform(0.35, 0.55) * size, high - low)
        along = rng.uniform(low, high - length) + length * p
        across = np.clip(rng.uniform(low, high) + rng.uniform(-0.05, 0.05) * size * p, low, high)
        # move_y runs upwards on screen, i.e. towards smaller y
        cx, cy = (along, across) if kind == "move_x" else (across, low + high - along)
    else:
        cx, cy = rng.uniform(low, high) * ones, rng.uniform(low, high) * ones
    if kind == "shake":
        period, phase, heading = rng.uniform(3, 5), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
        envelope = np.clip(np.minimum(u, 1 - u) * 6, 0, 1)
        offset = shake * envelope * np.sin(2 * np.pi * (t - start) / period + phase)
        cx, cy = cx + offset * np.cos(heading), cy + offset * np.sin(heading)
    return _Track(cx, cy, r, sx, sy, theta, alpha), (start, start + duration)


def generate_clip(
    label: int, seed: int, size: int = 112, frames: int = 48, *, with_actor: bool = True
) -> SynthClip:
    """Render one clip of class ``label``; deterministic in (label, seed, size, frames).

    ``with_actor=False`` renders the same scene without the acting object (the mask still says where
    it would be): a counterfactual for checking masks and explanations.
    """
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if size < 32 or frames < 8:
        raise ValueError(f"need size >= 32 and frames >= 8, got size={size}, frames={frames}")
    name, kind, backwards = _TABLE[label]
    look_rng = np.random.default_rng([seed, 0])
    background, avoid = _background(look_rng, size)
    actor_look = _look(look_rng, avoid)
    radius = look_rng.uniform(0.10, 0.15) * size
    aspect = float(np.exp(look_rng.uniform(np.log(0.7), np.log(1.4))))
    angle = look_rng.uniform(0, 2 * np.pi)
    distractors = [_distractor(look_rng, avoid, size, frames) for _ in range(look_rng.integers(0, 4))]
    noise_level = look_rng.uniform(0, 10)
    motion_rng = np.random.default_rng([seed, 1, _KINDS.index(kind)])
    track, (start, end) = _actor_track(kind, motion_rng, frames, size, radius, aspect, angle)

    canvas = np.empty((frames, size, size, 3), np.float32)
    canvas[:] = background
    for look, distractor in distractors:
        _draw(canvas, distractor, look, None, paint=True)
    mask = np.zeros((frames, size, size), bool)
    _draw(canvas, track, actor_look, mask, paint=with_actor)
    noise = np.random.default_rng([seed, 2]).integers(0, 256, canvas.shape, dtype=np.uint8)
    noise = noise.astype(np.float32)
    noise *= 2 * noise_level / 255
    noise += 0.5 - noise_level  # the +0.5 rounds in the cast below
    canvas += noise
    np.clip(canvas, 0, 255, out=canvas)
    video = canvas.astype(np.uint8)
    if backwards:
        video, mask = np.ascontiguousarray(video[::-1]), np.ascontiguousarray(mask[::-1])
        start, end = frames - 1 - end, frames - 1 - start
    return SynthClip(video, mask, label, name, seed, (start, end))


def dataset_plan(num: int, seed: int) -> list[tuple[int, int]]:
    """(label, clip seed) for each index: labels balanced (i % classes, shuffled), seeds from (seed, i)."""
    labels = np.random.default_rng(seed).permutation(np.arange(num) % len(CLASSES))
    seeds = [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(num)]
    return [(int(label), clip_seed) for label, clip_seed in zip(labels, seeds, strict=True)]


def sample_dataset(num: int, seed: int, size: int = 112, frames: int = 48) -> Iterator[SynthClip]:
    """Yield ``num`` clips following :func:`dataset_plan`, rendered lazily."""
    for label, clip_seed in dataset_plan(num, seed):
        yield generate_clip(label, clip_seed, size, frames)


def video_codec() -> str:
    """``libx264`` when PyAV's FFmpeg has it, else ``mpeg4`` (with a warning)."""
    import av

    if "libx264" in av.codecs_available:
        return "libx264"
    log.warning("PyAV's FFmpeg has no libx264; writing MPEG-4 Part 2 video instead of H.264")
    return "mpeg4"


def write_video(path: Path, frames: np.ndarray, fps: int, codec: str) -> None:
    """Encode (F, H, W, 3) uint8 RGB frames as yuv420p; H and W must be even.

    x264's macroblock tree is off: with it, this libx264 wrote a different file for the same frames from
    run to run, even single-threaded (decoded pixels off by up to 40 levels in 2 of 3 clips), so a dataset
    seed did not pin its videos down. tests/test_synth.py checks that the bytes repeat."""
    import av

    options = {"crf": "18", "preset": "medium", "x264-params": "mbtree=0"} if codec == "libx264" else {}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec != "libx264":
            stream.bit_rate = 4_000_000
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def write_dataset(
    out_dir: str | Path,
    num: int,
    seed: int,
    size: int = 112,
    frames: int = 48,
    fps: int = 12,
    progress: bool = True,
) -> Path:
    """Write ``<stem>.mp4`` + ``<stem>_mask.npz`` per clip, ``metadata.json`` (with ``synth_version``) and
    ``labels.csv``; returns the CSV's path."""
    from tqdm import tqdm

    if size % 2:
        raise ValueError(f"size must be even for yuv420p video, got {size}")
    if num < 1 or fps < 1:
        raise ValueError(f"need num >= 1 and fps >= 1, got num={num}, fps={fps}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    codec = video_codec()
    rows = []
    for index, clip in enumerate(
        tqdm(sample_dataset(num, seed, size, frames), total=num, disable=not progress)
    ):
        stem = f"synth_{index:06d}"
        write_video(out / f"{stem}.mp4", clip.frames, fps, codec)
        np.savez_compressed(out / f"{stem}_mask.npz", mask=clip.mask)
        rows.append((f"{stem}.mp4", clip.label, clip.label_name))
    metadata = {
        "generator": "tdn.training.synth",
        "synth_version": DATASET_VERSION,
        "num": num,
        "seed": seed,
        "size": size,
        "frames": frames,
        "fps": fps,
        "codec": codec,
        "classes": CLASSES,
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
    labels = out / "labels.csv"  # written last: its presence marks a finished folder
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label_index", "label_name"])
        writer.writerows(rows)
    return labels


def cache_folder(cache: str | Path, num: int, seed: int, size: int, frames: int) -> Path:
    """Where a generated set is cached; the name carries :data:`DATASET_VERSION`, so clips of another
    version of the generator are never reused (version-2 folders were named ``synth_n..._s...``)."""
    return Path(cache) / f"synth_v{DATASET_VERSION}_n{num}_s{seed}_{size}px_{frames}f"


def dataset_version(folder: str | Path) -> int | None:
    """The generator version of a folder written by :func:`write_dataset`: ``metadata.json``'s
    ``synth_version``; 2 for a generated folder from before versioning (``synth_*`` videos with masks and
    no metadata); None for anything else (e.g. real videos)."""
    folder = Path(folder)
    meta = folder / METADATA_FILE
    if meta.is_file():
        version = json.loads(meta.read_text()).get("synth_version")
        return int(version) if version is not None else None
    labels = folder / "labels.csv"
    if not labels.is_file():
        return None
    with labels.open(newline="") as handle:
        first = next(csv.DictReader(handle), None)
    if first is None or not str(first.get("file", "")).startswith("synth_"):
        return None
    video = folder / first["file"]
    return 2 if video.with_name(video.stem + "_mask.npz").is_file() else None


def synthetic_folder(cache: str, num: int, seed: int, size: int, frames: int) -> str:
    """Generate (once, on rank 0) and return the cached folder of ``num`` clips of this generator version."""
    folder = cache_folder(cache, num, seed, size, frames)
    done = folder / "labels.csv"
    rank = int(os.environ.get("RANK", "0"))
    if not done.exists() and rank == 0:
        write_dataset(folder, num, seed, size, frames)
    elif not done.exists():
        while not done.exists():  # other ranks wait for rank 0's generation
            time.sleep(1)
    found = dataset_version(folder)
    if found != DATASET_VERSION:
        raise RuntimeError(f"{folder} holds synthetic clips of version {found}, not {DATASET_VERSION}")
    return str(folder)
