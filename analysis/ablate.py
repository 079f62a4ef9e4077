"""Ablation runner: ``python -m analysis.ablate --grid GRID.json --out FILE.csv [--dry-run] [--only ID]``.

For every run of the grid (variant × segments × seeds): train with ``tdn.training.loop.train`` into
``runs/ablate/<run-id>/``, evaluate the saved checkpoint on the held-out set, count GMACs and parameters
with ``tdn.network.flops``, measure latency, and append one row (schema v1) to the CSV. The file is replaced
atomically, so it never holds half a row.

Reruns are cheap and safe: a run whose row is already in the CSV is skipped, and an interrupted run resumes
from its ``state.pt`` (the run id, and so its folder, depends only on the run's settings). Under
``torchrun`` every rank trains; only rank 0 evaluates and writes rows.

Grid JSON::

    {"name": "...", "description": "...",
     "data": {"train": {"synthetic": 1200, "seed": 1} | {"folder": "path"},
              "val":   {"synthetic": 300, "seed": 1001} | {"folder": "path"},
              "synth_size": 64, "synth_frames": 48, "cache": "runs/cache"},
     "train": {TrainConfig fields shared by all runs: arch, width, size, epochs, batch_size, lr, ...},
     "latency_runs": 5, "eval_batch_size": 16,
     "runs": [{"variant": "tdn", "segments": [4, 8, 16], "seeds": [0, 1, 2],
               "model": {"shift": false}, "train": {...}, "label": "..."}]}

``model`` overrides the variant's flags (``s_tdm``, ``l_tdm``, ``shift``) or ``dropout``/``ltdm_reduction``;
a run's ``train`` overrides the shared settings; ``label`` names the configuration (default: the variant,
plus ``-no-<flag>``/``-with-<flag>`` for each override of a flag).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from analysis.results import ResultsError, append_row, check_row, load_results
from analysis.schema import FLAG_COLUMNS, variant_for_flags
from tdn.network.model import VARIANTS
from tdn.training.loop import TrainConfig, TrainResult
from tdn.util import git_commit

TrainFn = Callable[..., TrainResult]
RUNS_DIR = Path("runs/ablate")
# TrainConfig fields the runner sets per run; a grid may set every other field.
RUNNER_FIELDS = frozenset({"data", "out", "val_data", "variant", "segments", "seed", "name", "model_options"})
TRAIN_FIELDS = frozenset(f.name for f in fields(TrainConfig)) - RUNNER_FIELDS
MODEL_FIELDS = frozenset({*FLAG_COLUMNS, "dropout", "ltdm_reduction"})
# Settings that cannot change a result, so changing them must not rename (and so redo) finished runs.
NOT_IN_RUN_ID = frozenset({"workers", "cache"})
GRID_KEYS = frozenset({"name", "description", "data", "train", "latency_runs", "eval_batch_size", "runs"})
RUN_KEYS = frozenset({"variant", "segments", "seeds", "model", "train", "label"})
DATA_KEYS = frozenset({"train", "val", "synth_size", "synth_frames", "cache"})


class GridError(ValueError):
    """A grid file that cannot be run; the message names the key."""


@dataclass(frozen=True)
class Run:
    """One training run of a grid. ``name`` identifies the configuration (the same for every seed)."""

    run_id: str
    name: str
    variant: str  # the base variant passed to build_model (overrides may change its flags)
    flags: tuple[bool, bool, bool]
    model: dict[str, Any]
    segments: int
    seed: int
    train: dict[str, Any]


@dataclass
class Grid:
    """A parsed grid: shared settings and the expanded runs."""

    name: str
    data: dict[str, Any]
    runs: list[Run]
    latency_runs: int = 5
    eval_batch_size: int = 16
    description: str = ""
    path: str = ""
    shared_train: dict[str, Any] = field(default_factory=dict)


def _check_keys(where: str, given: dict, allowed: frozenset) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise GridError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def _default_label(variant: str, model: dict[str, Any]) -> str:
    base = dict(zip(FLAG_COLUMNS, VARIANTS[variant], strict=True))
    changes = [
        f"-{'with' if model[f] else 'no'}-{f.replace('_', '-')}"
        for f in FLAG_COLUMNS
        if f in model and model[f] != base[f]
    ]
    return variant + "".join(changes)


def _data_set(where: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or not ({"synthetic", "seed"} == set(spec) or {"folder"} == set(spec)):
        raise GridError(f"{where} must be {{'synthetic': N, 'seed': S}} or {{'folder': PATH}}, got {spec!r}")
    return spec


def parse_grid(spec: dict[str, Any], path: str = "") -> Grid:
    """Validate a grid (the parsed JSON) and expand it into runs: seed by seed, each in file order
    (entries × segments)."""
    _check_keys("grid", spec, GRID_KEYS)
    for key in ("name", "data", "runs"):
        if key not in spec:
            raise GridError(f"grid: missing key {key!r}")
    data = spec["data"]
    _check_keys("grid.data", data, DATA_KEYS)
    _data_set("grid.data.train", data.get("train"))
    _data_set("grid.data.val", data.get("val"))
    shared = spec.get("train", {})
    _check_keys("grid.train", shared, TRAIN_FIELDS)
    ranked: list[tuple[int, int, Run]] = []
    for i, entry in enumerate(spec["runs"]):
        where = f"grid.runs[{i}]"
        _check_keys(where, entry, RUN_KEYS)
        variant = entry.get("variant")
        if variant not in VARIANTS:
            raise GridError(f"{where}: variant {variant!r} is not one of {', '.join(VARIANTS)}")
        model = dict(entry.get("model", {}))
        _check_keys(f"{where}.model", model, MODEL_FIELDS)
        own_train = entry.get("train", {})
        _check_keys(f"{where}.train", own_train, TRAIN_FIELDS)
        train = {**shared, **own_train}
        flags = tuple(
            bool(model.get(f, default)) for f, default in zip(FLAG_COLUMNS, VARIANTS[variant], strict=True)
        )
        label = entry.get("label") or _default_label(variant, model)
        segments_list, seeds = entry.get("segments", [8]), entry.get("seeds", [0])
        if not segments_list or not seeds:
            raise GridError(f"{where}: 'segments' and 'seeds' must be non-empty lists")
        for segments in segments_list:
            config = {
                "data": {k: v for k, v in data.items() if k not in NOT_IN_RUN_ID},
                "train": {k: v for k, v in train.items() if k not in NOT_IN_RUN_ID},
                "variant": variant,
                "model": model,
                "segments": segments,
            }
            name = f"{label}-T{segments}-{_digest(config)}"
            for k, seed in enumerate(seeds):
                run = Run(f"{name}-seed{seed}", name, variant, flags, model, int(segments), int(seed), train)
                ranked.append((k, len(ranked), run))
    # Every configuration's first seed before any second seed: a grid stopped early still covers them all.
    runs = [run for _, _, run in sorted(ranked, key=lambda item: item[:2])]
    ids = [r.run_id for r in runs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise GridError(f"grid: runs repeat: {', '.join(repeated)}")
    return Grid(
        name=spec["name"],
        data=data,
        runs=runs,
        latency_runs=int(spec.get("latency_runs", 5)),
        eval_batch_size=int(spec.get("eval_batch_size", 16)),
        description=spec.get("description", ""),
        path=path,
        shared_train=shared,
    )


def load_grid(path: str | os.PathLike) -> Grid:
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise GridError(f"{path} is not valid JSON: {e}") from None
    return parse_grid(spec, str(path))


def worktree_dirty() -> bool | None:
    """Whether the code behind a result (``tdn/``, ``analysis/``) differs from the recorded commit, untracked
    files included; None when git cannot tell."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "tdn", "analysis"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def finished_run_ids(out_csv: Path) -> set[str]:
    """Run ids (``<name>-seed<seed>``) of our-run rows already in ``out_csv``."""
    if not out_csv.exists():
        return set()
    df = load_results(out_csv)
    ours = df[df["source_kind"] == "our-run"]
    return {f"{name}-seed{int(seed)}" for name, seed in zip(ours["name"], ours["seed"], strict=True)}


