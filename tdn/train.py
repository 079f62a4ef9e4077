"""Training any ``build_model`` configuration on a labelled video folder; single process or torchrun/DDP.

Recipe: AdamW, linear warm-up then cosine decay per step, label smoothing 0.1, multi-scale random crops and
a label-swapping horizontal flip. After every epoch the full training state is written atomically
(``state.pt``, tensors and plain values only, so it reloads with ``weights_only=True``); a rerun with the same
``--out`` resumes from the last finished epoch. Rank 0 evaluates, saves and reports.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from tdn.checkpoint import save_checkpoint
from tdn.data import VideoClips, read_labels_csv
from tdn.evaluate import evaluate
from tdn.model import TDN, build_model
from tdn.synth import dataset_version


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in the checkpoint's provenance."""

    data: str
    out: str
    val_data: str | None = None
    arch: str = "resnet18"
    variant: str = "tdn"
    width: float = 0.5
    segments: int = 8
    size: int = 112
    epochs: int = 10
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    seed: int = 0
    workers: int = 1
    preload: bool = True  # decode the training set into memory once (shared with forked workers)
    max_steps: int | None = None  # stop early (smoke tests); the run still saves
    hflip: bool = True
    name: str = "tdn"
    init_from: str | None = None  # start from this checkpoint's weights (a new schedule: warm restart)
    model_options: dict = field(default_factory=dict)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _distributed() -> tuple[int, int, bool]:
    """(rank, world size, whether this call created the process group), for runs launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    created = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        created = True
    return (dist.get_rank(), world, created) if world > 1 else (0, 1, False)


def _atomic_torch_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _schedule(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def param_digest(model: nn.Module) -> str:
    """A short fingerprint of every parameter, to check that DDP ranks agree."""
    import hashlib

    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def train(
    cfg: TrainConfig, hflip_label_map: dict[int, int] | None = None, command: str | None = None
) -> dict:
    """Run (or resume) training; returns the final metrics. Writes ``out/model.safetensors``."""
    rank, world, owns_group = _distributed()
    commit = git_commit()  # the code the run started from
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    records, class_names = read_labels_csv(cfg.data)
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    model: TDN = build_model(
        cfg.arch, cfg.segments, len(class_names), cfg.variant, width=cfg.width, **cfg.model_options
    ).to(device)
    if cfg.init_from:
        from tdn.checkpoint import load_checkpoint

        source, _ = load_checkpoint(cfg.init_from, device="cpu")
        model.load_state_dict(source.state_dict())
    train_set = VideoClips(
        records,
        cfg.segments,
        cfg.size,
        train=True,
        seed=cfg.seed,
        hflip_label_map=hflip_label_map if cfg.hflip else None,
    )
    if cfg.preload:
        train_set.preload(progress=rank == 0)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    steps_per_epoch = math.ceil(len(records) / world / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(total, max(1, int(cfg.warmup_epochs * steps_per_epoch)))
    )
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0
    state_path = out / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, elapsed = int(state["epoch"]) + 1, float(state["elapsed_s"])
        history = json.loads(state["history"])
        if rank == 0:
            print(f"resuming {out} after epoch {start_epoch}", file=sys.stderr)
    ddp = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        train_set.set_epoch(epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(records))
        shard = order[rank::world][: steps_per_epoch * cfg.batch_size]
        loader = DataLoader(
            Subset(train_set, shard.tolist()),
            batch_size=cfg.batch_size,
            drop_last=False,
            num_workers=cfg.workers,
            persistent_workers=False,
        )
        model.train()
        losses = []
        bar = tqdm(loader, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", disable=rank != 0, leave=False)
        for x, y in bar:
            loss = criterion(ddp(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        elapsed += time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None, "elapsed_s": elapsed}
        if rank == 0 and cfg.val_data and (epoch == cfg.epochs - 1 or cfg.max_steps is None):
            val_records, _ = read_labels_csv(cfg.val_data)
            metrics = evaluate(
                model, VideoClips(val_records, cfg.segments, cfg.size, train=False), progress=False
            )
            row.update(val_top1=metrics["top1"], val_top5=metrics["top5"])
        history.append(row)
        if rank == 0:
            print(json.dumps(row), file=sys.stderr)
            _atomic_torch_save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch,
                    "elapsed_s": elapsed,
                    "history": json.dumps(history),
                },
                state_path,
            )
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
    result = {"history": history, "train_time_s": elapsed, "world_size": world}
    if world > 1:
        (out / f"rank{rank}.json").write_text(
            json.dumps({"rank": rank, "digest": param_digest(model), "step": step})
        )
        dist.barrier()
    if rank == 0:
        final = history[-1] if history else {}
        save_checkpoint(
            model.eval(),
            out / "model.safetensors",
            class_names,
            dataset="synthetic-motion",
            synth_version=dataset_version(cfg.data),
            input_size=cfg.size,
            scale_size=cfg.size,
            name=cfg.name,
            metrics={"val_top1": final.get("val_top1"), "val_top5": final.get("val_top5")},
            training={
                **asdict(cfg),
                "val_synth_version": dataset_version(cfg.val_data) if cfg.val_data else None,
                "train_time_s": elapsed,
                "epochs_done": len(history),
                "world_size": world,
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}",
            },
            provenance={"commit": commit, "command": command, "seed": cfg.seed},
        )
    if owns_group:  # a caller that set up the group (e.g. the ablation runner) tears it down itself
        dist.destroy_process_group()
    return result
