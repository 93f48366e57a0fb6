"""``nndsl summary``: a model's layer table with parameters, MACs and activation memory, exact
and symbolic, computed from the checked IR alone (no torch).

One row per layer, tensor operation, block use, residual and repetition, in execution order;
containers deeper than ``depth`` are collapsed into their row (their totals include their
bodies). Sizes stay expressions in the model's symbols (N, H, W, T, ...) and are also evaluated
at the sizes the command line binds (``--batch``, ``--input``). The MAC rules are
``nndsl.costs``'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from nndsl.backends.summary import signature_text
from nndsl.costs import ZERO, Cost, Total, layer_cost, mul, numel, op_cost
from nndsl.ir import ModelIR, walk
from nndsl.shapes import Dim, Sym, TensorType, single_symbol, substitute

SCHEMA_VERSION = 1

#: bytes per element of each dtype nndsl knows
DTYPE_BYTES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "bool": 1}
PARAM_DTYPE = "float32"  # every layer's weights are built in torch's default dtype


class Row(NamedTuple):
    """One line of the table; ``macs`` = ``matmul_macs`` + ``other_macs``, all of them symbolic."""

    depth: int
    kind: str  # "layer", "op", "tensor", "block", "residual", "sum", "repeat", "for", "param", "shared", "tie"
    name: str
    where: str  # line:col in the spec ("" for a residual's sum)
    output: str  # the output shape(s), as the checker writes them
    params: int
    cost: Cost
    activation_bytes: Dim  # the output activation's bytes


def _bytes(t: TensorType) -> Dim:
    return mul(numel(t), DTYPE_BYTES.get(t.dtype, 4))


class _Sums:
    """A node's running totals: matrix-product MACs, other MACs, computed values' bytes."""

    __slots__ = ("matmul", "other", "bytes", "params")

    def __init__(self) -> None:
        self.matmul, self.other, self.bytes = Total(), Total(), Total()
        self.params = 0  # the weights held (a shared module's at its first use only)

    def add(self, cost: Cost, size: Dim) -> None:
        self.matmul.add(cost.matmul)
        self.other.add(cost.other)
        self.bytes.add(size)

    def merge(self, other: _Sums) -> None:
        self.matmul.merge(other.matmul)
        self.other.merge(other.other)
        self.bytes.merge(other.bytes)
        self.params += other.params

    def cost(self) -> Cost:
        return Cost(self.matmul.value(), self.other.value())


class _Rows:
    """The rows of one model's graph in one pass: each node's cost is computed once and added to
    its containers' totals; a container at ``max_depth`` is one row (its body is still counted)."""

    def __init__(self, model: ModelIR, source, max_depth: int) -> None:
        self.model = model
        self.source = source
        self.max_depth = max_depth
        self.rows: list[Row] = []
        self.blocks: dict = {}  # a block use's key -> its body's totals and rows (see _block_key)
        # figures of equal types and layers, computed once
        self.sizes: dict[TensorType, Dim] = {}
        self.texts: dict[TensorType, str] = {}
        self.costs: dict = {}
        self.again = 0  # > 0 inside a shared module applied again: its weights are the first use's

    def graph(self, graph, depth: int, emit: bool, sums: _Sums) -> None:
        for node in graph.nodes:
            self.node(node, depth, emit, sums)

    def _where(self, node) -> str:
        line, col = self.source.line_col(node.span.start)
        return f"{line}:{col}"

    @staticmethod
    def _text(text: str) -> str:
        return text if len(text) <= 60 else text[:57] + "..."

    def _type_bytes(self, t: TensorType) -> Dim:
        size = self.sizes.get(t)
        if size is None:
            size = self.sizes[t] = _bytes(t)
        return size

    def _size(self, node) -> Dim:
        """The bytes of the values the node defines."""
        types = self.model.types
        if len(node.writes) == 1:
            return self._type_bytes(types[node.writes[0]])
        total = Total()
        for v in node.writes:
            total.add(self._type_bytes(types[v]))
        return total.value()

    def _output(self, node) -> str:
        texts = self.texts
        out = []
        for v in node.writes:
            t = self.model.types[v]
            text = texts.get(t)
            if text is None:
                text = texts[t] = str(t)
            out.append(text)
        return ", ".join(out)

    def _layer_cost(self, node) -> Cost:
        """A layer's cost; equal layers (class, arguments, types) are costed once."""
        try:
            key = (node.layer, node.input, node.output, tuple(node.args.items()), tuple(node.extra_types.items()))
            cost = self.costs.get(key)
        except TypeError:  # an unhashable argument
            return layer_cost(node)
        if cost is None:
            cost = self.costs[key] = layer_cost(node)
        return cost

    def node(self, node, depth: int, emit: bool, sums: _Sums) -> None:
        """Add ``node``'s cost and bytes to ``sums``; with ``emit``, its row (and its body's)."""
        tag = node.tag
        if tag in ("layer", "op", "param"):
            if tag == "layer":
                cost, kind, params = self._layer_cost(node), "layer", node.params
            elif tag == "op":
                cost, kind, params = op_cost(node, self.model.types), "op", 0
            else:
                cost, kind, params = ZERO, "tensor", node.own_params
            if self.again:
                params = 0
            size = self._size(node)
            sums.add(cost, size)
            sums.params += params
            if emit:
                row = Row(depth, kind, self._text(node.text), self._where(node), self._output(node), params, cost, size)
                self.rows.append(row)
            return
        if tag == "residual" and not node.active:  # ``Residual(f) if cond else f``, cond false: just f
            self.graph(node.body, depth, emit, sums)
            return
        kind, name = self._container_name(node)
        index = len(self.rows)
        expand = emit and depth < self.max_depth
        again = getattr(node, "again", False)
        self.again += again
        memo = self._block_key(node, depth, expand)
        kept = self.blocks.get(memo) if memo is not None else None
        if kept is not None:  # an equal use of the block: the same body rows and totals
            inner, body_rows = kept
            self.rows.extend(body_rows)
        else:
            inner = _Sums()
            for graph in node.graphs:
                self.graph(graph, depth + 1, expand, inner)
            if memo is not None:
                self.blocks[memo] = (inner, self.rows[index:])
        self.again -= again
        size = self._size(node)
        if tag == "residual":
            sum_cost = Cost(other=numel(node.type))
            inner.add(sum_cost, size)
            if expand:
                self.rows.append(Row(depth + 1, "sum", "+ (residual sum)", "", self._output(node), 0, sum_cost, size))
        sums.merge(inner)
        if emit:
            row = Row(depth, kind, name, self._where(node), self._output(node), inner.params, inner.cost(), size)
            self.rows.insert(index, row)

    def _block_key(self, node, depth: int, expand: bool):
        """What a block use's body rows and totals depend on: two uses of a block with equal
        arguments and types (of every value the body computes) have equal rows and totals."""
        if node.tag != "block":
            return None
        types = self.model.types
        body = tuple(types[v] for inner in walk(node.body) for v in inner.writes)
        args = tuple((k, repr(v)) for k, v in node.args.items())  # repr: 1, 1.0 and True differ
        return (node.block, node.defined_in, args, node.types, body, depth, expand, self.again)

    def _container_name(self, node) -> tuple[str, str]:
        if node.tag == "block":
            args = ", ".join(f"{k}={v!r}" for k, v in node.args.items() if not hasattr(v, "param"))
            return "block", f"{node.block}({args})"
        if node.tag == "residual":
            return "residual", self._text(node.text)
        if node.kind == "shared":
            return "shared", f"{node.name} (shared, applied again)" if node.again else f"{node.name} (shared)"
        if node.kind == "param":
            return "param", f"{node.param} (sub-network argument)"
        return node.kind, self._text(node.text)


