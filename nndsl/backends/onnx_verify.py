"""Verification of an exported model: onnx.checker's full check, then onnxruntime against torch
on the same weights and random inputs, at two batch sizes (and two sequence lengths)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from nndsl import shapes
from nndsl.ir import ModelIR, Program
from nndsl.shapes import Sym

TOLERANCE = 1e-5
#: the sizes the two verification runs give a symbolic dimension, by what its name suggests
_BATCH = ("N", "B", "batch", "batch_size")
_SEQUENCE = ("T", "L", "S", "seq", "seq_len", "time", "steps")
_CASES = {"batch": (1, 3), "sequence": (5, 9)}
_SPATIAL_CANDIDATES = (32, 64, 28, 16, 48, 96, 224, 8)


class VerifyError(Exception):
    """The export failed a check; ``message`` says which and by how much."""


class Case(NamedTuple):
    sizes: dict[str, int]  # symbol -> size
    max_diff: float


class Verified(NamedTuple):
    cases: tuple[Case, ...]
    reference: str  # "torch" or "onnx.reference" (without torch)

    @property
    def max_diff(self) -> float:
        return max((c.max_diff for c in self.cases), default=0.0)


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def symbols(model: ModelIR) -> list[str]:
    """The symbolic sizes of the model's inputs, in order of first appearance."""
    seen: list[str] = []
    for tensor in model.input_types:
        for d in tensor.shape.dims:
            atoms = d.atoms() if isinstance(d, shapes.Poly) else set()
            for atom in sorted(atoms, key=str):
                if isinstance(atom, Sym) and atom.name not in seen:
                    seen.append(atom.name)
    return seen


def _role(name: str) -> str:
    if name in _BATCH or name.lower() in ("batch", "batch_size"):
        return "batch"
    if name in _SEQUENCE or re.fullmatch(r"(seq|time|len)\w*", name.lower()):
        return "sequence"
    return "other"


def random_inputs(model: ModelIR, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
    """Inputs of the declared shapes; integer inputs hold indices valid for every layer reading them."""
    rng = np.random.default_rng(seed)
    out = {}
    high = _index_bound(model)
    for name, tensor in zip(model.input_names, model.input_types):
        bindings = {Sym(k): v for k, v in sizes.items()}
        dims = [shapes.substitute(d, bindings) for d in tensor.shape.dims]
        if tensor.dtype in ("int64", "int32"):
            out[name] = rng.integers(0, high, size=dims).astype(tensor.dtype)
        else:
            out[name] = rng.standard_normal(dims).astype(np.float32)
    return out


def _index_bound(model: ModelIR) -> int:
    counts = [n.args["num_embeddings"] for n in model.layers if n.layer.dsl_name() == "Embedding"]
    return min(counts) if counts else 2


def verify(
    program: Program,
    model: ModelIR,
    proto,
    weights: Mapping[str, np.ndarray],
    output_names: tuple[str, ...],
    reference_proto=None,
) -> Verified:
    """Full check, then two runs of onnxruntime compared element by element with torch (or, given
    ``reference_proto``, with ONNX's reference evaluator of that graph); raises VerifyError.

    ``proto`` is a ModelProto or the path of a written .onnx file (checked and run from the file).
    """
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise VerifyError(f"onnx.checker rejected the graph: {str(exc).splitlines()[0]}") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    graph = proto if isinstance(proto, str) else proto.SerializeToString()
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    if reference_proto is None:
        reference, run_reference = "torch", _torch_runner(program, model, weights)
    else:
        reference, run_reference = "onnx.reference", _onnx_reference(reference_proto)
    cases = []
    for index, sizes in enumerate(_case_sizes(model, run_reference)):
        feeds = random_inputs(model, sizes, seed=index)
        expected = run_reference(feeds)
        got = session.run(list(output_names), feeds)
        worst = 0.0
        for name, want, have in zip(output_names, expected, got):
            if tuple(want.shape) != tuple(have.shape):
                raise VerifyError(
                    f"output {name!r}: onnxruntime gave shape {list(have.shape)}, {reference} {list(want.shape)}"
                )
            if want.size:
                diff = float(np.max(np.abs(want.astype(np.float64) - have.astype(np.float64))))
                if not np.isfinite(diff):
                    raise VerifyError(f"output {name!r} is not finite in onnxruntime or {reference}")
                worst = max(worst, diff)
        if worst > TOLERANCE:
            listed = ", ".join(f"{k}={v}" for k, v in sizes.items())
            raise VerifyError(
                f"onnxruntime and {reference} disagree by {worst:.3g} (more than {TOLERANCE:g}) at {listed or 'the declared shape'}"
            )
        cases.append(Case(sizes, worst))
    return Verified(tuple(cases), reference)


def _case_sizes(model: ModelIR, run) -> list[dict[str, int]]:
    """Two assignments of the symbolic sizes: batch and sequence sizes differ between them; other
    sizes (an image's H and W) take the first candidate the model accepts."""
    names = symbols(model)
    cases = [{}, {}]
    others = []
    for name in names:
        role = _role(name)
        if role == "other":
            others.append(name)
        else:
            for case, size in zip(cases, _CASES[role]):
                case[name] = size
    if not names:
        return [{}]
    if not others:
        return cases
    accepted = (c for c in _SPATIAL_CANDIDATES if _accepts(model, run, {**cases[0], **dict.fromkeys(others, c)}))
    first = next(accepted, None)
    if first is None:
        listed = list(_SPATIAL_CANDIDATES)
        raise VerifyError(f"found no size for {', '.join(others)} that the model accepts among {listed}")
    # where nothing else varies between the runs, they take two accepted sizes (if there are two)
    second = next(accepted, first) if len(others) == len(names) else first
    return [{**cases[0], **dict.fromkeys(others, first)}, {**cases[1], **dict.fromkeys(others, second)}]


def _accepts(model: ModelIR, run, sizes: dict[str, int]) -> bool:
    """Whether the reference runs the model at these sizes (a rejected size raises there)."""
    try:
        run(random_inputs(model, sizes, seed=99))
    except Exception:  # noqa: BLE001 - a size the model rejects: the caller tries the next
        return False
    return True


def _torch_runner(program: Program, model: ModelIR, weights: Mapping[str, np.ndarray]):
    import torch

    module = build_torch_model(program, model, weights)

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        # copies: a first layer with inplace=True would otherwise overwrite the feeds themselves
        with torch.no_grad():
            result = module(*(torch.tensor(feeds[n]) for n in model.input_names))
        results = result if isinstance(result, tuple) else (result,)
        return [r.numpy() for r in results]

    return run


def build_torch_model(program: Program, model: ModelIR, weights: Mapping[str, np.ndarray] | None = None):
    """The emitted nn.Module in eval mode, holding ``weights`` when given."""
    import torch

    from nndsl.backends.torch_module import class_names, load_module

    namespace = load_module(program)
    module = namespace[class_names(program)[model.name]]()
    if weights is not None:
        state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
        module.load_state_dict(state, strict=True)
    return module.eval()


def fresh_weights(program: Program, model: ModelIR, seed: int = 0) -> dict[str, np.ndarray]:
    """torch's own initialisation of the emitted module, seeded: the weights of a fresh export."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_torch_model(program, model)
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _onnx_reference(proto):
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(proto)

    def run(feeds):
        return [np.asarray(r) for r in evaluator.run(None, feeds)]

    return run
