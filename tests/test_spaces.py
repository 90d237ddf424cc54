"""Search spaces: every config builds and runs, compute counts are exact and ordered,
probes are the boundary configs, builds are seeded (the registry: test_spaces_registry.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from proxyds.spaces import ArchConfig, SearchSpace, count_macs, count_params, get_space, list_spaces
from proxyds.spaces.efficientnet import efficientnet_widths
from tiny_spaces import TinyNet


ALL_CONFIGS = [(s, c.name) for s in list_spaces() for c in get_space(s).configs]


# --- every space x every config (timm's tests/test_models.py pattern) -------------------


@pytest.mark.parametrize("space_name,config_name", ALL_CONFIGS)
def test_build_and_forward(space_name, config_name):
    space = get_space(space_name)
    torch.manual_seed(0)
    model = space.build(config_name, num_classes=10)
    if not space_name.startswith("mlp1d"):  # mlp1d (and its sampled spaces) vary normalisation on purpose
        assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    x = torch.randn(2, *space.input_shape)

    model.train()
    assert model(x).shape == (2, 10)

    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
        assert isinstance(model.num_features, int)
        assert features.shape == (2, model.num_features)
        assert logits.shape == (2, 10)
        assert torch.isfinite(logits).all()
        torch.testing.assert_close(logits, model.forward_head(features))


@pytest.mark.parametrize("space_name,config_name", ALL_CONFIGS)
def test_build_is_deterministic(space_name, config_name):
    space = get_space(space_name)
    torch.manual_seed(0)
    first = space.build(config_name, num_classes=10).state_dict()
    torch.manual_seed(0)
    second = space.build(config_name, num_classes=10).state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


# --- the grids ------------------------------------------------------------------------


@pytest.mark.parametrize("space_name", ["resnet1d", "resnet20"])
def test_grid_names_and_order(space_name):
    space = get_space(space_name)
    names = [c.name for c in space.configs]
    assert names[:4] == ["B8-K3-M2", "B8-K3-M4", "B8-K5-M2", "B8-K5-M4"]
    assert len(names) == len(set(names)) == 12
    for c in space.configs:
        assert c.name == "B{B}-K{K}-M{M}".format(**c.params)
        assert space.config(c.name) is c
    for letter in ("B", "K", "M"):
        assert letter in space.description


def test_input_shapes():
    assert get_space("resnet1d").input_shape == (1, 40)
    assert get_space("resnet20").input_shape == (3, 32, 32)
    assert get_space("efficientnet_b0_cifar").input_shape == (3, 32, 32)
    assert get_space("torchvision_resnet").input_shape == (3, 224, 224)


def test_stage_widths_follow_b_and_m():
    model = get_space("resnet20").build("B8-K5-M4", num_classes=10)
    widths = [stage[-1].conv2.out_channels for stage in model.stages]
    assert widths == [8, 16, 32]
    assert [stage[0].conv1.kernel_size for stage in model.stages] == [(5, 5)] * 3
    assert model.num_features == 32
    assert len(model.stages[0]) == 3
    assert len(get_space("resnet1d").build("B8-K3-M2", num_classes=10).stages[0]) == 2


def test_classic_resnet20_hand_count():
    # B16-K3-M4 is the classic 16/32/64 ResNet20 with 1x1 projection shortcuts.
    # MACs: stem 32*32*16*3*9 = 442_368; stage 1: 6 convs * 1024*16*16*9 = 14_155_776;
    # stages 2 and 3 each: 1_179_648 (strided conv) + 5 * 2_359_296 + 131_072 (1x1)
    # = 13_107_200; head 64*10 = 640.
    # Params: stem 432 + 32; stage 1: 14_016; stage 2: 51_648; stage 3: 205_696; fc 650.
    space = get_space("resnet20")
    assert space.macs("B16-K3-M4") == 442_368 + 14_155_776 + 2 * 13_107_200 + 640
    assert space.params("B16-K3-M4") == 432 + 32 + 14_016 + 51_648 + 205_696 + 650


# --- MACs -----------------------------------------------------------------------------


@pytest.mark.parametrize("space_name", ["resnet1d", "resnet20"])
def test_macs_positive_and_grow_with_each_knob(space_name):
    space = get_space(space_name)
    macs = {tuple(c.params[k] for k in "BKM"): space.macs(c) for c in space.configs}
    for value in macs.values():
        assert isinstance(value, int) and value > 0
    for (b, k, m), value in macs.items():
        for bigger in [(b * 2, k, m), (b, k + 2, m), (b, k, m * 2)]:
            if bigger in macs:
                assert macs[bigger] > value, (bigger, (b, k, m))
    # every edge of the grid was checked above: B 8->16->32, K 3->5, M 2->4
    assert len(macs) == 12


def test_macs_depend_on_head_only_through_num_classes():
    space = get_space("resnet1d")
    c = space.configs[0]
    width = c.params["B"] * c.params["M"]
    assert space.macs(c, num_classes=100) - space.macs(c, num_classes=10) == 90 * width
    assert space.params(c, num_classes=100) - space.params(c, num_classes=10) == 90 * (width + 1)


def test_count_macs_toy_1d():
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(40, 5))
    # conv: 10 positions * 4 out channels * (2 in channels * 3 taps); linear: 40 * 5
    assert count_macs(model, (2, 10)) == 10 * 4 * 2 * 3 + 40 * 5
    assert count_params(model) == (4 * 2 * 3 + 4) + (40 * 5 + 5)


def test_count_macs_toy_2d_strided_grouped():
    model = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=False)
    # output 8 x 4 x 4; each output sums over (4 / 2) channels * 3 * 3 taps
    assert count_macs(model, (4, 8, 8)) == 8 * 4 * 4 * 2 * 9
    assert count_params(model) == 8 * 2 * 9


def test_count_macs_restores_mode_and_leaves_batchnorm_stats():
    model = nn.Sequential(nn.Conv1d(1, 3, 3), nn.BatchNorm1d(3), nn.Flatten(), nn.Linear(3 * 6, 2))
    model.train()
    model[3].eval()  # mixed modes must survive too
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_macs(model, (1, 8))
    assert [m.training for m in model] == [True, True, True, False]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_count_macs_rejects_bad_shape():
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(nn.Linear(3, 2), (0, 3))


def test_macs_do_not_consume_global_rng():
    space = SearchSpace(
        "rng_check",
        (4,),
        [ArchConfig("a", {"w": 3})],
        lambda c, n: TinyNet(c.params["w"], n),
    )
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert space.macs("a") == 4 * 3 + 3 * 10
    assert torch.equal(torch.rand(3), expected)


# --- probes ---------------------------------------------------------------------------


@pytest.mark.parametrize("space_name", ["resnet1d", "resnet20"])
def test_probes_are_the_boundary_configs(space_name):
    space = get_space(space_name)
    all_macs = [space.macs(c) for c in space.configs]
    lower, upper = space.probes()
    assert space.macs(lower) == min(all_macs)
    assert space.macs(upper) == max(all_macs)
    assert (lower.name, upper.name) == ("B8-K3-M2", "B32-K5-M4")

    three = space.probes(3)
    assert three[0] == lower and three[-1] == upper
    assert len(set(three)) == 3
    assert min(all_macs) < space.macs(three[1]) < max(all_macs)

    every = space.probes(len(space.configs))
    assert set(every) == set(space.configs)
    assert [space.macs(c) for c in every] == sorted(all_macs)


@pytest.mark.parametrize("k", [0, 1, 13, -2])
def test_probes_bad_k(k):
    with pytest.raises(ValueError, match=rf"got {k}\b") as info:
        get_space("resnet1d").probes(k)
    assert "[2, 12]" in str(info.value)


def test_probes_tie_break_by_params_then_name():
    # equal MACs (Linear 4->w then w->1 costs 4w + w); the zero-MAC extra params break ties
    def build(c, n):
        net = TinyNet(c.params["w"], n)
        net.extra = nn.Parameter(torch.zeros(c.params["p"]))
        return net

    configs = [
        ArchConfig("b", {"w": 2, "p": 1}),
        ArchConfig("a", {"w": 2, "p": 1}),
        ArchConfig("c", {"w": 2, "p": 0}),
        ArchConfig("d", {"w": 9, "p": 0}),
    ]
    space = SearchSpace("ties", (4,), configs, build)
    assert [c.name for c in space.probes(4, num_classes=1)] == ["c", "a", "b", "d"]

# --- EfficientNet-B0 variants (Park 2019, Table 3) --------------------------------------


def test_efficientnet_grid_names_and_order():
    space = get_space("efficientnet_b0_cifar")
    names = [c.name for c in space.configs]
    assert names == [f"r{r}-k{k}-f{f}" for r in (1, 2) for k in (1, 2) for f in (1, 2, 3)]
    for c in space.configs:
        assert c.name == "r{r}-k{k}-f{f}".format(**c.params)
    for text in ("[1,2,2,3,3,4,1]", "[3,3,5,3,5,5,3]", "[18,16,16,24,48,68,116]"):
        assert text in space.description


def test_efficientnet_filter_reading():
    # [stem, stage 1..6] as printed; stage 7 = 320 * f[6] / 192 rounded to 8; head = 4x
    assert efficientnet_widths((18, 16, 16, 24, 48, 68, 116)) == (
        18, (16, 16, 24, 48, 68, 116, 192), 768)
    assert efficientnet_widths((24, 16, 20, 32, 64, 90, 152)) == (
        24, (16, 20, 32, 64, 90, 152, 256), 1024)
    assert efficientnet_widths((32, 16, 24, 40, 80, 112, 192)) == (
        32, (16, 24, 40, 80, 112, 192, 320), 1280)
    with pytest.raises(ValueError, match="filters"):
        efficientnet_widths((32, 16, 24))


def test_efficientnet_r2_k2_f3_is_b0():
    # same layers as torchvision's EfficientNet-B0 (only the strides differ): equal params
    from torchvision.models import efficientnet_b0

    space = get_space("efficientnet_b0_cifar")
    assert space.params("r2-k2-f3", num_classes=1000) == count_params(efficientnet_b0())


def test_efficientnet_structure():
    model = get_space("efficientnet_b0_cifar").build("r1-k2-f1", num_classes=10)
    assert [len(stage) for stage in model.stages] == [1, 2, 2, 2, 2, 3, 1]
    kernels = [stage[0].block[-3][0].kernel_size[0] for stage in model.stages]
    assert kernels == [3, 3, 5, 3, 5, 5, 3]
    assert model.stem[0].out_channels == 18 and model.stem[0].stride == (1, 1)
    assert model.num_features == 768
    # stem stride 1 + B0's stage strides: 32x32 in, 2x2 map into the head
    model.eval()
    with torch.no_grad():
        assert model.stages(model.stem(torch.zeros(1, 3, 32, 32))).shape == (1, 192, 2, 2)


def test_efficientnet_macs_grow_with_r_k_f():
    space = get_space("efficientnet_b0_cifar")
    macs = {tuple(c.params[k] for k in "rkf"): space.macs(c) for c in space.configs}
    edges = 0
    for (r, k, f), value in macs.items():
        assert isinstance(value, int) and value > 0
        for bigger in [(r + 1, k, f), (r, k + 1, f), (r, k, f + 1)]:
            if bigger in macs:
                assert macs[bigger] > value, (bigger, (r, k, f))
                edges += 1
    assert edges == 6 + 6 + 8  # r1->r2, k1->k2 for 6 others each; f1->f2->f3 for 4
    assert [c.name for c in space.probes()] == ["r1-k1-f1", "r2-k2-f3"]


# --- torchvision ResNets (ImageNet) ---------------------------------------------------


def test_torchvision_resnet_order_probes_and_keys():
    from torchvision.models import resnet18

    space = get_space("torchvision_resnet")
    assert [c.name for c in space.configs] == ["resnet18", "resnet34", "resnet50"]
    macs = [space.macs(c) for c in space.configs]
    assert macs == sorted(macs) and len(set(macs)) == 3
    assert [c.name for c in space.probes()] == ["resnet18", "resnet50"]
    # torchvision's module names are kept, so its checkpoints load unchanged
    torch.manual_seed(0)
    model = space.build("resnet18", num_classes=7)
    reference = resnet18(weights=None, num_classes=7)
    assert model.state_dict().keys() == reference.state_dict().keys()
    model.load_state_dict(reference.state_dict())
    model.eval()
    reference.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    assert model.num_features == 512
