"""The TDN network against the official reference: keys, shapes, counts, logits, and the design's rules."""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F

from tdn.network.checkpoint import load_checkpoint
from tdn.network.flops import count_params
from tdn.network.model import VARIANTS, build_model, fusion_weights
from tdn.network.temporal import TemporalShift
from tests.reference_fill import digest, manifest_entries, reference_input, state_dict_digest


def test_fill_and_input_are_bit_identical_to_the_reference(official_state_dict, reference):
    assert state_dict_digest(official_state_dict) == reference["fill"]["state_dict_sha256"]
    case = reference["cases"][0]
    assert digest([reference_input(case["input_seed"], case["num_segments"])]) == case["input_sha256"]


def test_r50_keys_and_shapes_equal_the_official_manifest():
    sd = build_model("resnet50", 8, 174).state_dict()
    expected = [(k, s, d) for k, s, d in manifest_entries()]
    got = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in sd.items()]
    assert got == expected


@pytest.mark.parametrize(
    ("arch", "classes", "keys", "params"),
    [
        ("resnet50", 174, 789, 24_420_046),
        ("resnet50", 400, 789, 24_883_120),
        ("resnet101", 174, 1588, 43_681_726),
    ],
)
def test_official_counts(arch, classes, keys, params):
    model = build_model(arch, 8, classes)
    assert len(model.state_dict()) == keys
    assert count_params(model) == params


def _official_file(tmp_path, sd, **extra):
    """Write a state dict the way the official training script does: DDP prefix, optimizer, Counter."""
    path = tmp_path / "best.pth.tar"
    torch.save(
        {
            "epoch": 50,
            "arch": "resnet50",
            "state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items()),
            "scheduler": {"milestones": collections.Counter({30: 1, 45: 1}), "last_epoch": 50},
            "best_prec1": 52.3,
            **extra,
        },
        path,
    )
    return path


def test_official_checkpoint_reproduces_the_reference_logits(tmp_path, official_state_dict, reference):
    model, info = load_checkpoint(_official_file(tmp_path, official_state_dict), num_segments=8, device="cpu")
    assert info.format == "official" and info.config.arch == "resnet50" and info.config.num_classes == 174
    case = reference["cases"][0]
    x = reference_input(case["input_seed"], case["num_segments"])
    with torch.inference_mode():
        seg = model.segment_logits(x)
        logits = seg.mean(1)
    expected = torch.tensor(case["logits"])
    max_delta = (logits[0] - expected).abs().max().item()
    print(f"fixture max |Δlogit| = {max_delta:.3e}")
    assert max_delta <= 1e-4
    seg_ref = torch.tensor(reference["segment_logits_T8_224_seed0"]["values"])
    assert (seg[0] - seg_ref).abs().max().item() <= 1e-4
    assert logits.argmax().item() == expected.argmax().item()


def test_intermediate_taps_match_the_reference(official_state_dict, reference):
    model = build_model("resnet50", 8, 174)
    model.load_state_dict(official_state_dict)
    model.eval()
    modules = {
        "stdm_diff_pool": model.base_model.maxpool_diff,
        "stdm_diff_res2": model.base_model.resnext_layer1,
        "fuse1": model.base_model.fuse1,
        "fuse2": model.base_model.fuse2,
        "ltdm_l2b0": model.base_model.layer2_bak[0].mse,
        "shift_l2b0": model.base_model.layer2_bak[0].shift,
        "res3": model.base_model.layer2_bak,
        "res5": model.base_model.layer4_bak,
    }
    seen: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, o, n=n: seen.__setitem__(n, o.clone()))
        for n, m in modules.items()
    ]
    try:
        with torch.inference_mode():
            model(reference_input(0))
    finally:
        for h in handles:
            h.remove()
    for name, out in seen.items():
        tap = reference["debug_taps"][name]
        assert list(out.shape) == tap["shape"], name
        assert out.double().sum().item() == pytest.approx(tap["sum"], rel=1e-4, abs=1e-2), name
        flat = out.flatten()
        got = flat[tap["sample_flat_index"]]
        assert torch.allclose(got, torch.tensor(tap["sample_values"]), atol=1e-4), name


