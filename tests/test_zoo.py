"""The model zoo in specs/zoo/: each spec builds, runs on a random input of its declared shape,
gives torch's shapes at every layer, and has the reference parameter count.

The counts of LeNet-5, VGG-11, ResNet-18/50 and MobileNetV2 are torchvision's published
figures; the other models are compared with hand-written PyTorch equivalents below.
"""

from __future__ import annotations

import pytest
from conftest import SPECS

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import nndsl  # noqa: E402
from nndsl.ir import LayerNode  # noqa: E402
from nndsl.shapes import Sym, substitute  # noqa: E402

ZOO = SPECS / "zoo"

REFERENCE_COUNTS = {
    "lenet5": 61_706,
    "vgg11": 132_863_336,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "shufflenet_v2": 2_278_604,
    "efficientnet_b0": 5_288_548,
}

#: models compared with hand-written twins (tests/twins/): the twins' exact counts
TWINNED_COUNTS = {
    "siamese": 1_792,
}
REFERENCE_COUNTS |= TWINNED_COUNTS


# ---------------------------------------------------------------- hand-written equivalents


class _DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )


class _UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.ModuleList([_DoubleConv(1, 16), _DoubleConv(16, 32), _DoubleConv(32, 64), _DoubleConv(64, 128)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in (128, 64, 32)])
        self.mix = nn.ModuleList([_DoubleConv(128, 64), _DoubleConv(64, 32), _DoubleConv(32, 16)])
        self.head = nn.Conv2d(16, 2, 1)


class _Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool):
        super().__init__()
        self.b1 = nn.Conv2d(cin, c1, 1)
        self.b3 = nn.Sequential(nn.Conv2d(cin, c3r, 1), nn.Conv2d(c3r, c3, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(cin, c5r, 1), nn.Conv2d(c5r, c5, 5, padding=2))
        self.bp = nn.Conv2d(cin, pool, 1)


class _InceptionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 192, 3, padding=1)
        self.a = _Inception(192, 64, 96, 128, 16, 32, 32)
        self.b = _Inception(256, 128, 128, 192, 32, 96, 64)
        self.fc = nn.Linear(480, 10)


class _TextTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10000, 128)
        layer = nn.TransformerEncoderLayer(128, 4, dim_feedforward=256, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(128, 4)


class _GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(28, 128, num_layers=2, batch_first=True, dropout=0.1)
        self.fc = nn.Linear(128, 10)


class _ConvAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.Conv2d(32, 64, 7)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 7),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),
        )


HAND_WRITTEN = {
    "unet": _UNet,
    "inception": _InceptionNet,
    "text_transformer": _TextTransformer,
    "gru_classifier": _GRUClassifier,
    "autoencoder": _ConvAutoencoder,
}


# ---------------------------------------------------------------- the tests


def _zoo_models():
    return sorted(p.stem for p in ZOO.glob("*.nn") if p.stem != "resnet_blocks")


def test_every_zoo_model_has_a_reference():
    assert set(_zoo_models()) == set(REFERENCE_COUNTS) | set(HAND_WRITTEN)


def _concrete(shape, batch: int) -> tuple[int, ...]:
    bindings = {Sym("N"): batch, Sym("T"): 9}
    dims = tuple(substitute(d, bindings) for d in shape.dims)
    assert all(isinstance(d, int) for d in dims), f"unbound symbol in {shape}"
    return dims


@pytest.mark.parametrize("stem", _zoo_models())
def test_zoo_model_runs_with_the_checked_shapes_and_reference_count(stem):
    spec = ZOO / f"{stem}.nn"
    result = nndsl.check_file(spec)
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    (model_ir,) = result.program.models
    expected = REFERENCE_COUNTS.get(stem)
    if expected is None:
        expected = sum(p.numel() for p in HAND_WRITTEN[stem]().parameters())
    assert model_ir.param_count == expected

    torch.manual_seed(0)
    module = nndsl.build(spec).eval()
    assert sum(p.numel() for p in module.parameters()) == expected

    # every layer with a module, in the order the checker lists them, against what torch computes
    layers = [n for n in model_ir.layers if isinstance(n, LayerNode) and n.layer.has_module and not n.layer.helper]
    torch_names = {n.layer.torch_name() for n in layers}
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooked: list[str] = []
    for path, sub in module.named_modules():
        inside = any(path.startswith(h + ".") for h in hooked)
        if type(sub).__name__ in torch_names and type(sub).__module__.startswith("torch.nn") and not inside:
            hooked.append(path)
            sub.register_forward_hook(
                lambda m, _i, out: seen.append(
                    (type(m).__name__, tuple((out[0] if isinstance(out, tuple) else out).shape))
                )
            )
    batch = 1 if model_ir.param_count > 5_000_000 else 2
    inputs = []
    for t in model_ir.input_types:
        dims = _concrete(t.shape, batch)
        inputs.append(torch.randint(0, 100, dims) if t.dtype == "int64" else torch.randn(dims))
    with torch.no_grad():
        out = module(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape) for o in outs] == [_concrete(t.shape, batch) for t in model_ir.outputs]

    assert [name for name, _ in seen] == [n.layer.torch_name() for n in layers]
    for (_, got), node in zip(seen, layers):
        if node.selector in (None, "output"):
            assert got == _concrete(node.output.shape, batch), f"{node.text}: torch {got}, checker {node.output}"


def test_zoo_specs_fit_on_a_screen():
    for spec in ZOO.glob("*.nn"):
        assert len(spec.read_text().splitlines()) <= 40, spec.name


def test_resnet_blocks_are_shared_by_import():
    result = nndsl.check_file(ZOO / "resnet_blocks.nn")
    assert result.ok and not result.program.models  # a library of blocks: nothing to build on its own
    for stem in ("resnet18", "resnet50"):
        assert 'from "resnet_blocks.nn" import' in (ZOO / f"{stem}.nn").read_text()
