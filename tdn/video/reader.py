"""Reading the frames a video shows, by index, with PyAV: :class:`PyAVReader`.

* **Which frames.** Frame ``i`` is the ``i``-th *displayed* frame in presentation order, the frames
  ``ffprobe -count_frames`` counts and the ``ffmpeg`` command line decodes: packets FFmpeg marks as
  discard (the pre-roll before an MP4 edit list's start, as ``ffmpeg -ss T -i in.mp4 -c copy out.mp4``
  writes it) are decoded, as references, but not counted, and packets that FFmpeg cannot decode (the cut
  last packet of a truncated file) are left out. The stream is :func:`tdn.video.decode.choose_stream`'s.
  Pixels equal decord's and the ``ffmpeg`` command line's (tested per container and codec, including
  BT.709 and full-range sources; tests/test_real_footage.py compares with ``ffmpeg`` itself).
* **Fast for sparse frames.** It seeks to the key frame before a target when one lies ahead, sends the
  packets of unwanted frames with ``skip_frame=NONREF`` (for codecs in ``NONREF_SKIP_CODECS``) so the
  decoder drops frames that no other frame refers to (the B-frames, about half of an H.264 stream) while
  every reference frame is still decoded, and converts only the wanted frames to RGB
  (:meth:`PyAVReader.to_rgb`, in the caller's threads). Rotation from the display matrix is applied with
  ``np.rot90``, for every angle. Given a ``size`` it is the reduced path (``exact=False`` in
  :func:`tdn.video.load_clip`): swscale scales each wanted frame while converting it, and no
  full-resolution RGB frame is ever made; pixels differ from PIL's. (decord2 3.4.0 did this job before; it
  returned wrong frames when asked for sparse frames on a busy machine, mis-sized 90°/270° output and
  failed on some widths of 144 px or less.) A long clip sampled sparsely costs the packets from each
  target's key frame on; with two cores those runs are decoded in two lanes (threads with their own
  container and decoder, :meth:`PyAVReader._lane_split`): the same frames; on a 2-core machine, where the
  resize threads share the cores, a 1-hour clip loads in 168 instead of 192 ms.
* **Seeking is verified.** Demuxers seek differently: MP4 and Matroska land on the key frame at or before
  a time stamp, MPEG-TS on whatever packet has about that decoding time stamp (often not a key frame),
  FLV through an index it builds as it reads, and an MP4 with an edit list by time stamps shifted from
  its packets'. So the reader seeks to the key frame's presentation time stamp, reads which packet it
  landed on, and accepts the landing only at or before that key frame (packets before the first key
  frame after the landing are not sent to the decoder). Too late a landing is retried with the key
  frame's decoding time stamp (what MPEG-TS seeks by; the reader then tries that first), then with up to
  ``SEEK_STEPS_BACK`` earlier key frames; a landing a whole group early is retried once, shifted by the
  error (kept when it lands exactly). Only frames that none of these reach are decoded from the start.
* **Damage.** A packet the decoder rejects (``Invalid data found when processing input``) is skipped, as
  the ``ffmpeg`` command line skips it. Its group of pictures is then decoded again from the key frame
  before it, every frame, as ``ffmpeg`` decodes it in one go; frames that do not come out leave the index,
  and :class:`tdn.video.decode.FramesLost` tells the caller to sample again. Damaged groups are always
  decoded that way afterwards, so their pixels (concealed errors included) are ``ffmpeg``'s.
  :attr:`PyAVReader.warnings` says what was skipped. Packets the demuxer flags as corrupt (a cut last
  packet) are checked the same way when the file is opened.
"""

from __future__ import annotations

import bisect
import copy
import operator
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import TYPE_CHECKING

import numpy as np

from tdn.util import usable_cores
from tdn.video.decode import NONREF_SKIP_CODECS, ClipError, Deadline, FrameReader, FramesLost, choose_stream
from tdn.video.packet_index import container_index, demux_index

if TYPE_CHECKING:
    import av

SEEK_STEPS_BACK = 3  # earlier key frames a seek that lands too late is retried with
LANDING_PACKETS = 64  # packets read after a seek to find one the index knows, before trying elsewhere
REORDER_SLACK = 16  # packets decoded past a checked group of pictures, so that its frames all come out

STATS = ("seeks", "packets", "plain_passes", "lanes")  # what PyAVReader.stats counts

