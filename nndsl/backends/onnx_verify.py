"""Verification of an exported model: onnx.checker's full check of the graph, then onnxruntime
against torch on the same weights and random inputs, at two sizes of the symbolic dimensions.
An output that depends on a random operation (randn_like) is compared by shape, dtype and
finiteness only (``Verified.by_shape``): torch and onnxruntime draw its values independently.

The sizes: a batch size is 1 then 2, a sequence length 5 then 9, other sizes 32 (both runs) -
when the model accepts them. Where it does not (a symbol that is a pooled depth, a product fixed
by a Reshape), the sizes are searched: candidates in order of preference, judged by torch on the
meta device (shapes only, no arithmetic), so that every constraint the model has is honoured
without knowing it. When no candidate fits, ``NoSizes`` says what torch said at the preferred ones.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

import numpy as np

from nndsl import shapes
from nndsl.ir import ModelIR, Program
from nndsl.shapes import Sym

#: the largest difference allowed, relative to the output's magnitude (at least 1): float32 kernels
#: that add in another order differ by a few ulps of the largest value, not of each element
TOLERANCE = 1e-5
_BATCH = ("N", "B", "batch", "batch_size")
_SEQUENCE = ("T", "L", "S", "seq", "seq_len", "time", "steps")
#: the sizes a symbol is tried with, by role, in order of preference; the first run takes the first
#: accepted, the second run prefers ``_SECOND`` (batch and sequence vary between the runs)
_CANDIDATES = {
    "batch": (1, 2, 3, 4, 5, 6, 7, 8, 16),
    "sequence": (5, 9, 7, 3, 4, 6, 8, 2, 10, 12, 16, 1, 32),
    "other": (32, 64, 28, 16, 48, 96, 224, 8, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 24, 128, 256),
}
_SECOND = {"batch": 2, "sequence": 9}
_SEARCH_TRIES = 3000
#: the most values the verification's inputs may hold together (1 GiB of float32)
MAX_INPUT_VALUES = 2**28
_SEARCH_SECONDS = 5.0


class VerifyError(Exception):
    """The export failed a check; ``message`` says which and by how much."""


class NoSizes(VerifyError):
    """No sizes of the symbolic dimensions that the model accepts were found to verify with."""


class Case(NamedTuple):
    sizes: dict[str, int]  # symbol -> size
    max_diff: float
    limit: float = TOLERANCE  # the largest difference allowed at this case


class Verified(NamedTuple):
    cases: tuple[Case, ...]
    reference: str  # "torch" or "onnx.reference" (without torch)
    #: the outputs compared by shape, dtype and finiteness only, not by value: they depend on a
    #: random operation (randn_like), whose values torch and onnxruntime draw independently
    by_shape: tuple[str, ...] = ()

    @property
    def max_diff(self) -> float:
        return max((c.max_diff for c in self.cases), default=0.0)

    @property
    def limit(self) -> float:
        return min((c.limit for c in self.cases), default=TOLERANCE)


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


def random_outputs(model: ModelIR) -> tuple[int, ...]:
    """The positions of the model's outputs that depend on a random operation (``randn_like``):
    a value is random when a node computing it is random, holds a random node in its sub-graphs,
    or reads a random value (its sub-graphs' reads included)."""
    from nndsl import ir
    from nndsl.operators import REGISTRY

    def random_node(node) -> bool:
        return node.tag == "op" and node.op in REGISTRY and REGISTRY[node.op].random

    tainted: set[int] = set()
    for node in model.graph.nodes:
        inner = [node, *(n for g in ir.subgraphs(node) for n in ir.walk(g))]
        reads = {v for n in inner for v in n.reads}
        if any(random_node(n) for n in inner) or reads & tainted:
            tainted.update(node.writes)
    return tuple(i for i, v in enumerate(model.graph.outputs) if v in tainted)


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
        elif tensor.dtype == "bool":  # a mask
            mask = rng.integers(0, 2, size=dims).astype(bool)
            if mask.ndim and mask.shape[-1]:
                # the first key of every row attended: a row masked whole is undefined in torch
                # (NaN on MultiheadAttention's fast path, the output bias on its slow path)
                mask[..., 0] = False
            out[name] = mask
        else:
            out[name] = rng.standard_normal(dims, dtype=np.float32)
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
    *,
    structure=None,
    module=None,
    build: Callable | None = None,
) -> Verified:
    """onnx.checker's full check, then onnxruntime compared with torch (or, given ``reference_proto``,
    with ONNX's reference evaluator of that graph) at two sizes; raises VerifyError (NoSizes when no
    sizes the model accepts were found).

    ``proto`` is a ModelProto or the path of a written .onnx file (run from the file). ``structure``,
    when given, is what the checker checks instead of ``proto``: the same graph with the weights
    declared rather than included (``Exported.structure``), which spares it reading them.
    ``module`` is the torch module holding ``weights`` when the caller has it already; ``build``
    makes one, ``build(program, model, weights=None)`` (the PyTorch backend's ``build_model``): this
    backend compares with torch without depending on the backend that writes the module.
    """
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(proto if structure is None else structure, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise VerifyError(f"onnx.checker rejected the graph: {str(exc).splitlines()[0]}") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    graph = proto if isinstance(proto, str) else proto.SerializeToString()
    try:
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types vary by version
        raise VerifyError(f"onnxruntime cannot load the graph: {_first_line(exc)}") from None
    if reference_proto is None:
        reference = "torch"
        if build is None:
            raise ValueError("verifying against torch needs build=, the function that builds the module")
        run_reference = _torch_runner(program, model, weights, module, build)
        accepts = _meta_judge(program, model, run_reference, build)
    else:
        reference, run_reference = "onnx.reference", _onnx_reference(reference_proto)
        accepts = _judge(model, run_reference)
    by_shape = tuple(output_names[i] for i in random_outputs(model) if i < len(output_names))
    cases = []
    for sizes, expected, feeds in _runs(model, run_reference, accepts):
        try:
            got = session.run(list(output_names), feeds)
        except Exception as exc:  # noqa: BLE001
            raise VerifyError(f"onnxruntime failed at {_listed(sizes)}: {_first_line(exc)}") from None
        cases.append(_compare(output_names, expected, got, sizes, reference, by_shape))
    return Verified(tuple(cases), reference, by_shape)


def _exported_dtype(array: np.ndarray) -> str:
    """The dtype a torch result has in the exported graph (bool and other floats as float32)."""
    return str(array.dtype) if str(array.dtype) in ("float32", "int64", "int32") else "float32"


def _compare(output_names, expected, got, sizes: dict[str, int], reference: str, by_shape=()) -> Case:
    """The largest difference over the outputs, against a limit relative to their magnitude; the
    outputs ``by_shape`` names are compared by shape, dtype and finiteness only."""
    worst, limit = 0.0, float("inf")
    for name, want, have in zip(output_names, expected, got):
        if tuple(want.shape) != tuple(have.shape):
            raise VerifyError(
                f"output {name!r}: onnxruntime gave shape {list(have.shape)}, {reference} {list(want.shape)}"
                f" at {_listed(sizes)}"
            )
        if name in by_shape and _exported_dtype(want) != str(have.dtype):
            raise VerifyError(
                f"output {name!r}: onnxruntime gave dtype {have.dtype}, {reference} {want.dtype} at {_listed(sizes)}"
            )
        if not want.size:
            continue
        want64, have64 = want.astype(np.float64), have.astype(np.float64)
        if not (np.isfinite(want64).all() and np.isfinite(have64).all()):
            raise VerifyError(f"output {name!r} is not finite in onnxruntime or {reference} at {_listed(sizes)}")
        if name in by_shape:
            continue
        diff = float(np.max(np.abs(want64 - have64)))
        allowed = TOLERANCE * max(1.0, float(np.max(np.abs(want64))))
        if diff > allowed:
            raise VerifyError(
                f"onnxruntime and {reference} disagree by {diff:.3g} on {name!r} (more than {allowed:.3g}, "
                f"{TOLERANCE:g} of the output's magnitude) at {_listed(sizes)}"
            )
        worst, limit = max(worst, diff), min(limit, allowed)
    return Case(sizes, worst, TOLERANCE if limit == float("inf") else limit)


def _listed(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "the declared shape"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------- the sizes


def _runs(model: ModelIR, run, accepts) -> Iterator[tuple[dict[str, int], list[np.ndarray], dict]]:
    """(sizes, the reference's outputs, the inputs) for each verification run: one without symbolic
    sizes, else two, the second at other sizes when the model accepts any."""
    names = symbols(model)
    roles = [_role(n) for n in names]
    firsts = [_CANDIDATES[r] for r in roles]
    first = _run_at(model, run, accepts, names, firsts, exclude=None, seed=0)
    if first is None:
        raise NoSizes(_no_sizes_message(model, run, names, firsts))
    yield first
    if not names:
        return
    chosen = first[0]
    varying = any(r != "other" for r in roles)
    seconds = []
    for name, role, candidates in zip(names, roles, firsts):
        prefer = _SECOND.get(role, chosen[name] if varying else None)
        rest = [c for c in candidates if c != prefer and c != chosen[name]]
        tail = [] if prefer == chosen[name] else [chosen[name]]
        seconds.append(tuple(([prefer] if prefer is not None else []) + rest + tail))
    second = _run_at(model, run, accepts, names, seconds, exclude=chosen, seed=1)
    if second is not None:
        yield second


def _input_values(model: ModelIR, sizes: Mapping[str, int]) -> int:
    bindings = {Sym(k): v for k, v in sizes.items()}
    total = 0
    for tensor in model.input_types:
        count = 1
        for d in tensor.shape.dims:
            count *= int(shapes.substitute(d, bindings))
        total += count
    return total


def _run_at(model, run, accepts, names, lists, exclude, seed):
    """The reference run at the preferred sizes, else at the first sizes ``accepts`` in the search;
    never at sizes whose inputs hold more than MAX_INPUT_VALUES."""
    preferred = dict(zip(names, (c[0] for c in lists)))
    judge = accepts
    accepts = lambda sizes: _input_values(model, sizes) <= MAX_INPUT_VALUES and judge(sizes)  # noqa: E731
    if preferred != exclude and _input_values(model, preferred) <= MAX_INPUT_VALUES:
        feeds = random_inputs(model, preferred, seed)
        try:
            return preferred, run(feeds), feeds
        except Exception:  # noqa: BLE001 - sizes the model rejects: search for others
            pass
    found = _search(names, lists, accepts, exclude)
    if found is None:
        return None
    feeds = random_inputs(model, found, seed)
    try:
        return found, run(feeds), feeds
    except Exception as exc:  # noqa: BLE001 - accepted on the meta device, refused for real
        raise NoSizes(
            f"the sizes {_listed(found)} pass torch's shape checks, but running the model there fails: "
            f"{_first_line(exc)}"
        ) from None


def _search(names, lists, accepts, exclude) -> dict[str, int] | None:
    """The first assignment ``accepts``, in order of the candidates' summed ranks (so a symbol
    that must change moves alone first); bounded in tries and time."""
    deadline = time.monotonic() + _SEARCH_SECONDS
    for tries, values in enumerate(_assignments(lists)):
        sizes = dict(zip(names, values))
        if sizes != exclude and accepts(sizes):
            return sizes
        if tries >= _SEARCH_TRIES or time.monotonic() > deadline:
            return None
    return None


def _assignments(lists) -> Iterator[tuple[int, ...]]:
    bounds = [len(c) for c in lists]
    for total in range(sum(bounds) - len(bounds) + 1):
        for ranks in _ranks(total, bounds):
            yield tuple(c[r] for c, r in zip(lists, ranks))


def _ranks(total: int, bounds: list[int]) -> Iterator[tuple[int, ...]]:
    if not bounds:
        if total == 0:
            yield ()
        return
    for rank in range(min(total, bounds[0] - 1) + 1):
        for rest in _ranks(total - rank, bounds[1:]):
            yield (rank, *rest)


def _no_sizes_message(model, run, names, lists) -> str:
    preferred = dict(zip(names, (c[0] for c in lists)))
    values = _input_values(model, preferred)
    if values > MAX_INPUT_VALUES:
        where = f" at {_listed(preferred)}" if names else ""
        return (
            f"its inputs hold {values:,} values{where}, more than the verification allocates "
            f"({MAX_INPUT_VALUES:,}); export with verify=False"
        )
    try:
        run(random_inputs(model, preferred, seed=0))
        why = "it runs there, but the search was cut short"
    except Exception as exc:  # noqa: BLE001
        why = f"torch says: {_first_line(exc)}"
    tried = ", ".join(f"{n} in {list(c[:6])}{'...' if len(c) > 6 else ''}" for n, c in zip(names, lists))
    return (
        f"found no sizes for {', '.join(names)} that the model accepts (tried {tried}); at {_listed(preferred)} {why}"
    )


def _judge(model: ModelIR, run) -> Callable[[dict[str, int]], bool]:
    def accepts(sizes: dict[str, int]) -> bool:
        try:
            run(random_inputs(model, sizes, seed=99))
        except Exception:  # noqa: BLE001 - a size the model rejects
            return False
        return True

    return accepts


def _meta_judge(program: Program, model: ModelIR, run, build: Callable) -> Callable[[dict[str, int]], bool]:
    """Whether torch accepts the model at these sizes, judged on the meta device: every shape check
    runs, no arithmetic does, so trying many sizes of a large model costs little. Built lazily; a
    module that cannot be built there is judged by running ``run`` for real instead."""
    state: dict = {}

    def accepts(sizes: dict[str, int]) -> bool:
        import torch

        if "module" not in state:
            try:
                with torch.device("meta"):
                    state["module"] = build(program, model)
            except Exception:  # noqa: BLE001 - a layer that needs real memory to be built
                state["module"] = None
        if state["module"] is None:
            return _judge(model, run)(sizes)
        args = []
        for tensor in model.input_types:
            dims = [shapes.substitute(d, {Sym(k): v for k, v in sizes.items()}) for d in tensor.shape.dims]
            dtype = getattr(torch, tensor.dtype) if tensor.dtype in ("int64", "int32") else torch.float32
            args.append(torch.empty([int(d) for d in dims], dtype=dtype, device="meta"))
        try:
            with torch.no_grad():
                state["module"](*args)
        except Exception:  # noqa: BLE001 - sizes the model rejects
            return False
        return True

    return accepts


# ---------------------------------------------------------------- torch


def _torch_runner(program: Program, model: ModelIR, weights: Mapping[str, np.ndarray], module, build: Callable):
    import torch

    if module is None:
        module = build(program, model, weights)

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        # copies: a first layer with inplace=True would otherwise overwrite the feeds themselves
        with torch.no_grad():
            tensors = [torch.tensor(feeds[n]) for n in model.input_names]
            tensors = [t.bool() if d.dtype == "bool" else t for t, d in zip(tensors, model.input_types)]
            result = module(*tensors)
        results = result if isinstance(result, tuple) else (result,)
        return [r.detach().numpy() for r in results]  # a learned tensor returned as it is

    return run


def _onnx_reference(proto):
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(proto)

    def run(feeds):
        return [np.asarray(r) for r in evaluator.run(None, feeds)]

    return run
