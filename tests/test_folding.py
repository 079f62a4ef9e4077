"""The plain model's speed paths: BatchNorm folded on the fly while frozen, the stem's separable max-pool.

Each is checked against what it replaces (torch's conv + BN, ``F.max_pool2d``) and against the official
reference logits, and for when it must not apply (training, a weight gradient, a changed parameter).
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tdn.network.convbn import FoldingConv2d, run_conv_bn
from tdn.network.model import build_model
from tdn.network.upsample import add_upsampled, max_pool_3x3_s2
from tests.reference_fill import reference_input


def _pair(bias: bool = True, groups: int = 1) -> tuple[FoldingConv2d, nn.BatchNorm2d]:
    torch.manual_seed(3)
    conv = FoldingConv2d(8, 16, 3, padding=1, bias=bias, groups=groups).double()
    bn = nn.BatchNorm2d(16).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    return conv, bn.eval()


@pytest.mark.parametrize("bias", [False, True])
def test_a_frozen_eval_conv_folds_its_batchnorm_exactly(bias):
    conv, bn = _pair(bias)
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    with torch.no_grad():
        expected = bn(F.conv2d(x, conv.weight, conv.bias, padding=1))
        assert torch.allclose(run_conv_bn(conv, bn, x), expected, atol=1e-12)
    assert conv._fold_cache is not None  # the folded pair was built and kept
    weight = conv._fold_cache[1]
    with torch.no_grad():
        run_conv_bn(conv, bn, x)
    assert conv._fold_cache[1] is weight  # and reused while nothing changed


def test_a_wanted_weight_gradient_or_training_keeps_conv_then_batchnorm():
    conv, bn = _pair()
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    out = run_conv_bn(conv, bn, x)  # grad enabled, weights require grad: the graph must reach them through BN
    out.sum().backward()
    assert conv.weight.grad is not None and bn.weight.grad is not None
    assert conv._fold_cache is None
    bn.train()
    before = bn.running_mean.clone()
    with torch.no_grad():
        run_conv_bn(conv, bn, x)
    assert not torch.equal(bn.running_mean, before)  # training BN: batch statistics, running stats move
    assert conv._fold_cache is None


def test_the_folded_pair_follows_every_change_of_its_sources():
    conv, bn = _pair()
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)

    def check() -> None:
        with torch.no_grad():
            expected = bn(F.conv2d(x, conv.weight, conv.bias, padding=1))
            assert torch.allclose(run_conv_bn(conv, bn, x), expected, atol=1e-12)

    check()
    with torch.no_grad():
        conv.weight.mul_(2)  # an optimiser step is an in-place update
    check()
    bn.load_state_dict({k: v * 1.5 if v.is_floating_point() else v for k, v in bn.state_dict().items()})
    check()
    with torch.no_grad():
        bn.running_var.add_(1)
    check()
    conv.train()  # back to training drops the copy
    assert conv._fold_cache is None


def test_batchnorm_statistics_recalibrated_in_training_mode_are_seen():
    """A training-mode BN forward moves the running statistics inside its kernel (no new version of them);
    the folded pair must not outlive it (test-time BN recalibration switches only the BN)."""
    conv, bn = _pair()
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    with torch.no_grad():
        run_conv_bn(conv, bn, x)  # folded and cached
        bn.train()
        bn(F.conv2d(x + 3.0, conv.weight, conv.bias, padding=1))  # recalibrate on other data
        bn.eval()
        expected = bn(F.conv2d(x, conv.weight, conv.bias, padding=1))
        assert torch.allclose(run_conv_bn(conv, bn, x), expected, atol=1e-12)


def test_moving_the_conv_drops_its_folded_pair():
    conv, bn = _pair()
    with torch.no_grad():
        run_conv_bn(conv, bn, torch.randn(1, 8, 5, 5, dtype=torch.float64))
    conv.float()
    bn.float()
    assert conv._fold_cache is None  # not kept alive in the old dtype (or on the old device)
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        expected = bn(F.conv2d(x, conv.weight, conv.bias, padding=1))
        assert torch.allclose(run_conv_bn(conv, bn, x), expected, atol=1e-5)


def test_a_model_made_under_inference_mode_runs_unfolded():
    """Parameters created in inference_mode are inference tensors, with no version to key a cache on."""
    with torch.inference_mode():
        conv, bn = _pair()
        x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
        expected = bn(F.conv2d(x, conv.weight, conv.bias, padding=1))
        assert torch.allclose(run_conv_bn(conv, bn, x), expected, atol=1e-12)
    assert conv._fold_cache is None


def test_hooks_on_the_conv_or_its_batchnorm_see_what_they_saw_before():
    """With a hook, conv and BN run as their own modules: the conv's hook gets the conv's output (which
    nothing later changes in place) and the BN's hook is called."""
    model = build_model("resnet18", 4, 5, "tdn", width=0.25).eval()
    block = model.base_model.layer2_bak[0]
    seen: dict[str, torch.Tensor] = {}
    kept: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_module, _inputs, output):
            seen[name], kept[name] = output, output.clone()

        return hook

    handles = [block.conv1.register_forward_hook(keep("conv1")), block.bn1.register_forward_hook(keep("bn1"))]
    x = torch.randn(4, 15, 64, 64)
    with torch.no_grad():
        out = model(x.view(1, 60, 64, 64))
    for h in handles:
        h.remove()
    assert set(seen) == {"conv1", "bn1"}
    assert torch.equal(seen["conv1"], kept["conv1"])  # not overwritten by the in-place ReLU after the BN
    assert torch.allclose(block.bn1(kept["conv1"]), kept["bn1"])
    with torch.no_grad():
        assert torch.allclose(model(x.view(1, 60, 64, 64)), out, atol=1e-5)  # and folded again without hooks
    assert block.conv1._fold_cache is not None