# -------------------------------------------------------------- bindings


def bindings_for(model: ModelIR, batch: int | None, input_type: TensorType | None) -> dict[Sym, int]:
    """The sizes the command line gives the model's symbols: ``--batch`` for N, and each plain
    symbol of the first input's declaration matched with a concrete ``--input`` size."""
    bound: dict[Sym, int] = {}
    if input_type is not None and model.input_types:
        declared = model.input.shape.dims
        for want, got in zip(declared, input_type.shape.dims):
            symbol = single_symbol(want)
            if symbol is not None and isinstance(got, int):
                bound[symbol] = got
    if "N" in symbols_of(model):
        if batch is not None:
            bound[Sym("N")] = batch
        else:
            bound.setdefault(Sym("N"), 1)  # torchinfo's and the usual batch when nothing says otherwise
    return bound


def _names(d, into: set[str]) -> None:
    """The names of the symbols a size depends on (inside floors too)."""
    if isinstance(d, int) or d is None:
        return
    for atom in d.atoms():
        if isinstance(atom, Sym):
            into.add(atom.name)
        else:
            _names(getattr(atom, "num", None) or getattr(atom, "base", None), into)


def symbols_of(model: ModelIR, *sizes: Dim) -> list[str]:
    """The symbols of the model's inputs and of ``sizes``, sorted."""
    names: set[str] = set()
    for t in model.input_types:
        for d in t.shape.dims:
            _names(d, names)
    for d in sizes:
        _names(d, names)
    return sorted(names)


