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

from tdn.distributed import finish, init_from_env
from tdn.network.checkpoint import save_checkpoint
from tdn.network.labels import SYNTHETIC_DATASET
from tdn.network.model import TDN, build_model
from tdn.training.data import VideoClips, read_labels_csv
from tdn.training.evaluation import evaluate
from tdn.training.synth import dataset_version
from tdn.util import atomic_path, git_commit


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
    # Channels-last weights and inputs: the same arithmetic, 1.07-1.11x faster per step on this CPU for the demo
    # model (bench_train; torch's channels-first max-pool and few-channel kernels are the slow part).
    channels_last: bool = True
    name: str = "tdn"
    init_from: str | None = None  # start from this checkpoint's weights (a new schedule: warm restart)
    model_options: dict = field(default_factory=dict)


def _atomic_torch_save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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


@dataclass(frozen=True)
class TrainResult:
    """What a run did: one ``history`` row per epoch (loss, learning rate, validation accuracy), the
    training time and the number of ranks."""

    history: list[dict]
    train_time_s: float
    world_size: int


def train(
    cfg: TrainConfig, hflip_label_map: dict[int, int] | None = None, command: str | None = None
) -> TrainResult:
    """Run (or resume) training; returns the final metrics. Writes ``out/model.safetensors``."""
    ranks = init_from_env()
    rank, world, device = ranks.rank, ranks.world, ranks.device
    commit = git_commit()  # the code the run started from
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    records, class_names = read_labels_csv(cfg.data)
    model: TDN = build_model(
        cfg.arch, cfg.segments, len(class_names), cfg.variant, width=cfg.width, **cfg.model_options
    ).to(device)
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    if cfg.init_from:
        from tdn.network.checkpoint import load_checkpoint

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
    trained = [p for p in model.parameters() if p.requires_grad]  # not the dead conv1_temp (§1)
    decay = [p for p in trained if p.ndim > 1]
    no_decay = [p for p in trained if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    # Equal steps on every rank (DDP's collectives hang otherwise): each rank takes len // world clips of
    # the epoch's permutation, so up to world - 1 clips sit out an epoch, different ones every epoch.
    per_rank = len(records) // world
    if per_rank == 0:
        raise ValueError(f"{len(records)} training clips cannot be shared by {world} ranks")
    steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
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
    ddp = (
        nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        if world > 1
        else model
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        # Every random draw of an epoch (dropout, augmentation) follows from (seed, epoch, rank) alone, so a
        # run resumed after a crash continues exactly as the uninterrupted run would have.
        torch.manual_seed(cfg.seed * 1_000_003 + epoch * 1009 + rank)
        train_set.set_epoch(epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(records))
        shard = order[rank::world][:per_rank]
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
            loss = criterion(ddp(x.to(device, memory_format=layout)), y.to(device))
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
        if cfg.val_data and (epoch == cfg.epochs - 1 or cfg.max_steps is None):
            # Every rank evaluates its share; the confusion matrices are summed (evaluate does it).
            val_records, _ = read_labels_csv(cfg.val_data)
            metrics = evaluate(
                model,
                VideoClips(val_records, cfg.segments, cfg.size, train=False),
                progress=False,
                ranks=ranks,
            )
            row.update(val_top1=metrics.top1, val_top5=metrics.top5)
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
    result = TrainResult(history=history, train_time_s=elapsed, world_size=world)
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
            dataset=SYNTHETIC_DATASET,
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
    finish(ranks)  # a caller that set up the group (e.g. the ablation runner) tears it down itself
    return result
