"""Spatial preprocessing against PIL/torchvision, and the tensor layout of docs/architecture.md §2.1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from tdn.video import preprocess


def random_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.linspace(0, 255, width)[None, :, None] * np.linspace(0.2, 1, height)[:, None, None]
    noise = rng.integers(0, 64, size=(n, height, width, 3))
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1280, 720, (455, 256)),
        (720, 1280, (256, 455)),
        (320, 256, (320, 256)),
        (256, 256, (256, 256)),
        (123, 77, (408, 256)),
        (1920, 1080, (455, 256)),
        (640, 480, (341, 256)),
    ],
)
def test_scaled_size_follows_torchvision(width: int, height: int, expected: tuple[int, int]) -> None:
    assert preprocess.scaled_size(width, height) == expected
    image = Image.new("RGB", (width, height))
    assert transforms.Resize(256)(image).size == expected


@pytest.mark.parametrize(("height", "width"), [(77, 123), (720, 1280), (300, 256), (256, 256), (481, 641)])
def test_resize_short_side_equals_pil_and_torchvision(height: int, width: int) -> None:
    frames = random_frames(2, height, width, seed=height)
    got = preprocess.resize_short_side(frames)
    resize = transforms.Resize(256)
    for frame, out in zip(frames, got, strict=True):
        image = Image.fromarray(frame)
        new_w, new_h = preprocess.scaled_size(width, height)
        np.testing.assert_array_equal(out, np.asarray(image.resize((new_w, new_h), Image.BILINEAR)))
        np.testing.assert_array_equal(out, np.asarray(resize(image)))


def test_center_crop_equals_torchvision() -> None:
    for height, width in [(256, 455), (256, 341), (455, 256), (257, 300)]:
        frame = random_frames(1, height, width)[0]
        expected = np.asarray(transforms.CenterCrop(224)(Image.fromarray(frame)))
        np.testing.assert_array_equal(preprocess.center_crop(frame), expected)
    # (455 - 224) / 2 = 115.5 rounds half to even: 116
    assert preprocess.center_crop_box(455, 256) == (116, 16, 340, 240)


def test_three_crops_offsets_and_order() -> None:
    frames = random_frames(3, 256, 455)
    crops = preprocess.three_crops(frames)
    assert crops.shape == (3, 3, 256, 256, 3)
    step = (455 - 256) // 4
    for crop, x in zip(crops, (0, 4 * step, 2 * step), strict=True):  # left, right, centre
        np.testing.assert_array_equal(crop, frames[:, 0:256, x : x + 256])
    assert preprocess.three_crop_boxes(300, 280) == [
        (0, 12, 256, 268),
        (44, 12, 300, 268),
        (22, 12, 278, 268),
    ]
    portrait = preprocess.three_crop_boxes(256, 455)
    assert portrait == [(0, 98, 256, 354)] * 3


def official_input(frames: np.ndarray) -> torch.Tensor:
    """Stack + ToTorchFormatTensor + GroupNormalize as the official test script applies them."""
    stacked = np.concatenate([frame for snippet in frames for frame in snippet], axis=2)
    tensor = torch.from_numpy(stacked).permute(2, 0, 1).contiguous().float().div(255)
    channels = tensor.shape[0]
    mean = list(preprocess.IMAGENET_MEAN) * (channels // 3)
    std = list(preprocess.IMAGENET_STD) * (channels // 3)
    for t, m, s in zip(tensor, mean, std, strict=True):
        t.sub_(m).div_(s)
    return tensor.unsqueeze(0)


def test_model_input_is_bit_identical_to_official() -> None:
    frames = random_frames(8 * 5, 20, 24, seed=3).reshape(8, 5, 20, 24, 3)
    got = preprocess.to_model_input(frames)
    assert got.shape == (1, 120, 20, 24) and got.dtype == torch.float32 and got.is_contiguous()
    assert torch.equal(got, official_input(frames))


def test_model_input_channel_layout() -> None:
    segments = 3
    frames = np.zeros((segments, 5, 2, 2, 3), dtype=np.uint8)
    for s in range(segments):
        for f in range(5):
            for c in range(3):
                frames[s, f, :, :, c] = s * 15 + f * 3 + c
    x = preprocess.to_model_input(frames)[0]
    for channel in range(segments * 15):
        c = channel % 3
        expected = (channel / 255 - preprocess.IMAGENET_MEAN[c]) / preprocess.IMAGENET_STD[c]
        assert torch.allclose(x[channel], torch.tensor(expected, dtype=torch.float32))


def test_denormalize_round_trips() -> None:
    frames = random_frames(10, 6, 7).reshape(2, 5, 6, 7, 3)
    np.testing.assert_array_equal(preprocess.denormalize(preprocess.to_model_input(frames)), frames)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        preprocess.to_model_input(np.zeros((8, 4, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        preprocess.center_crop(np.zeros((100, 300, 3), np.uint8))
    with pytest.raises(ValueError):
        preprocess.resize_short_side(np.zeros((2, 10, 10), np.uint8))