def at(value: Dim, bound: Mapping[Sym, int]) -> int | None:
    """A size at the bound symbols, or None while a symbol is left free."""
    got = substitute(value, dict(bound))
    return got if isinstance(got, int) else None


# -------------------------------------------------------------- the summary


class Summary(NamedTuple):
    model: ModelIR
    rows: list[Row]
    bound: dict[Sym, int]
    totals: dict[str, Dim | None]  # every total, symbolic; input_bytes None for an input of unknown rank
    symbols: list[str]  # every symbol the figures depend on


def summarize(model: ModelIR, source, depth: int = 3, bound: Mapping[Sym, int] | None = None) -> Summary:
    """The rows and totals of one checked model."""
    visitor = _Rows(model, source, depth)
    sums = _Sums()
    visitor.graph(model.graph, 0, True, sums)
    for tie in model.ties:  # the tied weight is counted at the layer it is taken from
        line, col = source.line_col(tie.span.start)
        visitor.rows.append(Row(0, "tie", tie.text, f"{line}:{col}", "(tied)", -tie.size, ZERO, 0))
    cost = sums.cost()
    inputs = Total()
    for t in model.input_types:
        inputs.add(_bytes(t))
    # a bare chain checked without --input: its leading sizes are unknown
    input_bytes = None if any(t.shape.rest for t in model.input_types) else inputs.value()
    params = model.param_count
    totals: dict[str, Dim] = {
        "params": params,
        "trainable_params": params,
        "frozen_params": 0,
        "param_bytes": params * DTYPE_BYTES[PARAM_DTYPE],
        "macs": cost.total,
        "matmul_macs": cost.matmul,
        "other_macs": cost.other,
        "flops": mul(cost.total, 2),
        "activation_bytes": sums.bytes.value(),
        "input_bytes": input_bytes,
    }
    symbols = symbols_of(model, totals["macs"], totals["activation_bytes"])
    return Summary(model, visitor.rows, dict(bound or {}), totals, symbols)


# -------------------------------------------------------------- rendering


def _num(value: Dim, bound) -> str:
    """A number at the bindings (``1,234``), else the expression."""
    got = at(value, bound)
    return f"{got:,}" if got is not None else str(value)


def _human(n: int, unit: str = "") -> str:
    for size, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(n) >= size:
            return f"{n / size:.2f} {suffix}{unit}"
    return ""


def _bytes_text(n: int) -> str:
    for size, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= size:
            return f"{n / size:.2f} {suffix}"
    return ""


