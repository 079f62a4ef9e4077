"""Process groups for torchrun, one rule for every command (training, sharded evaluation, explanations).

* The device of a rank is ``cuda:LOCAL_RANK`` when this node has at least as many GPUs as local ranks
  (``LOCAL_WORLD_SIZE``), set with ``torch.cuda.set_device`` before anything touches CUDA; NCCL is then
  the backend. With fewer GPUs than local ranks NCCL cannot run (two ranks may not share a GPU), so the
  ranks share the GPUs round-robin and talk over gloo. Without a GPU: CPU and gloo.
* Work is split by :func:`shard`: item i goes to rank i mod world, so a single process and N ranks cover
  the same items, and rank 0 can put the results back in the original order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank, the world size, its device, and whether it made the group."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def choose_device(local_rank: int, local_world: int) -> tuple[torch.device, str]:
    """(device, backend) for one local rank (see the module docstring for the rule)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return torch.device("cpu"), "gloo"
    device = torch.device("cuda", local_rank % count)
    return device, "nccl" if local_world <= count else "gloo"


def init_from_env(cpu_only: bool = False) -> Ranks:
    """Join the torchrun process group described by the environment (a single process when there is
    none). ``cpu_only`` keeps the work on the CPU even where GPUs exist."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    device, backend = (torch.device("cpu"), "gloo") if cpu_only else choose_device(local_rank, local_world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world == 1:
        return Ranks(0, 1, device, False)
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=device if backend == "nccl" else None)
        created = True
    return Ranks(dist.get_rank(), dist.get_world_size(), device, created)


def shard(items: list, ranks: Ranks) -> list:
    """This rank's share of ``items``: every world-th item, starting at its rank."""
    return items[ranks.rank :: ranks.world]


def gather_objects(obj: object, ranks: Ranks) -> list:
    """Every rank's ``obj``, in rank order, on every rank (the object as it is with one process)."""
    if ranks.world == 1:
        return [obj]
    out: list = [None] * ranks.world
    dist.all_gather_object(out, obj)
    return out


def unshard(parts: list[list], total: int) -> list:
    """Undo :func:`shard`: rank r's j-th item was item j·world + r."""
    world = len(parts)
    merged: list = [None] * total
    for r, part in enumerate(parts):
        merged[r::world] = part
    return merged


def finish(ranks: Ranks) -> None:
    """Leave the group if this process created it."""
    if ranks.owns_group and dist.is_initialized():
        dist.destroy_process_group()
