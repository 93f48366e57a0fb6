"""The model zoo in specs/zoo/: each spec builds, runs on a random input of its declared shape,
gives torch's shapes at every layer, and has the reference parameter count.

A model with a twin in tests/twins/<stem>.py (a hand-written torch module and its reference
count) is also compared with it: the same count (checker, built module, twin, reference), the
same outputs on the same weights copied by position in eval mode, and its ONNX export verified
against torch. The other counts are torchvision's published figures. Each model is built once
per module (a module-scoped fixture) and shared by its checks.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from conftest import SPECS

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import nndsl  # noqa: E402
from nndsl.ir import LayerNode  # noqa: E402
from nndsl.shapes import Sym, substitute  # noqa: E402

ZOO = SPECS / "zoo"
TWINS = Path(__file__).resolve().parent / "twins"

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


# ---------------------------------------------------------------- the tests

#: float32 through a deep net: kernels that add in another order differ by a few ulps per layer
RTOL, ATOL = 1e-4, 1e-5


def _zoo_models() -> list[str]:
    return sorted(p.stem for p in ZOO.glob("*.nn") if p.stem != "resnet_blocks")


def _twinned() -> list[str]:
    return [stem for stem in _zoo_models() if (TWINS / f"{stem}.py").exists()]


def _twin(stem: str) -> ModuleType:
    return importlib.import_module(f"twins.{stem}")


def _reference(stem: str) -> int:
    if stem in REFERENCE_COUNTS:
        return REFERENCE_COUNTS[stem]
    return _twin(stem).REFERENCE


def test_every_zoo_model_has_a_reference():
    assert set(_zoo_models()) == set(REFERENCE_COUNTS) | set(_twinned())


def test_every_twin_has_a_zoo_model_or_a_draft_spec():
    """A twin whose spec needs language nndsl does not have yet carries its draft in the README."""
    twins = {p.stem for p in TWINS.glob("*.py") if not p.stem.startswith("_")}
    readme = (TWINS / "README.md").read_text()
    for stem in sorted(twins - set(_zoo_models())):
        assert f"## {stem}\n" in readme, f"tests/twins/{stem}.py has neither specs/zoo/{stem}.nn nor a draft"


#: the sizes of the symbols in the inputs a test makes (a twin's ``inputs`` may choose others)
DEFAULT_SIZES = {"T": 9, "S": 7}


def _concrete(shape, sizes: dict[str, int]) -> tuple[int, ...]:
    dims = tuple(substitute(d, {Sym(k): v for k, v in sizes.items()}) for d in shape.dims)
    assert all(isinstance(d, int) for d in dims), f"unbound symbol in {shape}"
    return dims


def _sizes_of(model_ir, inputs) -> dict[str, int]:
    """The sizes the inputs give the symbols their declarations name as whole dimensions."""
    sizes: dict[str, int] = {}
    for declared, value in zip(model_ir.input_types, inputs):
        for dim, size in zip(declared.shape.dims, value.shape):
            for atom in dim.atoms() if hasattr(dim, "atoms") else ():
                if isinstance(atom, Sym) and substitute(dim, {atom: size}) == size:
                    sizes.setdefault(atom.name, size)
    return sizes


@pytest.fixture(scope="module")
def zoo(request) -> SimpleNamespace:
    """One zoo model, checked and built once for every check of it: the program, the model's IR,
    the built module (eval mode) and one batch of inputs (one sample for large models)."""
    stem = request.param
    spec = ZOO / f"{stem}.nn"
    result = nndsl.check_file(spec)
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    (model_ir,) = result.program.models
    torch.manual_seed(0)
    module = nndsl.build(spec).eval()
    batch = 1 if model_ir.param_count > 5_000_000 else 2
    twin = _twin(stem) if (TWINS / f"{stem}.py").exists() else None
    if twin is not None and hasattr(twin, "inputs"):
        inputs = tuple(twin.inputs(batch))
    else:
        inputs = tuple(
            torch.randint(0, 100, dims) if t.dtype == "int64" else torch.randn(dims)
            for t in model_ir.input_types
            for dims in [_concrete(t.shape, {"N": batch, **DEFAULT_SIZES})]
        )
    yield SimpleNamespace(
        stem=stem,
        program=result.program,
        model=model_ir,
        module=module,
        inputs=inputs,
        twin=twin,
        sizes=_sizes_of(model_ir, inputs),
    )


@pytest.mark.parametrize("zoo", _zoo_models(), indirect=True)
def test_zoo_model_runs_with_the_checked_shapes_and_reference_count(zoo):
    model_ir, module, sizes = zoo.model, zoo.module, zoo.sizes
    expected = _reference(zoo.stem)
    assert model_ir.param_count == expected
    assert sum(p.numel() for p in module.parameters()) == expected

    # every layer with a module, in the order the checker lists them, against what torch computes
    layers = [n for n in model_ir.layers if isinstance(n, LayerNode) and n.layer.has_module and not n.layer.helper]
    torch_names = {n.layer.torch_name() for n in layers}
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooked: list[str] = []
    handles = []
    for path, sub in module.named_modules():
        inside = any(path.startswith(h + ".") for h in hooked)
        if type(sub).__name__ in torch_names and type(sub).__module__.startswith("torch.nn") and not inside:
            hooked.append(path)
            handles.append(
                sub.register_forward_hook(
                    lambda m, _i, out: seen.append(
                        (type(m).__name__, tuple((out[0] if isinstance(out, tuple) else out).shape))
                    )
                )
            )
    try:
        with torch.no_grad():
            out = module(*zoo.inputs)
    finally:
        for handle in handles:
            handle.remove()
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape) for o in outs] == [_concrete(t.shape, sizes) for t in model_ir.outputs]

    assert [name for name, _ in seen] == [n.layer.torch_name() for n in layers]
    for (_, got), node in zip(seen, layers):
        if node.selector in (None, "output"):
            assert got == _concrete(node.output.shape, sizes), f"{node.text}: torch {got}, checker {node.output}"


def copy_by_position(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s state_dict into ``target``'s, entry by entry in order (names may differ,
    shapes may not). A tied weight appears under each of its names: every copy must agree."""
    got, want = list(source.state_dict().items()), list(target.state_dict().items())
    assert len(got) == len(want), (
        f"{len(got)} state_dict entries in the built module, {len(want)} in the twin: "
        f"{[k for k, _ in got]} vs {[k for k, _ in want]}"
    )
    with torch.no_grad():
        for (key, value), (twin_key, twin_value) in zip(got, want):
            assert value.shape == twin_value.shape and value.dtype == twin_value.dtype, (
                f"built {key} {tuple(value.shape)} {value.dtype} vs twin {twin_key} "
                f"{tuple(twin_value.shape)} {twin_value.dtype}"
            )
            twin_value.copy_(value)
        for (key, value), (twin_key, twin_value) in zip(got, target.state_dict().items()):
            assert torch.equal(value, twin_value), f"built {key} and twin {twin_key} differ after copying (tying?)"