_TOTAL_LABELS = (
    ("params", "Parameters"),
    ("trainable_params", "  trainable"),
    ("frozen_params", "  frozen"),
    ("param_bytes", f"Parameter size ({PARAM_DTYPE})"),
    ("macs", "MACs"),
    ("matmul_macs", "  matrix products"),
    ("other_macs", "  other ops"),
    ("flops", "FLOPs (2 x MACs)"),
    ("activation_bytes", "Forward activations"),
    ("input_bytes", "Input size"),
)


def _bindings_text(s: Summary) -> str:
    """`` (at N=1; T free: give --input to bind)``, or nothing for a model without symbols."""
    free = [n for n in s.symbols if Sym(n) not in s.bound]
    parts = []
    if s.bound:
        parts.append("at " + ", ".join(f"{k.name}={v}" for k, v in sorted(s.bound.items())))
    if free:
        parts.append(f"{', '.join(free)} free: give --input to bind")
    return f" ({'; '.join(parts)})" if parts else ""


def _total_cells(s: Summary, key: str) -> tuple[str, str, str]:
    """(exact number or expression, human figure, the symbolic expression when there is one)."""
    value = s.totals[key]
    if value is None:
        return "unknown (the input's leading sizes are not given: use --input)", "", ""
    got = at(value, s.bound)
    expression = "" if isinstance(value, int) else str(value)
    if got is None:
        return str(value), "", expression
    human = _bytes_text(got) if key.endswith("bytes") else _human(got)
    return f"{got:,}", human, expression


def _table(s: Summary) -> tuple[list[str], list[tuple[str, ...]]]:
    header = ["layer", "where", "output", "params", "MACs", "activations"]
    shown: dict = {}  # a figure -> its text: equal figures (repeated blocks) are written once

    def num(value: Dim) -> str:
        try:
            text = shown.get(value)
        except TypeError:
            return _num(value, s.bound)
        if text is None:
            text = shown[value] = _num(value, s.bound)
        return text

    rows = [
        ("  " * r.depth + r.name, r.where, r.output, f"{r.params:,}", num(r.cost.total), num(r.activation_bytes))
        for r in s.rows
    ]
    return header, rows


def render_text(s: Summary, name: str) -> str:
    header, rows = _table(s)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    right = {3, 4, 5}

    def line(cells) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [f"{name}: {s.model.name}: {signature_text(s.model)}{_bindings_text(s)}", line(header)]
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in rows)
    out.append("")
    for key, label in _TOTAL_LABELS:
        exact, human, expression = _total_cells(s, key)
        extra = f"  ({human})" if human else ""
        if expression and expression != exact:
            extra += f"  = {expression}"
        out.append(f"{label + ':':<28}{exact}{extra}")
    return "\n".join(out)


def render_markdown(s: Summary, name: str) -> str:
    header, rows = _table(s)

    def cells(items) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in items) + " |"

    out = [f"### {s.model.name}", "", f"`{signature_text(s.model)}`{_bindings_text(s)}, from `{name}`", ""]
    out.append(cells(header))
    out.append("|" + "|".join(":---" if i < 3 else "---:" for i in range(len(header))) + "|")
    out.extend(cells([r[0].replace("  ", "&nbsp;&nbsp;") if r[0].startswith(" ") else r[0], *r[1:]]) for r in rows)
    out += ["", cells(["total", "value", "expression"]), "|:---|---:|:---|"]
    for key, label in _TOTAL_LABELS:
        exact, human, expression = _total_cells(s, key)
        out.append(
            cells([label.strip(), exact + (f" ({human})" if human else ""), f"`{expression}`" if expression else ""])
        )
    return "\n".join(out)


def _figure(value: Dim | None, bound) -> dict[str, Any]:
    """A size in JSON: its expression and its value at the bindings (null while symbols are free;
    ``"unknown"`` for a bare chain's input without --input)."""
    if value is None:
        return {"value": None, "expr": "unknown"}
    return {"value": at(value, bound), "expr": str(value)}


