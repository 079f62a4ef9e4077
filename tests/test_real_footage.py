"""The frames reported are the frames shown, on files as real footage comes: each corpus file is made here
from a PyAV clip with the ``ffmpeg`` command line, and the ``ffmpeg`` command line's own decode (and
``ffprobe -count_frames``) is the reference for how many frames a file has and what frame ``i`` shows.

* an MP4 cut with ``ffmpeg -ss 3.3 -i in.mp4 -c copy``: an edit list whose pre-roll FFmpeg decodes but
  does not show;
* an MKV whose stream 0 is a one-frame MJPEG still and stream 1 the default H.264 (and one with real cover
  art, an attached picture);
* MPEG-TS and FLV copies, whose demuxers seek differently from MP4's;
* a faststart MP4 cut short, its last packet half there; an MP4 with one packet damaged;
* the same without B-frames, where the MP4 sample table stands in for reading every packet.

Needs the ``ffmpeg`` and ``ffprobe`` binaries (Debian's ``ffmpeg``; ``./dev test`` installs it as root).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from tdn.video import ClipError, decode, load_clip
from tdn.video import reader as reader_module
from tdn.video.reader import PyAVReader
from tests.videogen import (
    FFMPEG,
    FFPROBE,
    damage_packet,
    ffmpeg,
    ffmpeg_frames,
    ffprobe_count,
    frame_pattern,
    read_index,
    write_video,
)

pytestmark = pytest.mark.skipif(
    FFMPEG is None or FFPROBE is None,
    reason="the ffmpeg command line is not installed (apt-get install ffmpeg; ./dev test does it as root)",
)

FRAMES, HEIGHT, WIDTH = 300, 120, 160  # 12 s at 25 fps, a key frame every 25 frames, 3 B-frames
CUT_AT = 3.3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("footage")
    source = write_video(
        folder / "source.mp4", frame_pattern(FRAMES, HEIGHT, WIDTH), options={"bf": "3", "g": "25"}
    )
    files = {"source": source}
    files["cut"] = folder / "cut.mp4"
    ffmpeg("-ss", CUT_AT, "-i", source, "-c", "copy", files["cut"])
    files["ts"] = folder / "copy.ts"
    ffmpeg("-i", source, "-c", "copy", files["ts"])
    files["flv"] = folder / "copy.flv"
    ffmpeg("-i", source, "-c", "copy", files["flv"])
    still = folder / "still.jpg"
    ffmpeg("-f", "lavfi", "-i", "color=red:size=64x48", "-frames:v", "1", still)
    files["still_first"] = folder / "still_first.mkv"
    ffmpeg(
        "-i", still, "-i", source, "-map", "0", "-map", "1", "-c", "copy",
        "-disposition:v:0", "0", "-disposition:v:1", "default", files["still_first"],
    )  # fmt: skip
    files["cover_art"] = folder / "cover_art.mkv"
    ffmpeg(
        "-i", source, "-attach", still, "-metadata:s:t", "mimetype=image/jpeg", "-c", "copy",
        files["cover_art"],
    )  # fmt: skip
    faststart = folder / "faststart.mp4"
    ffmpeg("-i", source, "-c", "copy", "-movflags", "+faststart", faststart)
    files["truncated"] = folder / "truncated.mp4"
    files["truncated"].write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 6 // 10])
    files["damaged"] = folder / "damaged.mp4"
    damage_packet(source, files["damaged"], 160)
    # Without B-frames the MP4 sample table stands in for reading every packet (container_index)
    plain = write_video(
        folder / "plain.mp4", frame_pattern(FRAMES, HEIGHT, WIDTH), options={"bf": "0", "g": "25"}
    )
    files["plain"] = plain
    files["plain_cut"] = folder / "plain_cut.mp4"
    ffmpeg("-ss", CUT_AT, "-i", plain, "-c", "copy", files["plain_cut"])
    plain_faststart = folder / "plain_faststart.mp4"
    ffmpeg("-i", plain, "-c", "copy", "-movflags", "+faststart", plain_faststart)
    files["plain_truncated"] = folder / "plain_truncated.mp4"
    files["plain_truncated"].write_bytes(
        plain_faststart.read_bytes()[: plain_faststart.stat().st_size * 6 // 10]
    )
    files["plain_damaged"] = folder / "plain_damaged.mp4"
    damage_packet(plain, files["plain_damaged"], 160)
    files["plain_fragmented"] = folder / "plain_fragmented.mp4"  # the table lists only the first fragments
    ffmpeg(
        "-i",
        plain,
        "-c",
        "copy",
        "-movflags",
        "frag_keyframe+empty_moov",
        files["plain_fragmented"],
    )
    files["plain_mjpeg"] = folder / "plain_mjpeg.mov"
    ffmpeg("-i", plain, "-c:v", "mjpeg", "-q:v", "2", files["plain_mjpeg"])
    return files


def official_views(frames: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """torchvision's Resize(256) + CenterCrop(224) of ``frames[indices]``: (T, 5, 224, 224, 3)."""
    resize, crop = transforms.Resize(256), transforms.CenterCrop(224)
    return np.stack(
        [[np.asarray(crop(resize(Image.fromarray(frames[int(i)])))) for i in row] for row in indices]
    )


