"""load_clip on clips written here with PyAV: indices, pixels, formats, rotation, bad inputs; the exact
region resize and the PyAV reader's shortcuts (seeking, skipping non-reference frames) against decord."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import decord
import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

import tdn.video.clip as video
from tdn import filetypes
from tdn.video import Clip, ClipError, decode, isolation, load_clip, preprocess, sampling
from tdn.video.reader import PyAVReader
from tests.videogen import frame_pattern, read_index, write_audio, write_no_frames, write_video

CROP_CODE = 0.5 * 256 / 224  # the index code's share of a 224 centre crop


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def lossless(clips_dir: Path) -> tuple[Path, np.ndarray]:
    """An odd-sized ffv1 clip whose decoded pixels equal the written ones."""
    frames = frame_pattern(90, 77, 123)
    return write_video(clips_dir / "odd.mkv", frames), frames


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile at an empty folder so a test can see every temporary file load_clip makes."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def reference_views(frames: np.ndarray, indices: np.ndarray, crops: int) -> np.ndarray:
    """The official pipeline with torchvision on PIL images: (V, T, 5, S, S, 3) for one clip."""
    resize = transforms.Resize(256)
    scaled = {int(i): np.asarray(resize(Image.fromarray(frames[int(i)]))) for i in np.unique(indices)}
    height, width = next(iter(scaled.values())).shape[:2]
    if crops == 1:
        center = transforms.CenterCrop(224)
        return np.stack(
            [[[np.asarray(center(Image.fromarray(scaled[int(i)]))) for i in row] for row in indices]]
        )
    step, top = (width - 256) // 4, 2 * ((height - 256) // 4)
    return np.stack(
        [
            [[scaled[int(i)][top : top + 256, x : x + 256] for i in row] for row in indices]
            for x in (0, 4 * step, 2 * step)
        ]
    )


def decoded_frames(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def test_single_view_is_the_official_pipeline(lossless: tuple[Path, np.ndarray]) -> None:
    path, frames = lossless
    clip = load_clip(path)
    assert isinstance(clip, Clip)
    np.testing.assert_array_equal(clip.frame_indices[0], sampling.test_indices(90, 8))
    np.testing.assert_array_equal(clip.centre_indices, sampling.test_indices(90, 8)[:, 2])
    assert clip.model_frames.shape == (1, 8, 5, 224, 224, 3)
    np.testing.assert_array_equal(clip.model_frames, reference_views(frames, clip.frame_indices[0], 1))
    assert len(clip.inputs) == 1 and clip.inputs[0].shape == (1, 120, 224, 224)
    assert (clip.inputs[0] == preprocess.to_model_input(clip.model_frames[0])).all()
    assert clip.display_frames.shape == (1, 8, 256, 408, 3)
    assert [read_index(f) for f in clip.display_frames[0]] == clip.centre_indices.tolist()
    assert [read_index(f, CROP_CODE) for f in clip.model_frames[0, :, 2]] == clip.centre_indices.tolist()
    assert (clip.width, clip.height, clip.num_frames, clip.codec) == (123, 77, 90, "ffv1")
    assert clip.fps == pytest.approx(25) and clip.duration_s == pytest.approx(3.6)
    assert clip.exact and clip.rotation == 0 and clip.scaled_size == (408, 256)
    assert clip.crop_boxes == [(92, 16, 316, 240)] and clip.source_name == "odd.mkv"
    assert {"probe", "decode", "resize", "total"} <= clip.timings_ms.keys()


def test_three_crops_two_clips(lossless: tuple[Path, np.ndarray]) -> None:
    path, frames = lossless
    clip = load_clip(path, num_segments=4, crops=3, clips=2)
    assert clip.model_frames.shape == (6, 4, 5, 256, 256, 3) and clip.size == 256
    assert clip.inputs[0].shape == (1, 60, 256, 256) and clip.num_views == 6
    for c in range(2):
        indices = sampling.test_indices(90, 4, c, 2)
        views = slice(3 * c, 3 * c + 3)
        np.testing.assert_array_equal(clip.frame_indices[views], np.stack([indices] * 3))
        np.testing.assert_array_equal(clip.model_frames[views], reference_views(frames, indices, 3))
    assert clip.display_frames.shape[:2] == (2, 4)
    lean = load_clip(path, num_segments=4, crops=3, clips=2, build_inputs=False)
    assert lean.inputs == [] and (lean.view_input(4) == clip.inputs[4]).all()


FORMATS = [
    ("h264.mp4", {}),
    ("mpeg4.avi", {}),
    ("h264.mov", {}),
    ("png.mov", {"codec": "png"}),
    ("ffv1.mkv", {}),
    ("vp9.webm", {}),
    ("vp8.webm", {"codec": "libvpx"}),
    ("grey.gif", {}),
]


@pytest.mark.parametrize(("name", "options"), FORMATS, ids=[name for name, _ in FORMATS])
def test_formats(clips_dir: Path, name: str, options: dict[str, str]) -> None:
    frames = frame_pattern(40, 96, 128, gray=name.endswith(".gif"))
    path = write_video(clips_dir / name, frames, **options)
    clip = load_clip(path)
    assert clip.num_frames == 40
    assert [read_index(f) for f in clip.display_frames[0]] == clip.centre_indices.tolist()
    decoded = decoded_frames(path)
    np.testing.assert_array_equal(clip.model_frames, reference_views(decoded, clip.frame_indices[0], 1))


def test_greyscale_source_gives_three_equal_channels(clips_dir: Path) -> None:
    frames = frame_pattern(30, 64, 80, gray=True)
    path = write_video(clips_dir / "grey.mkv", frames, pix_fmt="gray")
    clip = load_clip(path, num_segments=4)
    assert clip.model_frames.shape[-1] == 3
    assert (clip.model_frames[..., 0] == clip.model_frames[..., 2]).all()
    np.testing.assert_array_equal(clip.model_frames, reference_views(frames, clip.frame_indices[0], 1))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied(clips_dir: Path, rotation: int) -> None:
    frames = frame_pattern(30, 48, 64)
    path = write_video(clips_dir / f"rot{rotation}.mov", frames, codec="png", rotation=rotation)
    clip = load_clip(path, num_segments=4)
    turns = rotation // 90
    upright = np.stack([np.rot90(f, turns) for f in frames])
    assert clip.rotation == rotation and (clip.width, clip.height) == upright.shape[2:0:-1]
    np.testing.assert_array_equal(clip.model_frames, reference_views(upright, clip.frame_indices[0], 1))
    assert clip.num_frames == 30


def test_variable_frame_rate_samples_by_index(clips_dir: Path) -> None:
    steps = np.where(np.arange(60) % 3 == 0, 0.1, 0.02)  # bursts and pauses
    path = write_video(clips_dir / "vfr.mp4", frame_pattern(60, 48, 64), timestamps=np.cumsum(steps) - 0.1)
    clip = load_clip(path)
    np.testing.assert_array_equal(clip.frame_indices[0], sampling.test_indices(60, 8))
    assert [read_index(f) for f in clip.display_frames[0]] == clip.centre_indices.tolist()


# Every codec in decode.NONREF_SKIP_CODECS, written with frames that nothing refers to where it can
SKIPPING = [
    ("h264.mp4", {"options": {"bf": "3", "g": "20"}}),
    ("hevc.mp4", {"codec": "libx265", "options": {"x265-params": "bframes=3:keyint=20:log-level=error"}}),
    ("mpeg4.mp4", {"codec": "mpeg4", "options": {"bf": "2", "g": "20"}}),
    ("vp8.webm", {"codec": "libvpx", "options": {"g": "20", "deadline": "realtime", "cpu-used": "8"}}),
    ("vp9.webm", {"options": {"g": "20", "deadline": "realtime", "cpu-used": "8"}}),
]


@pytest.mark.parametrize(("name", "options"), SKIPPING, ids=[name for name, _ in SKIPPING])
def test_pyav_reader_skips_and_seeks_without_changing_pixels(
    clips_dir: Path, name: str, options: dict[str, object]
) -> None:
    path = write_video(clips_dir / f"skip_{name}", frame_pattern(60, 48, 64), **options)  # type: ignore[arg-type]
    wanted = [0, 1, 2, 19, 20, 21, 37, 44, 45, 58, 59]
    reader = PyAVReader(str(path), 0)
    by_pyav = dict(reader.frames(wanted[::-1]))
    assert sorted(by_pyav) == wanted and reader.num_frames == 60
    reference = decoded_frames(path)
    for index in wanted:
        np.testing.assert_array_equal(by_pyav[index], reference[index], err_msg=f"{name} frame {index}")


@pytest.mark.parametrize(
    ("colorspace", "color_range"), [(1, None), (1, 2), (None, 2)], ids=["bt709", "bt709-full", "full"]
)
def test_pyav_reader_matches_decord_on_tagged_colour(
    clips_dir: Path, colorspace: int | None, color_range: int | None
) -> None:
    # PyAV converts with the frame's colour matrix and range; decord's filter graph does too
    import av

    path = clips_dir / f"colour_{colorspace}_{color_range}.mp4"
    frames = frame_pattern(10, 48, 64)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuvj420p" if color_range == 2 else "yuv420p"
        for frame in frames:
            image = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if colorspace is not None:
                image.colorspace = colorspace
            if color_range is not None:
                image.color_range = color_range
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))
    by_pyav = dict(PyAVReader(str(path), 0).frames(range(10)))
    np.testing.assert_array_equal(np.stack([by_pyav[i] for i in range(10)]), decoded_frames(path))


GEOMETRIES = [
    (1280, 720),
    (720, 1280),
    (854, 480),
    (123, 77),
    (400, 300),
    (176, 144),
    (100, 1000),
    (2000, 90),
]


@pytest.mark.parametrize(("width", "height"), GEOMETRIES, ids=[f"{w}x{h}" for w, h in GEOMETRIES])
def test_region_resize_equals_the_whole_resize_cropped(width: int, height: int) -> None:
    rng = np.random.default_rng(width * height)
    for scale, size in [(256, 224), (128, 112), (256, 256)]:
        scaled = preprocess.scaled_size(width, height, scale)
        keep = preprocess.center_crop_box(*scaled, size)
        plan = decode.plan_region((width, height), scaled, keep)
        if plan is None:
            continue
        x0, y0, x1, y1 = plan.region
        assert x0 <= keep[0] and y0 <= keep[1] and x1 >= keep[2] and y1 >= keep[3]
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        whole = preprocess.resize_frame(frame, scale)
        np.testing.assert_array_equal(decode.resize_region(frame, plan), whole[y0:y1, x0:x1])
    scaled = preprocess.scaled_size(1280, 720, 256)
    plan = decode.plan_region((1280, 720), scaled, preprocess.center_crop_box(*scaled, 224))
    assert plan is not None and plan.region == (91, 16, 364, 240)  # 720p: 53% of the frame is resized


@pytest.mark.parametrize(
    ("source", "scaled"), [((1280, 720), (455, 256)), ((64, 4000), (40, 100)), ((300, 3000), (64, 128))]
)
def test_pass_order_is_observed_and_does_not_depend_on_bands(
    source: tuple[int, int], scaled: tuple[int, int]
) -> None:
    # Pillow 13 resizes vertically first when the height shrinks much more than the width
    width, height = source
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8))
    reference = np.asarray(image.resize(scaled, Image.Resampling.BILINEAR))
    order = decode._pass_order(source, scaled)
    assert order is not None
    np.testing.assert_array_equal(
        np.asarray(decode._two_passes(image, scaled, (0.0, 0.0, float(width), float(height)), order)),
        reference,
    )


def test_bytes_and_file_objects_leave_no_temp_files(
    lossless: tuple[Path, np.ndarray], private_tmp: Path
) -> None:
    path, _ = lossless
    data = path.read_bytes()
    from_path = load_clip(path)
    from_bytes = load_clip(data, source_name="clip.mkv")
    from_file = load_clip(io.BytesIO(data), isolate=False)
    for clip in (from_bytes, from_file):
        np.testing.assert_array_equal(clip.model_frames, from_path.model_frames)
    assert from_bytes.source_name == "clip.mkv" and "isolation" in from_bytes.timings_ms
    assert "isolation" not in from_file.timings_ms
    assert os.listdir(private_tmp) == []


@pytest.mark.parametrize("rotation", [0, 90])
def test_reduced_decode_is_close_but_flagged(clips_dir: Path, rotation: int) -> None:
    path = write_video(clips_dir / f"big{rotation}.mov", frame_pattern(20, 360, 640), rotation=rotation)
    exact = load_clip(path, num_segments=2, crops=3)
    reduced = load_clip(path, num_segments=2, crops=3, exact=False)
    assert exact.exact and not reduced.exact
    assert (reduced.width, reduced.height) == ((360, 640) if rotation else (640, 360))
    np.testing.assert_array_equal(reduced.frame_indices, exact.frame_indices)
    assert reduced.model_frames.shape == exact.model_frames.shape
    assert reduced.display_frames.shape == exact.display_frames.shape
    diff = np.abs(exact.model_frames.astype(int) - reduced.model_frames.astype(int))
    assert diff.mean() < 4  # swscale's bilinear against PIL's; a turned or shifted frame differs by ~60


def test_narrow_frames(clips_dir: Path) -> None:
    # decord2 failed ("size must exactly match") on some widths of 144 px or less, e.g. 48
    frames = frame_pattern(30, 32, 48)
    path = write_video(clips_dir / "narrow.mkv", frames)
    clip = load_clip(path, num_segments=4)
    np.testing.assert_array_equal(clip.model_frames, reference_views(frames, clip.frame_indices[0], 1))
    reduced = load_clip(path, num_segments=4, exact=False)
    assert np.abs(reduced.model_frames.astype(int) - clip.model_frames.astype(int)).mean() < 4


def test_auto_exactness_and_chunking(
    lossless: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = lossless
    reference = load_clip(path, num_segments=4)
    monkeypatch.setattr(decode, "IN_FLIGHT_BYTES", 1)  # one decoded frame at a time
    np.testing.assert_array_equal(load_clip(path, num_segments=4).model_frames, reference.model_frames)
    monkeypatch.setattr(video, "EXACT_AUTO_MAX_PIXELS", 100 * 50)  # "much larger than needed"
    assert not load_clip(path, num_segments=4).exact
    assert load_clip(path, num_segments=4, exact=True).exact


def test_truncation_warning(clips_dir: Path) -> None:
    path = write_video(clips_dir / "long.mkv", frame_pattern(250, 48, 64))
    cut = clips_dir / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    clip = load_clip(cut, num_segments=4)
    assert clip.num_frames < 250 and any("truncated" in w for w in clip.warnings)


def bad_inputs(folder: Path) -> list[tuple[str, object, str]]:
    good = write_video(folder / "good.mp4", frame_pattern(50, 48, 64)).read_bytes()
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    cases: list[tuple[str, object, str]] = [
        ("empty", b"", "empty"),
        ("text", b"this is not a video\n" * 20, "not_video"),
        ("random", np.random.default_rng(0).bytes(4096), "not_video"),
        ("png", png.getvalue(), "not_video"),
        ("m4a", write_audio(folder / "tone.m4a").read_bytes(), "audio_only"),
        ("mp3", write_audio(folder / "tone.mp3").read_bytes(), "audio_only"),
        ("no_frames_mp4", write_no_frames(folder / "none.mp4").read_bytes(), "no_frames"),
        ("no_frames_mkv", write_no_frames(folder / "none.mkv").read_bytes(), "no_frames"),
    ]
    for fraction in (0.02, 0.3, 0.7, 0.98):
        cases.append((f"truncated_{fraction}", good[: int(len(good) * fraction)], "corrupt"))
    return cases


def test_bad_inputs_raise_clip_errors(tmp_path: Path, private_tmp: Path) -> None:
    for label, data, kind in bad_inputs(tmp_path):
        for isolate in (False, True):
            with pytest.raises(ClipError) as caught:
                load_clip(data, source_name=f"{label}.mp4", isolate=isolate)  # type: ignore[arg-type]
            assert caught.value.kind == kind, (label, isolate, caught.value.message)
            assert str(caught.value) and "tdn-clip-" not in str(caught.value)
    assert os.listdir(private_tmp) == []
    with pytest.raises(ClipError) as caught:
        load_clip(tmp_path / "missing.mp4")
    assert caught.value.kind == "not_found"


def test_caps(lossless: tuple[Path, np.ndarray]) -> None:
    path, _ = lossless
    with pytest.raises(ClipError) as caught:
        load_clip(path, max_pixels=80 * 80)
    assert caught.value.kind == "too_large" and "123x77" in caught.value.message
    with pytest.raises(ClipError) as caught:
        load_clip(path.read_bytes(), max_duration_s=2.0)
    assert caught.value.kind == "too_long" and "3.6 s" in caught.value.message


@pytest.mark.parametrize(("fault", "kind"), [("crash", "corrupt"), ("hang", "timeout")])
def test_isolation_survives_crashes_and_hangs(
    lossless: tuple[Path, np.ndarray],
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    kind: str,
) -> None:
    path, _ = lossless
    call = isolation.Server.call

    def call_faulty(server: isolation.Server, fn: object, job: video._Job, timeout_s: float) -> object:
        return call(server, fn, dataclasses.replace(job, fault=fault), timeout_s)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(isolation.Server, "call", call_faulty)
        with pytest.raises(ClipError) as caught:
            load_clip(path.read_bytes(), timeout_s=1.0)
    assert caught.value.kind == kind
    assert os.listdir(private_tmp) == []
    assert load_clip(path.read_bytes()).num_frames == 90  # the decode server still works


def test_concurrent_isolated_loads_agree(lossless: tuple[Path, np.ndarray]) -> None:
    path, _ = lossless
    data = path.read_bytes()
    with ThreadPoolExecutor(max_workers=3) as pool:
        clips = list(pool.map(lambda _: load_clip(data, num_segments=4), range(3)))
    for clip in clips[1:]:
        np.testing.assert_array_equal(clip.model_frames, clips[0].model_frames)


def test_isolation_never_reruns_the_callers_script(lossless: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    # multiprocessing's spawn/forkserver would re-execute this unguarded script in the child
    path, _ = lossless
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pathlib import Path\n"
        "from tdn.video import load_clip\n"
        f"clip = load_clip(Path({str(path)!r}).read_bytes(), num_segments=2)\n"
        "print('loaded', clip.num_frames)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(repo)},
        check=True,
    )
    assert result.stdout.splitlines() == ["loaded 90"]


def test_clip_error_pickles() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(ClipError("timeout", "too slow")))
    assert error.kind == "timeout" and str(error) == "too slow"


@pytest.mark.parametrize(
    ("head", "kind", "container"),
    [
        (b"", "empty", None),
        (b"\x00\x00\x00\x18ftypmp42", "video", "MP4/QuickTime"),
        (b"\x1a\x45\xdf\xa3\x01", "video", "Matroska/WebM"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "AVI"),
        (b"GIF89a\x01\x00", "video", "GIF"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio", None),
        (b"\x89PNG\r\n\x1a\n", "image", None),
        (b"PK\x03\x04rest", "archive", None),
        (b"<!DOCTYPE html><html></html>\n", "text", None),
        (b"name,top1\nTDN,52.3\n", "text", None),
        (b"\xff" * 64, "unknown", None),
    ],
)
def test_sniff_names_files_by_content(head: bytes, kind: str, container: str | None) -> None:
    found = filetypes.sniff(head)
    assert (found.kind, found.container) == (kind, container) and found.description


def test_evaluation_data_is_what_load_clip_gives(lossless: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    import torch

    from tdn.training.data import VideoClips, read_labels_csv

    path, _ = lossless
    (tmp_path / "labels.csv").write_text(f"file,label_index,label_name\n{path},0,odd\n")
    records, _ = read_labels_csv(tmp_path)
    clip = load_clip(path)  # 123x77: short side 77 -> 256, centre crop 224
    inputs, label = VideoClips(records, 8, 224, train=False, scale_size=256)[0]
    assert label == 0 and torch.equal(inputs, clip.inputs[0][0])
    preloaded = VideoClips(records, 8, 224, train=False, scale_size=256)
    preloaded.preload(progress=False)
    assert torch.equal(preloaded[0][0], inputs)
    assert VideoClips(records, 8, 224, train=True, scale_size=256)[0][0].shape == (120, 224, 224)


def test_decode_still_names_the_reader() -> None:
    # tdn.training.data imports it from there
    from tdn.video.decode import PyAVReader as old_name

    assert old_name is PyAVReader and decode.PyAVReader is PyAVReader
    with pytest.raises(AttributeError):
        decode.NoSuchThing  # noqa: B018
