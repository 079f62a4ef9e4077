"""What an evaluation leaves on disk, and the figures computed from it.

**Per-video predictions** are a JSONL file. Line 1 is the *header* (``"type": "header"``): the checkpoint (name,
sha256, configuration), the protocol, the dataset (format, list file and its sha256, root) and the class names.
Every further line is one video, in the list's order once the run is complete::

    {"key": ..., "file": "path/relative/to/root", "label": 3, "label_name": "...", "pred": 3, "pred_name": "...",
     "correct": true, "top5": [3, 1, 0, 7, 2], "topk": [[3, 0.912], [1, 0.041], ...], "prob_label": 0.912,
     "num_frames": 48, "frame_indices": [[[s0, ..., s0+4], ...]]}

``topk`` holds the ``topk`` most probable classes of the fused probabilities (rounded to 1e-6), ``frame_indices``
the 0-based frames of each clip's segments ((clips, T, 5); the crops of a clip share them). A video that could not
be read has ``"error": {"kind": ..., "message": ...}`` instead of the prediction fields. No line holds a time or a
date, so the same evaluation gives the same file byte for byte, resumed or sharded.

**The summary** (``<name>.summary.json`` beside the JSONL, :func:`summary_path`) holds the header's facts, the
counts of videos left out, and ``metrics`` (:func:`summarise`): top-1, top-5 and mean class accuracy in percent
over the videos evaluated, per-class accuracy, the confusion matrix ``confusion[true][predicted]`` and the most
confused pairs; plus ``timing`` and ``provenance`` of the run that finished it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "Evaluation",
    "dumps",
    "load_evaluation",
    "part_paths",
    "read_jsonl",
    "summarise",
    "summary_path",
]

FORMAT_VERSION = 1
MAX_CONFUSED_PAIRS = 20
# Header fields that must agree for a run to continue a file (the rest, e.g. paths, may differ).
RESUME_KEYS: tuple[tuple[str, str], ...] = (
    ("checkpoint", "sha256"),
    ("checkpoint", "num_segments"),
    ("protocol", "name"),
    ("protocol", "view_size"),
    ("dataset", "list_sha256"),
    ("dataset", "format"),
    ("classes", "sha256"),
)


def dumps(obj: object) -> str:
    """One JSONL line: compact, keys in insertion order, non-ASCII kept."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def summary_path(jsonl: str | Path) -> Path:
    """``run.jsonl`` → ``run.summary.json`` (beside it)."""
    jsonl = Path(jsonl)
    return jsonl.with_name(jsonl.name.removesuffix(".jsonl") + ".summary.json")


def part_paths(jsonl: str | Path) -> list[Path]:
    """The per-rank files a sharded run appends to (``run.jsonl.part0`` …), which the final file replaces."""
    jsonl = Path(jsonl)
    return sorted(jsonl.parent.glob(jsonl.name + ".part*"))


def read_jsonl(path: str | Path) -> tuple[dict | None, list[dict]]:
    """(header, records) of an evaluation JSONL. A last line cut short by an interruption is ignored (the run
    that continues the file evaluates that video again); any other bad line raises ValueError with its number."""
    path = Path(path)
    header: dict | None = None
    records: list[dict] = []
    text = path.read_bytes().decode("utf-8", errors="replace")  # a cut-off last character is only replaced
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # no newline after it: the line being written when the run stopped
                break
            raise ValueError(f"{path.name}, line {number}: not a JSON object") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path.name}, line {number}: not a JSON object")
        if obj.get("type") == "header":
            if header is not None and _resume_view(obj) != _resume_view(header):
                raise ValueError(f"{path.name}, line {number}: a second header for another evaluation")
            header = header or obj
        elif "key" in obj:
            records.append(obj)
        else:
            raise ValueError(f"{path.name}, line {number}: neither a header nor a video record")
    return header, records


def _resume_view(header: dict) -> tuple:
    return tuple(header.get(a, {}).get(b) for a, b in RESUME_KEYS)