def test_fusion_weights_follow_the_number_of_segments():
    assert fusion_weights(8) == (0.5, 0.5)
    for t in (4, 16, 7):
        assert fusion_weights(t) == (0.75, 0.25)
    model = build_model("resnet18", 16, 5, width=0.25)
    assert (model.base_model.fuse1.alpha, model.base_model.fuse1.beta) == (0.75, 0.25)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_shift_equals_the_official_depthwise_temporal_conv(layout):
    torch.manual_seed(0)
    n, t, c, h, w = 2, 8, 16, 5, 5
    shift = TemporalShift(c, t)
    with torch.no_grad():
        shift.conv.weight.normal_()
    x = torch.randn(n * t, c, h, w)
    # official: permute to (N·H·W, C, T), depthwise conv1d over T, permute back
    seq = x.view(n, t, c, h, w).permute(0, 3, 4, 2, 1).reshape(n * h * w, c, t)
    ref = F.conv1d(seq, shift.conv.weight, padding=1, groups=c)
    ref = ref.view(n, h, w, c, t).permute(0, 4, 3, 1, 2).reshape(n * t, c, h, w)
    out = shift(x.contiguous(memory_format=layout))  # channels-last runs as one depthwise conv3d
    assert torch.allclose(out, ref, atol=1e-6)
    assert out.is_contiguous(memory_format=layout)  # the layout is kept for the next convolution


def test_inference_copy_reproduces_the_reference_logits(official_state_dict, reference):
    """The predict path (BN folded, channels-last, conv3d shift, in-place L-TDM gates, pooled-first S-TDM)
    against the official fixture, within 1e-5; and the same model under autograd gives the same logits."""
    from tdn.inference import inference_copy

    model = build_model("resnet50", 8, 174)
    model.load_state_dict(official_state_dict)
    model.eval()
    case = reference["cases"][0]
    x = reference_input(case["input_seed"], case["num_segments"])
    expected = torch.tensor(case["logits"])
    with torch.inference_mode():
        fast = inference_copy(model)(x)[0]
    assert (fast - expected).abs().max().item() <= 1e-5
    with torch.enable_grad():  # the autograd-safe branches (Grad-CAM runs this model with gradients)
        graded = model(x.requires_grad_())[0].detach()
    assert (graded - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 3, 7, 9), (1, 4, 2, 3)])
def test_two_by_two_average_pool_equals_torchs(shape):
    from tdn.network.upsample import avg_pool_2x2

    torch.manual_seed(1)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(*shape, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
        ours, theirs = avg_pool_2x2(x), F.avg_pool2d(x, 2, 2)
        assert ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-12)
        grad = torch.randn_like(theirs)
        (g_ours,) = torch.autograd.grad(ours, x, grad)
        (g_theirs,) = torch.autograd.grad(theirs, x, grad)
        assert torch.allclose(g_ours, g_theirs, atol=1e-12)