def summary_json(s: Summary) -> dict[str, Any]:
    bound = s.bound
    return {
        "name": s.model.name,
        "signature": signature_text(s.model),
        "bindings": {k.name: v for k, v in sorted(s.bound.items())},
        "symbols": s.symbols,
        "rows": [
            {
                "depth": r.depth,
                "kind": r.kind,
                "name": r.name,
                "where": r.where,
                "output": r.output,
                "params": r.params,
                "trainable_params": r.params,
                "frozen_params": 0,
                "macs": _figure(r.cost.total, bound),
                "matmul_macs": _figure(r.cost.matmul, bound),
                "other_macs": _figure(r.cost.other, bound),
                "activation_bytes": _figure(r.activation_bytes, bound),
            }
            for r in s.rows
        ],
        "totals": {
            key: value if key.endswith("params") or key == "param_bytes" else _figure(value, bound)
            for key, value in s.totals.items()
        },
    }


def report_json(file: str, summaries: list[Summary]) -> str:
    payload = {"version": SCHEMA_VERSION, "file": file, "models": [summary_json(s) for s in summaries]}
    return json.dumps(payload, indent=2)


# -------------------------------------------------------------- the command


def _fail(message: str) -> int:
    import sys

    print(f"nndsl summary: error: {message}", file=sys.stderr)
    return 2


def _parse_shape(text: str) -> TensorType | None:
    """``--input``'s shape (``[8, 3, 224, 224]``, ``long[2, 16]``), or None if it is not one."""
    from nndsl.check import input_type
    from nndsl.diagnostics import DiagnosticError, DiagnosticSink
    from nndsl.source import Source
    from nndsl.syntax import parse_shape

    source, sink = Source("--input", text), DiagnosticSink()
    try:
        shape = input_type(parse_shape(source), source, sink)
    except DiagnosticError:
        return None
    return None if shape is None or sink.has_errors else shape


def command(args, load_checked) -> int:
    """``nndsl summary``: usage errors are one line and exit 2, nothing printed on stdout;
    ``load_checked(path, input, color, consequence)`` is the command line's checked loading."""
    if args.depth < 0:
        return _fail(f"--depth must be 0 or more, got {args.depth}")
    if args.batch is not None and args.batch < 1:
        return _fail(f"--batch must be 1 or more, got {args.batch}")
    shape = None
    if args.shape is not None:
        shape = _parse_shape(args.shape)
        if shape is None:
            return _fail(f"--input {args.shape!r} is not a shape such as '[1, 3, 224, 224]'")
    result, code = load_checked(args.file, None, "auto", "no summary")
    if result is None:
        return code
    models = result.program.models
    if shape is not None and any(m.input_types and m.input.shape.rest for m in models):
        result, code = load_checked(args.file, shape, "auto", "no summary")  # a bare chain's input
        if result is None:
            return code
        models = result.program.models
    if not models:
        return _fail(f"{args.file} defines no model")
    if args.model is not None:
        chosen = [m for m in models if m.name == args.model]
        if not chosen:
            return _fail(f"{args.file} has no model {args.model!r} (it has {', '.join(m.name for m in models)})")
        models = chosen
    if shape is not None:
        for m in models:
            if m.input_types and m.input.shape.rank != shape.shape.rank:
                return _fail(f"--input {shape.shape} has rank {shape.shape.rank}, {m.name}'s input is {m.input}")
    summaries = [summarize(m, result.source, args.depth, bindings_for(m, args.batch, shape)) for m in models]
    name = result.source.name
    if args.format == "json":
        print(report_json(name, summaries))
    elif args.format == "markdown":
        print("\n\n".join(render_markdown(s, name) for s in summaries))
    else:
        print("\n\n".join(render_text(s, name) for s in summaries))
    return 0


def node_figures(model: ModelIR, node) -> tuple[int, Cost]:
    """One node's weights and MACs, its body's included, as its row of the table counts them
    (for an editor's hover)."""
    sums = _Sums()
    _Rows(model, None, 0).node(node, 0, False, sums)
    return sums.params, sums.cost()