def test_copies_start_without_the_folded_pair():
    conv, bn = _pair()
    with torch.no_grad():
        run_conv_bn(conv, bn, torch.randn(1, 8, 5, 5, dtype=torch.float64))
    assert conv._fold_cache is not None
    twin = copy.deepcopy(conv)
    assert twin._fold_cache is None and conv._fold_cache is not None
    assert torch.equal(twin.weight, conv.weight)


def test_weights_folded_in_inference_mode_serve_an_explanations_backward():
    """Folded once under inference_mode (a prediction), then used with grad enabled on frozen weights (an
    explanation): the input gradient exists and equals conv-then-BN's."""
    conv, bn = _pair()
    conv.requires_grad_(False)
    bn.requires_grad_(False)
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    with torch.inference_mode():
        run_conv_bn(conv, bn, x)
    xg = x.clone().requires_grad_()
    (g_folded,) = torch.autograd.grad(run_conv_bn(conv, bn, xg).square().sum(), xg)
    (g_plain,) = torch.autograd.grad(bn(F.conv2d(xg, conv.weight, conv.bias, padding=1)).square().sum(), xg)
    assert torch.allclose(g_folded, g_plain, atol=1e-10)


def test_the_plain_model_folded_and_unfolded_reproduce_the_reference(official_state_dict, reference):
    model = build_model("resnet50", 8, 174)
    model.load_state_dict(official_state_dict)
    model.eval()
    x = reference_input(0)
    expected = torch.tensor(reference["cases"][0]["logits"])
    with torch.inference_mode():
        folded = model(x)[0]
    unfolded = model(x)[0].detach()  # grad enabled and weights trainable: conv, then BN
    convs = [m for m in model.modules() if isinstance(m, FoldingConv2d)]
    assert len(convs) == 116 and all(m._fold_cache is not None for m in convs)  # every BN had its conv
    assert (folded - expected).abs().max().item() <= 1e-4
    assert (unfolded - expected).abs().max().item() <= 1e-4
    assert (folded - unfolded).abs().max().item() <= 1e-5
    assert list(model.state_dict()) == list(official_state_dict)  # no new keys


@pytest.mark.parametrize("size", list(itertools.product([1, 2, 3, 4, 7, 56, 57], [1, 2, 5, 8, 112])))
def test_the_separable_max_pool_equals_torchs(size):
    torch.manual_seed(4)
    x = torch.randn(2, 3, *size)
    x[0, 0, 0, 0] = float("nan")
    x[1, 2, -1, -1] = float("inf")
    with torch.no_grad():
        ours, theirs = max_pool_3x3_s2(x), F.max_pool2d(x, 3, 2, 1)
    assert ours.shape == theirs.shape
    assert torch.equal(ours.isnan(), theirs.isnan())
    assert torch.equal(ours.nan_to_num(0.0), theirs.nan_to_num(0.0))


def test_the_max_pool_keeps_torchs_gradient_and_layouts():
    """Ties (zeros after a ReLU) get max_pool2d's gradient, which routes to one input, not a split one."""
    x = torch.relu(torch.randn(1, 2, 9, 9)).requires_grad_()
    (ours,) = torch.autograd.grad(max_pool_3x3_s2(x).sum(), x)
    (theirs,) = torch.autograd.grad(F.max_pool2d(x, 3, 2, 1).sum(), x)
    assert torch.equal(ours, theirs)
    cl = torch.randn(1, 4, 10, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = max_pool_3x3_s2(cl)
    assert torch.equal(out, F.max_pool2d(cl, 3, 2, 1))
    assert out.is_contiguous(memory_format=torch.channels_last)  # torch's own kernel, layout kept


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("small", "big"), [((28, 28), (56, 56)), ((7, 5), (14, 15)), ((4, 4), (12, 8)), ((5, 5), (7, 8))]
)
def test_the_fusions_upsampled_add_equals_interpolate(channels_last, small, big):
    """alpha·base + beta·up(small): equal to the official F.interpolate (legacy nearest) sum, same layout."""
    torch.manual_seed(5)
    base, motion = torch.randn(2, 6, *big), torch.randn(2, 6, *small)
    if channels_last:
        base, motion = (t.contiguous(memory_format=torch.channels_last) for t in (base, motion))
    expected = 0.5 * base + 0.5 * F.interpolate(motion, size=big)
    with torch.no_grad():
        out = add_upsampled(base, 0.5, motion, 0.5)
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    into = base.clone()
    with torch.no_grad():
        written = add_upsampled(into, 0.5, motion, 0.5, in_place=True)
    assert written is into and torch.equal(into, out)  # the prediction copy's in-place fusion: same sums
    motion.requires_grad_()  # the widening pass writes through out=, which autograd refuses: not taken
    (grad,) = torch.autograd.grad(add_upsampled(base, 0.5, motion, 0.5).sum(), motion)
    (want,) = torch.autograd.grad((0.5 * F.interpolate(motion, size=big)).sum(), motion)
    assert torch.allclose(grad, want)