LANE_MIN_PACKETS = 400  # packets to decode before the fast pass is split in two lanes (threads)
LANE_QUEUE = 4  # frames the second lane may hold ready for the caller

_NO_POSITION = -2  # a packet the index does not hold (a flush packet, or one without time stamps)


class PyAVReader(FrameReader):
    """Decoding with PyAV, indexed by displayed frame; see the module docstring for what it skips, how it
    seeks and what it does with damage.

    ``stream_index`` is the container's index of the stream to read (None: :func:`choose_stream`);
    ``deadline``, when given, is checked while reading. ``stats`` counts what the last :meth:`raw_frames`
    did: "seeks", "packets" sent to the decoder, "plain_passes" (decodes from the start of the file) and
    "lanes" (threads the fast pass used: :meth:`_lane_split`).
    """

    def __init__(
        self,
        path: str,
        rotation: int,
        name: str = "the video",
        size: tuple[int, int] | None = None,
        stream_index: int | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        import av

        self._path, self._turns, self._name, self._deadline = path, rotation // 90, name, deadline
        # (width, height) of the upright output for the reduced path; swscale scales before np.rot90 turns
        self._scale = None if size is None else (size[::-1] if self._turns % 2 else size)
        self.warnings: list[str] = []
        self.stats = dict.fromkeys(STATS, 0)
        with av.open(path) as container:
            stream = container.streams[stream_index] if stream_index is not None else choose_stream(container)
            if stream is None or stream.type != "video":
                raise ClipError("not_video", f"{name} holds no video stream that can be read.")
            self.stream_index = stream.index
            rate = stream.average_rate or stream.guessed_rate
            self._time_base = float(stream.time_base) if stream.time_base else 0.0
            index = container_index(container, stream, path, deadline)
        self.index_source = "container" if index is not None else "demux"
        if index is None:  # opened again: the checks above may have read part of the file
            with av.open(path) as container:
                index = demux_index(container, container.streams[self.stream_index], deadline)
        order, dts, keys, discard, corrupt = index
        self.fps = float(rate) if rate else 0.0
        self._order = order  # pts of every packet, in decoding order (positions)
        self._dts = dts
        self._keys = keys  # positions of the key frames
        # pts -> its first position (built from the end, so that the first occurrence is the one kept)
        self._position: dict[int, int] = dict(
            zip(reversed(order), range(len(order) - 1, -1, -1), strict=True)
        )
        # frame index -> pts: the displayed frames (without B-frames or discards, the order itself)
        if not discard and all(map(operator.lt, order, islice(order, 1, None))):
            self._pts = list(order)
        else:
            self._pts = sorted(set(order) - discard)
        self._first_pts = self._pts[0] if self._pts else 0
        self._modes = ["pts", "dts"]  # which time stamp of a key frame to seek by, the one that worked first
        self._shift = 0  # added to seek time stamps: what the demuxer's seek turned out to be off by
        self._rejected: set[int] = set()  # pts of packets the decoder rejected, not yet checked
        self._checked: set[int] = set()  # pts of packets in groups of pictures already checked
        self._damaged: set[int] = set()  # key-frame positions of groups of pictures holding damage
        self._lost: list[int] = []  # pts of displayed frames taken out of the index
        if corrupt:
            self._verify(corrupt)
        self.num_frames = len(self._pts)

    # ------------------------------------------------------------------------------------ reading

    def raw_frames(self, indices: Sequence[int]) -> Iterator[tuple[int, av.VideoFrame]]:
        self.stats = dict.fromkeys(STATS, 0)
        targets = sorted(set(indices))
        wanted = {self._pts[i]: i for i in targets}
        found: set[int] = set()
        split = self._lane_split(targets)
        self.stats["lanes"] = 1 if split is None else 2
        if split is None:
            yield from self._fast_pass(targets, wanted, found)
        else:
            yield from self._two_lanes(targets, split, wanted, found)
        self._drop_rejected(found)
        missing = [i for i in targets if i not in found]
        if missing:  # a demuxer whose seeks miss, or frames whose time stamps moved: plain decoding
            self.stats["plain_passes"] += 1
            yield from self._plain_pass(missing, wanted, found)
            self._drop_rejected(found)
        missing = [i for i in targets if i not in found]
        if missing:
            raise ClipError(
                "corrupt",
                f"Frames {missing[:5]} of {self._name} could not be decoded although the file lists them; "
                "its video stream is probably damaged.",
            )

    def _fast_pass(
        self, targets: list[int], wanted: dict[int, int], found: set[int]
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Seek (verified) to the key frame before each target that is not reached by decoding on, and
        skip non-reference frames; targets that no seek reaches are left for the plain pass."""
        import av

        with av.open(self._path) as container:
            stream = container.streams[self.stream_index]
            # With non-reference frames skipped, FFmpeg's frame threads gain nothing over one thread
            # (bench_decode), and they keep both cores busy while the pool converts and resizes; slice
            # threads split frames coded as several slices.
            skip = stream.codec_context.name in NONREF_SKIP_CODECS
            stream.thread_type = "SLICE" if skip else "AUTO"
            run: _Run | None = None
            for target in targets:
                if target in found:
                    continue
                target_pts = self._pts[target]
                key = self._start_key(target_pts)
                if run is None or not run.start <= max(key, 0) <= run.sent:
                    try:
                        items = self._seek(container, stream, key)
                    except av.error.FFmpegError:
                        return  # this container cannot seek: the plain pass decodes the rest
                    if items is None:
                        run = None
                        continue
                    run = _Run(self, stream, items, wanted if skip else None)
                for frame in run.frames:
                    index = wanted.get(frame.pts) if frame.pts is not None else None
                    if index is not None and index not in found:
                        found.add(index)
                        yield index, frame
                    if frame.pts is not None and frame.pts >= target_pts:
                        break

    def _lane_split(self, targets: list[int]) -> int | None:
        """Where to split ``targets`` between two decoding lanes, or None for one lane.

        A long clip sampled sparsely is decoder-bound: every target costs the packets from its key frame
        on (a 1-hour clip with a key frame every 250 frames: ~2,000 packets for 40 frames). Runs that start
        at different key frames are independent, so two threads, each with its own container and decoder,
        decode them at once (PyAV lets go of the GIL while FFmpeg decodes). Used with two usable cores or
        more, no damage known, and at least ``LANE_MIN_PACKETS`` packets to decode; the split falls
        between runs, where the estimated work is most even."""
        if usable_cores() < 2 or self._damaged or len(targets) < 2:
            return None
        runs: list[tuple[int, int]] = []  # (first target's place in targets, estimated packets)
        reach = -1  # position of the last target of the current run
        for place, target in enumerate(targets):
            pts = self._pts[target]
            position, key = self._position[pts], max(self._start_key(pts), 0)
            if runs and key <= reach:  # decoding on from the run before reaches it
                runs[-1] = (runs[-1][0], runs[-1][1] + max(0, position - reach))
            else:
                runs.append((place, position - key + 1))
            reach = max(reach, position)
        total = sum(cost for _, cost in runs)
        if len(runs) < 2 or total < LANE_MIN_PACKETS:
            return None
        best, before = None, 0
        for (place, _), (_, cost) in zip(runs[1:], runs[:-1], strict=True):
            before += cost
            if best is None or abs(total - 2 * before) < best[0]:
                best = (abs(total - 2 * before), place)
        return best[1]

    def _two_lanes(
        self, targets: list[int], split: int, wanted: dict[int, int], found: set[int]
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """The fast pass over ``targets[:split]`` here and over ``targets[split:]`` in a second thread, on
        a copy of the reader that shares the index and keeps its own seek calibration, counters and
        rejected packets (merged afterwards). Frames are yielded as they come, each index once."""
        lane = copy.copy(self)
        lane.stats = dict.fromkeys(("seeks", "packets"), 0)
        lane._rejected = set()
        lane._modes = list(self._modes)
        lane_found: set[int] = set()
        ready: queue.Queue = queue.Queue(maxsize=LANE_QUEUE)
        stop = threading.Event()
        done = object()

        def hand_over(item: object) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            try:
                for item in lane._fast_pass(targets[split:], wanted, lane_found):
                    if not hand_over(item):
                        return
                hand_over(done)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                hand_over(error)

        thread = threading.Thread(target=work, name="tdn-decode-lane", daemon=True)
        thread.start()
        finished = False

        def take(item: object) -> Iterator[tuple[int, av.VideoFrame]]:
            nonlocal finished
            if item is done:
                finished = True
            elif isinstance(item, BaseException):
                raise item
            elif item[0] not in found:
                found.add(item[0])
                yield item

        try:
            for item in self._fast_pass(targets[:split], wanted, found):
                yield item
                while not finished:
                    try:
                        extra = ready.get_nowait()
                    except queue.Empty:
                        break
                    yield from take(extra)
            while not finished:
                yield from take(ready.get())
        finally:
            stop.set()
            thread.join()
            for key, value in lane.stats.items():
                self.stats[key] += value
            self._rejected |= lane._rejected

    def _plain_pass(
        self, targets: list[int], wanted: dict[int, int], found: set[int]
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode everything from the start (frame threads) until the last of ``targets`` is found."""
        import av

        remaining = set(targets)
        with av.open(self._path) as container:
            stream = container.streams[self.stream_index]
            stream.thread_type = "AUTO"
            items = self._positioned(container.demux(stream))
            for frame in _Run(self, stream, items, None).frames:
                index = wanted.get(frame.pts) if frame.pts is not None else None
                if index is not None and index not in found:
                    found.add(index)
                    remaining.discard(index)
                    yield index, frame
                    if not remaining:
                        return

    def to_rgb(self, raw: av.VideoFrame) -> np.ndarray:
        """RGB pixels (converted with the frame's own colour matrix and range, as decord does), rotated.

        With ``size``, swscale also scales the frame (bilinear, its filter widened when downscaling)
        instead of PIL after it. swscale runs without the GIL, so the caller's threads convert frames in
        parallel; each conversion is told to use one thread (swscale's own threads only add contention
        there, for the same pixels)."""
        if self._scale is None:
            rgb = raw.reformat(format="rgb24", threads=1)
        else:
            width, height = self._scale
            rgb = raw.reformat(width, height, "rgb24", interpolation="BILINEAR", threads=1)
        return np.ascontiguousarray(np.rot90(rgb.to_ndarray(), self._turns))

    # ------------------------------------------------------------------------------------ seeking

    def _start_key(self, pts: int) -> int:
        """Position of the key frame decoding must start from to reach the frame ``pts``: the last one
        at or before that frame in decoding order and not after it in presentation order (a leading
        frame of an open group of pictures needs the key frame before its own). -1: the stream's start."""
        position = self._position[pts]
        at = bisect.bisect_right(self._keys, position) - 1
        while at >= 0 and (self._order[self._keys[at]] > pts or self._keys[at] in self._damaged):
            at -= 1  # a damaged group is decoded from the one before, with the references FFmpeg had
        return self._keys[at] if at >= 0 else -1

    def _seek_stamps(self, key: int) -> list[tuple[str, int]]:
        """Time stamps to seek by for the key frame at ``key``, in the order to try them."""
        stamps: list[tuple[str, int]] = []
        if key < 0:
            candidates = [("start", self._dts[0]), ("start", self._order[0])]
        else:
            own = {"pts": self._order[key], "dts": self._dts[key]}
            candidates = [(mode, own[mode]) for mode in self._modes]
            at = bisect.bisect_left(self._keys, key)
            for earlier in self._keys[max(0, at - SEEK_STEPS_BACK) : at][::-1]:
                candidates.append(("earlier", self._dts[earlier]))
                candidates.append(("earlier", self._order[earlier]))
            candidates.append(("earlier", self._dts[0]))
        for mode, stamp in candidates:
            if stamp is not None and stamp not in (s for _, s in stamps):
                stamps.append((mode, stamp))
        return stamps

    def _seek(
        self, container: av.container.InputContainer, stream: av.VideoStream, key: int
    ) -> Iterator[tuple[int, av.Packet]] | None:
        """Packets from the key frame at position ``key`` (-1: the stream's start), or from one before
        it, or None when no seek lands there. The landing is verified: the first packet read after the
        seek must lie at or before ``key`` in decoding order; packets up to the next key frame are
        dropped, so that the decoder starts on a key frame."""
        target = max(key, 0)
        for mode, stamp in self._seek_stamps(key):
            shift = 0 if mode == "start" else self._shift
            landed = self._land(container, stream, stamp + shift)
            if landed is None or landed[0] > target:
                continue  # landed after the key frame (or at the end): try an earlier time stamp
            position, items = landed
            if position < target and mode != "start" and self._key_between(position, target):
                # A whole group of pictures early: some demuxers seek by time stamps shifted from the
                # packets' (MP4 with an edit list). Try once more, shifted by the error; keep the shift
                # when it lands exactly.
                error = self._order[target] - self._order[position]
                better = self._land(container, stream, stamp + shift + error)
                if better is not None and better[0] == target:
                    self._shift += error
                    position, items = better
                else:
                    landed = self._land(container, stream, stamp + shift)
                    if landed is None or landed[0] > target:
                        continue
                    position, items = landed
            if position == target and mode in self._modes and self._modes[0] != mode:
                self._modes.remove(mode)
                self._modes.insert(0, mode)
            return items if key < 0 else _from_key_frame(items)
        return None

    def _land(
        self, container: av.container.InputContainer, stream: av.VideoStream, stamp: int
    ) -> tuple[int, Iterator[tuple[int, av.Packet]]] | None:
        """Seek to ``stamp``; the position of the first known packet read after it, and the packets from
        that one on. None when none of the first ``LANDING_PACKETS`` is known (or at the end)."""
        container.seek(stamp, stream=stream, backward=True, any_frame=False)
        self.stats["seeks"] += 1
        items = self._positioned(container.demux(stream))
        landing = next((item for item in islice(items, LANDING_PACKETS) if item[0] != _NO_POSITION), None)
        return None if landing is None else (landing[0], chain([landing], items))

    def _key_between(self, first: int, before: int) -> bool:
        """Whether a key frame lies at a position in [first, before)."""
        at = bisect.bisect_left(self._keys, first)
        return at < len(self._keys) and self._keys[at] < before

    def _positioned(self, packets: Iterable[av.Packet]) -> Iterator[tuple[int, av.Packet]]:
        """``(position in decoding order, packet)``; ``_NO_POSITION`` for packets the index lacks."""
        position = self._position
        for packet in packets:
            pts = packet.pts
            yield (
                (position.get(pts, _NO_POSITION) if pts is not None and packet.size else _NO_POSITION),
                packet,
            )

    # ------------------------------------------------------------------------------------ damage

    def _rejected_packet(self, pts: int | None) -> None:
        if pts is not None:
            self._rejected.add(pts)

    def _drop_rejected(self, found: Iterable[int]) -> None:
        """Check the groups of pictures of packets the decoder rejected, decoding each from the key frame
        before it as the ``ffmpeg`` command line decodes it (in one go from the start). Raise FramesLost
        when that changes what the request got: frames left the index, or frames in ``found`` (indices)
        were decoded without the group before them and may differ from what FFmpeg shows."""
        fresh = sorted(self._position[p] for p in self._rejected - self._checked if p in self._position)
        self._rejected.clear()
        if not fresh:
            return
        before = set(self._damaged)
        found_pts = [self._pts[i] for i in found]  # before _verify renumbers the frames
        lost = self._verify(fresh)
        first = self._seconds(self._order[fresh[0]])
        if not self._lost:
            self._note(f"FFmpeg rejected some of its video data as invalid (at {first:.2f} s)")
        newly = self._damaged - before
        if lost or any(self._group_of(self._position[p]) in newly for p in found_pts):
            raise FramesLost(
                "corrupt",
                f"{self._name} is damaged: FFmpeg rejected some of its video data as invalid (the first at "
                f"{first:.2f} s), and {len(lost)} frame(s) could not be decoded.",
            )

    def _group_of(self, position: int) -> int:
        """Position of the key frame that starts the group of pictures holding ``position`` (-1: none)."""
        at = bisect.bisect_right(self._keys, position) - 1
        return self._keys[at] if at >= 0 else -1

    def _forget(self, lost: Sequence[int]) -> None:
        gone = set(lost)
        self._pts = [p for p in self._pts if p not in gone]
        self._lost.extend(lost)
        self.num_frames = len(self._pts)
        times = ", ".join(f"{self._seconds(p):.2f} s" for p in sorted(self._lost)[:3])
        more = " …" if len(self._lost) > 3 else ""
        self._note(
            f"{len(self._lost)} frame(s) could not be decoded (at {times}{more}) and were left out, as the "
            "ffmpeg command line leaves them out"
        )

    def _note(self, what: str) -> None:
        """One warning about damage, the latest news first; frames near damage may look wrong."""
        prefix = f"{self._name} is damaged: "
        self.warnings[:] = [w for w in self.warnings if not w.startswith(prefix)]
        self.warnings.append(f"{prefix}{what}; frames near the damage may show artefacts.")

    def _in_damaged_group(self, position: int) -> bool:
        return bool(self._damaged) and position >= 0 and self._group_of(position) in self._damaged

    def _seconds(self, pts: int) -> float:
        return (pts - self._first_pts) * self._time_base

    def _verify(self, positions: Sequence[int]) -> list[int]:
        """Decode each group of pictures holding one of ``positions`` (packets flagged corrupt, or
        rejected by the decoder) from the key frame before it, every frame, and take the displayed frames
        that do not come out out of the index; returns their pts. Such groups are marked damaged, and
        :meth:`_start_key` starts them a group early from then on, so that their frames are decoded
        with the same references as when the whole file is decoded."""
        import av

        ranges: list[tuple[int, int, int]] = []  # (key to start from, first judged position, end)
        for position in sorted(positions):
            at = bisect.bisect_right(self._keys, position) - 1
            own = self._keys[at] if at >= 0 else 0
            start = self._keys[at - 1] if at >= 1 else -1
            end = self._keys[at + 1] if at + 1 < len(self._keys) else len(self._order)
            self._damaged.add(own)
            if ranges and own < ranges[-1][2]:
                ranges[-1] = (ranges[-1][0], ranges[-1][1], max(end, ranges[-1][2]))
            else:
                ranges.append((start, own, end))
        lost: set[int] = set()
        with av.open(self._path) as container:
            stream = container.streams[self.stream_index]
            stream.thread_type = "SLICE"  # errors then belong to the packet just sent
            for start, first, end in ranges:
                judged = set(self._order[first:end])
                self._checked |= judged
                try:
                    items = self._seek(container, stream, start)
                except av.error.FFmpegError:
                    items = None
                if items is None:
                    continue  # cannot check here: decoding the frames will find out
                run = _Run(self, stream, items, None, stop=end + REORDER_SLACK)
                lost |= judged - {frame.pts for frame in run.frames}
        self._rejected.clear()
        lost_displayed = sorted(lost & set(self._pts))
        if lost_displayed:
            self._forget(lost_displayed)
        return lost_displayed


class _Run:
    """Packets from one starting point sent to the decoder; ``frames`` yields what comes out, and may
    be resumed. ``start`` and ``sent`` are the positions of the first and the latest packet sent."""

    def __init__(
        self,
        reader: PyAVReader,
        stream: av.VideoStream,
        items: Iterator[tuple[int, av.Packet]],
        wanted: dict[int, int] | None,
        stop: int | None = None,
    ) -> None:
        self.start = -1
        self.sent = -1
        self.frames = self._frames(reader, stream, items, wanted, stop)

    def _frames(
        self,
        reader: PyAVReader,
        stream: av.VideoStream,
        items: Iterator[tuple[int, av.Packet]],
        wanted: dict[int, int] | None,
        stop: int | None,
    ) -> Iterator[av.VideoFrame]:
        """With ``wanted``, unwanted non-reference frames are dropped; ``stop``: end after that position."""
        import av

        context = stream.codec_context
        deadline = reader._deadline
        kept: bool | None = None  # what context.skip_frame was last set for
        for position, packet in items:
            if position != _NO_POSITION:
                if self.start < 0:
                    self.start = position
                self.sent = max(self.sent, position)
                if stop is not None and position > stop:
                    return
            if deadline is not None:
                deadline.check()
            if wanted is not None:
                # Read by the decoder when the packet is sent (frame threads copy it then too). In a
                # damaged group of pictures every frame is decoded: FFmpeg conceals errors from the
                # frame before, which a skipped frame would change.
                keep = packet.pts is None or packet.pts in wanted or reader._in_damaged_group(position)
                if keep != kept:  # set only on a change: each assignment is a call into the codec context
                    context.skip_frame = "DEFAULT" if keep else "NONREF"
                    kept = keep
            reader.stats["packets"] += 1
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                reader._rejected_packet(packet.pts)
                continue
            yield from frames


def _from_key_frame(items: Iterator[tuple[int, av.Packet]]) -> Iterator[tuple[int, av.Packet]]:
    """``items`` from the first key-frame packet on: a decoder must not start inside a group of pictures."""
    started = False
    for position, packet in items:
        if not started:
            if position == _NO_POSITION or not packet.is_keyframe:
                continue
            started = True
        yield position, packet
