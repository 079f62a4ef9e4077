"""Evaluating a checkpoint on a published dataset under a zoo protocol: resumable, sharded, with progress.

:func:`evaluate_dataset` runs every entry of a :class:`tdn.datasets.lists.DatasetList` through
:func:`tdn.video.load_clip` (videos) or :func:`tdn.video.frames.load_frame_folder` (frame folders) with the
protocol's crops and clips, and :func:`tdn.inference.predict` (mean of the views' softmax, docs/architecture.md
§2.4). It writes the per-video JSONL and the summary JSON of :mod:`tdn.datasets.records`.

* **Resumable.** Records are appended (and flushed) as videos finish; a run given an existing file skips the
  videos it already holds (the header must describe the same checkpoint, protocol, list and classes, else
  :class:`EvaluationMismatch`). When the run completes, the file is rewritten in the list's order, so an
  interrupted-and-resumed run ends with the same file as an uninterrupted one.
* **Sharded.** Under torchrun (``ranks`` from :func:`tdn.distributed.init_from_env`) rank r evaluates items r,
  r + world, … of the videos still to do (:func:`tdn.distributed.shard`) and appends to ``<out>.part<r>``; rank 0
  gathers every rank's records (:func:`tdn.distributed.gather_objects`), writes the file in list order and the
  summary. Each video's prediction depends on that video only (eval mode, one video per forward), so the result
  equals one process's.
* **Progress** is a tqdm bar on rank 0 (rate and ETA), and ``on_progress(done, total, elapsed_s)`` for callers
  such as the app. Decoding runs ``workers`` videos ahead in threads while the model runs.
* A video that cannot be read is recorded with its :class:`ClipError` kind and message and counted as failed;
  accuracies are over the videos evaluated.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import torch

from tdn.contract import ClipSpec
from tdn.datasets.lists import DatasetList, Entry
from tdn.datasets.protocols import Protocol, get_protocol
from tdn.datasets.records import (
    FORMAT_VERSION,
    dumps,
    part_paths,
    read_jsonl,
    same_evaluation,
    summarise,
    summary_path,
)
from tdn.distributed import Ranks, gather_objects, shard
from tdn.inference import predict
from tdn.network.checkpoint import CheckpointInfo
from tdn.network.flops import count_gmacs, count_params
from tdn.network.model import TDN
from tdn.util import git_commit, write_atomic
from tdn.video import ClipError, load_clip
from tdn.video.clip import Clip
from tdn.video.frames import is_frame_folder, load_frame_folder

__all__ = ["EvaluationMismatch", "evaluate_dataset", "load_entry", "make_header"]

TOPK_STORED = 10
MAX_LISTED = 200  # missing / unknown / failed videos listed by name in the summary


class EvaluationMismatch(ValueError):
    """An existing JSONL was written for another evaluation (checkpoint, protocol, list or classes)."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _relative(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive
        return str(path)


def make_header(
    info: CheckpointInfo, dataset: DatasetList, protocol: Protocol, out: Path | None, topk: int = TOPK_STORED
) -> dict:
    """The first line of an evaluation JSONL (see :mod:`tdn.datasets.records`)."""
    spec = info.spec
    names = list(info.class_names)
    root = dataset.root.resolve()
    return {
        "type": "header",
        "format_version": FORMAT_VERSION,
        "checkpoint": {
            "name": info.name,
            "file": Path(info.path).name,
            "sha256": info.sha256,
            "format": info.format,
            "dataset": info.dataset,
            "config": info.config.to_dict(),
            "num_segments": spec.num_segments,
            "input_size": spec.input_size,
            "scale_size": spec.scale_size,
        },
        "protocol": {**protocol.to_dict(), "view_size": protocol.view_size(spec)},
        "dataset": {
            "format": dataset.format,
            "name": dataset.dataset,
            "list_file": dataset.list_file.name,
            "list_sha256": _sha256_file(dataset.list_file),
            "root": str(root),
            "root_relative": _relative(root, out.parent.resolve()) if out is not None else None,
            "template": dataset.template,
        },
        "classes": {
            "count": len(names),
            "sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
            "names": names,
        },
        "topk": topk,
    }


def load_entry(entry: Entry, spec: ClipSpec, protocol: Protocol, template: str | None = None) -> Clip:
    """An entry's views: a frame folder through :func:`load_frame_folder` (sampled over the list's frame count
    when it gives one), anything else through :func:`load_clip`."""
    if entry.path.is_dir() and is_frame_folder(entry.path, template):
        return load_frame_folder(
            entry.path,
            spec,
            protocol.crops,
            protocol.clips,
            template,
            num_frames=entry.num_frames,
            build_inputs=False,
        )
    if entry.path.is_dir():
        raise ClipError("no_frames", f"{entry.path} is a folder without frames named like 00001.jpg.")
    return load_clip(entry.path, spec=spec, crops=protocol.crops, clips=protocol.clips, build_inputs=False)


