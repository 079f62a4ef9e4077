"""Files a user takes away: CAM overlays as MP4/GIF, a PNG grid of every map, the raw maps as NPZ."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from pytorch_grad_cam.utils.image import show_cam_on_image

from tdn.interpret.gradcam import Explanation, resize_maps
from tdn.interpret.tdmaps import TDMaps


def overlay(frames: np.ndarray, cam: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blend (T, H, W) maps in [0, 1] over (T, H, W, 3) uint8 frames with the jet colour map."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    if cam.shape[1:] != frames.shape[1:3]:
        cam = resize_maps(cam, frames.shape[1:3])
    return np.stack(
        [
            show_cam_on_image(
                f.astype(np.float32) / 255, np.clip(m, 0, 1), use_rgb=True, image_weight=1 - opacity
            )
            for f, m in zip(frames, cam, strict=True)
        ]
    )


def colorize(maps: np.ndarray, vmax: float | None = None, colormap: int = cv2.COLORMAP_INFERNO) -> np.ndarray:
    """(N, h, w) non-negative maps → (N, h, w, 3) uint8 RGB, one shared scale (so segments compare)."""
    top = float(maps.max()) if vmax is None else vmax
    scaled = np.clip(maps / top, 0, 1) if top > 0 else np.zeros_like(maps)
    u8 = (scaled * 255).astype(np.uint8)
    return np.stack([cv2.cvtColor(cv2.applyColorMap(m, colormap), cv2.COLOR_BGR2RGB) for m in u8])


def colorize_signed(maps: np.ndarray) -> np.ndarray:
    """Signed maps → blue (negative) / white / red (positive), symmetric shared scale."""
    top = float(np.abs(maps).max()) or 1.0
    v = np.clip(maps / top, -1, 1)[..., None]
    white = np.ones(3, np.float32)
    red, blue = np.array([0.8, 0.1, 0.1], np.float32), np.array([0.1, 0.2, 0.8], np.float32)
    rgb = np.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return (rgb * 255).astype(np.uint8)


def _even(frames: np.ndarray) -> np.ndarray:
    h, w = frames.shape[1:3]
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def upscale(frames: np.ndarray, min_side: int = 224) -> np.ndarray:
    """Nearest-neighbour upscale of small frames by an integer factor, for viewing."""
    factor = max(1, -(-min_side // min(frames.shape[1:3])))
    return frames.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else frames


def video_bytes(frames: np.ndarray, fps: float = 4.0) -> bytes:
    """H.264 MP4 (yuv420p) of (T, H, W, 3) uint8 frames, as bytes."""
    import av

    buffer = io.BytesIO()
    frames = _even(frames)
    with av.open(buffer, "w", format="mp4") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=int(round(fps)) or 1)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def gif_bytes(frames: np.ndarray, fps: float = 4.0) -> bytes:
    buffer = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    return buffer.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_image(
    explanation: Explanation, maps: TDMaps | None = None, opacity: float = 0.5, pad: int = 2
) -> np.ndarray:
    """One column per segment; rows: frame, CAM overlay, then (when given) S-TDM |ΔRGB|, S0, S1 and the
    last L-TDM block's forward difference. Every row shares one colour scale across segments."""
    frames = explanation.frames
    size = frames.shape[1:3]
    rows = [frames, overlay(frames, explanation.cam, opacity)]
    if maps is not None:
        if maps.stdm_rgb_diff is not None:
            rows.append(colorize(resize_maps(maps.stdm_rgb_diff.mean(1), size)))
            rows.append(colorize(resize_maps(maps.stdm_s0, size)))
            rows.append(colorize(resize_maps(maps.stdm_s1, size)))
        if maps.ltdm:
            rows.append(colorize(resize_maps(maps.ltdm[-1].forward_diff, size)))
    h, w = size
    t = len(frames)
    canvas = np.full((len(rows) * (h + pad) + pad, t * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for s in range(t):
            y, x = pad + r * (h + pad), pad + s * (w + pad)
            canvas[y : y + h, x : x + w] = row[s]
    return canvas


def maps_npz_bytes(explanation: Explanation, maps: TDMaps | None = None) -> bytes:
    """NPZ with ``cam`` (T, H, W) float32 in [0, 1], ``frames`` (T, H, W, 3) uint8, ``frame_indices`` (T,)
    int64, ``cam_raw``, and the difference maps when given."""
    arrays: dict[str, np.ndarray] = {
        "cam": explanation.cam.astype(np.float32),
        "frames": explanation.frames.astype(np.uint8),
        "frame_indices": explanation.frame_indices.astype(np.int64),
        "cam_raw": explanation.cam_raw.astype(np.float32),
        "target": np.int64(explanation.target),
        "score": np.float32(explanation.score),
    }
    if maps is not None:
        if maps.stdm_rgb_diff is not None:
            arrays.update(stdm_rgb_diff=maps.stdm_rgb_diff, stdm_s0=maps.stdm_s0, stdm_s1=maps.stdm_s1)
        for m in maps.ltdm:
            for kind in ("forward_diff", "backward_diff", "excitation", "modulation"):
                arrays[f"ltdm_{m.block}_{kind}"] = getattr(m, kind)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def write_explanation(
    out: str | Path,
    explanation: Explanation,
    maps: TDMaps | None = None,
    opacity: float = 0.5,
    fps: float = 4.0,
) -> dict[str, Path]:
    """Write maps.npz, overlay.mp4, overlay.gif, grid.png and explanation.json into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames = upscale(overlay(explanation.frames, explanation.cam, opacity))
    files = {
        "maps.npz": maps_npz_bytes(explanation, maps),
        "overlay.mp4": video_bytes(frames, fps),
        "overlay.gif": gif_bytes(frames, fps),
        "grid.png": png_bytes(grid_image(explanation, maps, opacity)),
        "explanation.json": json.dumps(
            {
                "target": explanation.target,
                "target_name": explanation.target_name,
                "score": explanation.score,
                "method": explanation.method,
                "layer": explanation.layer,
                "frame_indices": explanation.frame_indices.tolist(),
            },
            indent=1,
        ).encode(),
    }
    paths = {}
    for name, data in files.items():
        (out / name).write_bytes(data)
        paths[name] = out / name
    return paths


HIT_COLOUR = (40, 200, 80)
MISS_COLOUR = (230, 50, 50)


def mark_maxima(images: np.ndarray, cam: np.ndarray, hits: list[bool | None]) -> np.ndarray:
    """Ring each segment's CAM maximum on its overlay: green where the pointing game counts a hit, red
    for a miss, nothing where the segment is not counted. ``images`` (T, S, S, 3) uint8 at ``cam``'s size."""
    out = images.copy()
    radius = max(2, images.shape[1] // 20)
    for t, hit in enumerate(hits):
        if hit is None:
            continue
        y, x = np.unravel_index(int(np.argmax(cam[t])), cam[t].shape)
        cv2.circle(out[t], (int(x), int(y)), radius, HIT_COLOUR if hit else MISS_COLOUR, max(1, radius // 2))
    return out
