"""Frame sampling against the official formulas of docs/architecture.md §2.2."""

from __future__ import annotations

import numpy as np
import pytest

from tdn.video import sampling


def official_val_indices(n: int, segments: int) -> np.ndarray:
    """The official val/test sampler as the spec words it: 1-based starts, 5 frames clamped at n."""
    if n > segments + 4:
        tick = (n - 5 + 1) / float(segments)
        starts = [int(tick / 2.0 + tick * x) for x in range(segments)]
    else:
        starts = [0] * segments
    rows = []
    for start in starts:
        p, row = start + 1, []
        for _ in range(5):
            row.append(p - 1)
            if p < n:
                p += 1
        rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("segments", [8, 16])
def test_single_clip_matches_official_formula(segments: int) -> None:
    for n in range(1, 301):
        got = sampling.test_indices(n, segments)
        assert got.dtype == np.int64 and got.shape == (segments, 5)
        np.testing.assert_array_equal(got, official_val_indices(n, segments), err_msg=f"n={n}")


def test_known_values() -> None:
    np.testing.assert_array_equal(sampling.test_indices(100, 8)[:, 0], [6, 18, 30, 42, 54, 66, 78, 90])
    np.testing.assert_array_equal(sampling.test_indices(1, 8), np.zeros((8, 5)))
    np.testing.assert_array_equal(sampling.test_indices(3, 2), [[0, 1, 2, 2, 2], [0, 1, 2, 2, 2]])
    # n == T + 4 is still "short": every snippet starts at 0
    np.testing.assert_array_equal(sampling.test_indices(12, 8)[:, 0], np.zeros(8))


@pytest.mark.parametrize("clips", [2, 3, 10])
def test_clip_offsets_stay_in_bounds_and_interleave(clips: int) -> None:
    for n in (13, 40, 100, 301, 1000):
        all_clips = np.stack([sampling.test_indices(n, 8, c, clips) for c in range(clips)])
        assert all_clips.min() >= 0 and all_clips.max() <= n - 1
        starts = all_clips[:, :, 0]
        assert (starts <= n - 5).all()
        # later clips start no earlier, segment by segment, and segments stay ordered
        assert (np.diff(starts, axis=0) >= 0).all()
        assert (np.diff(starts, axis=1) >= 0).all()
        tick = (n - 4) / 8
        expected = np.floor(tick * (np.arange(clips)[:, None] + 0.5) / clips + tick * np.arange(8)[None, :])
        np.testing.assert_array_equal(starts, expected.astype(np.int64))


def test_clip_zero_of_one_is_official_and_short_videos_repeat() -> None:
    np.testing.assert_array_equal(sampling.test_indices(77, 8, 0, 1), official_val_indices(77, 8))
    short = [sampling.test_indices(10, 8, c, 3) for c in range(3)]
    assert all(np.array_equal(short[0], s) for s in short)


def test_train_sampling_follows_tsn_rules() -> None:
    rng = np.random.default_rng(0)
    for n in range(1, 200):
        got = sampling.train_indices(n, 8, rng)
        assert got.shape == (8, 5) and got.min() >= 0 and got.max() <= n - 1
        starts = got[:, 0]
        assert (np.diff(starts) >= 0).all()
        np.testing.assert_array_equal(got, np.minimum(starts[:, None] + np.arange(5), n - 1))
        d = (n - 4) // 8
        if d > 0:  # one start drawn inside each segment's span
            assert ((starts >= np.arange(8) * d) & (starts < np.arange(8) * d + d)).all()
        elif n > 8:
            assert starts.max() <= n - 5
        else:
            assert (starts == 0).all()


def test_train_sampling_is_reproducible_and_random() -> None:
    a = sampling.train_indices(300, 8, np.random.default_rng(1))
    b = sampling.train_indices(300, 8, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    draws = {sampling.train_indices(300, 8, np.random.default_rng(s))[0, 0] for s in range(20)}
    assert len(draws) > 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sampling.test_indices(0, 8)
    with pytest.raises(ValueError):
        sampling.test_indices(10, 0)
    with pytest.raises(ValueError):
        sampling.test_indices(10, 8, clip_index=2, num_clips=2)
