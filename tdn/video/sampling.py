"""Which frames of a video feed the model: the one frame sampler of TDN Lens (docs/architecture.md §2.2).

A video of ``n`` decoded frames is cut into ``T`` segments. Each segment contributes a *snippet* of
``FRAMES_PER_SNIPPET`` = 5 consecutive frames; the model's appearance stream sees the centre one (f = 2) and
the short-term TDM sees all five. Every function returns 0-based frame indices of shape ``(T, 5)``,
int64, in temporal order; index ``p`` is decord frame ``p`` (the official code's 1-based JPEG
``p + 1``). A snippet that would run past the last frame repeats the last frame instead.
"""

from __future__ import annotations

import numpy as np

from tdn.contract import FRAMES_PER_SNIPPET


def _snippets(starts: np.ndarray, num_frames: int) -> np.ndarray:
    """Expand snippet starts (T,) to the (T, 5) frames, clamped at the last frame (docs/architecture.md §2.2)."""
    offsets = np.arange(FRAMES_PER_SNIPPET, dtype=np.int64)
    return np.minimum(starts.astype(np.int64)[:, None] + offsets[None, :], num_frames - 1)


def _check(num_frames: int, num_segments: int) -> None:
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    if num_segments < 1:
        raise ValueError(f"num_segments must be at least 1, got {num_segments}")


def test_indices(num_frames: int, num_segments: int, clip_index: int = 0, num_clips: int = 1) -> np.ndarray:
    """Deterministic test-time frames (T, 5) of clip ``clip_index`` out of ``num_clips``.

    Official formula (val/test mode): if n > T + 4, tick = (n - 4) / T and segment i starts at
    floor(tick / 2 + tick * i); otherwise every segment starts at frame 0.

    Several clips: the official Kinetics protocol draws each clip at random (docs/architecture.md §2.2), which is not
    reproducible, so clip ``c`` of ``C`` replaces the half-tick offset by ``tick * (c + 0.5) / C``:
    the clips' snippet starts interleave evenly inside each segment. Clip 0 of 1 is the official
    formula bit for bit (``tick * 0.5 / 1 == tick / 2``). Short videos (n <= T + 4) give the same
    frames for every clip.
    """
    _check(num_frames, num_segments)
    if not 0 <= clip_index < num_clips:
        raise ValueError(f"clip_index must be in [0, {num_clips}), got {clip_index}")
    if num_frames > num_segments + FRAMES_PER_SNIPPET - 1:
        tick = (num_frames - FRAMES_PER_SNIPPET + 1) / float(num_segments)
        offset = tick * (clip_index + 0.5) / num_clips
        # int() on a positive float is floor(), exactly as the official list comprehension does it.
        starts = np.array([int(offset + tick * i) for i in range(num_segments)], dtype=np.int64)
    else:
        starts = np.zeros(num_segments, dtype=np.int64)
    return _snippets(starts, num_frames)


test_indices.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


def train_indices(num_frames: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Random TSN training frames (T, 5); also what the official Kinetics test script uses.

    With d = floor((n - 4) / T): if d > 0, segment i starts at i * d + U{0..d-1}; else if n > T, the
    starts are a sorted draw with replacement from {0..n-5}; else every start is 0. For n <= 4 the
    official draw from {0..n-5} would be empty; here it draws from {0} instead.
    """
    _check(num_frames, num_segments)
    span = num_frames - FRAMES_PER_SNIPPET + 1
    duration = span // num_segments
    if duration > 0:
        starts = np.arange(num_segments, dtype=np.int64) * duration + rng.integers(
            0, duration, size=num_segments
        )
    elif num_frames > num_segments:
        starts = np.sort(rng.integers(0, max(span, 1), size=num_segments))
    else:
        starts = np.zeros(num_segments, dtype=np.int64)
    return _snippets(starts, num_frames)
