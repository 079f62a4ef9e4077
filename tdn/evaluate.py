"""Top-1, top-5 and the confusion matrix of a model on a labelled video folder."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tdn.model import TDN


@torch.inference_mode()
def evaluate(
    model: TDN, dataset: Dataset, batch_size: int = 8, workers: int = 0, progress: bool = True
) -> dict:
    """``{top1, top5, confusion, num_videos}``; accuracies are fractions, confusion[true][pred] counts."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    k = model.config.num_classes
    confusion = np.zeros((k, k), dtype=np.int64)
    top5_hits = 0
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    try:
        for x, y in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            logits = model(x.to(device)).float().cpu()
            top = logits.topk(min(5, k), dim=1).indices
            top5_hits += int((top == y[:, None]).any(1).sum())
            np.add.at(confusion, (y.numpy(), top[:, 0].numpy()), 1)
    finally:
        model.train(was_training)
    n = int(confusion.sum())
    return {
        "top1": float(np.trace(confusion) / max(n, 1)),
        "top5": float(top5_hits / max(n, 1)),
        "confusion": confusion.tolist(),
        "num_videos": n,
    }
