"""Dataset evaluations as results rows, so they appear on the Ablations page beside the official zoo.

:func:`summary_row` turns the summary a :func:`tdn.datasets.evaluate_dataset` run wrote (``*.summary.json``) into
one row of the results schema (``analysis.schema``): the checkpoint's configuration and costs, the protocol's
crops and clips at its view size, top-1/top-5 in percent, and a source JSON with the commit, command and
configuration plus what was evaluated (checkpoint sha256, list file and its sha256, videos evaluated, failed,
missing, mean class accuracy, the JSONL). :func:`record_evaluation` writes it into a results CSV, replacing the
row of the same model, seed, dataset and protocol.

The dataset column is the published dataset's name as the zoo rows spell it (``Something-Something V2``) when
the list format names one, so a reproduction sits beside the zoo's figure; how much of the set was evaluated is in
the source (``videos``, ``missing``). The seed is the checkpoint's training seed when its metadata records one;
an official file has none, and the row then leaves it empty (allowed for ``"kind": "evaluation"`` sources).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.results import ROW_KEY, check_row, load_results, write_results
from analysis.schema import variant_for_flags

__all__ = ["record_evaluation", "summary_row"]


def _dataset_name(summary: Mapping[str, Any]) -> str:
    data = summary.get("dataset", {})
    if data.get("name"):
        return str(data["name"])
    checkpoint = summary.get("checkpoint", {})
    what = checkpoint.get("dataset") or "dataset"
    return f"{what} ({data.get('list_file', 'list')}: {data.get('entries', '?')} videos)"


def summary_row(
    summary: Mapping[str, Any], name: str | None = None, dataset: str | None = None
) -> dict[str, Any]:
    """The results row of one evaluation summary (validated); ``name``/``dataset`` override the defaults
    (the checkpoint's name; the published dataset's name, else the checkpoint's dataset and the list)."""
    checkpoint, protocol, data = summary["checkpoint"], summary["protocol"], summary.get("dataset", {})
    metrics, provenance = summary["metrics"], summary.get("provenance", {})
    config = checkpoint["config"]
    flags = (bool(config["s_tdm"]), bool(config["l_tdm"]), bool(config["shift"]))
    if metrics.get("top1") is None:
        raise ValueError("the evaluation holds no evaluated video; there is no accuracy to record")
    views = int(protocol["crops"]) * int(protocol["clips"])
    source = {
        "kind": "evaluation",
        "commit": provenance.get("commit") or "unknown",
        "command": provenance.get("command") or "tdn.datasets.evaluate_dataset",
        "config": config,
        "checkpoint": checkpoint.get("file"),
        "checkpoint_sha256": checkpoint.get("sha256"),
        "protocol": protocol.get("name"),
        "list_format": data.get("format"),
        "list_file": data.get("list_file"),
        "list_sha256": data.get("list_sha256"),
        "videos": metrics.get("videos"),
        "failed": metrics.get("failed"),
        "missing": data.get("missing"),
        "unknown_class": data.get("unknown"),
        "mean_class": metrics.get("mean_class"),
        "jsonl": summary.get("jsonl"),
    }
    row = {
        "name": name or checkpoint["name"],
        "variant": variant_for_flags(*flags),
        "s_tdm": flags[0],
        "l_tdm": flags[1],
        "shift": flags[2],
        "backbone": config["arch"],
        "width": float(config["width"]),
        "segments": int(checkpoint["num_segments"]),
        "input_size": int(protocol["view_size"]),
        "crops": int(protocol["crops"]),
        "clips": int(protocol["clips"]),
        "dataset": dataset or _dataset_name(summary),
        "top1": float(metrics["top1"]),
        "top5": float(metrics["top5"]),
        "gmacs_per_view": float(checkpoint["gmacs_per_view"]),
        "gmacs_total": float(checkpoint["gmacs_per_view"]) * views,
        "params": int(checkpoint["params"]),
        "latency_ms": None,
        "latency_device": None,
        "seed": checkpoint.get("seed"),
        "source_kind": "our-run",
        "source": json.dumps(source, sort_keys=True),
        "date": provenance.get("date") or "1970-01-01",
    }
    return check_row(row, "evaluation summary")


def record_evaluation(
    summary: Mapping[str, Any] | str | Path,
    csv_path: str | Path,
    name: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Write the row of ``summary`` (a dict or a ``*.summary.json`` path) into the results CSV ``csv_path``
    (created if absent), replacing a row with the same ``ROW_KEY``; returns the row."""
    if isinstance(summary, (str, Path)):
        summary = json.loads(Path(summary).read_text(encoding="utf-8"))
    row = summary_row(summary, name, dataset)
    path = Path(csv_path)
    rows: list[dict[str, Any]] = []
    if path.exists():
        frame = load_results(path)
        rows = [{k: (None if _missing(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]
    key = tuple(row[k] for k in ROW_KEY)
    rows = [r for r in rows if tuple(r[k] for k in ROW_KEY) != key] + [row]
    write_results(rows, path)
    return row


def _missing(value: Any) -> bool:
    try:
        return value is None or value != value  # NaN and pandas' NA
    except TypeError:
        return True
