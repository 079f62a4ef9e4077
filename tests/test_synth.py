"""The synthetic motion dataset: determinism, masks, class motions, reversal/flip label maps, files, CLI."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tdn.__main__ import main
from tdn.training.synth import (
    ACTION_WINDOW,
    CLASSES,
    DATASET_VERSION,
    FADE_GROWTH,
    FADE_WINDOW,
    HFLIP_LABEL_MAP,
    METADATA_FILE,
    REVERSE_OF,
    SQUEEZE_BULGE,
    SQUEEZE_FACTOR,
    cache_folder,
    dataset_plan,
    dataset_version,
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


def _axis_changes(mask: np.ndarray) -> np.ndarray:
    """Sorted generalised eigenvalues of the last frame's mask covariance against the first one's."""
    ratios = np.linalg.eigvals(np.linalg.solve(_covariance(mask[0]), _covariance(mask[-1]))).real
    return np.sort(ratios)


def _assert_motion(mask: np.ndarray, label: int) -> None:
    """The actor's mask does what ``CLASSES[label]`` says, judged from first and last frames and the path."""
    name, size = CLASSES[label], mask.shape[1]
    area = mask.sum(axis=(1, 2))
    centres = _centroids(mask)
    shift = centres[-1] - centres[0]
    if name in ("Making something appear", "Making something disappear"):
        # v4: the object grows by FADE_GROWTH while it fades in (shrinks while it fades out)
        appear = name == "Making something appear"
        seen = area[area > 0] if appear else area[area > 0][::-1]
        assert (area[0] == 0) == appear and (area[-1] == 0) == (not appear), name
        assert seen[-1] > 0.8 * FADE_GROWTH[0] ** 1.9 * seen[0], (name, seen[0], seen[-1])
        assert (np.diff(seen) >= -0.02 * seen[-1]).all(), (name, seen)
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
        # one axis of the object shrinks k-fold (k = 2.5-3) while the other bulges by k^0.35: generalised
        # eigenvalues of the end covariance against the start one are about {1/k^2, k^0.7} (squeeze) or
        # {k^-0.7, k^2} (stretch)
        low, high = _axis_changes(mask)
        if name.startswith("Squeezing"):
            assert low < 0.2 and 1.5 < high < 2.5, (name, low, high)
        else:
            assert high > 5.0 and 0.4 < low < 0.67, (name, low, high)
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
def test_same_seed_gives_identical_clips(label: int) -> None:
    first, again = generate_clip(label, 4242), generate_clip(label, 4242)
    assert np.array_equal(first.frames, again.frames) and np.array_equal(first.mask, again.mask)
    assert first.action == again.action
    other = generate_clip(label, 4243)
    assert not np.array_equal(first.frames, other.frames)


def test_same_dataset_seed_gives_identical_clips() -> None:
    first, again = (list(sample_dataset(5, seed=8, size=48, frames=12)) for _ in range(2))
    for a, b in zip(first, again, strict=True):
        assert (a.label, a.seed, a.action) == (b.label, b.seed, b.action)
        assert a.frames.tobytes() == b.frames.tobytes() and a.mask.tobytes() == b.mask.tobytes()


@pytest.mark.parametrize(
    "label", [CLASSES.index("Making something appear"), CLASSES.index("Making something disappear")]
)
def test_fades_happen_in_a_bounded_window_with_a_clear_contrast(label: int) -> None:
    """The actor is absent before the window (the frames are exactly those of the scene without it), fully
    opaque after it, and its contrast against the background is many times the pixel noise (at most
    10 levels): the change from frame to frame inside the window stands out."""
    appear = CLASSES[label] == "Making something appear"
    for seed in range(12):
        clip, empty = generate_clip(label, seed), generate_clip(label, seed, with_actor=False)
        start, end = clip.action
        assert FADE_WINDOW[0] * 48 - 1 <= end - start <= FADE_WINDOW[1] * 48 + 1, (start, end)
        absent, opaque = (
            (slice(0, start + 1), slice(end, 48)) if appear else (slice(end, 48), slice(0, start + 1))
        )
        assert np.array_equal(clip.frames[absent], empty.frames[absent])
        assert not clip.mask[absent].any() and clip.mask[opaque].all(axis=0).any()
        diff = np.abs(clip.frames.astype(int) - empty.frames.astype(int)).mean(axis=-1)
        inside = clip.mask[end if appear else start]
        contrast = diff[opaque][:, inside].mean(axis=1)
        # fully opaque: the same contrast in every frame (up to clipping at 0 and 255)
        assert contrast.min() > 40 and np.ptp(contrast) < 0.05 * contrast.mean(), contrast
        steps = np.abs(np.diff(diff[start : end + 1][:, inside].mean(axis=1)))
        assert steps.mean() > 2.5 and contrast.mean() / (end - start) > 2.5, (steps, contrast.mean())