def assert_shows_what_ffmpeg_shows(path: Path, **options: int) -> None:
    """load_clip's count and, at every reported index, its model pixels equal ffmpeg's decode."""
    reference = ffmpeg_frames(path)
    clip = load_clip(path, exact=True, **options)
    assert clip.num_frames == len(reference) == ffprobe_count(path, clip.stream_index)
    assert (clip.height, clip.width) == reference.shape[1:3]
    for view in range(clip.num_views):
        np.testing.assert_array_equal(
            clip.model_frames[view], official_views(reference, clip.frame_indices[view]), err_msg=path.name
        )


# Each file is compared as a whole too: every frame PyAVReader gives equals ffmpeg's frame of that index.
NAMES = [
    "cut",
    "ts",
    "flv",
    "still_first",
    "cover_art",
    "truncated",
    "plain_cut",
    "plain_truncated",
    "plain_mjpeg",
]


@pytest.mark.parametrize("name", NAMES)
def test_every_frame_is_the_one_ffmpeg_shows(corpus: dict[str, Path], name: str) -> None:
    path = corpus[name]
    reference = ffmpeg_frames(path)
    probe = decode.probe(str(path), path.name, None)
    reader = PyAVReader(str(path), probe.rotation, stream_index=probe.stream_index)
    assert reader.num_frames == len(reference)
    frames = dict(reader.frames(range(reader.num_frames)))
    for index, frame in frames.items():
        np.testing.assert_array_equal(frame, reference[index], err_msg=f"{name} frame {index}")


@pytest.mark.parametrize("name", NAMES)
def test_sampled_frames_are_the_ones_ffmpeg_shows(corpus: dict[str, Path], name: str) -> None:
    assert_shows_what_ffmpeg_shows(corpus[name])


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("plain", "container"),
        ("plain_cut", "container"),  # the edit list's pre-roll is flagged discard in the table too
        ("plain_damaged", "container"),  # damage shows only when decoding, on either path
        ("plain_mjpeg", "container"),
        ("plain_truncated", "demux"),
        ("plain_fragmented", "demux"),  # packets past the end of the file: the demuxer flags the cut one
        ("source", "demux"),  # B-frames: the table has no presentation time stamps
        ("cut", "demux"),
        ("ts", "demux"),  # not MP4/MOV
    ],
)
def test_the_sample_table_index_equals_the_demuxers(corpus: dict[str, Path], name: str, source: str) -> None:
    import av

    from tdn.video.packet_index import demux_index

    path = corpus[name]
    probe = decode.probe(str(path), path.name, None)
    reader = PyAVReader(str(path), probe.rotation, stream_index=probe.stream_index)
    assert reader.index_source == source
    with av.open(str(path)) as container:
        order, dts, keys, discard, corrupt = demux_index(container, container.streams[probe.stream_index])
    assert (reader._order, reader._dts, reader._keys) == (order, dts, keys)
    assert reader.num_frames == len(set(order) - discard) - len(reader._lost)


