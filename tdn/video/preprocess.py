"""Pixels to tensor: the official TDN test-time preprocessing (docs/architecture.md §2.1 and §2.3).

The one place that knows the normalisation constants. Frames are uint8 RGB arrays ``(..., H, W, 3)``.
The spatial steps reproduce the official PIL + torchvision pipeline exactly:

* :func:`resize_short_side` is torchvision ``Resize(256)`` on a PIL image: PIL bilinear (with its
  anti-aliasing support when shrinking), long side ``int(256 * long / short)``, untouched when the
  short side is already 256. It runs PIL itself, frame by frame, so the pixels are PIL's.
* :func:`center_crop` is torchvision ``CenterCrop`` (offsets rounded with Python's ``round``).
* :func:`three_crops` is the official ``GroupFullResSample`` without flips: left, right, centre.
* :func:`to_model_input` is ``Stack`` + ``ToTorchFormatTensor`` + ``GroupNormalize``, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from tdn.contract import CROP_SIZE, FRAMES_PER_SNIPPET, IMAGENET_MEAN, IMAGENET_STD, SCALE_SIZE

Box = tuple[int, int, int, int]
"""A crop rectangle ``(x0, y0, x1, y1)`` in pixels, end-exclusive."""


def scaled_size(width: int, height: int, size: int = SCALE_SIZE) -> tuple[int, int]:
    """(width, height) after torchvision ``Resize(size)``: short side ``size``, long side truncated."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return width, height
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def resize_frame(frame: np.ndarray, size: int = SCALE_SIZE) -> np.ndarray:
    """Resize one (H, W, 3) uint8 frame so its short side is ``size``, exactly as PIL bilinear does."""
    height, width = frame.shape[:2]
    new_w, new_h = scaled_size(width, height, size)
    if (new_w, new_h) == (width, height):
        return frame
    image = Image.fromarray(np.ascontiguousarray(frame))
    return np.asarray(image.resize((new_w, new_h), Image.Resampling.BILINEAR))