def _record(
    entry: Entry,
    root: Path,
    clip: Clip | None,
    error: ClipError | None,
    probs: torch.Tensor | None,
    names: list[str],
    topk: int,
) -> dict:
    base = {
        "key": entry.key,
        "file": Path(_relative(entry.path, root)).as_posix(),
        "label": entry.label,
        "label_name": entry.label_name,
    }
    if error is not None or clip is None or probs is None:
        kind = error.kind if error is not None else "corrupt"
        return {**base, "error": {"kind": kind, "message": str(error)}}
    values, indices = probs.topk(min(topk, probs.numel()))
    top = [int(i) for i in indices]
    pred = top[0]
    return {
        **base,
        "pred": pred,
        "pred_name": names[pred],
        "correct": pred == entry.label,
        "top5": top[:5],
        "topk": [[i, round(float(v), 6)] for i, v in zip(top, values.tolist(), strict=True)],
        "prob_label": round(float(probs[entry.label]), 6),
        "num_frames": int(clip.num_frames),
        "frame_indices": clip.frame_indices[:: clip.crops].tolist(),
    }


def _previous(out: Path, header: dict) -> dict[str, dict]:
    """Records already on disk for this evaluation (the file and any per-rank parts), by key."""
    found: dict[str, dict] = {}
    for path in [out, *part_paths(out)] if out.exists() else part_paths(out):
        try:
            old_header, records = read_jsonl(path)
        except ValueError as e:
            raise EvaluationMismatch(f"{path} cannot be continued: {e}") from None
        if old_header is None:
            continue
        differ = same_evaluation(old_header, header)
        if differ:
            raise EvaluationMismatch(
                f"{path} holds an evaluation of another {', '.join(differ)}; write to a new file or pass "
                "resume=False to start again."
            )
        for r in records:
            found.setdefault(r["key"], r)
    return found


def _model_costs(info: CheckpointInfo, size: int) -> tuple[float, int]:
    """(GMACs of one view at ``size``², parameters) of the checkpoint's network, counted on the meta device."""
    with torch.device("meta"):
        model = TDN(info.config)
    return count_gmacs(model, size).total, count_params(model)


def _skipped(items: list) -> list[dict]:
    return [{"key": s.key, "line": s.line, "detail": s.detail} for s in items[:MAX_LISTED]]