def _vary(module: nn.Module) -> None:
    """Replace every constant float tensor (norms' ones and zeros, zeroed biases, running
    statistics, zero-initialised learned tensors) with random values, so a wrong mapping shows."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and value.numel() and bool((value == value.flatten()[0]).all()):
                noise = torch.rand(value.shape, generator=generator) + 0.5
                value.copy_(noise if key.endswith("running_var") else value + (noise - 1.0) * 0.6)


def _run(module: nn.Module, inputs, seed: int = 0):
    torch.manual_seed(seed)  # the same noise for randn_like in the spec's module and the twin
    with torch.no_grad():
        out = module(*inputs)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("zoo", _twinned(), indirect=True)
def test_zoo_model_equals_its_twin(zoo):
    twin_module = zoo.twin.build().eval()
    count = sum(p.numel() for p in twin_module.parameters())
    assert zoo.model.param_count == sum(p.numel() for p in zoo.module.parameters()) == count == zoo.twin.REFERENCE
    _vary(zoo.module)
    copy_by_position(zoo.module, twin_module)
    got, want = _run(zoo.module, zoo.inputs), _run(twin_module, zoo.inputs)
    assert len(got) == len(want)
    for ours, theirs in zip(got, want):
        torch.testing.assert_close(ours, theirs, rtol=RTOL, atol=ATOL)


#: above this many parameters a model's export is verified only by tests/test_onnx_export.py, which
#: verifies every zoo model's (a large one costs about 20 s each time)
LARGE = 5_000_000


def _onnx_cases() -> list[str]:
    return [stem for stem in _twinned() if _twin(stem).REFERENCE <= LARGE]


@pytest.mark.parametrize("zoo", _onnx_cases(), indirect=True)
def test_zoo_model_exports_to_onnx_verified(zoo):
    """The export of the built module's own weights, verified by nndsl against the same module."""
    from nndsl.backends.onnx_export import export_model
    from nndsl.backends.onnx_verify import verify
    from nndsl.backends.torch_build import build_model, module_weights

    pytest.importorskip("onnxruntime")
    weights = module_weights(zoo.module)
    exported = export_model(zoo.program, zoo.model, weights)
    verified = verify(
        zoo.program, zoo.model, exported.proto, weights, exported.output_names, module=zoo.module, build=build_model
    )
    assert verified.reference == "torch" and verified.max_diff <= verified.limit


def test_zoo_specs_fit_on_a_screen():
    for spec in ZOO.glob("*.nn"):
        assert len(spec.read_text().splitlines()) <= 45, spec.name  # a screen: 45 lines


def test_resnet_blocks_are_shared_by_import():
    result = nndsl.check_file(ZOO / "resnet_blocks.nn")
    assert result.ok and not result.program.models  # a library of blocks: nothing to build on its own
    for stem in ("resnet18", "resnet50"):
        assert 'from "resnet_blocks.nn" import' in (ZOO / f"{stem}.nn").read_text()
