"""Top-1, top-5 and the confusion matrix of a model on a labelled video dataset."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from tdn.distributed import Ranks, shard
from tdn.network.model import TDN
from tdn.network.runtime import eval_mode


@dataclass(frozen=True)
class EvalResult:
    """Accuracies as fractions; ``confusion[true][predicted]`` counts videos."""

    top1: float
    top5: float
    confusion: list[list[int]]
    num_videos: int

    @property
    def per_class(self) -> list[float | None]:
        """Top-1 accuracy of each true class (None for a class with no videos)."""
        return [row[i] / sum(row) if sum(row) else None for i, row in enumerate(self.confusion)]

    def to_dict(self) -> dict:
        return asdict(self)


@torch.inference_mode()
def evaluate(
    model: TDN,
    dataset: Dataset,
    batch_size: int = 8,
    workers: int = 0,
    progress: bool = True,
    ranks: Ranks | None = None,
) -> EvalResult:
    """Run ``model`` over every item of ``dataset`` ((input, label) pairs) in eval mode. With ``ranks`` of
    a torchrun group, each rank runs its share and every rank gets the totals."""
    device = next(model.parameters()).device
    k = model.config.num_classes
    confusion = np.zeros((k, k), dtype=np.int64)
    top5_hits = 0
    ranks = ranks or Ranks()
    if ranks.world > 1:
        dataset = Subset(dataset, shard(list(range(len(dataset))), ranks))
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    with eval_mode(model):
        for x, y in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            logits = model(x.to(device)).float().cpu()
            top = logits.topk(min(5, k), dim=1).indices
            top5_hits += int((top == y[:, None]).any(1).sum())
            np.add.at(confusion, (y.numpy(), top[:, 0].numpy()), 1)
    if ranks.world > 1:
        totals = torch.from_numpy(np.append(confusion.ravel(), top5_hits))
        if dist.get_backend() == "nccl":  # NCCL reduces GPU tensors only
            totals = totals.to(ranks.device)
        dist.all_reduce(totals)
        totals = totals.cpu()
        confusion, top5_hits = totals[:-1].numpy().reshape(k, k), int(totals[-1])
    n = int(confusion.sum())
    return EvalResult(
        top1=float(np.trace(confusion) / max(n, 1)),
        top5=float(top5_hits / max(n, 1)),
        confusion=confusion.tolist(),
        num_videos=n,
    )
