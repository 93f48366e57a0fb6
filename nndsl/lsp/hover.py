"""Hover: what a layer call, operation, block use, value or input computes: its shapes, weights and
MACs (``nndsl summary``'s figures), and for a layer its signature and torch's documentation."""

from __future__ import annotations

import re

from nndsl.api import Result
from nndsl.diagnostics import Span
from nndsl.lsp import nodes
from nndsl.shapes import Dim

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def hover(result: Result, offset: int) -> tuple[str, Span] | None:
    """Markdown describing what is at ``offset`` of the checked text, and the span it describes."""
    word = word_at(result.source.text, offset)
    if word is not None:
        value = _value(result, offset, word) or _block_variable(result, offset, word)
        if value is not None:
            return value
    found = _node(result, offset)
    if found is not None:
        return found
    if word is not None:  # a layer name in a part the checker could not check
        from nndsl.layers import lookup

        layer = lookup(result.source.text[word.start : word.end])
        if layer is not None:
            return "\n\n".join(_layer_doc(layer)), word
    return None


def word_at(text: str, offset: int) -> Span | None:
    """The identifier at (or just before) ``offset``."""
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    found = _WORD.match(text, start)
    if found is None or found.end() < offset:
        return None
    return Span(found.start(), found.end())


def _number(d: Dim) -> str:
    return f"{d:,}" if isinstance(d, int) else str(d)


def _value(result: Result, offset: int, word: Span) -> tuple[str, Span] | None:
    """A model's input or named value under the cursor: its shape."""
    text = result.source.text
    name = text[word.start : word.end]
    if word.end < len(text) and text[word.end] == "(":
        return None  # a call
    for model in result.program.models if result.program else ():
        if not (model.span.start <= offset <= model.span.end):
            continue
        if name in model.input_names:
            i = model.input_names.index(name)
            return f"```nn\n{name}: {model.input_types[i]}\n```\ninput of model {model.name}", word
        for value, named in model.names.items():
            if named == name and value in model.types:
                return f"```nn\n{name}: {model.types[value]}\n```\nvalue of model {model.name}", word
    return None


def _block_variable(result: Result, offset: int, word: Span) -> tuple[str, Span] | None:
    """A block's parameter, input size or constant inside its definition: its value in each use."""
    text = result.source.text
    name = text[word.start : word.end]
    if result.module is None or (word.end < len(text) and text[word.end] == "("):
        return None
    block = next(
        (b for b in result.module.items if type(b).__name__ == "Block" and b.span.start <= offset < b.span.end), None
    )
    if block is None:
        return None
    values = []
    for _model, node in nodes.here(result):
        if node.tag == "block" and node.block == block.name.text and node.defined_in == result.source.name:
            for table in (node.args, node.dims, node.constants):
                if name in table and not hasattr(table[name], "param"):
                    values.append(table[name])
                    break
    if not values:
        return None
    shown = list(dict.fromkeys(repr(v) for v in values))
    uses = f" in {len(values)} uses" if len(values) > 1 else ""
    listed = ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "")
    return f"```nn\n{name} = {listed}\n```\nin block {block.name.text}{uses}", word


def _node(result: Result, offset: int) -> tuple[str, Span] | None:
    """The innermost checked node at ``offset``, with its shapes in each of its uses."""
    best: Span | None = None
    uses: list[tuple[object, object]] = []
    for model, node in nodes.here(result):
        span = node.span
        if not (span.start <= offset < span.end):
            continue
        if best is None or span.end - span.start < best.end - best.start:
            best, uses = span, [(model, node)]
        elif span == best:
            uses.append((model, node))
    if best is None:
        return None
    return _describe(uses), best


def _describe(uses: list[tuple[object, object]]) -> str:
    from nndsl.backends.summary_table import node_figures

    model, node = uses[0]
    parts = [f"```nn\n{' '.join(node.text.split())}\n```"] if getattr(node, "text", "") else []
    shapes = f"{nodes.input_text(model, node) or '()'} -> {nodes.output_text(model, node)}"
    if len(uses) > 1:
        distinct = {f"{nodes.input_text(m, n)} -> {nodes.output_text(m, n)}" for m, n in uses}
        shapes = f"{shapes} (first of {len(uses)} uses" + (", shapes differ)" if len(distinct) > 1 else ")")
    parts.append(f"**shape** `{shapes}`")
    params, cost = node_figures(model, node)
    parts.append(f"**parameters** {params:,} · **MACs** {_number(cost.total)}")
    if node.tag == "layer":
        parts += _layer_doc(node.layer)
    elif node.tag == "block":
        parts.append(f"block `{node.block}` defined at {node.defined_in}:{node.defined_line}")
    return "\n\n".join(parts)


def _layer_doc(layer) -> list[str]:
    """A layer's signature, its documentation line and torch's page for it."""
    from nndsl.check.binding import signature

    doc = (layer.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    out = [f"```python\n{signature(layer)}\n```", doc] if doc else [f"```python\n{signature(layer)}\n```"]
    if layer.has_module and layer.helper is None:
        name = layer.torch_name()
        out.append(f"[torch.nn.{name}](https://pytorch.org/docs/stable/generated/torch.nn.{name}.html)")
    return out
