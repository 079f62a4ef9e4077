"""Training: the loss falls, runs resume, torchrun/DDP ranks agree, evaluation reports what it should."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tdn.network.checkpoint import load_checkpoint
from tdn.training.loop import TrainConfig, train
from tdn.training.synth import DATASET_VERSION, HFLIP_LABEL_MAP, write_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    write_dataset(folder, 28, seed=7, size=64, frames=16, progress=False)
    return folder


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=str(data),
        out=str(out),
        arch="resnet18",
        width=0.25,
        segments=4,
        size=64,
        epochs=4,
        batch_size=7,
        lr=3e-3,
        warmup_epochs=0.25,
        workers=0,
        label_smoothing=0.0,
        name="tiny",
    )
    return TrainConfig(**{**base, **kw})


def test_a_tiny_run_lowers_the_loss_and_saves_a_loadable_checkpoint(tiny_data, tmp_path):
    result = train(_cfg(tiny_data, tmp_path / "run", epochs=10), HFLIP_LABEL_MAP, command="pytest")
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 10 and losses[-1] < losses[0] * 0.9, losses
    model, info = load_checkpoint(tmp_path / "run" / "model.safetensors", device="cpu")
    assert info.config.variant == "tdn" and info.input_size == 64 and model.num_segments == 4
    assert (
        info.metadata["training"]["epochs_done"] == 10 and info.metadata["provenance"]["command"] == "pytest"
    )
    # the generator version of the training clips travels with the model; older files count as version 2
    assert info.metadata["synth_version"] == info.synth_version == DATASET_VERSION
    assert info.metadata["training"]["val_synth_version"] is None
    info.metadata.pop("synth_version")
    assert info.synth_version == 2


def test_channels_last_training_computes_the_channels_first_gradients(tiny_data, tmp_path):
    """The default layout is a speed choice only: in train mode (batch statistics) the loss and every
    parameter's gradient agree with channels-first up to float rounding, and a channels-last run saves
    the same contiguous file format."""
    import torch

    from tdn.network.model import build_model

    torch.manual_seed(0)
    first = build_model("resnet18", 4, 14, "tdn", width=0.25).train()
    last = build_model("resnet18", 4, 14, "tdn", width=0.25).train()
    last.load_state_dict(first.state_dict())
    last.to(memory_format=torch.channels_last)
    x, y = torch.randn(3, 4 * 15, 64, 64), torch.tensor([1, 5, 9])
    losses = {}
    for name, model, inp in ((0, first, x), (1, last, x.contiguous(memory_format=torch.channels_last))):
        torch.manual_seed(1)  # the same dropout mask
        losses[name] = torch.nn.functional.cross_entropy(model(inp), y)
        losses[name].backward()
    assert losses[0].item() == pytest.approx(losses[1].item(), rel=1e-5)
    compared = 0
    for (key, a), b in zip(first.named_parameters(), last.parameters(), strict=True):
        if a.grad is None:  # the official checkpoint's unused modules (*_bak, resnext_layer1)
            assert b.grad is None, key
            continue
        scale = a.grad.abs().max().item()
        assert (a.grad - b.grad).abs().max().item() <= 1e-4 * scale + 1e-7, key
        compared += scale > 0
    assert compared > 40  # every used parameter of this small model

    train(_cfg(tiny_data, tmp_path / "run", epochs=1, max_steps=2))  # channels_last is the default
    saved, _ = load_checkpoint(tmp_path / "run" / "model.safetensors", device="cpu")
    assert all(t.is_contiguous() for t in saved.state_dict().values())


def test_an_interrupted_run_resumes_from_its_last_epoch(tiny_data, tmp_path):
    out = tmp_path / "run"
    first = train(_cfg(tiny_data, out, epochs=3, max_steps=8), None)  # "interrupted" after 2 epochs' steps
    assert len(first.history) == 2
    resumed = train(_cfg(tiny_data, out, epochs=3), None)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.history[:2] == first.history


def test_torchrun_ddp_ranks_agree(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "tdn",
        "train",
        "--data",
        str(tiny_data),
        "--out",
        str(out),
        "--width",
        "0.25",
        "--segments",
        "4",
        "--size",
        "64",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--max-steps",
        "3",
        "--workers",
        "0",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digest"] == ranks[1]["digest"] and ranks[0]["step"] == ranks[1]["step"] == 3
    _, info = load_checkpoint(out / "model.safetensors", device="cpu")
    assert info.metadata["training"]["world_size"] == 2


def test_evaluate_cli_json(tiny_data, tmp_path):
    train(_cfg(tiny_data, tmp_path / "run", epochs=1, max_steps=1), None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tdn",
            "evaluate",
            "--checkpoint",
            str(tmp_path / "run" / "model.safetensors"),
            "--data",
            str(tiny_data),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads(proc.stdout)
    assert set(metrics) == {"top1", "top5", "confusion", "num_videos", "warnings"}
    assert metrics["num_videos"] == 28 and 0 <= metrics["top1"] <= metrics["top5"] <= 1
    assert sum(map(sum, metrics["confusion"])) == 28
