"""The packet index a :class:`tdn.video.reader.PyAVReader` works from: every packet's time stamps in decoding
order, the key frames, the discarded and the corrupt packets. :func:`demux_index` reads it packet by packet;
:func:`container_index` takes it from the MP4/MOV sample table where that table can stand in for the demuxer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING

from tdn.video.decode import Deadline

if TYPE_CHECKING:
    import av

_Index = tuple[list[int], list[int], list[int], set[int], list[int]]
"""(pts, dts) of every packet in decoding order, positions of the key frames, pts of discarded packets,
positions of packets flagged corrupt."""
# FFmpeg's AVIndexEntry.flags bits (libavformat/avformat.h)
_AVINDEX_KEYFRAME, _AVINDEX_DISCARD_FRAME = 0x0001, 0x0002
INDEX_CHECK_PACKETS = 256
"""Packets at the start of a file that :func:`container_index` checks against the demuxer (and those from
the last key frame to the end)."""


def _indexed_packets(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, deadline: Deadline | None
) -> Iterator[av.Packet]:
    """The packets the index counts (with a time stamp and data), from where the container stands."""
    counted = 0
    for packet in container.demux(stream):
        if packet.pts is None or not packet.size:
            continue
        if deadline is not None and counted % 4096 == 0:
            deadline.check()
        counted += 1
        yield packet


def demux_index(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    deadline: Deadline | None = None,
) -> _Index:
    """The index read packet by packet: every packet of the file is demuxed (the whole file is read)."""
    order, dts, keys, discard, corrupt = [], [], [], set(), []
    for packet in _indexed_packets(container, stream, deadline):
        if packet.is_keyframe:
            keys.append(len(order))
        if packet.is_discard:
            discard.add(packet.pts)
        if packet.is_corrupt:
            corrupt.append(len(order))
        order.append(packet.pts)
        dts.append(packet.dts)
    return order, dts, keys, discard, corrupt


def container_index(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    path: str,
    deadline: Deadline | None = None,
) -> _Index | None:
    """The same index from the MP4/MOV sample table FFmpeg parsed when the file was opened, without reading
    the media data (a 1-hour clip: milliseconds instead of a pass over the whole file), or None where that
    table cannot stand in for the demuxer.

    The table holds each packet's decoding time stamp, size, offset and key/discard flags (the edit list
    already applied), not its presentation time stamp; so it is used only for streams without frame
    reordering (no B-frames: ``has_b_frames`` is 0, and pts = dts), every packet inside the file (a cut
    file goes to the demuxer, which flags the cut packet), and where the demuxer agrees: the first
    :data:`INDEX_CHECK_PACKETS` packets and those from the last key frame to the end are demuxed and must
    match exactly."""
    if "mov" not in container.format.name.split(",") or stream.codec_context.has_b_frames:
        return None
    try:
        entries = stream.index_entries
        file_size = os.path.getsize(path)
    except (AttributeError, OSError):
        return None
    if not len(entries) or stream.frames != len(entries):
        return None  # fragmented (no sample count; the table lists only fragments read so far)
    order, keys, discard = [], [], set()
    append = order.append
    for entry in entries:  # 36,000 entries for a 1-hour clip: each attribute read is a call, read each once
        size = entry.size
        if size <= 0:
            continue
        pos = entry.pos
        if pos < 0 or pos + size > file_size:
            return None
        flags, timestamp = entry.flags, entry.timestamp
        if flags & _AVINDEX_KEYFRAME:
            keys.append(len(order))
        if flags & _AVINDEX_DISCARD_FRAME:
            discard.add(timestamp)
        append(timestamp)
    if not keys:
        return None
    key_set = set(keys)

    def expected(start: int, stop: int) -> list[tuple[int, int, bool, bool]]:
        return [(order[i], order[i], i in key_set, order[i] in discard) for i in range(start, stop)]

    def demuxed(limit: int | None) -> list[tuple[int, int, bool, bool]]:
        packets = islice(_indexed_packets(container, stream, deadline), limit)
        return [(p.pts, p.dts, p.is_keyframe, p.is_discard) for p in packets]

    total = len(order)
    head = demuxed(INDEX_CHECK_PACKETS + 1)  # one more: a file longer than the table shows here
    if len(head) != min(total, INDEX_CHECK_PACKETS + 1) or head != expected(0, len(head)):
        return None
    if total > INDEX_CHECK_PACKETS:
        import av

        try:  # the last group of pictures: the seek lands at or before its key frame
            container.seek(order[keys[-1]], stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            return None
        tail = demuxed(None)
        if not total - keys[-1] <= len(tail) <= total or tail != expected(total - len(tail), total):
            return None
    return order, list(order), keys, discard, []