def test_edit_list_pre_roll_is_not_counted(corpus: dict[str, Path]) -> None:
    # ffmpeg -ss 3.3 -c copy starts at the key frame before 3.3 s and hides the frames up to 3.3 s
    path = corpus["cut"]
    clip = load_clip(path)
    shown = len(ffmpeg_frames(path))
    assert clip.num_frames == shown < FRAMES - 75
    assert clip.duration_s == pytest.approx(shown / 25)
    # each frame still says its own source index: frame i of the cut is source frame first + i
    first = read_index(ffmpeg_frames(path)[0])
    assert first == pytest.approx(CUT_AT * 25, abs=1)
    assert [read_index(f) for f in clip.display_frames[0]] == (clip.centre_indices + first).tolist()


def test_edit_list_with_many_segments_and_clips(corpus: dict[str, Path]) -> None:
    # once "Frames [5, 6] could not be decoded": the pre-roll's packets were indexed as frames
    assert_shows_what_ffmpeg_shows(corpus["cut"], num_segments=16)
    assert_shows_what_ffmpeg_shows(corpus["cut"], num_segments=4, clips=10)


def test_a_still_in_stream_0_is_not_the_video(corpus: dict[str, Path]) -> None:
    clip = load_clip(corpus["still_first"])
    assert clip.stream_index == 1 and clip.codec == "h264" and clip.num_frames == FRAMES
    assert [read_index(f) for f in clip.display_frames[0]] == clip.centre_indices.tolist()
    art = load_clip(corpus["cover_art"])
    assert art.stream_index == 0 and art.num_frames == FRAMES