def resize_short_side(frames: np.ndarray, size: int = SCALE_SIZE) -> np.ndarray:
    """Resize (N, H, W, 3) uint8 frames so the short side is ``size`` (torchvision ``Resize(size)``)."""
    _check_frames(frames, leading=1)
    height, width = frames.shape[1:3]
    new_w, new_h = scaled_size(width, height, size)
    if (new_w, new_h) == (width, height):
        return frames
    out = np.empty((frames.shape[0], new_h, new_w, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = resize_frame(frame, size)
    return out


def center_crop_box(width: int, height: int, size: int = CROP_SIZE) -> Box:
    """The torchvision ``CenterCrop(size)`` rectangle of a ``width`` x ``height`` frame."""
    if width < size or height < size:
        raise ValueError(f"cannot crop {size}x{size} from a {width}x{height} frame")
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def three_crop_boxes(width: int, height: int, size: int = SCALE_SIZE) -> list[Box]:
    """The official full-resolution three crops: left, right, centre (docs/architecture.md §2.3).

    Offsets are x = 0, 4*step, 2*step with step = (W - size) // 4 and y = 2 * ((H - size) // 4). On a
    portrait frame (W == size) the three crops coincide, as in the official code.
    """
    if width < size or height < size:
        raise ValueError(f"cannot crop {size}x{size} from a {width}x{height} frame")
    step_x = (width - size) // 4
    top = 2 * ((height - size) // 4)
    return [(x, top, x + size, top + size) for x in (0, 4 * step_x, 2 * step_x)]


def crop(frames: np.ndarray, box: Box) -> np.ndarray:
    """Cut ``box`` out of frames shaped (..., H, W, 3); returns a view."""
    x0, y0, x1, y1 = box
    return frames[..., y0:y1, x0:x1, :]


def center_crop(frames: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """torchvision ``CenterCrop(size)`` of frames shaped (..., H, W, 3); returns a view."""
    _check_frames(frames, leading=0)
    height, width = frames.shape[-3:-1]
    return crop(frames, center_crop_box(width, height, size))


def three_crops(frames: np.ndarray, size: int = SCALE_SIZE) -> np.ndarray:
    """The three official full-resolution crops of (..., H, W, 3) frames: (3, ..., size, size, 3)."""
    _check_frames(frames, leading=0)
    height, width = frames.shape[-3:-1]
    return np.stack([crop(frames, box) for box in three_crop_boxes(width, height, size)])


def _channel_constants(values: Sequence[float], repeats: int) -> torch.Tensor:
    return torch.tensor(list(values) * repeats, dtype=torch.float32).view(-1, 1, 1)


@lru_cache(maxsize=8)
def _normalisation_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 256) float32: every uint8 value of each colour after ``/255``, ``-mean``, ``/std``.

    Computed with the same float32 torch operations as the official ``ToTorchFormatTensor`` +
    ``GroupNormalize``; each is correctly rounded element by element, so looking values up here gives
    bit-identical results in one pass instead of five.
    """
    values = torch.arange(256, dtype=torch.uint8).view(1, 1, 256).expand(3, 1, 256).float().div(255)
    table = values.sub(_channel_constants(mean, 1)).div(_channel_constants(std, 1))
    return table[:, 0, :].numpy().copy()


def to_model_input(
    frames: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """(T, 5, h, w, 3) uint8 snippets to the network input (1, T*15, h, w) float32 (docs/architecture.md §2.1).

    Channel ``s*15 + f*3 + c`` holds colour c (RGB) of frame f of segment s, scaled to [0, 1] and
    normalised with ``mean`` and ``std`` (ImageNet's unless a checkpoint says otherwise): bit-identical to the official per-channel
    ``float().div(255)`` then ``sub_(mean).div_(std)``.
    """
    if frames.ndim != 5 or frames.shape[1] != FRAMES_PER_SNIPPET or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, {FRAMES_PER_SNIPPET}, h, w, 3) frames, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    segments, _, height, width, _ = frames.shape
    out = np.empty((segments, FRAMES_PER_SNIPPET, 3, height, width), dtype=np.float32)
    table = _normalisation_table(tuple(mean), tuple(std))
    for colour in range(3):
        np.take(table[colour], frames[..., colour], out=out[:, :, colour], mode="clip")
    return torch.from_numpy(out).view(1, segments * FRAMES_PER_SNIPPET * 3, height, width)


def to_model_input_on(
    frames: np.ndarray,
    device: torch.device,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """:func:`to_model_input` computed on ``device``: the uint8 snippets are copied (pinned, asynchronous
    on CUDA) and normalised there with the same float32 operations, so the result is bit-identical."""
    if (
        frames.ndim != 5
        or frames.shape[1] != FRAMES_PER_SNIPPET
        or frames.shape[-1] != 3
        or frames.dtype != np.uint8
    ):
        raise ValueError(
            f"expected (T, {FRAMES_PER_SNIPPET}, h, w, 3) uint8 frames, got {frames.dtype} {frames.shape}"
        )
    host = torch.from_numpy(np.ascontiguousarray(frames))
    if device.type == "cuda":
        host = host.pin_memory()
    x = host.to(device, non_blocking=True).permute(0, 1, 4, 2, 3).float().div_(255)
    mean_t = torch.tensor(tuple(mean), dtype=torch.float32).view(1, 1, 3, 1, 1).to(device, non_blocking=True)
    std_t = torch.tensor(tuple(std), dtype=torch.float32).view(1, 1, 3, 1, 1).to(device, non_blocking=True)
    segments, _, height, width, _ = frames.shape
    return x.sub_(mean_t).div_(std_t).reshape(1, segments * FRAMES_PER_SNIPPET * 3, height, width)


def denormalize(
    inputs: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> np.ndarray:
    """Invert :func:`to_model_input` for display: (1, T*15, h, w) or (T*15, h, w) to (T, 5, h, w, 3) uint8."""
    x = inputs.detach().to("cpu", torch.float32)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected a single view (1, T*15, h, w), got shape {tuple(x.shape)}")
        x = x[0]
    if x.ndim != 3 or x.shape[0] % (FRAMES_PER_SNIPPET * 3):
        raise ValueError(f"expected (T*15, h, w) channels, got shape {tuple(x.shape)}")
    channels, height, width = x.shape
    repeats = channels // 3
    x = x * _channel_constants(std, repeats) + _channel_constants(mean, repeats)
    pixels = (x * 255).round_().clamp_(0, 255).to(torch.uint8)
    segments = channels // (FRAMES_PER_SNIPPET * 3)
    return pixels.view(segments, FRAMES_PER_SNIPPET, 3, height, width).permute(0, 1, 3, 4, 2).numpy().copy()


def _check_frames(frames: np.ndarray, leading: int) -> None:
    if frames.dtype != np.uint8 or frames.ndim < 3 + leading or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (..., H, W, 3), got {frames.dtype} {frames.shape}")
