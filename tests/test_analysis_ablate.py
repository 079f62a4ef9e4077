"""The ablation runner: grid parsing, resumption after a crash, atomic rows, and one real tiny run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from analysis import ablate, results
from analysis.ablate import GridError, load_grid, parse_grid, run_grid
from analysis.results import ResultsError, load_results
from tdn.network.checkpoint import save_checkpoint
from tdn.network.flops import count_gmacs, count_params
from tdn.network.model import build_model
from tdn.training.loop import TrainConfig, TrainResult
from tdn.training.synth import CLASSES

GRIDS = Path(__file__).resolve().parents[1] / "analysis" / "grids"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny synthetic train/val pair (64 px, 24 frames), generated once for this module."""
    cache = tmp_path_factory.mktemp("cache")
    spec = {
        "train": {"synthetic": 28, "seed": 1},
        "val": {"synthetic": 14, "seed": 1001},
        "synth_size": 64,
        "synth_frames": 24,
        "cache": str(cache),
    }
    ablate._folder(spec, "train"), ablate._folder(spec, "val")
    return spec


def tiny_grid(data: dict[str, Any], runs: list[dict], **train: Any) -> dict[str, Any]:
    shared = {"arch": "resnet18", "width": 0.25, "size": 64, "epochs": 1, "batch_size": 8, "workers": 0}
    return {"name": "tiny", "data": data, "train": {**shared, **train}, "latency_runs": 1, "runs": runs}


def test_shipped_grid_parses_to_the_planned_runs() -> None:
    grid = load_grid(GRIDS / "ablation_small.json")
    configs = {(r.name.split("-T")[0], r.segments, r.flags) for r in grid.runs}
    assert ("tsn", 8, (False, False, False)) in configs and ("tdn", 16, (True, True, True)) in configs
    assert ("s-tdm-no-shift", 8, (True, False, False)) in configs
    assert len(grid.runs) == 3 * len(configs) == 24
    assert [r.seed for r in grid.runs[: len(configs)]] == [0] * len(
        configs
    )  # every config's first seed first
    assert len({r.run_id for r in grid.runs}) == len(grid.runs)
    assert load_grid(GRIDS / "ablation_small.json").runs == grid.runs  # run ids are stable


def test_run_ids_ignore_settings_that_cannot_change_a_result(data: dict[str, Any]) -> None:
    runs = [{"variant": "tsn", "segments": [4], "seeds": [0]}]
    base = parse_grid(tiny_grid(data, runs)).runs[0]
    assert parse_grid(tiny_grid(data, runs, workers=3)).runs[0].run_id == base.run_id
    assert parse_grid(tiny_grid(data, runs, epochs=2)).runs[0].run_id != base.run_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"runs": [{"variant": "i3d"}]}, "variant 'i3d'"),
        ({"runs": [{"variant": "tdn", "model": {"fast": True}}]}, "grid.runs[0].model: unknown key(s) fast"),
        ({"train": {"out": "x"}}, "grid.train: unknown key(s) out"),
        ({"runs": [{"variant": "tdn", "seeds": []}]}, "must be non-empty"),
        ({"runs": [{"variant": "tdn"}, {"variant": "tdn"}]}, "runs repeat"),
    ],
)
def test_bad_grids_are_refused(data: dict[str, Any], change: dict, message: str) -> None:
    spec = {**tiny_grid(data, []), **change}
    with pytest.raises(GridError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        parse_grid(spec)


class FakeTrain:
    """Stands in for ``tdn.training.loop.train`` in the resumption test only.

    Why a fake is acceptable here: this test checks the runner's bookkeeping (which runs it starts, the folder
    each resumes from, and that the CSV only ever holds whole rows), which does not depend on what training
    learns. The fake saves a real (untrained) checkpoint, so evaluation, counting and row writing are real.
    Real training through the runner is exercised by ``test_tiny_real_run_end_to_end`` below.
    """

    def __init__(self, crash_on: str | None = None) -> None:
        self.crash_on = crash_on
        self.outs: list[str] = []

    def __call__(self, cfg: TrainConfig, hflip: dict | None, command: str | None) -> dict:
        self.outs.append(cfg.out)
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        if self.crash_on is not None and out.name.startswith(self.crash_on):
            (out / "state.pt").write_bytes(b"epoch 1 of 2")  # what an interrupted run leaves behind
            raise KeyboardInterrupt("simulated crash mid-grid")
        model = build_model(
            cfg.arch, cfg.segments, len(CLASSES), cfg.variant, width=cfg.width, **cfg.model_options
        )
        save_checkpoint(model.eval(), out / "model.safetensors", CLASSES, input_size=cfg.size, name=cfg.name)
        return TrainResult(history=[], train_time_s=0.0, world_size=1)


def test_crash_mid_grid_then_rerun_redoes_nothing_finished(data: dict[str, Any], tmp_path: Path) -> None:
    runs = [
        {"variant": "tsn", "segments": [4], "seeds": [0, 1]},
        {"variant": "s-tdm", "model": {"shift": False}, "segments": [4], "seeds": [0]},
    ]
    grid = parse_grid(tiny_grid(data, runs))
    ids = [r.run_id for r in grid.runs]
    out_csv, runs_dir = tmp_path / "ablation.csv", tmp_path / "runs"

    crashing = FakeTrain(crash_on=ids[1])
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, out_csv, runs_dir, train_fn=crashing)
    first = load_results(out_csv)  # whole rows only: loads cleanly
    assert [f"{n}-seed{s}" for n, s in zip(first["name"], first["seed"], strict=True)] == ids[:1]

    resumed = FakeTrain()
    new_rows = run_grid(grid, out_csv, runs_dir, train_fn=resumed)
    assert resumed.outs == [str(runs_dir / i) for i in ids[1:]]  # the finished run is not redone
    assert (runs_dir / ids[1] / "state.pt").exists()  # same folder, so real training resumes from it
    final = load_results(out_csv)
    assert len(new_rows) == 2 and len(final) == 3 and final["name"].nunique() == 2
    custom = final[final["name"].str.startswith("s-tdm-no-shift")].iloc[0]
    assert custom["variant"] == "custom" and (custom["s_tdm"], custom["l_tdm"], custom["shift"]) == (
        True,
        False,
        False,
    )

    again = FakeTrain()
    assert run_grid(grid, out_csv, runs_dir, train_fn=again) == [] and again.outs == []