@pytest.mark.parametrize("name", [*NAMES, "source", "plain", "damaged", "plain_damaged"])
def test_two_decoding_lanes_give_the_frames_ffmpeg_shows(
    corpus: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast pass split over two threads (normally for long, sparsely sampled clips: forced here) gives
    every sampled frame as the ffmpeg command line shows it, on every file of the corpus."""
    monkeypatch.setattr(reader_module, "LANE_MIN_PACKETS", 0)
    monkeypatch.setattr(reader_module, "usable_cores", lambda: 2)
    path = corpus[name]
    if "damaged" in name:  # damage found mid-request re-reads the clip (FramesLost): load_clip's protocol
        assert_shows_what_ffmpeg_shows(path)
        return
    probe = decode.probe(str(path), path.name, None)
    reader = PyAVReader(str(path), probe.rotation, stream_index=probe.stream_index)
    wanted = sorted({int(i) for i in np.linspace(0, reader.num_frames - 1, 24).round()})
    frames = dict(reader.frames(wanted))
    assert sorted(frames) == wanted
    assert reader.stats["lanes"] == (1 if reader._damaged else 2), reader.stats  # known damage: one lane
    reference = ffmpeg_frames(path)
    for index in wanted:
        np.testing.assert_array_equal(frames[index], reference[index], err_msg=f"{name} frame {index}")


def test_a_second_lane_stops_when_the_caller_does_and_passes_its_errors_on(
    corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "LANE_MIN_PACKETS", 0)
    monkeypatch.setattr(reader_module, "usable_cores", lambda: 2)
    path = str(corpus["plain"])
    reader = PyAVReader(path, 0)
    frames = reader.raw_frames([10, 40, 90, 140, 190, 240, 290])
    next(frames)
    frames.close()  # joins the lane thread; nothing left running
    assert not [t for t in threading.enumerate() if t.name == "tdn-decode-lane"]

    class LaneDeadline:  # the time limit runs out in the second lane only
        def check(self) -> None:
            if threading.current_thread().name == "tdn-decode-lane":
                raise ClipError("timeout", "out of time in the second lane")

    late = PyAVReader(path, 0, deadline=LaneDeadline())
    with pytest.raises(ClipError, match="second lane") as caught:
        list(late.raw_frames([10, 40, 90, 140, 190, 240, 290]))
    assert caught.value.kind == "timeout"
    assert not [t for t in threading.enumerate() if t.name == "tdn-decode-lane"]


@pytest.mark.parametrize("name", ["ts", "flv"])
def test_ts_and_flv_seek_instead_of_decoding_everything(corpus: dict[str, Path], name: str) -> None:
    # MPEG-TS lands a seek on any packet near the time stamp, rarely a key frame: the seek is verified
    # and retried instead of decoding the whole file
    path = corpus[name]
    probe = decode.probe(str(path), path.name, None)
    reader = PyAVReader(str(path), 0, stream_index=probe.stream_index)
    wanted = [2, 60, 61, 150, 151, 152, 240, 299]
    frames = dict(reader.frames(wanted))
    assert reader.stats["plain_passes"] == 0 and reader.stats["seeks"] >= 3
    assert reader.stats["packets"] < FRAMES / 2
    reference = ffmpeg_frames(path)
    for index in wanted:
        np.testing.assert_array_equal(frames[index], reference[index], err_msg=f"{name} frame {index}")


def test_truncated_faststart_mp4_counts_only_decodable_frames(corpus: dict[str, Path]) -> None:
    path = corpus["truncated"]
    reference = ffmpeg_frames(path)
    clip = load_clip(path, num_segments=16)
    assert clip.num_frames == len(reference) < FRAMES
    assert any("truncated" in w for w in clip.warnings)
    reader = PyAVReader(str(path), 0)  # the last frame counted is there
    np.testing.assert_array_equal(
        dict(reader.frames([len(reference) - 1]))[len(reference) - 1], reference[-1]
    )


def test_damaged_packet_is_decoded_past_with_a_warning(corpus: dict[str, Path]) -> None:
    # once: "[Errno 1094995529] Invalid data found when processing input: 'avcodec_send_packet()'"
    path = corpus["damaged"]
    reference = ffmpeg_frames(path)
    assert len(reference) == FRAMES - 1  # ffmpeg skips the rejected packet's frame
    for segments in (8, 16):
        clip = load_clip(path, num_segments=segments, exact=True)
        assert clip.num_frames == len(reference)
        assert any("damaged" in w and "could not be decoded" in w for w in clip.warnings), clip.warnings
        np.testing.assert_array_equal(clip.model_frames[0], official_views(reference, clip.frame_indices[0]))


def test_a_file_with_no_decodable_frame_says_so_in_words(corpus: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(corpus["source"].read_bytes())
    import av

    with av.open(str(corpus["source"])) as container:
        spots = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    for offset, _ in spots:
        data[offset : offset + 4] = b"\xff\xff\xff\xff"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    with pytest.raises(ClipError) as caught:
        load_clip(broken)
    assert caught.value.kind == "corrupt" and "damaged" in caught.value.message
    assert "Errno" not in caught.value.message


@pytest.mark.parametrize("isolate", [False, True])
def test_the_time_limit_names_itself_and_how_to_raise_it(
    corpus: dict[str, Path], isolate: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = corpus["ts"]
    with pytest.raises(ClipError) as caught:
        load_clip(path.read_bytes() if isolate else path, timeout_s=0.001, isolate=isolate)
    message = caught.value.message
    assert caught.value.kind == "timeout" and "0.001 s" in message
    assert "--decode-timeout SECONDS" in message and "timeout_s=" in message
    assert decode.TIMEOUT_ENV in message
    monkeypatch.setenv(decode.TIMEOUT_ENV, "0.002")
    with pytest.raises(ClipError) as caught:
        load_clip(path, isolate=isolate)
    assert caught.value.kind == "timeout" and "0.002 s" in caught.value.message
    monkeypatch.setenv(decode.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=decode.TIMEOUT_ENV):
        load_clip(path)