def _folder(data: dict[str, Any], part: str) -> str:
    """The folder of the train or val set; generated synthetic sets are cached (rank 0 writes them)."""
    spec = data[part]
    if "folder" in spec:
        return str(spec["folder"])
    from tdn.training.synth import synthetic_folder

    cache = data.get("cache", "runs/cache")
    return synthetic_folder(
        cache, spec["synthetic"], spec["seed"], data.get("synth_size", 112), data.get("synth_frames", 48)
    )


def describe_dataset(data: dict[str, Any]) -> str:
    """The ``dataset`` cell: what the held-out set is."""
    val = data["val"]
    if "folder" in val:
        return f"folder {Path(val['folder']).name}"
    return f"synthetic-motion (held-out: {val['synthetic']} clips, seed {val['seed']}, {data.get('synth_size', 112)} px)"


def run_command(grid: Grid, out_csv: Path, runs_dir: Path, run: Run) -> str:
    """The command line that (re)does exactly this run."""
    parts = ["python", "-m", "analysis.ablate", "--grid", grid.path, "--out", str(out_csv)]
    if runs_dir != RUNS_DIR:
        parts += ["--runs-dir", str(runs_dir)]
    return shlex.join([*parts, "--only", run.run_id])


def _start_process_group(run_id: str) -> None:
    """Under torchrun, start this run's process group with its rendezvous keys under a prefix of its own.

    ``tdn.training.loop.train`` ends every run by destroying its group. Re-creating it on the same store keys let a
    rank that arrived early (while rank 0 was still evaluating) read the previous run's gloo rendezvous
    entries and deadlock against rank 0 (seen with 2 CPU ranks); a prefix per run keeps runs apart.
    ``train`` then finds the group initialised and uses it.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    store, rank, world = next(dist.rendezvous("env://"))
    dist.init_process_group(
        "nccl" if torch.cuda.is_available() else "gloo",
        store=dist.PrefixStore(f"analysis.ablate/{run_id}", store),
        rank=rank,
        world_size=world,
    )


def execute_run(
    grid: Grid, run: Run, out_csv: Path, runs_dir: Path, train_fn: TrainFn
) -> dict[str, Any] | None:
    """Train (or resume), then on rank 0 evaluate and profile; returns the row (None on other ranks)."""
    from tdn.network.checkpoint import load_checkpoint
    from tdn.network.flops import profile_model
    from tdn.training.data import VideoClips, read_labels_csv
    from tdn.training.evaluation import evaluate
    from tdn.training.synth import HFLIP_LABEL_MAP

    train_folder, val_folder = _folder(grid.data, "train"), _folder(grid.data, "val")
    out_dir = runs_dir / run.run_id
    cfg = TrainConfig(
        data=train_folder,
        out=str(out_dir),
        val_data=None,  # evaluated once below, on the saved checkpoint
        variant=run.variant,
        segments=run.segments,
        seed=run.seed,
        name=run.name,
        model_options=dict(run.model),
        **run.train,
    )
    command = run_command(grid, out_csv, runs_dir, run)
    hflip = HFLIP_LABEL_MAP if "synthetic" in grid.data["train"] else None
    _start_process_group(run.run_id)
    result = train_fn(cfg, hflip, command)
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    model, _ = load_checkpoint(out_dir / "model.safetensors", device="auto")
    if tuple(getattr(model.config, f) for f in FLAG_COLUMNS) != run.flags:
        raise RuntimeError(f"{run.run_id}: the checkpoint's flags differ from the grid's {run.flags}")
    records, _ = read_labels_csv(val_folder)
    start = time.perf_counter()
    metrics = evaluate(
        model,
        VideoClips(records, run.segments, cfg.size, train=False),
        grid.eval_batch_size,
        cfg.workers,
        False,
    )
    eval_time = time.perf_counter() - start
    profile = profile_model(model, cfg.size, latency_runs=grid.latency_runs)
    source = {
        "commit": git_commit(),
        "dirty": worktree_dirty(),
        "command": command,
        "config": {**asdict(cfg), "data_spec": grid.data, "grid": grid.name},
        "run_id": run.run_id,
        "train_time_s": result.train_time_s,
        "eval_time_s": eval_time,
        "eval_videos": metrics.num_videos,
        "world_size": result.world_size,
    }
    s_tdm, l_tdm, shift = run.flags
    return {
        "name": run.name,
        "variant": variant_for_flags(*run.flags),
        "s_tdm": s_tdm,
        "l_tdm": l_tdm,
        "shift": shift,
        "backbone": cfg.arch,
        "width": cfg.width,
        "segments": run.segments,
        "input_size": cfg.size,
        "crops": 1,
        "clips": 1,
        "dataset": describe_dataset(grid.data),
        "top1": 100.0 * metrics.top1,
        "top5": 100.0 * metrics.top5,
        "gmacs_per_view": profile.gmacs,
        "gmacs_total": profile.gmacs,  # one crop × one clip
        "params": profile.params,
        "latency_ms": profile.latency_ms,
        "latency_device": profile.device if profile.latency_ms is not None else None,
        "seed": run.seed,
        "source_kind": "our-run",
        "source": json.dumps(source, sort_keys=True),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run_grid(
    grid: Grid,
    out_csv: str | os.PathLike,
    runs_dir: str | os.PathLike = RUNS_DIR,
    only: str | None = None,
    train_fn: TrainFn | None = None,
) -> list[dict[str, Any]]:
    """Do every pending run (those matching the glob ``only``), appending one row each; returns the new rows.

    ``train_fn`` defaults to ``tdn.training.loop.train`` and is a parameter only so a unit test can simulate a crash.
    """
    if train_fn is None:
        from tdn.training.loop import train as train_fn
    out_csv, runs_dir = Path(out_csv), Path(runs_dir)
    rank = int(os.environ.get("RANK", "0"))
    done = finished_run_ids(out_csv)  # read once, before any rank trains, so all ranks agree on the list
    pending = [
        r for r in grid.runs if r.run_id not in done and (only is None or fnmatch.fnmatch(r.run_id, only))
    ]
    rows: list[dict[str, Any]] = []
    for run in tqdm(pending, desc=f"{grid.name}", unit="run", disable=rank != 0):
        row = execute_run(grid, run, out_csv, runs_dir, train_fn)
        if row is not None:
            check_row(row, out_csv.name)
            append_row(out_csv, row)
            rows.append(row)
    return rows


def describe_runs(grid: Grid, out_csv: Path, runs_dir: Path, only: str | None = None) -> str:
    """The dry-run listing: every run, its flags and whether it is done, resumable or new."""
    done = finished_run_ids(out_csv)
    lines = [
        f"grid {grid.name}: {len(grid.runs)} runs → {out_csv}",
        f"shared train settings: {json.dumps(grid.shared_train)}",
    ]
    counts = {"done": 0, "resumable": 0, "new": 0}
    for run in grid.runs:
        if only is not None and not fnmatch.fnmatch(run.run_id, only):
            continue
        status = (
            "done"
            if run.run_id in done
            else "resumable"
            if (runs_dir / run.run_id / "state.pt").exists()
            else "new"
        )
        counts[status] += 1
        flags = " ".join(f"{f}={'on' if v else 'off'}" for f, v in zip(FLAG_COLUMNS, run.flags, strict=True))
        lines.append(f"  [{status:9}] {run.run_id:40}  T={run.segments:<3} seed={run.seed:<3} {flags}")
    lines.append(", ".join(f"{n} {k}" for k, n in counts.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.ablate", description=__doc__.splitlines()[0])
    parser.add_argument("--grid", required=True, help="grid JSON (see analysis/grids/)")
    parser.add_argument("--out", required=True, type=Path, help="results CSV to append rows to")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help="where run folders go")
    parser.add_argument("--only", help="glob over run ids: do only the matching runs")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the runs and their status; train nothing"
    )
    args = parser.parse_args(argv)
    try:
        grid = load_grid(args.grid)
        if args.dry_run:
            print(describe_runs(grid, args.out, args.runs_dir, args.only))
            return 0
        start = time.perf_counter()
        rows = run_grid(grid, args.out, args.runs_dir, args.only)
    except (GridError, ResultsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{len(rows)} run(s) done in {time.perf_counter() - start:.1f} s; rows in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
