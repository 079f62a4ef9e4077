"""The synthetic motion dataset: determinism, masks, class motions, reversal/flip label maps, files, CLI."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tdn.__main__ import main
from tdn.training.synth import (
    CLASSES,
    HFLIP_LABEL_MAP,
    REVERSE_OF,
    dataset_plan,
    generate_clip,
    sample_dataset,
    write_dataset,
)

SEEDS = (0, 7, 123)


def _centroids(mask: np.ndarray) -> np.ndarray:
    """(F, 2) mask centroid (x, y) per frame; NaN where the mask is empty."""
    ys, xs = np.mgrid[0 : mask.shape[1], 0 : mask.shape[2]]
    area = mask.sum(axis=(1, 2)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([(mask * xs).sum(axis=(1, 2)) / area, (mask * ys).sum(axis=(1, 2)) / area], axis=1)


def _covariance(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.cov(np.stack([xs, ys]).astype(float))


def _turned(mask: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    """``mask`` turned clockwise on screen (y down) by ``angle`` radians about ``centre``, nearest pixel."""
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]] + 0.5
    dx, dy = xs - centre[0], ys - centre[1]
    src_x = np.floor(np.cos(angle) * dx + np.sin(angle) * dy + centre[0]).astype(int)
    src_y = np.floor(-np.sin(angle) * dx + np.cos(angle) * dy + centre[1]).astype(int)
    inside = (src_x >= 0) & (src_x < mask.shape[1]) & (src_y >= 0) & (src_y < mask.shape[0])
    out = np.zeros_like(mask)
    out[inside] = mask[src_y[inside], src_x[inside]]
    return out


def _clockwise_score(mask: np.ndarray) -> float:
    """Positive when turning each mask clockwise matches the mask two frames later better than anticlockwise."""
    centres, score = _centroids(mask), 0.0
    for t in range(len(mask) - 2):
        if (mask[t] == mask[t + 2]).all():
            continue
        ious = []
        for sign in (1, -1):
            turned = _turned(mask[t], centres[t], sign * np.radians(8))
            ious.append((turned & mask[t + 2]).sum() / (turned | mask[t + 2]).sum())
        score += ious[0] - ious[1]
    return score


def _assert_motion(mask: np.ndarray, label: int) -> None:
    """The actor's mask does what ``CLASSES[label]`` says, judged from first and last frames and the path."""
    name, size = CLASSES[label], mask.shape[1]
    area = mask.sum(axis=(1, 2))
    centres = _centroids(mask)
    shift = centres[-1] - centres[0]
    if name == "Making something appear":
        assert area[0] == 0 and area[-1] > 0, name
        return
    if name == "Making something disappear":
        assert area[0] > 0 and area[-1] == 0, name
        return
    assert (area > 0).all(), name
    if name.endswith("left to right"):
        assert shift[0] > 0.3 * size, (name, shift)
    elif name.endswith("right to left"):
        assert shift[0] < -0.3 * size, (name, shift)
    elif name.endswith("up"):
        assert shift[1] < -0.3 * size, (name, shift)
    elif name.endswith("down"):
        assert shift[1] > 0.3 * size, (name, shift)
    elif name.endswith("towards the camera"):
        assert area[-1] > 2.5 * area[0], (name, area[0], area[-1])
    elif name.endswith("away from the camera"):
        assert area[0] > 2.5 * area[-1], (name, area[0], area[-1])
    elif "clockwise" in name:
        score = _clockwise_score(mask)
        assert (score < 0) if "counter" in name else (score > 0), (name, score)
    elif name in ("Squeezing something", "Stretching something"):
        # one axis of the object changes by 1.7-2.2x, the other stays: generalised eigenvalues of the
        # end covariance against the start one are about {1/k^2, 1} (squeeze) or {k^2, 1} (stretch)
        low, high = np.sort(
            np.linalg.eigvals(np.linalg.solve(_covariance(mask[0]), _covariance(mask[-1]))).real
        )
        if name.startswith("Squeezing"):
            assert low < 0.5 and 0.75 < high < 1.33, (name, low, high)
        else:
            assert high > 2.0 and 0.75 < low < 1.33, (name, low, high)
    elif name == "Holding something still":
        assert (mask == mask[0]).all(), name
    elif name == "Shaking something":
        offsets = centres - centres[0]
        assert np.abs(offsets).max() > 2.0 and np.abs(shift).max() < 1.0, (name, offsets)
        main_axis = offsets[:, np.argmax(np.abs(offsets).max(axis=0))]
        steps = np.sign(np.diff(main_axis))
        steps = steps[steps != 0]
        assert (steps[1:] != steps[:-1]).sum() >= 4, (name, main_axis)
    else:
        raise AssertionError(f"no motion check for {name!r}")


def test_label_maps_are_involutions() -> None:
    assert len(CLASSES) == len(set(CLASSES)) >= 14
    for mapping in (REVERSE_OF, HFLIP_LABEL_MAP):
        assert sorted(mapping) == list(range(len(CLASSES)))
        assert all(mapping[mapping[k]] == k for k in mapping)
    assert {CLASSES[k] for k, j in REVERSE_OF.items() if j == k} == {
        "Holding something still",
        "Shaking something",
    }
    swapped = {(CLASSES[k], CLASSES[j]) for k, j in HFLIP_LABEL_MAP.items() if j != k}
    assert ("Moving something from left to right", "Moving something from right to left") in swapped
    assert ("Rotating something clockwise", "Rotating something counter-clockwise") in swapped
    assert len(swapped) == 4


