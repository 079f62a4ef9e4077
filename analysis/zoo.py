"""The official TDN model zoo as results rows: accuracies from the source table, costs counted by ``tdn.network.flops``.

``python -m analysis.zoo`` regenerates ``assets/results/official_zoo.csv`` from
``assets/results/official_model_zoo_source.csv`` (the README's table, copied from the spec). No figure is
typed here: accuracies, views and frame counts come from the source CSV; GMACs and parameters are counted on
the network this project builds for each configuration; class counts are the lengths of the shipped label
lists. ``--check`` compares instead of writing (exit status 1 when the stored file is stale).

Protocol (docs/architecture.md §2.3, §8): 1-crop views are 224² centre crops, 3-crop views 256² crops; a score ensemble's
per-view GMACs and parameters are the sums over its member models.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import torch

from analysis.results import RESULTS_DIR, load_results, to_frame, write_results
from analysis.schema import FLAG_COLUMNS, variant_for_flags
from tdn.network.flops import count_gmacs, count_params
from tdn.network.labels import LABEL_FILES, LABELS_DIR, load_labels
from tdn.network.model import VARIANTS, build_model

SOURCE_CSV = RESULTS_DIR / "official_model_zoo_source.csv"
ZOO_CSV = RESULTS_DIR / "official_zoo.csv"
SINGLE_CROP_SIZE = 224  # centre crop of the 1-crop protocol
MULTI_CROP_SIZE = 256  # each crop of the 3-crop protocol
ENSEMBLE_SEPARATOR = "+"
# Source dataset name → key of tdn.network.labels.LABEL_FILES (the class count is that list's length).
DATASET_LABELS: dict[str, str] = {
    "Something-Something V1": "something_something_v1",
    "Something-Something V2": "something_something_v2",
    "Kinetics-400": "kinetics400",
}


class ZooError(ValueError):
    """The source table holds a row this module cannot turn into a results row."""


@cache
def num_classes(dataset: str) -> int:
    """Class count of a zoo dataset: the length of its label list in ``assets/labels``."""
    if dataset not in DATASET_LABELS:
        raise ZooError(f"unknown zoo dataset {dataset!r}; known: {', '.join(DATASET_LABELS)}")
    return len(load_labels(LABELS_DIR / LABEL_FILES[DATASET_LABELS[dataset]]))


@cache
def count_config(arch: str, segments: int, classes: int, size: int) -> tuple[float, int]:
    """(GMACs of one view, parameters) of the official TDN for one configuration.

    The model is built on the ``meta`` device: FlopCounterMode only needs shapes, so counting takes a fraction
    of a second and allocates nothing (tests check it against a count on real CPU tensors).
    """
    with torch.device("meta"):
        model = build_model(arch, segments, classes, "tdn")
    gmacs, _, _, _ = count_gmacs(model, size)
    return gmacs, count_params(model)


def source_date(path: Path = SOURCE_CSV) -> str:
    """When the source table entered the repository (its last commit's date), else the file's mtime date."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", path.name],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=path.parent,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()


def zoo_row(entry: dict[str, str], recorded: str) -> dict[str, Any]:
    """One source-table entry → one results row (schema v1)."""
    members = [int(f) for f in entry["frames"].split(ENSEMBLE_SEPARATOR)]
    crops, clips = int(entry["crops"]), int(entry["clips"])
    size = SINGLE_CROP_SIZE if crops == 1 else MULTI_CROP_SIZE
    arch = entry["backbone"].lower()
    classes = num_classes(entry["dataset"])
    counts = [count_config(arch, t, classes, size) for t in members]
    per_view = sum(g for g, _ in counts)
    ensemble = len(members) > 1
    name = f"{entry['model']} ({entry['frames']} ensemble)" if ensemble else f"{entry['model']} {members[0]}f"
    flags = dict(zip(FLAG_COLUMNS, VARIANTS["tdn"], strict=True))
    return {
        "name": name,
        "variant": variant_for_flags(*flags.values()),
        **flags,
        "backbone": arch,
        "width": 1.0,
        "segments": sum(members),
        "input_size": size,
        "crops": crops,
        "clips": clips,
        "dataset": entry["dataset"],
        "top1": float(entry["top1"]),
        "top5": float(entry["top5"]),
        "gmacs_per_view": per_view,
        "gmacs_total": per_view * crops * clips,
        "params": sum(p for _, p in counts),
        "latency_ms": None,
        "latency_device": None,
        "seed": None,
        "source_kind": "publication",
        "source": f"{entry['source']}; {entry['note']}" if entry.get("note") else entry["source"],
        "date": recorded,
    }


def zoo_rows(source: Path = SOURCE_CSV) -> list[dict[str, Any]]:
    """Every entry of the source table as a results row, in the table's order."""
    with source.open(newline="", encoding="utf-8") as handle:
        entries = list(csv.DictReader(handle))
    recorded = source_date(source)
    return [zoo_row(e, recorded) for e in entries]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE_CSV, help="the model zoo table (README copy)")
    parser.add_argument("--out", type=Path, default=ZOO_CSV, help="results CSV to write")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = parser.parse_args(argv)
    rows = zoo_rows(args.source)
    if args.check:
        fresh = to_frame(rows)
        stored = load_results(args.out)
        if not fresh.equals(stored):
            print(f"{args.out} is stale; run python -m analysis.zoo", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(rows)} rows)")
        return 0
    write_results(rows, args.out)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