def evaluate_dataset(
    model: TDN,
    info: CheckpointInfo,
    dataset: DatasetList,
    protocol: str | Protocol = "ss-1crop",
    out: str | Path | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    on_progress: Callable[[int, int, float], None] | None = None,
    ranks: Ranks | None = None,
    workers: int = 1,
    topk: int = TOPK_STORED,
    title: str | None = None,
    command: str | None = None,
) -> dict:
    """Evaluate ``model`` on ``dataset`` under ``protocol``; returns the summary (and writes it with the JSONL
    when ``out`` is given). See the module docstring for resuming, sharding and progress.

    ``workers``: videos decoded ahead in threads (0: decode inline). ``title``: the evaluation's name in the app
    (default: the JSONL's name). ``command``: the command line recorded as provenance.
    """
    protocol = get_protocol(protocol)
    ranks = ranks or Ranks()
    spec = info.spec
    names = list(info.class_names)
    if len(dataset.class_names) != len(names) or list(dataset.class_names) != names:
        raise ValueError("the dataset was read with other class names than the checkpoint's")
    out_path = Path(out) if out is not None else None
    header = make_header(info, dataset, protocol, out_path, topk)
    previous: dict[str, dict] = {}
    if out_path is not None and ranks.is_main:
        if resume:
            previous = _previous(out_path, header)
        else:
            for part in part_paths(out_path):
                part.unlink()
        keys = {e.key for e in dataset.entries}
        kept = [previous[e.key] for e in dataset.entries if e.key in previous]
        # Consolidate before anyone appends: a line cut short by an interruption goes, parts merge into the file.
        write_atomic(out_path, "".join(dumps(x) + "\n" for x in [header, *kept]))
        for part in part_paths(out_path):
            part.unlink()
        previous = {k: v for k, v in previous.items() if k in keys}
    previous = gather_objects(previous if ranks.is_main else None, ranks)[0]
    remaining = [e for e in dataset.entries if e.key not in previous]
    mine = shard(remaining, ranks)

    target = None
    if out_path is not None:
        target_path = (
            out_path if ranks.world == 1 else out_path.with_name(f"{out_path.name}.part{ranks.rank}")
        )
        target = target_path.open("a", encoding="utf-8")
        if ranks.world > 1:
            target.write(dumps(header) + "\n")
    root = dataset.root.resolve()
    timing = {"decode_s": 0.0, "model_s": 0.0}
    new: list[dict] = []
    start = time.perf_counter()

    def load(entry: Entry) -> tuple[Clip | None, ClipError | None, float]:
        t0 = time.perf_counter()
        try:
            return load_entry(entry, spec, protocol, dataset.template), None, time.perf_counter() - t0
        except ClipError as e:
            return None, e, time.perf_counter() - t0

    from tqdm import tqdm

    bar = tqdm(
        total=len(mine),
        desc=f"evaluate {protocol.name}",
        unit="video",
        disable=not progress or not ranks.is_main,
        dynamic_ncols=True,
    )
    pool = ThreadPoolExecutor(workers, thread_name_prefix="tdn-eval-decode") if workers > 0 else None
    try:
        pending: list[Future] = []
        ahead = max(1, workers) + 1
        for i, entry in enumerate(mine):
            if pool is not None:
                while len(pending) < ahead and i + len(pending) < len(mine):
                    pending.append(pool.submit(load, mine[i + len(pending)]))
                clip, error, decode_s = pending.pop(0).result()
            else:
                clip, error, decode_s = load(entry)
            timing["decode_s"] += decode_s
            probs = None
            if clip is not None:
                t0 = time.perf_counter()
                probs = predict(model, clip, names).probs
                timing["model_s"] += time.perf_counter() - t0
            record = _record(entry, root, clip, error, probs, names, topk)
            new.append(record)
            if target is not None:
                target.write(dumps(record) + "\n")
                target.flush()
            bar.update(1)
            if on_progress is not None:
                on_progress(len(new), len(mine), time.perf_counter() - start)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if target is not None:
            target.close()
    wall = time.perf_counter() - start

    parts = gather_objects((new, timing, wall), ranks)
    merged = dict(previous)
    for records, _, _ in parts:
        merged.update((r["key"], r) for r in records)
    ordered = [merged[e.key] for e in dataset.entries if e.key in merged]
    evaluated = sum(len(p[0]) for p in parts)
    run_wall = max(p[2] for p in parts)
    gmacs, params = _model_costs(info, protocol.view_size(spec))
    summary = {
        "kind": "tdn-lens-evaluation",
        "format_version": FORMAT_VERSION,
        "title": title or (out_path.name.removesuffix(".jsonl") if out_path else info.name),
        "jsonl": out_path.name if out_path else None,
        "complete": len(ordered) == len(dataset.entries),
        "checkpoint": {
            **header["checkpoint"],
            "params": params,
            "gmacs_per_view": gmacs,
            "seed": (info.metadata.get("provenance") or {}).get("seed"),
            "trained_at_commit": (info.metadata.get("provenance") or {}).get("commit"),
        },
        "protocol": header["protocol"],
        "dataset": {
            **header["dataset"],
            "listed": dataset.listed,
            "entries": len(dataset.entries),
            "missing": len(dataset.missing),
            "unknown": len(dataset.unknown),
            "missing_list": _skipped(dataset.missing),
            "unknown_list": _skipped(dataset.unknown),
            "notes": dataset.notes,
        },
        "metrics": summarise(ordered, names),
        "failures": [{"key": r["key"], "file": r["file"], **r["error"]} for r in ordered if "error" in r][
            :MAX_LISTED
        ],
        "timing": {
            "videos_this_run": evaluated,
            "resumed_from": len(previous),
            "wall_s": run_wall,
            "decode_s": sum(p[1]["decode_s"] for p in parts),
            "model_s": sum(p[1]["model_s"] for p in parts),
            "videos_per_s": evaluated / run_wall if run_wall > 0 else None,
            "ranks": ranks.world,
            "workers": workers,
            "device": str(next(model.parameters()).device),
            "torch_threads": torch.get_num_threads(),
        },
        "provenance": {
            "command": command,
            "commit": git_commit(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs",
        },
    }
    if out_path is not None and ranks.is_main:
        write_atomic(out_path, "".join(dumps(x) + "\n" for x in [header, *ordered]))
        for part in part_paths(out_path):
            part.unlink()
        write_atomic(summary_path(out_path), json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return summary