def test_deterministic_per_seed() -> None:
    first, again, other = generate_clip(3, 11), generate_clip(3, 11), generate_clip(3, 12)
    assert first.frames.dtype == np.uint8 and first.frames.shape == (48, 112, 112, 3)
    assert first.mask.dtype == np.bool_ and first.mask.shape == (48, 112, 112)
    assert first.frames.tobytes() == again.frames.tobytes()
    assert first.mask.tobytes() == again.mask.tobytes()
    assert first.frames.tobytes() != other.frames.tobytes()
    assert first.mask.tobytes() != other.mask.tobytes()
    assert (first.label, first.label_name, first.seed) == (3, CLASSES[3], 11)


@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_mask_moves_as_the_class_says(label: int) -> None:
    for seed in SEEDS:
        clip = generate_clip(label, seed)
        _assert_motion(clip.mask, label)
        start, end = clip.action
        assert end - start >= 0.4 * len(clip.frames)


def test_same_seed_other_label_keeps_the_scene() -> None:
    left_right = generate_clip(0, 5, with_actor=False).frames
    assert np.array_equal(left_right, generate_clip(2, 5, with_actor=False).frames)
    assert np.array_equal(left_right, generate_clip(12, 5, with_actor=False).frames)


@pytest.mark.parametrize("label", [0, 4, 6, 8, 13])
def test_mask_is_where_the_actor_is_drawn(label: int) -> None:
    for seed in SEEDS:
        clip = generate_clip(label, seed)
        empty = generate_clip(label, seed, with_actor=False)
        assert np.array_equal(clip.mask, empty.mask)
        diff = np.abs(clip.frames.astype(int) - empty.frames.astype(int)).max(axis=-1)
        assert (diff[clip.mask] > 0).mean() > 0.99 and np.median(diff[clip.mask]) >= 30
        # outside the mask: the anti-aliased rim (within two pixels) and a nearly transparent actor
        # (opacity under MASK_MIN_OPACITY, while fading) may change a pixel, and only a little
        near = clip.mask.copy()
        for _ in range(2):
            grown = near.copy()
            for axis in (1, 2):
                for step in (1, -1):
                    grown |= np.roll(near, step, axis=axis)
            near = grown
        assert diff[~near].max() <= 14


@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_reversal_twin_is_the_clip_played_backwards(label: int) -> None:
    clip = generate_clip(label, 21)
    _assert_motion(clip.mask[::-1], REVERSE_OF[label])
    if REVERSE_OF[label] != label:
        twin = generate_clip(REVERSE_OF[label], 21)
        assert np.array_equal(twin.frames, clip.frames[::-1])
        assert np.array_equal(twin.mask, clip.mask[::-1])


@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_hflip_label_map_matches_the_mirrored_motion(label: int) -> None:
    for seed in SEEDS[:2]:
        _assert_motion(generate_clip(label, seed).mask[:, :, ::-1], HFLIP_LABEL_MAP[label])


def test_dataset_is_balanced_and_lazy() -> None:
    plan = dataset_plan(2 * len(CLASSES) + 3, seed=4)
    counts = Counter(label for label, _ in plan)
    assert set(counts) == set(range(len(CLASSES))) and max(counts.values()) - min(counts.values()) <= 1
    assert len({clip_seed for _, clip_seed in plan}) == len(plan)
    assert plan == dataset_plan(2 * len(CLASSES) + 3, seed=4) != dataset_plan(2 * len(CLASSES) + 3, seed=5)
    clips = list(sample_dataset(3, seed=4, size=64, frames=16))
    assert [(c.label, c.seed) for c in clips] == dataset_plan(3, seed=4)
    assert clips[0].frames.shape == (16, 64, 64, 3)


def test_write_dataset_round_trip(tmp_path: Path) -> None:
    decord = pytest.importorskip("decord")
    labels = write_dataset(tmp_path, num=3, seed=2, size=64, frames=16, fps=8, progress=False)
    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [list(r) for r in rows[:1]] == [["file", "label_index", "label_name"]]
    for row, clip in zip(rows, sample_dataset(3, seed=2, size=64, frames=16), strict=True):
        assert (int(row["label_index"]), row["label_name"]) == (clip.label, clip.label_name)
        video = tmp_path / row["file"]
        decoded = decord.VideoReader(str(video)).get_batch(list(range(16))).asnumpy().astype(int)
        assert len(decord.VideoReader(str(video))) == 16
        mask = np.load(video.with_name(video.stem + "_mask.npz"))["mask"]
        assert mask.dtype == np.bool_ and np.array_equal(mask, clip.mask)
        assert decoded.shape == mask.shape + (3,)
        error = np.abs(decoded - clip.frames).mean(axis=(1, 2, 3))
        assert error.max() < 10
        # frames are aligned: shifting by one frame is no closer than staying put
        assert error[1:].mean() <= np.abs(decoded[1:] - clip.frames[:-1]).mean() + 0.5


def test_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    # x264's macroblock tree made files (and so held-out scores) differ from run to run
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        write_dataset(folder, num=4, seed=9090, progress=False)
    videos = sorted(p.name for p in first.glob("*.mp4"))
    assert len(videos) == 4
    assert all((first / v).read_bytes() == (second / v).read_bytes() for v in videos)


def test_odd_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_dataset(tmp_path, num=1, seed=0, size=63, progress=False)


def test_cli_writes_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    args = [
        "synth",
        "--out",
        str(out),
        "--num",
        "2",
        "--seed",
        "3",
        "--size",
        "48",
        "--frames",
        "12",
        "--quiet",
    ]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.csv",
        "synth_000000.mp4",
        "synth_000000_mask.npz",
        "synth_000001.mp4",
        "synth_000001_mask.npz",
    ]
    assert "wrote 2 clips" in capsys.readouterr().out
    assert main(["synth", "--out", str(out), "--num", "1", "--size", "47", "--quiet"]) == 2
