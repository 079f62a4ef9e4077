"""The network traces as one graph for torch.compile: no host synchronisation, no Python-side data in
its forward (``torch._dynamo.explain`` counts graphs and breaks without compiling)."""

from __future__ import annotations

import pytest
import torch

from tdn.assets import DEMO_CHECKPOINT
from tdn.inference import inference_copy
from tdn.network.checkpoint import load_checkpoint
from tdn.network.model import build_model
from tdn.network.upsample import _Gather, nearest_index


def _explain(model: torch.nn.Module, size: int) -> object:
    torch._dynamo.reset()
    x = torch.randn(1, model.num_segments * 15, size, size)
    with torch.no_grad():
        return torch._dynamo.explain(model)(x)


@pytest.mark.parametrize("which", ["demo", "demo prediction copy", "resnet50"])
def test_one_graph_and_no_breaks(which: str):
    if which.startswith("demo"):
        model, info = load_checkpoint(DEMO_CHECKPOINT, device="cpu")
        size = info.input_size
        if which == "demo prediction copy":  # BN folded, channels-last, in-place fusions in eager mode
            model = inference_copy(model)
    else:
        model, size = build_model("resnet50", 8, 174).eval(), 224
    report = _explain(model, size)
    assert (report.graph_count, report.graph_break_count) == (1, 0), report.break_reasons


@pytest.mark.parametrize(("src", "dst"), [(3, 7), (5, 11), (7, 3), (4, 9)])
def test_the_deterministic_gather_has_index_selects_gradient(src: int, dst: int):
    x = torch.randn(2, 3, src, dtype=torch.float64, requires_grad=True)
    idx = nearest_index(src, dst, x.device)
    grad = torch.randn(2, 3, dst, dtype=torch.float64)
    (ours,) = torch.autograd.grad(_Gather.apply(x, 2, idx), x, grad)
    (theirs,) = torch.autograd.grad(x.index_select(2, idx), x, grad)
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert torch.equal(_Gather.apply(x, 2, idx), x.index_select(2, idx))
