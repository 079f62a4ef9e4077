"""Faithfulness metrics: known answers for the energy shares and the motion mask, the ROAD adaptation to
snippets, and the geometry that aligns a source-video mask with a decoded clip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

from tdn.interpret.faithfulness import (
    _impute,
    _linear_fill,
    best_cam,
    clip_mask,
    dilate,
    load_mask_for,
    mask_energy,
    motion_energy,
    motion_magnitude,
    motion_mask,
    road_scores,
)
from tdn.network.model import build_model
from tdn.training.synth import video_codec, write_video
from tdn.video import load_clip

pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # inside pytorch-grad-cam

T = 4


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("resnet18", T, 6, "tdn", width=0.25).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def _square_mask(t: int = 3, size: int = 32) -> np.ndarray:
    mask = np.zeros((t, size, size), bool)
    mask[:, 8:16, 10:20] = True
    return mask


def test_dilate_grows_by_a_disc_and_zero_is_identity():
    mask = np.zeros((1, 11, 11), bool)
    mask[0, 5, 5] = True
    grown = dilate(mask, 2)[0]
    assert grown[5, 3] and grown[5, 7] and grown[3, 5] and grown[7, 5] and grown[4, 4]
    assert not grown[3, 3] and not grown[5, 2]  # the corner of the 5x5 square and beyond the radius
    assert np.array_equal(dilate(mask, 0), mask)
    assert (dilate(_square_mask(), 2) >= _square_mask()).all()


def test_cam_equal_to_the_mask_puts_all_energy_inside():
    mask = _square_mask()
    for px in (0, 2):
        share, area = mask_energy(mask.astype(np.float32), mask, dilate_px=px)
        assert share == pytest.approx(1.0)
        assert area == pytest.approx(dilate(mask, px).mean())


def test_uniform_cam_scores_the_area_share_and_zero_cam_is_nan():
    mask = _square_mask()
    share, area = mask_energy(np.full(mask.shape, 0.3, np.float32), mask)
    assert share == pytest.approx(area, abs=1e-12)
    assert math.isnan(mask_energy(np.zeros(mask.shape, np.float32), mask)[0])
    with pytest.raises(ValueError, match="does not match"):
        mask_energy(np.ones((3, 16, 16)), mask)


def test_best_cam_reaches_one_at_full_resolution_and_less_on_a_coarse_grid():
    mask = _square_mask(size=32)
    assert mask_energy(best_cam(mask, (32, 32)), mask, dilate_px=0)[0] == pytest.approx(1.0)
    coarse = mask_energy(best_cam(mask, (4, 4)), mask, dilate_px=0)[0]
    assert mask.mean() < coarse < 1.0


def _moving_square_snippets(moving_segment: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(T, 5, S, S, 3) snippets on a flat background: a square moves 2 px per frame in one segment only.
    Also returns the (S, S) region the square sweeps in that segment."""
    frames = np.full((T, 5, size, size, 3), 60, np.uint8)
    swept = np.zeros((size, size), bool)
    for t in range(T):
        for f in range(5):
            x0 = 10 + (2 * f if t == moving_segment else 4)
            frames[t, f, 20:30, x0 : x0 + 10] = (200, 40, 90)
            if t == moving_segment:
                swept[20:30, x0 : x0 + 10] = True
    return frames, swept


def test_motion_mask_finds_the_one_moving_square():
    frames, swept = _moving_square_snippets(moving_segment=2)
    mask = motion_mask(frames)
    assert mask.shape == (T, 48, 48)
    assert not mask[[0, 1, 3]].any()  # static snippets: nothing moves, nothing is marked
    assert mask[2].any() and not (mask[2] & ~swept).any()
    cam = np.zeros((T, 48, 48), np.float32)
    cam[2] = swept
    assert motion_energy(cam, frames) == pytest.approx(mask[2].sum() / swept.sum())
    assert motion_energy(mask.astype(np.float32), frames) == pytest.approx(1.0)


def test_motion_mask_keeps_the_top_fraction_of_a_busy_snippet():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 5, 40, 40, 3), dtype=np.uint8)
    mask = motion_mask(frames, top_fraction=0.1)
    magnitude = motion_magnitude(frames)
    for m, kept in zip(magnitude, mask, strict=True):  # 10 % of 1600 pixels, plus any tie at the threshold
        assert m[kept].min() >= m[~kept].max()
        assert (m > m[kept].min()).sum() < 160 <= kept.sum()


def _input(seed: int, size: int = 64) -> torch.Tensor:
    return torch.randn(1, T * 15, size, size, generator=torch.Generator().manual_seed(seed))


def test_imputation_replaces_a_location_in_all_five_frames_of_its_snippet_only():
    x = _input(1)[0]
    keep = np.ones((T, 64, 64), bool)
    keep[1, 10:20, 30:40] = False
    out = _impute(x, keep)
    changed = (out != x).reshape(T, 15, 64, 64)
    assert changed[1][:, ~keep[1]].all()  # every one of the 15 channels of segment 1, at every removed pixel
    assert not changed[1][:, keep[1]].any()
    assert not changed[[0, 2, 3]].any()
    noiseless = NoisyLinearImputer(noise=0.0)(x[15:30], torch.from_numpy(keep[1].astype(np.float32)))
    assert torch.allclose(out[15:30], noiseless, atol=0.05)  # pytorch-grad-cam's fill, plus noise of std 0.01
    assert torch.allclose(_linear_fill(x[15:30], keep[1]), noiseless, atol=1e-5)
    state = torch.random.get_rng_state()
    assert torch.equal(_impute(x, keep), out)  # seeded noise: the same removal gives the same pixels
    assert torch.equal(torch.random.get_rng_state(), state)  # and torch's global generator is untouched