def test_a_crash_while_writing_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_analysis_schema import row

    path = tmp_path / "r.csv"
    results.write_results([row()], path)
    before = path.read_bytes()

    def power_cut(fd: int) -> None:
        raise OSError("simulated power cut during fsync")

    monkeypatch.setattr(results.os, "fsync", power_cut)
    with pytest.raises(OSError, match="power cut"):
        results.append_row(path, row(seed=1))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]
    monkeypatch.undo()
    path.write_bytes(before + b"tdn-T8-abc,tdn,true,true\n")  # a half row written by some other tool
    with pytest.raises(ResultsError, match="has 4 fields"):
        results.append_row(path, row(seed=1))  # never appends to a broken table


def test_tiny_real_run_end_to_end(
    data: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid_path = tmp_path / "grid.json"
    spec = tiny_grid(data, [{"variant": "tdn", "segments": [4], "seeds": [0]}], max_steps=2)
    grid_path.write_text(json.dumps(spec))
    out_csv, runs_dir = tmp_path / "tiny.csv", tmp_path / "runs"
    argv = ["--grid", str(grid_path), "--out", str(out_csv), "--runs-dir", str(runs_dir)]
    start = time.perf_counter()
    assert ablate.main(argv) == 0
    elapsed = time.perf_counter() - start
    df = load_results(out_csv)
    assert len(df) == 1
    r = df.iloc[0]
    model = build_model("resnet18", 4, len(CLASSES), "tdn", width=0.25)
    assert r["gmacs_per_view"] == pytest.approx(count_gmacs(model, 64)[0]) and r["params"] == count_params(
        model
    )
    assert 0 <= r["top1"] <= r["top5"] <= 100 and r["latency_ms"] > 0 and r["seed"] == 0
    source = json.loads(r["source"])
    assert source["config"]["max_steps"] == 2 and source["eval_videos"] == 14
    assert source["command"].endswith(f"--only {r['name']}-seed0")
    checkpoint = runs_dir / f"{r['name']}-seed0" / "model.safetensors"
    stamp = os.stat(checkpoint).st_mtime_ns
    assert ablate.main(argv) == 0  # finished: skipped, nothing retrained
    assert os.stat(checkpoint).st_mtime_ns == stamp and len(load_results(out_csv)) == 1
    capsys.readouterr()
    assert ablate.main([*argv, "--dry-run"]) == 0
    assert f"[done     ] {r['name']}-seed0" in capsys.readouterr().out
    assert elapsed < 30
