"""torchrun on CPU (gloo): official-size ResNet-50 TDNs train under DDP, ranks take equal steps on a
dataset that does not divide by the world size, validation runs on every rank, and a run killed between
epochs resumes to the same weights as one that never stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tdn.distributed import Ranks, choose_device, shard, unshard
from tdn.training.synth import write_dataset

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.fixture(scope="module")
def uneven_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uneven")
    write_dataset(folder, 9, seed=5, size=64, frames=12, progress=False)  # 9 clips: 5 + 4 on two ranks
    return folder


def _torchrun(data: Path, out: Path, port: int, epochs: int, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(port), "-m", "tdn", "train"]
    cmd += ["--data", str(data), "--val-data", str(data), "--out", str(out), "--arch", "resnet50"]
    cmd += ["--width", "1.0", "--segments", "2", "--size", "64", "--batch-size", "4", "--epochs", str(epochs)]
    cmd += ["--workers", "0", "--lr", "1e-3", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 400) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return err


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its ranks in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _ranks(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_resnet50_ddp_equal_steps_on_an_uneven_set_and_distributed_validation(
    uneven_data: Path, tmp_path: Path
):
    out = tmp_path / "run"
    err = _finish(_torchrun(uneven_data, out, 29531, epochs=2))
    ranks = _ranks(out)
    # 9 clips on 2 ranks at batch 4: each rank takes 4 clips an epoch, 1 step; before, 2 steps against 1 hung.
    assert ranks[0]["step"] == ranks[1]["step"] == 2
    assert ranks[0]["digest"] == ranks[1]["digest"]
    rows = [json.loads(line) for line in err.splitlines() if line.startswith('{"epoch"')]
    assert [r["epoch"] for r in rows] == [1, 2] and all("val_top1" in r for r in rows)
    from tdn.network.checkpoint import load_checkpoint

    model, info = load_checkpoint(out / "model.safetensors", device="cpu")
    assert info.config.arch == "resnet50" and info.metadata["training"]["world_size"] == 2
    assert not model.base_model.conv1_temp.weight.requires_grad  # the dead stem is never trained


@pytest.mark.slow
def test_a_killed_ddp_run_resumes_to_the_same_weights(uneven_data: Path, tmp_path: Path):
    reference = tmp_path / "uninterrupted"
    _finish(_torchrun(uneven_data, reference, 29533, epochs=3))
    out = tmp_path / "killed"
    proc = _torchrun(uneven_data, out, 29535, epochs=3)
    state, deadline = out / "state.pt", time.monotonic() + 400
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    for pid in [*_descendants(proc.pid), proc.pid]:  # torchrun and every rank, as a preemption would
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not (out / "model.safetensors").exists()
    err = _finish(_torchrun(uneven_data, out, 29537, epochs=3))
    assert "resuming" in err
    assert _ranks(out)[0]["digest"] == _ranks(reference)[0]["digest"]


def test_shards_cover_every_item_once_and_unshard_restores_the_order():
    items = list(range(11))
    parts = [shard(items, Ranks(rank=r, world=3)) for r in range(3)]
    assert sorted(sum(parts, [])) == items and [len(p) for p in parts] == [4, 4, 3]
    assert unshard(parts, len(items)) == items


def test_device_rule_without_gpus_is_cpu_and_gloo(monkeypatch: pytest.MonkeyPatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device(1, 2) == (torch.device("cpu"), "gloo")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    # Two local ranks, one GPU: both on cuda:0, and gloo, since NCCL refuses two ranks on one GPU.
    assert choose_device(1, 2) == (torch.device("cuda", 0), "gloo")
    assert choose_device(0, 1) == (torch.device("cuda", 0), "nccl")


def _tdn(args: list[str], ranks: int, port: int) -> subprocess.CompletedProcess:
    head = [str(TORCHRUN), "--nproc_per_node", str(ranks), "--master_port", str(port), "-m", "tdn"]
    cmd = head if ranks > 1 else [sys.executable, "-m", "tdn"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_sharded_evaluate_and_explain_equal_one_process(uneven_data: Path, tmp_path: Path):
    from tdn.assets import DEMO_CHECKPOINT

    common = ["--checkpoint", str(DEMO_CHECKPOINT), "--device", "cpu", "--quiet"]
    single = json.loads(_tdn(["evaluate", "--data", str(uneven_data), "--json", *common], 1, 0).stdout)
    sharded = json.loads(_tdn(["evaluate", "--data", str(uneven_data), "--json", *common], 2, 29539).stdout)
    assert sharded == single and single["num_videos"] == 9

    for ranks, port in ((1, 0), (2, 29541)):
        out = str(tmp_path / f"x{ranks}")
        _tdn(["explain", str(uneven_data), "--out", out, "--summary", *common], ranks, port)
    one, two = (json.loads((tmp_path / f"x{r}" / "index.json").read_text()) for r in (1, 2))
    strip = [{k: v for k, v in row.items() if k != "out"} for row in one]
    assert [{k: v for k, v in row.items() if k != "out"} for row in two] == strip and len(one) == 9
    assert [Path(r["out"]).name for r in one] == [Path(r["out"]).name for r in two]
    assert all((Path(r["out"]) / "explanation.json").is_file() for r in two)

    # --summary: per clip and per class faithfulness, the same from 2 ranks as from 1
    lines = [(tmp_path / f"x{r}" / "faithfulness.jsonl").read_text() for r in (1, 2)]
    assert lines[0] == lines[1]
    summaries = [json.loads((tmp_path / f"x{r}" / "faithfulness.json").read_text()) for r in (1, 2)]
    assert summaries[1].pop("ranks") == 2 and summaries[0].pop("ranks") == 1
    for s in summaries:
        s.pop("provenance")
    assert summaries[0] == summaries[1]
    summary, records = summaries[0], [json.loads(x) for x in lines[0].splitlines()]
    assert summary["group_by"] == "label" and summary["labels"] == "labels.csv" and summary["clips"] == 9
    assert [r["file"] for r in records] == [Path(r["file"]).name for r in one]
    # the per-class figures are the clips' figures aggregated: pointing game = hits / counted segments
    for row in summary["per_class"]:
        mine = [r for r in records if r["label"] == row["index"]]
        counted = sum(r["pointing_segments"] for r in mine)
        assert row["clips"] == len(mine) and row["pointing_segments"] == counted
        if counted:
            assert row["pointing_game"] == pytest.approx(sum(r["pointing_hits"] for r in mine) / counted)
        assert row["road"] == pytest.approx(sum(r["road"] for r in mine) / len(mine))
        assert row["correct"] == sum(r["target"] == r["label"] for r in mine)
    assert sum(r["pointing_segments"] for r in records) > 0 and all(
        len(r["importance"]) == 8 for r in records
    )
    shares = [
        r["mask_area_share"] for r in records
    ]  # every clip has a mask (an appearing actor may be absent
    assert all(0 <= a < 1 for a in shares) and sum(a > 0 for a in shares) >= 7  # from all 8 centre frames)