def test_road_is_deterministic_and_its_confidence_change_is_pytorch_grad_cams(model):
    x = _input(2)
    cam = np.random.default_rng(3).random((T, 64, 64)).astype(np.float32)
    first = road_scores(model, x, cam, target=4, percentiles=(20, 50))
    assert first == road_scores(model, x, cam, target=4, percentiles=(20, 50))
    assert first.summary().keys() == {"score", "morf_mean", "lerf_mean", "road", "confidence_change"}
    assert len(first.morf) == len(first.lerf) == 2
    assert first.road == pytest.approx((first.lerf_mean - first.morf_mean) / 2)
    per_channel = np.repeat(cam, 15, axis=0)[None]  # each segment's map over its 15 channels
    expected = CamMultImageConfidenceChange()(x, per_channel, [ClassifierOutputSoftmaxTarget(4)], model)
    assert first.confidence_change == pytest.approx(float(expected[0]), abs=1e-6)
    assert torch.equal(x, _input(2)) and not model.training


def test_a_flat_cam_carries_no_ranking_so_road_is_zero(model):
    scores = road_scores(model, _input(4), np.full((T, 64, 64), 0.5, np.float32), target=1, percentiles=(30,))
    assert scores.morf == scores.lerf and scores.road == 0.0


def _write(path: Path, frames: np.ndarray) -> Path:
    write_video(path, frames, 12, video_codec())
    return path


def _bright_square_video(width: int, height: int, frames: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Dark frames with a bright square drifting right, and its mask."""
    video = np.full((frames, height, width, 3), 20, np.uint8)
    mask = np.zeros((frames, height, width), bool)
    for f in range(frames):
        x0 = 4 + 3 * f
        video[f, 30:70, x0 : x0 + 40] = 235
        mask[f, 30:70, x0 : x0 + 40] = True
    return video, mask


def test_clip_mask_follows_a_centre_crop_exactly(tmp_path):
    video, mask = _bright_square_video(128, 128)
    clip = load_clip(_write(tmp_path / "v.mp4", video), num_segments=T, size=112, scale_size=128)
    assert clip.crop_boxes == [(8, 8, 120, 120)]
    aligned = clip_mask(mask, clip)
    assert np.array_equal(aligned, mask[clip.frame_indices[0][:, 2]][:, 8:120, 8:120])
    centre = clip.model_frames[0][:, 2].mean(-1)
    assert centre[aligned].min() > 180 and centre[~dilate(aligned, 2)].max() < 80  # the pixels agree


def test_clip_mask_follows_resize_and_crop(tmp_path):
    video, mask = _bright_square_video(160, 128)
    clip = load_clip(_write(tmp_path / "w.mp4", video), num_segments=T, size=64, scale_size=80)
    assert clip.scaled_size == (100, 80)
    aligned = clip_mask(mask, clip)
    assert aligned.shape == (T, 64, 64)
    centre = clip.model_frames[0][:, 2].mean(-1)
    # Downscaling blurs the square's edge; the mask keeps the pixels at least half covered, i.e. brighter
    # than halfway between background (20) and square (235).
    bright = centre > (20 + 235) / 2
    assert (bright & aligned).sum() / (bright | aligned).sum() > 0.97
    assert centre[~dilate(aligned, 1)].max() < 80
    with pytest.raises(ValueError, match="video is 160x128"):
        clip_mask(mask[:, :100], clip)


def test_load_mask_for_reads_the_file_beside_the_video(tmp_path):
    video = tmp_path / "synth_000003.mp4"
    assert load_mask_for(video) is None
    mask = _square_mask()
    np.savez_compressed(tmp_path / "synth_000003_mask.npz", mask=mask)
    assert np.array_equal(load_mask_for(video), mask)
    np.savez_compressed(tmp_path / "other_mask.npz", labels=mask)
    with pytest.raises(ValueError, match="no array named 'mask'"):
        load_mask_for(tmp_path / "other.mp4")


def test_pointing_game_counts_moving_segments_only():
    from tdn.interpret.faithfulness import actor_moving, pointing_game

    t, s = 3, 16
    mask = np.zeros((t, s, s), bool)
    mask[:, 4:8, 4:8] = True
    frames = np.full((t, 5, s, s, 3), 100, np.uint8)
    frames[0, ::2, 4:8, 4:8] = 200  # segment 0: the actor flickers; 1 and 2 stand still
    frames[2, ::2, 10:14, 10:14] = 200  # segment 2: something else changes, not the actor
    moving = actor_moving(frames, mask, dilate_px=0)
    assert moving.tolist() == [True, False, False]
    cam = np.zeros((t, s, s), np.float32)
    cam[:, 5, 5] = 1.0  # on the actor everywhere
    assert pointing_game(cam, mask, moving, dilate_px=0).hits == [True, None, None]
    cam[0] = 0
    cam[0, 12, 12] = 1.0  # off the actor
    game = pointing_game(cam, mask, np.array([True, True, False]), dilate_px=0)
    assert game.hits == [False, True, None] and game.counted == 2 and game.score == 0.5