def same_evaluation(a: dict, b: dict) -> list[str]:
    """The header fields in which two headers differ (empty: one evaluation, a file may be continued)."""
    return [
        f"{x}.{y}"
        for (x, y), u, v in zip(RESUME_KEYS, _resume_view(a), _resume_view(b), strict=True)
        if u != v
    ]


def summarise(records: Iterable[dict], class_names: list[str]) -> dict:
    """Top-1, top-5, mean class accuracy (percent, over the videos evaluated), per-class accuracy, the confusion
    matrix and the most confused pairs of these records."""
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    top5 = failed = 0
    for r in records:
        if "error" in r:
            failed += 1
            continue
        confusion[r["label"], r["pred"]] += 1
        top5 += int(r["label"] in r["top5"])
    videos = int(confusion.sum())
    counts = confusion.sum(axis=1)
    per_class = []
    for i, name in enumerate(class_names):
        n = int(counts[i])
        per_class.append(
            {
                "index": i,
                "name": name,
                "videos": n,
                "correct": int(confusion[i, i]),
                "accuracy": 100.0 * confusion[i, i] / n if n else None,
            }
        )
    accuracies = [c["accuracy"] for c in per_class if c["accuracy"] is not None]
    off = [(int(confusion[t, p]), t, p) for t in range(k) for p in range(k) if t != p and confusion[t, p]]
    off.sort(key=lambda x: (-x[0], x[1], x[2]))
    pairs = [
        {
            "true": t,
            "true_name": class_names[t],
            "pred": p,
            "pred_name": class_names[p],
            "count": c,
            "share_of_true": 100.0 * c / int(counts[t]),
        }
        for c, t, p in off[:MAX_CONFUSED_PAIRS]
    ]
    return {
        "videos": videos,
        "failed": failed,
        "top1": 100.0 * float(np.trace(confusion)) / videos if videos else None,
        "top5": 100.0 * top5 / videos if videos else None,
        "mean_class": float(np.mean(accuracies)) if accuracies else None,
        "classes_seen": len(accuracies),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "confused_pairs": pairs,
    }


@dataclass
class Evaluation:
    """A stored evaluation: its summary, header and per-video records, and where the videos are."""

    jsonl: Path
    header: dict
    records: list[dict]
    summary: dict

    @property
    def class_names(self) -> list[str]:
        return list(self.header["classes"]["names"])

    @property
    def name(self) -> str:
        return self.summary.get("title") or self.jsonl.name.removesuffix(".jsonl")

    def root(self) -> Path:
        """The dataset root: the path stored relative to the JSONL's folder when that exists, else as stored."""
        data = self.header.get("dataset", {})
        relative = data.get("root_relative")
        if relative is not None and (self.jsonl.parent / relative).is_dir():
            return (self.jsonl.parent / relative).resolve()
        return Path(data.get("root", "."))

    def path_of(self, record: dict) -> Path:
        return self.root() / record["file"]


def load_evaluation(path: str | Path) -> Evaluation:
    """An evaluation from its JSONL or its summary JSON (the other is found beside it). The summary is
    recomputed from the records when it is missing (an interrupted run)."""
    path = Path(path)
    jsonl = (
        path.with_name(path.name.removesuffix(".summary.json") + ".jsonl")
        if path.name.endswith(".summary.json")
        else path
    )
    header, records = read_jsonl(jsonl)
    if header is None:
        raise ValueError(f"{jsonl.name} has no header line; it is not an evaluation written by TDN Lens.")
    side = summary_path(jsonl)
    if side.is_file():
        summary = json.loads(side.read_text(encoding="utf-8"))
    else:
        summary = {
            "title": jsonl.name.removesuffix(".jsonl"),
            "checkpoint": header.get("checkpoint", {}),
            "protocol": header.get("protocol", {}),
            "dataset": header.get("dataset", {}),
            "metrics": summarise(records, header["classes"]["names"]),
            "complete": False,
        }
    return Evaluation(jsonl, header, records, summary)