@pytest.mark.parametrize(
    "label", [CLASSES.index("Squeezing something"), CLASSES.index("Stretching something")]
)
def test_squeezes_change_the_aspect_much_more_than_the_area(label: int) -> None:
    """Unmistakable against a move towards/away from the camera (area 3-5x, aspect kept): the aspect
    ratio changes by k^1.35 >= 3.4x, the area by only k^0.65 <= 2x."""
    k_low, k_high = SQUEEZE_FACTOR
    for seed in range(10):
        mask = generate_clip(label, seed).mask
        low, high = _axis_changes(mask)
        aspect_change, area_change = np.sqrt(high / low), np.sqrt(high * low)
        assert aspect_change > 0.9 * k_low ** (1 + SQUEEZE_BULGE), (seed, aspect_change)
        area = mask.sum(axis=(1, 2))
        shrink = area[0] / area[-1] if CLASSES[label].startswith("Squeezing") else area[-1] / area[0]
        assert 1.4 < shrink < 1.1 * k_high ** (1 - SQUEEZE_BULGE), (seed, shrink)
        assert 1 / 2.4 < area_change < 2.4, (seed, area_change)


@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_mask_moves_as_the_class_says(label: int) -> None:
    for seed in SEEDS:
        clip = generate_clip(label, seed)
        _assert_motion(clip.mask, label)
        start, end = clip.action
        low, high = FADE_WINDOW if "appear" in CLASSES[label] else ACTION_WINDOW
        assert low * 48 - 1 <= end - start <= high * 48 + 1, (start, end)


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


def test_generated_folders_record_the_generator_version(tmp_path: Path) -> None:
    assert DATASET_VERSION == 4
    write_dataset(tmp_path / "new", num=2, seed=3, size=48, frames=12, progress=False)
    meta = json.loads((tmp_path / "new" / METADATA_FILE).read_text())
    assert meta["synth_version"] == DATASET_VERSION and (meta["num"], meta["seed"], meta["frames"]) == (
        2,
        3,
        12,
    )
    assert meta["classes"] == CLASSES
    assert dataset_version(tmp_path / "new") == DATASET_VERSION
    # a folder generated before versioning (no metadata.json) is version 2; other folders have none
    (tmp_path / "new" / METADATA_FILE).unlink()
    assert dataset_version(tmp_path / "new") == 2
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "labels.csv").write_text("file,label_index,label_name\na.mp4,0,x\n")
    assert dataset_version(tmp_path / "real") is None and dataset_version(tmp_path / "none") is None


def test_the_cache_never_reuses_clips_of_another_version(tmp_path: Path) -> None:
    from tdn.training.synth import synthetic_folder

    folder = cache_folder(tmp_path, 2, 5, 48, 12)
    assert f"v{DATASET_VERSION}" in folder.name
    # a version-2 cache folder of the same set (the old name) is left alone
    old = tmp_path / "synth_n2_s5_48px_12f"
    write_dataset(old, num=2, seed=5, size=48, frames=12, progress=False)
    (old / METADATA_FILE).unlink()
    made = Path(synthetic_folder(str(tmp_path), 2, 5, 48, 12))
    assert made == folder and dataset_version(made) == DATASET_VERSION
    # a cached folder whose metadata says another version is refused, not used
    meta = json.loads((made / METADATA_FILE).read_text())
    (made / METADATA_FILE).write_text(json.dumps({**meta, "synth_version": 2}))
    with pytest.raises(RuntimeError, match="version 2"):
        synthetic_folder(str(tmp_path), 2, 5, 48, 12)


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
        "metadata.json",
        "synth_000000.mp4",
        "synth_000000_mask.npz",
        "synth_000001.mp4",
        "synth_000001_mask.npz",
    ]
    assert "wrote 2 clips" in capsys.readouterr().out
    assert json.loads((out / "metadata.json").read_text())["synth_version"] == DATASET_VERSION
    assert main(["synth", "--out", str(out), "--num", "1", "--size", "47", "--quiet"]) == 2