def _official_ltdm(m, x: torch.Tensor) -> torch.Tensor:
    """The L-TDM written out as the official mSEModule does it: per direction, F.interpolate, no shortcuts."""
    nt, c, h, w = x.shape
    t = m.num_segments
    b = m.bn1(m.conv1(x))
    b5, c5 = b.view(-1, t, *b.shape[1:]), m.conv2(b).view(-1, t, *b.shape[1:])
    zeros = torch.zeros_like(b5[:, :1])
    d_fwd = torch.cat([c5[:, 1:] - b5[:, :-1], zeros], 1).flatten(0, 1)
    d_bwd = torch.cat([zeros, c5[:, :-1] - b5[:, 1:]], 1).flatten(0, 1)
    gates = []
    for d in (d_fwd, d_bwd):
        coarse = m.bn3_smallscale2(m.conv3_smallscale2(F.avg_pool2d(d, 2, 2)))
        coarse = F.interpolate(coarse, d.shape[-2:])
        fine = m.bn3_smallscale4(m.conv3_smallscale4(d))
        gates.append(torch.sigmoid(m.bn3(m.conv3((d + coarse + fine) / 3))) - 0.5)
    return x + x * (gates[0] + gates[1]) / 2


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (2, 2)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_ltdm_without_autograd_equals_the_official_module(size, layout):
    """Without autograd the differences are written into one map and the coarse scale is added as a broadcast
    (even sizes); with it, padded differences and an upsampled map. Both equal the official formulation,
    keep x's layout, and give the same differences."""
    from tdn.network.temporal import LongTermTDM

    torch.manual_seed(3)
    m = LongTermTDM(32, num_segments=4).double().eval()
    with torch.no_grad():
        for bn in (m.bn1, m.bn3, m.bn3_smallscale2, m.bn3_smallscale4):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2 * 4, 32, *size, dtype=torch.float64).contiguous(memory_format=layout)
    with torch.no_grad():
        expected = _official_ltdm(m, x)
        fast = m(x)
        d_fast = m.differences(x)
    graded = m(x.clone().requires_grad_())
    d_graded = m.differences(x.clone().requires_grad_())
    for out in (fast, graded):
        assert torch.allclose(out, expected, atol=1e-12)
        assert out.is_contiguous(memory_format=layout)
    for a, b in zip(d_fast, d_graded, strict=True):
        assert torch.allclose(a, b, atol=1e-12) and a.is_contiguous(memory_format=layout)
    assert torch.count_nonzero(d_fast[0].reshape(2, 4, -1)[:, -1]) == 0  # no segment after the last
    assert torch.count_nonzero(d_fast[1].reshape(2, 4, -1)[:, 0]) == 0  # none before the first
    with pytest.raises(ValueError, match="not a whole number of 4-segment videos"), torch.no_grad():
        m(x[:6])


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("with_bn", [False, True])
def test_the_ltdm_channel_expansion_equals_its_convolution(bias, with_bn):
    """The batched-product path (channels-first CPU maps, no weight gradient; BN folded in, the bias as a
    ones channel) computes conv3 + BN's sums: values, and the input gradient an explanation takes; with a
    weight gradient wanted it is the conv itself."""
    from tdn.network.convbn import FoldingConv2d
    from tdn.network.temporal import _expand_channels

    torch.manual_seed(2)
    conv = FoldingConv2d(8, 128, 1, bias=bias).double()
    bn = torch.nn.BatchNorm2d(128).double().eval() if with_bn else torch.nn.Identity()
    if with_bn:
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.bias.uniform_(-1, 1)

    def reference(x: torch.Tensor) -> torch.Tensor:
        return bn(F.conv2d(x, conv.weight, conv.bias))

    x = torch.randn(6, 8, 9, 7, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(_expand_channels(conv, bn, x), reference(x), atol=1e-12)
    conv.requires_grad_(False)
    bn.requires_grad_(False)
    xg = x.clone().requires_grad_()
    out = _expand_channels(conv, bn, xg)
    assert out.grad_fn is not None and "Convolution" not in type(out.grad_fn).__name__  # the product path
    grad = torch.randn_like(out)
    (g_ours,) = torch.autograd.grad(out, xg, grad)
    (g_conv,) = torch.autograd.grad(reference(xg), xg, grad)
    assert torch.allclose(g_ours, g_conv, atol=1e-12)
    conv.requires_grad_(True)
    bn.requires_grad_(True)
    grad_fn = _expand_channels(conv, bn, xg).grad_fn
    # training: the conv (then BN, when there is one)
    assert ("Batch" if with_bn else "Convolution") in type(grad_fn).__name__


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
def test_every_variant_runs_forward_and_backward(arch, variant):
    model = build_model(arch, 4, 7, variant, width=0.25)
    flags = VARIANTS[variant]
    names = " ".join(k for k, _ in model.named_modules())
    assert ("conv1_5" in names) == flags[0]
    assert (".mse" in names) == flags[1]
    assert (".shift" in names) == flags[2]
    x = torch.randn(2, 4 * 15, 64, 64)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_tsn_ignores_segment_order_and_tdn_does_not():
    torch.manual_seed(0)
    x = torch.randn(1, 4 * 15, 64, 64)
    reversed_x = x.view(1, 4, 15, 64, 64).flip(1).reshape(1, 60, 64, 64)
    for variant, blind in (("tsn", True), ("tdn", False)):
        model = build_model("resnet18", 4, 5, variant, width=0.25).eval()
        with torch.no_grad():
            for p in model.parameters():  # non-trivial weights so that every path contributes
                p.add_(torch.randn_like(p) * 0.05)
            same = torch.allclose(model(x), model(reversed_x), atol=1e-5)
        assert same == blind, variant


def test_batch_composition_does_not_change_eval_outputs():
    model = build_model("resnet18", 4, 5, width=0.25).eval()
    x = torch.randn(3, 60, 64, 64)
    with torch.inference_mode():
        together = model(x)
        apart = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, apart, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 3, 224, 224, 5), "4-D"),
        ((1, 119, 64, 64), "120 channels"),
        ((1, 240, 64, 64), "16 segments"),
        ((1, 120, 16, 16), "too small"),
    ],
)
def test_wrong_input_shapes_get_clear_errors(shape, message):
    model = build_model("resnet18", 8, 5, width=0.25)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))


def test_unknown_arch_and_variant_are_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vgg16")
    with pytest.raises(ValueError, match="unknown variant"):
        build_model("resnet18", variant="i3d")
