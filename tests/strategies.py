"""Hypothesis strategies for the differential tests: layer calls with input shapes, and torch's verdict on them.

``STRATEGIES[name]`` draws ``(call_text, input_shape, dtype)`` for the registered layer ``name``:
a call as a spec would write it and the shape of the tensor fed to it. Many draws are
configurations torch rejects (kernel larger than the input, groups that do not divide the
channels, the wrong rank, a channel mismatch, p outside [0, 1], ...), so both verdicts get
exercised. ``torch_outcome`` is the ground truth: it builds the module with ``torch.nn``
directly (never through nndsl) and runs it on a small CPU tensor in train mode; layers that are
tensor methods (Reshape, Permute, Mean, ...) call the method, and MultiheadAttention gets the
tensor as query, key and value, as nndsl emits it.

Deliberately not drawn, because nndsl differs from torch on purpose there:
- ``return_indices=True`` on pools: torch returns a tuple, which a chain cannot continue with;
- arguments to ``Identity``: torch ignores them, nndsl reports them as unknown;
- zero-sized layer arguments (``Linear(0, 5)``): nndsl requires positive sizes.

The second half widens every case to what a single float32 call leaves out; ``judge`` compares
the checker with torch for one of them (``None`` when they agree, else what differs):

- ``dtype``: the same call on float64 / float16 / bfloat16 / bool inputs; a floating input casts
  the torch module's parameters to its dtype (the declared dtype is the model's dtype);
- ``symbolic``: some input dims declared as symbols; where torch accepts the concrete shape the
  checker must accept the symbolic one and, its symbols given the concrete values, give torch's
  shape (where torch rejects, a symbolic answer may still be right for other values);
- ``zero``: one input dim of size 0. Judged one way and on shapes: where torch raises the checker
  must refuse, and where both accept the shapes agree. A checker that refuses what torch computes
  on an empty tensor (here and in a chain on an empty input) (``LayerNorm(0)``, a ``-1`` that 0 elements leave undetermined, a channel
  count of 0) is stricter on purpose (nndsl requires positive layer sizes): ``judge`` returns
  ``STRICTER`` for it, which the tests accept and the benchmark counts apart;
- ``inferred``: an inferable argument left out (``Linear(out_features=...)``, ``Conv2d(out_channels=
  ...)``, ``BatchNorm2d()``, ``LayerNorm()``, ``GroupNorm(g)``, ...), against torch given the
  size at that argument's place in the input;
- ``chain``: two to four layers in a row (inferred arguments, ``Residual``), run layer by layer
  (a ``Residual`` whose body changes the shape is not drawn: torch would broadcast ``x + body(x)``,
  nndsl refuses it on purpose, E208);
- ``graph``: models over one to three inputs of mixed dtypes with ``+ - * /`` (broadcasting,
  tensors and numbers), ``cat``, ``stack``, ``split``, ``chunk`` and several outputs.

torch's "not implemented for 'Half'" on CPU is a missing kernel, not a shape rule: such cases
are skipped (``Skip``), not judged.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, replace

import torch
from hypothesis import strategies as st

Case = tuple[str, tuple[int, ...], str]


# ---------------------------------------------------------------- building blocks


def _mostly(good: st.SearchStrategy, bad: st.SearchStrategy, weight: int = 3) -> st.SearchStrategy:
    """``good`` about ``weight`` times as often as ``bad`` (``one_of`` would weigh them equally)."""
    return st.integers(0, weight).flatmap(lambda i: good if i < weight else bad)


def _size(n: int, lo: int, hi: int) -> st.SearchStrategy:
    """An int or an n-tuple of ints (torch's ``_size_n_t``)."""
    one = st.integers(lo, hi)
    return st.one_of(one, st.tuples(*[one] * n))


def _render(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_render(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def call(name: str, *args, selector: str | None = None, **kwargs) -> str:
    """The spec text of a layer call; every value is a literal the DSL and Python both read."""
    parts = [_render(a) for a in args] + [f"{k}={_render(v)}" for k, v in kwargs.items()]
    text = f"{name}({', '.join(parts)})"
    return f"{text}.{selector}" if selector else text


@st.composite
def _options(draw, **choices: st.SearchStrategy) -> dict:
    """Each optional keyword is left out about half the time, so defaults get exercised too."""
    return {k: draw(s) for k, s in choices.items() if draw(st.booleans())}


@st.composite
def _shape(draw, ranks, lo: int = 1, hi: int = 4, any_rank=range(0, 6)) -> list[int]:
    """A shape of one of ``ranks`` mostly, else of any rank in ``any_rank``."""
    rank = draw(_mostly(st.sampled_from(tuple(ranks)), st.sampled_from(tuple(any_rank)), 5))
    return [draw(st.integers(lo, hi)) for _ in range(rank)]


def _fix(draw, shape: list[int], index: int, value: int) -> None:
    """Mostly set ``shape[index]`` to ``value`` (the size the layer wants); else leave it random."""
    if value >= 1 and -len(shape) <= index < len(shape) and draw(_mostly(st.just(True), st.just(False))):
        shape[index] = value


def _case(text: str, shape, dtype: str = "float32") -> Case:
    return text, tuple(shape), dtype


# ---------------------------------------------------------------- per family


@st.composite
def _conv(draw, name: str, n: int, transpose: bool) -> Case:
    c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kernel = draw(_mostly(_mostly(_size(n, 1, 3), _size(n, 1, 5)), st.sampled_from([0, (2,) * (n + 1)]), 6))
    groups = _mostly(st.just(1), st.sampled_from([2, 3]), 1)
    if transpose:
        padding = _mostly(_size(n, 0, 2), st.sampled_from(["same", -1]), 6)
        kwargs = draw(
            _options(
                stride=_mostly(_size(n, 1, 3), st.just(0), 6),
                padding=padding,
                output_padding=_size(n, 0, 2),
                groups=groups,
                bias=st.booleans(),
                # not dilation=0: torch's transposed convolutions lack the dilation > 0 check that
                # Conv has and compute a shape anyway; nndsl refuses it as Conv does
                dilation=_size(n, 1, 2),
                padding_mode=_mostly(st.just("zeros"), st.just("reflect"), 6),
            )
        )
    else:
        padding = _mostly(_size(n, 0, 2), st.sampled_from(["same", "valid", "full", -1]), 2)
        kwargs = draw(
            _options(
                stride=_mostly(_size(n, 1, 3), st.just(0), 6),
                padding=padding,
                dilation=_mostly(_size(n, 1, 2), st.just(0), 6),
                groups=groups,
                bias=st.booleans(),
                padding_mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
            )
        )
        if kwargs.get("padding") == -1:
            # not with a non-zeros padding_mode: torch's F.pad then crops instead of refusing the
            # negative padding; nndsl refuses negative padding in every mode
            kwargs.pop("padding_mode", None)
    shape = draw(_shape((n + 2, n + 1), hi=7 if n < 3 else 5, any_rank=(n, n + 3)))
    _fix(draw, shape, -(n + 1), c_in)
    return _case(call(name, c_in, c_out, kernel, **kwargs), shape)


@st.composite
def _pool(draw, name: str, n: int, kind: str) -> Case:
    choices = {
        "stride": _mostly(st.one_of(_size(n, 1, 3), st.none()), st.just(0), 6),
        "padding": _mostly(_size(n, 0, 2), st.just(-1), 6),
        "ceil_mode": st.booleans(),
    }
    if kind == "max":
        choices["dilation"] = _mostly(_size(n, 1, 3), st.just(0), 6)
    else:
        choices["count_include_pad"] = st.booleans()
        # AvgPool1d has no divisor_override: torch and nndsl must both refuse it
        choices["divisor_override"] = _mostly(st.integers(1, 3), st.one_of(st.just(0), st.none()), 3)
    kwargs = draw(_options(**choices))
    kernel = draw(_mostly(_mostly(_size(n, 1, 3), _size(n, 1, 5)), st.just(0), 8))
    shape = draw(_shape((n + 2, n + 1), hi=7 if n < 3 else 5, any_rank=(n, n + 3)))
    return _case(call(name, kernel, **kwargs), shape)


@st.composite
def _adaptive(draw, name: str, n: int) -> Case:
    one = st.one_of(st.integers(0, 4), st.none())
    size = draw(
        _mostly(st.one_of(st.integers(0, 4), st.tuples(*[one] * n)), st.sampled_from([-1, None, (2,) * (n + 1)]))
    )
    shape = draw(_shape((n + 2, n + 1), hi=6, any_rank=(n, n + 3)))
    return _case(call(name, size), shape)


#: eps values of the norms: torch's batch norm refuses 0 in training, the others take it
_EPS = _mostly(st.sampled_from([1e-5, 1e-3, 0.1]), st.sampled_from([0.0, 0, 1.0]), 4)


@st.composite
def _batchnorm(draw, name: str, ranks: tuple[int, ...]) -> Case:
    c = draw(st.integers(1, 4))
    kwargs = draw(
        _options(
            eps=_EPS,
            momentum=st.sampled_from([None, 0.1, 0.5]),
            affine=st.booleans(),
            track_running_stats=st.booleans(),
            bias=st.booleans(),
        )
    )
    shape = draw(_shape(ranks, hi=3, any_rank=range(0, 6)))
    _fix(draw, shape, 1, c)
    return _case(call(name, c, **kwargs), shape)


@st.composite
def _layernorm(draw) -> Case:
    dims = st.integers(1, 4)
    normalized = draw(_mostly(st.one_of(dims, st.lists(dims, min_size=1, max_size=3).map(tuple)), st.just(0), 8))
    kwargs = draw(_options(eps=_EPS, elementwise_affine=st.booleans(), bias=st.booleans()))
    ns = normalized if isinstance(normalized, tuple) else (normalized,)
    shape = draw(_shape(range(len(ns), len(ns) + 3), any_rank=range(0, 5)))
    if len(shape) >= len(ns) and min(ns) >= 1 and draw(_mostly(st.just(True), st.just(False))):
        shape[len(shape) - len(ns) :] = ns
    return _case(call("LayerNorm", normalized, **kwargs), shape)


@st.composite
def _groupnorm(draw) -> Case:
    groups = draw(st.integers(1, 4))
    channels = draw(_mostly(st.integers(1, 4).map(lambda k: k * groups), st.integers(1, 8)))
    kwargs = draw(_options(eps=_EPS, affine=st.booleans(), bias=st.booleans()))
    shape = draw(_shape((2, 3, 4), hi=3, any_rank=(0, 1, 5)))
    _fix(draw, shape, 1, channels)
    return _case(call("GroupNorm", groups, channels, **kwargs), shape)


@st.composite
def _rmsnorm(draw) -> Case:
    dims = st.integers(1, 4)
    normalized = draw(_mostly(st.one_of(dims, st.lists(dims, min_size=1, max_size=3).map(tuple)), st.just(0), 8))
    kwargs = draw(_options(eps=st.one_of(st.none(), _EPS), elementwise_affine=st.booleans()))
    ns = normalized if isinstance(normalized, tuple) else (normalized,)
    shape = draw(_shape(range(len(ns), len(ns) + 3), any_rank=range(0, 5)))
    if len(shape) >= len(ns) and min(ns) >= 1 and draw(_mostly(st.just(True), st.just(False))):
        shape[len(shape) - len(ns) :] = ns
    return _case(call("RMSNorm", normalized, **kwargs), shape)


@st.composite
def _lrn(draw) -> Case:
    size = draw(_mostly(st.integers(1, 5), st.just(0), 8))
    kwargs = draw(_options(alpha=st.sampled_from([1e-4, 0.5]), beta=st.sampled_from([0.75, 1.0]), k=_FLOATS))
    shape = draw(_shape((3, 4, 5), hi=4, any_rank=range(0, 6)))
    return _case(call("LocalResponseNorm", size, **kwargs), shape)


@st.composite
def _instancenorm(draw, n: int = 2) -> Case:
    c = draw(st.integers(1, 4))
    kwargs = draw(
        _options(
            eps=_EPS,
            momentum=st.sampled_from([None, 0.1]),
            affine=st.booleans(),
            track_running_stats=st.booleans(),
            bias=st.booleans(),
        )
    )
    shape = draw(_shape((n + 1, n + 2), hi=3, any_rank=range(0, 6)))
    _fix(draw, shape, -n - 1, c)
    return _case(call(f"InstanceNorm{n}d", c, **kwargs), shape)


_PROBS = st.sampled_from([0.0, 0.2, 0.5, 1.0, 0, 1, -0.1, 1.5])


@st.composite
def _dropout(draw, name: str) -> Case:
    kwargs = draw(_options(p=_PROBS, inplace=st.booleans()))
    shape = draw(_shape(range(0, 6), hi=3))
    return _case(call(name, **kwargs), shape)


_FLOATS = st.sampled_from([-1.0, -0.5, 0.0, 0.01, 0.5, 1.0, 2.0, 20.0])


@st.composite
def _elementwise(draw, name: str, **choices: st.SearchStrategy) -> Case:
    kwargs = draw(_options(**choices))
    shape = draw(_shape(range(0, 5), hi=3))
    text = call(name, **kwargs) if kwargs or draw(st.booleans()) else name
    return _case(text, shape)


@st.composite
def _threshold(draw) -> Case:
    kwargs = draw(_options(inplace=st.booleans()))
    shape = draw(_shape(range(0, 5), hi=3))
    return _case(call("Threshold", draw(_FLOATS), draw(_FLOATS), **kwargs), shape)


@st.composite
def _glu(draw) -> Case:
    shape = draw(_shape(range(1, 5), hi=4, any_rank=(0,)))
    span = max(len(shape), 1)
    kwargs = draw(_options(dim=_mostly(st.integers(-span, span - 1), st.sampled_from([-span - 1, span]), 6)))
    return _case(call("GLU", **kwargs) if kwargs or draw(st.booleans()) else "GLU", shape)


@st.composite
def _prelu(draw) -> Case:
    kwargs = draw(_options(num_parameters=_mostly(st.integers(1, 4), st.just(0), 8), init=_FLOATS))
    shape = draw(_shape(range(0, 5), hi=4))
    n = kwargs.get("num_parameters", 1)
    _fix(draw, shape, 1 if len(shape) >= 2 else 0, n)
    return _case(call("PReLU", **kwargs), shape)


@st.composite
def _softmax(draw, name: str) -> Case:
    kwargs = draw(_options(dim=st.one_of(st.integers(-5, 4), st.none())))
    shape = draw(_shape(range(0, 5), hi=3))
    text = call(name, **kwargs) if kwargs or draw(st.booleans()) else name
    return _case(text, shape)


@st.composite
def _linear(draw) -> Case:
    n_in, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kwargs = draw(_options(bias=st.booleans()))
    shape = draw(_shape(range(1, 4), hi=5, any_rank=(0,)))
    _fix(draw, shape, -1, n_in)
    return _case(call("Linear", n_in, n_out, **kwargs), shape)


@st.composite
def _identity(draw) -> Case:
    text = draw(st.sampled_from(["Identity", "Identity()"]))
    return _case(text, draw(_shape(range(0, 5), hi=3)))


@st.composite
def _flatten(draw) -> Case:
    dims = st.integers(-4, 4)
    args = draw(st.one_of(st.just(()), st.tuples(dims), st.tuples(dims, dims)))
    shape = draw(_shape(range(0, 5), hi=3))
    return _case(call("Flatten", *args), shape)


@st.composite
def _unflatten(draw) -> Case:
    shape = draw(_shape(range(1, 4), hi=4, any_rank=(0,)))
    rank = len(shape)
    dim = draw(_mostly(st.integers(-max(rank, 1), max(rank, 1) - 1), st.integers(-rank - 1, rank), 5))
    parts = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    hole = draw(st.one_of(st.none(), st.integers(0, len(parts) - 1)))
    if hole is not None:
        parts[hole] = -1
    sizes = tuple(parts)
    if -len(shape) <= dim < len(shape) and draw(_mostly(st.just(True), st.just(False))):
        product = 1
        for p in parts:
            product *= p if p != -1 else draw(st.integers(1, 3))
        shape[dim] = product
    bad = st.sampled_from([3, (-1, -1), (0, 2), (-2, 2), ()])
    sizes = draw(_mostly(st.just(sizes), bad, 8))
    return _case(call("Unflatten", dim, sizes), shape)


@st.composite
def _embedding(draw) -> Case:
    num = draw(st.integers(1, 6))
    kwargs = draw(
        _options(
            padding_idx=_mostly(st.integers(-num, num - 1), st.integers(-8, 8)),
            max_norm=st.sampled_from([None, 1.0]),
            norm_type=st.just(1.0),
            scale_grad_by_freq=st.booleans(),
            sparse=st.booleans(),
        )
    )
    shape = draw(_shape(range(0, 4), hi=3, any_rank=(0,)))
    dtype = draw(_mostly(st.sampled_from(["int64", "int32"]), st.just("float32")))
    return _case(call("Embedding", num, draw(st.integers(1, 4)), **kwargs), shape, dtype)


@st.composite
def _recurrent(draw, name: str) -> Case:
    n_in, hidden = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    choices = {
        "num_layers": _mostly(st.integers(1, 3), st.just(0), 8),
        "bias": st.booleans(),
        "batch_first": st.booleans(),
        "dropout": _mostly(st.sampled_from([0.0, 0.5]), st.just(1.5)),
        "bidirectional": st.booleans(),
    }
    if name == "RNN":
        choices["nonlinearity"] = _mostly(st.sampled_from(["tanh", "relu"]), st.just("sigmoid"))
    if name == "LSTM":
        choices["proj_size"] = st.integers(0, 4)
    kwargs = draw(_options(**choices))
    if name != "LSTM" and draw(_mostly(st.just(False), st.just(True), 5)):
        # proj_size is LSTM-only: torch and nndsl must both refuse it on RNN and GRU
        kwargs["proj_size"] = draw(st.integers(0, 2))
    selectors = st.sampled_from([None, "last", "hidden", "h_n"])
    selector = draw(_mostly(selectors, st.just("c_n"), 6 if name != "LSTM" else 3))
    shape = draw(_shape((3, 2), hi=3, any_rank=(1, 4)))
    _fix(draw, shape, -1, n_in)
    if selector == "last" and kwargs.get("batch_first") and len(shape) == 2:
        # Not drawn: on an unbatched input out[:, -1] takes the last feature of every step, not the
        # last step, so nndsl refuses .last there although torch would index happily.
        selector = None
    return _case(call(name, n_in, hidden, selector=selector, **kwargs), shape)


_SCALES = st.sampled_from([0.3, 0.5, 1, 1.5, 2, 2.5, 3])


@st.composite
def _upsample(draw) -> Case:
    mode = draw(st.sampled_from(["nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact", "area"]))
    ranks = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
    shape = draw(_shape((ranks.get(mode, 4), 3, 4, 5), hi=4, any_rank=(1, 2, 6)))
    n = max(len(shape) - 2, 1)
    kwargs: dict = {}
    which = draw(_mostly(st.sampled_from(["size", "scale_factor"]), st.sampled_from(["both", "neither"])))
    if which in ("size", "both"):
        kwargs["size"] = draw(_mostly(st.one_of(st.integers(1, 6), st.tuples(*[st.integers(1, 6)] * n)), st.just(0)))
    if which in ("scale_factor", "both"):
        kwargs["scale_factor"] = draw(_mostly(st.one_of(_SCALES, st.tuples(*[_SCALES] * n)), st.just(0)))
    kwargs["mode"] = mode
    kwargs.update(draw(_options(align_corners=st.booleans(), recompute_scale_factor=st.booleans())))
    return _case(call("Upsample", **kwargs), shape)


@st.composite
def _upsampling(draw, name: str) -> Case:
    shape = draw(_shape((4, 3, 5), hi=4, any_rank=(1, 2, 6)))
    n = max(len(shape) - 2, 1)
    size = _mostly(st.one_of(st.integers(1, 6), st.tuples(*[st.integers(1, 6)] * n)), st.just(0))
    scale = _mostly(st.one_of(_SCALES, st.tuples(*[_SCALES] * n)), st.just(0))
    kwargs = draw(_options(size=size, scale_factor=scale))
    return _case(call(name, **kwargs), shape)


def _block_options(draw) -> dict:
    return draw(_options(dilation=_size(2, 1, 2), padding=_size(2, 0, 1), stride=_size(2, 1, 2)))


@st.composite
def _unfold(draw) -> Case:
    kernel = draw(_size(2, 1, 3))
    kwargs = _block_options(draw)
    shape = draw(_shape((3, 4), hi=5, any_rank=(2, 5)))
    return _case(call("Unfold", kernel, **kwargs), shape)


@st.composite
def _fold(draw) -> Case:
    kernel = draw(_size(2, 1, 2))
    out = draw(_size(2, 1, 5))
    kwargs = _block_options(draw)
    full = {"dilation": 1, "padding": 0, "stride": 1, **kwargs}
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    blocks = 1
    for o, k, d, p, st_ in zip(
        pair(out), pair(kernel), pair(full["dilation"]), pair(full["padding"]), pair(full["stride"])
    ):
        blocks *= max((o + 2 * p - d * (k - 1) - 1) // st_ + 1, 0)
    positions = pair(kernel)[0] * pair(kernel)[1]
    shape = draw(_shape((2, 3), hi=4, any_rank=(1, 4)))
    _fix(draw, shape, -2, draw(st.integers(1, 2)) * positions)
    _fix(draw, shape, -1, blocks)
    return _case(call("Fold", out, kernel, **kwargs), shape)


@st.composite
def _zeropad(draw) -> Case:
    pad = st.integers(-2, 3)
    padding = draw(_mostly(st.one_of(pad, st.tuples(pad, pad, pad, pad)), st.tuples(pad, pad)))
    shape = draw(_shape((3, 4), hi=4, any_rank=(1, 2, 5)))
    return _case(call("ZeroPad2d", padding), shape)


@st.composite
def _pad(draw, name: str, n: int, mode: str) -> Case:
    # circular padding takes no crops in nndsl (torch's shapes for them follow no rule)
    pad = st.integers(0 if mode == "circular" else -2, 3)
    pairs = st.integers(1, 3).flatmap(lambda k: st.tuples(*[pad] * (2 * k)))
    padding = draw(_mostly(st.one_of(pad, st.tuples(*[pad] * (2 * n))), pairs))
    shape = draw(_shape((n + 1, n + 2), hi=4, any_rank=range(0, 6)))
    value = (draw(st.sampled_from([0.0, 1.5, -2.0])),) if name.startswith("Constant") else ()
    return _case(call(name, padding, *value), shape)


@st.composite
def _stochastic_depth(draw, name: str) -> Case:
    p = draw(_PROBS)
    mode = draw(_mostly(st.sampled_from(["row", "batch"]), st.just("column"), 8))
    shape = draw(_shape(range(0, 5), hi=3))
    if name == "DropPath":
        return _case(call(name, **draw(_options(p=st.just(p), mode=st.just(mode)))), shape)
    return _case(call(name, p, mode), shape)


@st.composite
def _pixelshuffle(draw) -> Case:
    r = draw(_mostly(st.integers(1, 3), st.just(0), 8))
    shape = draw(_shape((3, 4), hi=4, any_rank=(2, 5)))
    _fix(draw, shape, -3, draw(st.integers(0, 2)) * r * r)
    return _case(call("PixelShuffle", r), shape)


@st.composite
def _pixelunshuffle(draw) -> Case:
    r = draw(_mostly(st.integers(1, 3), st.just(0), 8))
    shape = draw(_shape((3, 4), hi=4, any_rank=(2, 5)))
    for index in (-1, -2):
        _fix(draw, shape, index, draw(st.integers(0, 2)) * r)
    return _case(call("PixelUnshuffle", r), shape)


@st.composite
def _channelshuffle(draw) -> Case:
    groups = draw(_mostly(st.integers(1, 3), st.just(0), 8))
    shape = draw(_shape((3, 4), hi=4, any_rank=(2, 5)))
    _fix(draw, shape, 1, draw(st.integers(0, 2)) * groups)
    return _case(call("ChannelShuffle", groups), shape)


@st.composite
def _attention(draw, name: str) -> Case:
    heads = draw(st.integers(1, 4))
    embed = draw(_mostly(st.integers(1, 3).map(lambda k: k * heads), st.integers(1, 8)))
    shared = {"dropout": _PROBS, "batch_first": st.booleans(), "bias": st.booleans()}
    if name == "MultiheadAttention":
        other = st.one_of(st.none(), st.just(embed), st.integers(1, 8))
        kwargs = draw(
            _options(**shared, add_bias_kv=st.booleans(), add_zero_attn=st.booleans(), kdim=other, vdim=other)
        )
    else:
        kwargs = draw(
            _options(
                **shared,
                dim_feedforward=st.integers(1, 8),
                activation=_mostly(st.sampled_from(["relu", "gelu"]), st.just("tanh")),
                layer_norm_eps=st.sampled_from([1e-5, 1e-3]),
                norm_first=st.booleans(),
            )
        )
    shape = draw(_shape((2, 3), hi=4, any_rank=(1, 4)))
    _fix(draw, shape, -1, embed)
    return _case(call(name, embed, heads, **kwargs), shape)


@st.composite
def _reshape(draw, name: str) -> Case:
    shape = draw(_shape(range(0, 5), hi=4))
    numel = 1
    for d in shape:
        numel *= d
    sizes = draw(st.lists(st.integers(1, 4), max_size=3))
    known = 1
    for s in sizes:
        known *= s
    if numel % known == 0 and draw(_mostly(st.just(True), st.just(False))):
        # complete the sizes to the input's element count, written out or as -1
        sizes.insert(draw(st.integers(0, len(sizes))), draw(st.sampled_from([numel // known, -1])))
    target = draw(_mostly(st.just(tuple(sizes)), st.sampled_from([(-1, -1), (0, -1), (-2, 4), (0,)]), 8))
    if len(target) == 1 and draw(st.booleans()):
        target = target[0]  # written as one int, as x.reshape(-1)
    return _case(call(name, target), shape)


def _dims(rank: int, n: int) -> st.SearchStrategy:
    """n distinct dims for a rank-``rank`` input, either sign; sometimes one out of range or repeated."""
    span = max(rank, 1)  # a 0-D input takes dims 0 and -1
    good = st.lists(st.integers(0, span - 1), min_size=min(n, span), max_size=min(n, span), unique=True)
    signed = good.flatmap(lambda ds: st.tuples(*[st.sampled_from([d, d - span]) for d in ds]).map(list))
    wrong = st.lists(
        _mostly(st.integers(-span, span - 1), st.sampled_from([-span - 1, span, span + 1]), 2), min_size=n, max_size=n
    )
    return _mostly(signed, wrong, 4)


@st.composite
def _permute(draw) -> Case:
    shape = draw(_shape(range(0, 5), hi=4))
    rank = len(shape)
    order = list(draw(st.permutations(range(rank))))
    order = [d - rank if draw(st.booleans()) else d for d in order]  # negative dims count from the end
    bad = _dims(rank, draw(st.integers(0, 5)))
    dims = draw(_mostly(st.just(order), bad, 3))
    return _case(call("Permute", tuple(dims)), shape)


@st.composite
def _transpose(draw) -> Case:
    shape = draw(_shape(range(0, 5), hi=4))
    span = max(len(shape), 1)
    dim = _mostly(st.integers(-span, span - 1), st.sampled_from([-span - 1, span]), 6)
    return _case(call("Transpose", draw(dim), draw(dim)), shape)


@st.composite
def _reduction(draw, name: str) -> Case:
    shape = draw(_shape(range(0, 5), hi=3))
    dims = tuple(draw(_dims(len(shape), draw(st.integers(0, 3)))))
    dim = dims[0] if len(dims) == 1 and draw(st.booleans()) else dims
    kwargs = draw(_options(keepdim=st.booleans()))
    return _case(call(name, dim, **kwargs), shape)


@st.composite
def _squeeze(draw) -> Case:
    shape = draw(_shape(range(0, 5), hi=2))  # many dims of size 1
    dims = tuple(draw(_dims(len(shape), draw(st.integers(0, 3)))))
    dim = dims[0] if len(dims) == 1 and draw(st.booleans()) else dims
    return _case(call("Squeeze", dim), shape)


@st.composite
def _unsqueeze(draw) -> Case:
    shape = draw(_shape(range(0, 5), hi=3))
    rank = len(shape)
    dim = draw(_mostly(st.integers(-rank - 1, rank), st.sampled_from([-rank - 2, rank + 1]), 6))
    return _case(call("Unsqueeze", dim), shape)


STRATEGIES: dict[str, st.SearchStrategy[Case]] = {
    **{f"Conv{n}d": _conv(f"Conv{n}d", n, False) for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": _conv(f"ConvTranspose{n}d", n, True) for n in (1, 2, 3)},
    **{f"MaxPool{n}d": _pool(f"MaxPool{n}d", n, "max") for n in (1, 2, 3)},
    **{f"AvgPool{n}d": _pool(f"AvgPool{n}d", n, "avg") for n in (1, 2, 3)},
    "AdaptiveAvgPool1d": _adaptive("AdaptiveAvgPool1d", 1),
    "AdaptiveAvgPool2d": _adaptive("AdaptiveAvgPool2d", 2),
    "AdaptiveMaxPool2d": _adaptive("AdaptiveMaxPool2d", 2),
    "AdaptiveAvgPool3d": _adaptive("AdaptiveAvgPool3d", 3),
    "AdaptiveMaxPool1d": _adaptive("AdaptiveMaxPool1d", 1),
    "AdaptiveMaxPool3d": _adaptive("AdaptiveMaxPool3d", 3),
    "BatchNorm1d": _batchnorm("BatchNorm1d", (2, 3)),
    "BatchNorm2d": _batchnorm("BatchNorm2d", (4,)),
    "BatchNorm3d": _batchnorm("BatchNorm3d", (5,)),
    "BatchNorm": _batchnorm("BatchNorm", (2, 3, 4, 5)),
    "LayerNorm": _layernorm(),
    "GroupNorm": _groupnorm(),
    "InstanceNorm2d": _instancenorm(),
    "InstanceNorm1d": _instancenorm(1),
    "InstanceNorm3d": _instancenorm(3),
    "RMSNorm": _rmsnorm(),
    "LocalResponseNorm": _lrn(),
    "Dropout": _dropout("Dropout"),
    "Dropout2d": _dropout("Dropout2d"),
    **{
        name: _elementwise(name, inplace=st.booleans())
        for name in ("ReLU", "ReLU6", "SELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid")
    },
    "Sigmoid": _elementwise("Sigmoid"),
    "Tanh": _elementwise("Tanh"),
    "LeakyReLU": _elementwise("LeakyReLU", negative_slope=_FLOATS, inplace=st.booleans()),
    "ELU": _elementwise("ELU", alpha=_FLOATS, inplace=st.booleans()),
    "GELU": _elementwise("GELU", approximate=st.sampled_from(["none", "tanh", "fast"])),
    "Softplus": _elementwise("Softplus", beta=_FLOATS, threshold=_FLOATS),
    "PReLU": _prelu(),
    "Hardtanh": _elementwise("Hardtanh", min_val=_FLOATS, max_val=_FLOATS, inplace=st.booleans()),
    "Hardshrink": _elementwise("Hardshrink", lambd=_FLOATS),
    "Softshrink": _elementwise("Softshrink", lambd=_FLOATS),
    "CELU": _elementwise("CELU", alpha=_FLOATS, inplace=st.booleans()),
    **{name: _elementwise(name) for name in ("Tanhshrink", "Softsign", "LogSigmoid")},
    "Threshold": _threshold(),
    "GLU": _glu(),
    "Softmin": _softmax("Softmin"),
    "Softmax2d": _elementwise("Softmax2d"),
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    "Linear": _linear(),
    "Identity": _identity(),
    "Flatten": _flatten(),
    "Unflatten": _unflatten(),
    "Embedding": _embedding(),
    **{name: _recurrent(name) for name in ("RNN", "GRU", "LSTM")},
    "Upsample": _upsample(),
    "ZeroPad2d": _zeropad(),
    "Unfold": _unfold(),
    "Fold": _fold(),
    "UpsamplingNearest2d": _upsampling("UpsamplingNearest2d"),
    "UpsamplingBilinear2d": _upsampling("UpsamplingBilinear2d"),
    **{
        f"{stem}{n}d": _pad(f"{stem}{n}d", n, mode)
        for stem, mode in (
            ("ConstantPad", "constant"),
            ("ReflectionPad", "reflect"),
            ("ReplicationPad", "replicate"),
            ("CircularPad", "circular"),
        )
        for n in (1, 2, 3)
    },
    "ZeroPad1d": _pad("ZeroPad1d", 1, "constant"),
    "ZeroPad3d": _pad("ZeroPad3d", 3, "constant"),
    "StochasticDepth": _stochastic_depth("StochasticDepth"),
    "DropPath": _stochastic_depth("DropPath"),
    "Dropout1d": _dropout("Dropout1d"),
    "Dropout3d": _dropout("Dropout3d"),
    "AlphaDropout": _dropout("AlphaDropout"),
    "FeatureAlphaDropout": _dropout("FeatureAlphaDropout"),
    "RReLU": _elementwise("RReLU", lower=_FLOATS, upper=_FLOATS, inplace=st.booleans()),
    "PixelShuffle": _pixelshuffle(),
    "PixelUnshuffle": _pixelunshuffle(),
    "ChannelShuffle": _channelshuffle(),
    "MultiheadAttention": _attention("MultiheadAttention"),
    "TransformerEncoderLayer": _attention("TransformerEncoderLayer"),
    "Reshape": _reshape("Reshape"),
    "View": _reshape("View"),
    "Permute": _permute(),
    "Transpose": _transpose(),
    "Mean": _reduction("Mean"),
    "Sum": _reduction("Sum"),
    "Squeeze": _squeeze(),
    "Unsqueeze": _unsqueeze(),
}


# ---------------------------------------------------------------- torch's verdict


@dataclass(frozen=True)
class Outcome:
    """What torch did: ``shape`` and ``params`` when it ran, ``error`` when it raised."""

    accepted: bool
    shape: tuple[int, ...] | None = None
    params: int | None = None
    error: str | None = None
    dtype: str | None = None
    #: torch raises in training mode and runs in eval mode (BatchNorm on one value per channel)
    training_only: bool = False


def parse_call(text: str) -> tuple[str, list, dict, str | None]:
    """(layer name, positional values, keyword values, selector) of a call drawn above."""
    node = ast.parse(text, mode="eval").body
    selector = None
    if isinstance(node, ast.Attribute):
        node, selector = node.value, node.attr
    if isinstance(node, ast.Name):
        return node.id, [], {}, selector
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), text
    args = [ast.literal_eval(a) for a in node.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return node.func.id, args, kwargs, selector


_BATCHNORM_BY_RANK = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}
#: nndsl layers that are tensor methods, not modules: name -> the method, called with the call's arguments
_TENSOR_METHODS = {
    "Reshape": torch.Tensor.reshape,
    "View": torch.Tensor.view,
    "Permute": torch.Tensor.permute,
    "Transpose": torch.Tensor.transpose,
    "Mean": torch.Tensor.mean,
    "Sum": torch.Tensor.sum,
    "Squeeze": torch.Tensor.squeeze,
    "Unsqueeze": torch.Tensor.unsqueeze,
}
_RECURRENT = ("RNN", "GRU", "LSTM")


class StochasticDepth(torch.nn.Module):
    """torchvision.ops.StochasticDepth, written out (torchvision is no dependency): the reference
    for nndsl's StochasticDepth and DropPath."""

    def __init__(self, p: float = 0.0, mode: str = "row") -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p < 0.0 or self.p > 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {self.p}")
        if self.mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {self.mode}")
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


#: nndsl layers that torch.nn lacks: name -> the module class torch code would use
_OTHER_MODULES = {"StochasticDepth": StochasticDepth, "DropPath": StochasticDepth}


def torch_module_class(name: str):
    """The torch module class of a layer name: torch.nn's, or the reference of one torch.nn lacks."""
    return _OTHER_MODULES.get(name) or getattr(torch.nn, name)


def _select(name: str, module, out, selector: str | None):
    """Apply a recurrent selector to torch's ``(output, h_n)`` / ``(output, (h_n, c_n))``."""
    if name not in _RECURRENT:
        if selector is not None:
            raise ValueError(f"{name} has no selector .{selector}")
        return out
    output, state = out
    h_n, c_n = state if name == "LSTM" else (state, None)
    if selector is None:
        return output
    if selector == "last":
        return output[:, -1] if module.batch_first else output[-1]
    if selector == "hidden":
        return torch.cat((h_n[-2], h_n[-1]), dim=-1) if module.bidirectional else h_n[-1]
    if selector == "h_n":
        return h_n
    if selector == "c_n" and c_n is not None:
        return c_n
    raise ValueError(f"{name} has no selector .{selector}")


def torch_input(shape: tuple[int, ...], dtype: str) -> torch.Tensor:
    """A small CPU tensor of that shape and dtype."""
    if dtype in ("int64", "int32"):
        # index 0 is valid for every Embedding; larger indices are value errors, not shape errors
        return torch.zeros(shape, dtype=getattr(torch, dtype))
    values = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    if dtype == "bool":
        return values > 0.5
    return values.to(getattr(torch, dtype))


def torch_outcome(text: str, shape: tuple[int, ...], dtype: str = "float32") -> Outcome:
    """Build the call's module with ``torch.nn`` and run it in train mode; any exception is a
    rejection, unless eval mode runs it (then the outcome is eval mode's, marked training_only)."""
    outcome = _torch_outcome(text, shape, dtype, training=True)
    if outcome.accepted:
        return outcome
    evaluated = _torch_outcome(text, shape, dtype, training=False)
    return replace(evaluated, training_only=True) if evaluated.accepted else outcome


def _torch_outcome(text: str, shape: tuple[int, ...], dtype: str, training: bool) -> Outcome:
    name, args, kwargs, selector = parse_call(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a call torch only warns about is accepted
        try:
            if name in _TENSOR_METHODS:
                out = _TENSOR_METHODS[name](torch_input(shape, dtype), *args, **kwargs)
                return Outcome(True, tuple(out.shape), 0, dtype=str(out.dtype).removeprefix("torch."))
            if name == "BatchNorm":  # nndsl's alias: the torch class follows the input's rank
                if len(shape) not in _BATCHNORM_BY_RANK:
                    raise ValueError(f"no BatchNorm for a {len(shape)}-D input")
                name = _BATCHNORM_BY_RANK[len(shape)]
            module = torch_module_class(name)(*args, **kwargs)
            module.train(training)
            if getattr(torch, dtype).is_floating_point:
                module.to(getattr(torch, dtype))  # the declared dtype is the model's
            # A transposed convolution with an output size of 0 raises on torch's native CPU kernel
            # but not on its oneDNN fast path, taken only for a batch above 1: judge by the native one.
            with torch.backends.mkldnn.flags(enabled=not name.startswith("ConvTranspose")):
                x = torch_input(shape, dtype)
                # nndsl's MultiheadAttention is self-attention: the input is query, key and value
                out = module(x, x, x, need_weights=False)[0] if name == "MultiheadAttention" else module(x)
            out = _select(name, module, out, selector)
        except Exception as exc:  # every kind of torch error is a rejection
            return Outcome(False, error=f"{type(exc).__name__}: {exc}")
    params = sum(p.numel() for p in module.parameters())
    return Outcome(True, tuple(out.shape), params, dtype=str(out.dtype).removeprefix("torch."))


# ---------------------------------------------------------------- wider cases, and the judge

#: dtypes the wider cases draw (float32 and int64 have tests of their own)
WIDE_DTYPES = ("float64", "float16", "bfloat16", "bool")
#: torch's parameter names that nndsl may infer from the input, and where the input holds them
_INFERABLE = {
    "in_features": lambda name, s: s[-1] if s else None,
    "in_channels": lambda name, s: (
        s[-(int(name[-2]) + 1)] if len(s) in (int(name[-2]) + 1, int(name[-2]) + 2) else None
    ),
    "num_features": lambda name, s: (
        (s[-int(name[-2]) - 1] if len(s) in (int(name[-2]) + 1, int(name[-2]) + 2) else None)
        if name.startswith("InstanceNorm")
        else (s[1] if len(s) >= 2 else None)
    ),
    "normalized_shape": lambda name, s: (s[-1],) if s else None,
    "num_channels": lambda name, s: s[1] if len(s) >= 2 else None,
    "input_size": lambda name, s: s[-1] if len(s) in (2, 3) else None,
    "embed_dim": lambda name, s: s[-1] if len(s) in (2, 3) else None,
    "d_model": lambda name, s: s[-1] if len(s) in (2, 3) else None,
}


@dataclass(frozen=True)
class Wide:
    """A case of one family: ``text`` is what nndsl checks, ``truth_text`` what torch builds."""

    family: str
    text: str
    shape: tuple[int, ...]
    dtype: str
    truth_text: str
    symbols: tuple[str | None, ...] = ()  # per input dim: the symbol declared there, or None


@dataclass(frozen=True)
class GraphCase:
    """A model over several inputs: nndsl's text and the same computation as Python over torch."""

    family: str
    text: str
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]  # name, shape, dtype
    program: str  # Python statements over the inputs (``torch`` in scope), ending in ``outputs = ...``


class Skip(Exception):
    """torch cannot judge this case on CPU (a missing kernel for a dtype)."""


def _torch_name(name: str, shape) -> str:
    if name == "BatchNorm" and len(shape) in _BATCHNORM_BY_RANK:
        return _BATCHNORM_BY_RANK[len(shape)]
    return name


def _keywords(name: str, args: list, kwargs: dict) -> dict:
    """The call's arguments all by torch's parameter names."""
    params = [] if name in _TENSOR_METHODS else list(inspect_params(name))
    if len(args) > len(params):
        raise ValueError("more positional arguments than parameters")
    return {**dict(zip(params, args)), **kwargs}


_RECURRENT_PARAMS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional")


def inspect_params(name: str) -> tuple[str, ...]:
    """torch's parameter names of layer ``name``, in order (nndsl's BatchNorm: BatchNorm1d's)."""
    import inspect

    if name == "RNN":
        return (*_RECURRENT_PARAMS[:3], "nonlinearity", *_RECURRENT_PARAMS[3:])
    if name in ("GRU", "LSTM"):
        return _RECURRENT_PARAMS + (("proj_size",) if name == "LSTM" else ())
    cls = torch_module_class("BatchNorm1d" if name == "BatchNorm" else name)
    return tuple(p for p in inspect.signature(cls).parameters if p not in ("device", "dtype"))


def infer_variant(text: str, shape) -> tuple[str, str] | None:
    """(text with the inferable argument left out, torch's text with the input's size there)."""
    name, args, kwargs, selector = parse_call(text)
    try:
        full = _keywords(name, args, kwargs)
    except (ValueError, AttributeError):
        return None
    names = [k for k in full if k in _INFERABLE]
    if not names:
        return None
    key = names[0]
    rest = {k: v for k, v in full.items() if k != key}
    value = _INFERABLE[key](_torch_name(name, shape), tuple(shape))
    if value is not None and 0 in (value if isinstance(value, tuple) else (value,)):
        return None  # a layer size of 0: nndsl refuses it on purpose
    filled = dict(full, **({key: value} if value is not None else {}))
    return call(name, selector=selector, **rest), call(name, selector=selector, **filled)


@st.composite
def wide_case(draw, name: str, family: str) -> Wide:
    """A case of ``family`` (dtype, symbolic, zero, inferred) for the layer ``name``."""
    text, shape, dtype = draw(STRATEGIES[name])
    if family == "dtype":
        dtype = draw(st.sampled_from(WIDE_DTYPES))
        return Wide(family, text, shape, dtype, text)
    if family == "zero":
        if shape:
            dims = list(shape)
            dims[draw(st.integers(0, len(dims) - 1))] = 0
            shape = tuple(dims)
        return Wide(family, text, shape, dtype, text)
    if family == "symbolic":
        mask = [draw(st.booleans()) for _ in shape]
        symbols = tuple(f"S{i}" if m else None for i, m in enumerate(mask))
        return Wide(family, text, shape, dtype, text, symbols)
    assert family == "inferred"
    variant = infer_variant(text, shape)
    if variant is None:
        return Wide(family, text, shape, dtype, text)
    return Wide(family, variant[0], shape, dtype, variant[1])


#: layers a chain draws: (nndsl call, needs) with inferred arguments wherever nndsl has them
_CHAIN_LAYERS = [
    "Linear(out_features=3)", "Linear(out_features=1, bias=False)", "ReLU", "Tanh", "Sigmoid", "GELU",
    "LayerNorm()", "LayerNorm(eps=0.1)", "BatchNorm", "BatchNorm(eps=0.0)", "BatchNorm(bias=False)",
    "GroupNorm(1)", "GroupNorm(2, eps=1e-3)", "GroupNorm(1, bias=False)", "LayerNorm(bias=False)", "Flatten",
    "Flatten(0)", "Unsqueeze(1)", "Unsqueeze(-1)", "Transpose(0, -1)", "Softmax(dim=-1)", "Sum(-1)",
    "Mean(1)", "Squeeze(1)", "Conv1d(out_channels=2, kernel_size=1)", "Conv2d(out_channels=2, kernel_size=2)",
    "MaxPool2d(2)", "AvgPool1d(2)", "Dropout(0.5)", "Reshape((-1, 2))", "Residual(Dropout(0.1) -> Tanh)",
    "Residual(ReLU)", "Residual(LayerNorm() -> Tanh)", "InstanceNorm2d(affine=True)",
    "LSTM(hidden_size=2).hidden", "Embedding(4, 2)", "Permute((1, 0))", "View((2, -1))",
]  # fmt: skip


@st.composite
def chain_case(draw) -> Wide:
    """Two to four layers in a row on one input; ``D`` stands for the incoming last dim."""
    shape = tuple(draw(_shape(range(1, 5), lo=1, hi=4)))
    if draw(_mostly(st.just(False), st.just(True), 8)) and shape:
        dims = list(shape)
        dims[draw(st.integers(0, len(dims) - 1))] = 0
        shape = tuple(dims)
    dtype = draw(_mostly(st.just("float32"), st.sampled_from([*WIDE_DTYPES, "int64"]), 3))
    layers = draw(st.lists(st.sampled_from(_CHAIN_LAYERS), min_size=2, max_size=4))
    text = " -> ".join(layers)
    return Wide("chain", text, shape, dtype, text)


def _render_shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


@st.composite
def graph_case(draw) -> GraphCase:
    """A model of one to three inputs (mixed dtypes, broadcastable or not) and joins between them."""
    n = draw(st.integers(1, 3))
    names = ["a", "b", "c"][:n]
    dtypes = st.sampled_from(["float32", "float32", "float64", "float16", "bfloat16", "int64", "int32", "bool"])
    base = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    inputs = []
    for name in names:
        shape = list(base)
        for i in range(len(shape)):  # broadcasting partners: a size of 1, another size, or the same
            shape[i] = draw(_mostly(st.just(shape[i]), st.sampled_from([1, 2, 0]), 3))
        if draw(_mostly(st.just(False), st.just(True), 4)):
            shape = shape[draw(st.integers(0, len(shape))) :]  # fewer leading dims
        inputs.append((name, tuple(shape), draw(dtypes)))
    rank = max(len(s) for _, s, _ in inputs)
    dim = st.integers(-max(rank, 1), max(rank, 1) - 1) if rank else st.integers(-1, 0)

    def expr(depth: int) -> tuple[str, str]:
        kind = draw(st.integers(0, 6 if depth < 2 else 0))
        if kind == 0:
            name = draw(st.sampled_from(names))
            return name, name
        if kind == 6:  # a sign or an inversion: torch refuses -bool and ~float
            sign = draw(st.sampled_from(["-", "~"]))
            inner = expr(depth + 1)
            return f"({sign}{inner[0]})", f"({sign}{inner[1]})"
        if kind in (1, 2):
            op = draw(st.sampled_from(["+", "-", "*", "/", "**", "&", "|", "^", "//", "%"]))
            left = expr(depth + 1)
            if op in ("//", "%") or draw(st.integers(0, 3)) == 0:  # an integer tensor may hold a 0 to divide by
                number = draw(st.sampled_from(["2", "0.5", "1"]))
                if op in ("//", "%"):
                    return f"({left[0]} {op} {number})", f"({left[1]} {op} {number})"
                if draw(st.booleans()):
                    return f"({number} {op} {left[0]})", f"({number} {op} {left[1]})"
                return f"({left[0]} {op} {number})", f"({left[1]} {op} {number})"
            right = expr(depth + 1)
            return f"({left[0]} {op} {right[0]})", f"({left[1]} {op} {right[1]})"
        if kind in (3, 4):
            fn = draw(st.sampled_from(["cat", "stack"]))
            parts = [expr(depth + 1) for _ in range(draw(st.integers(1, 3)))]
            d = draw(dim)
            return (
                f"{fn}({', '.join(p[0] for p in parts)}, dim={d})",
                f"torch.{fn}(({', '.join(p[1] for p in parts)},), dim={d})",
            )
        layer = draw(st.sampled_from([("ReLU", "torch.relu"), ("Sigmoid", "torch.sigmoid"), ("Tanh", "torch.tanh")]))
        inner = expr(depth + 1)
        return f"({inner[0]} -> {layer[0]})", f"{layer[1]}({inner[1]})"

    spec_expr, py_expr = expr(0)
    tail = draw(st.integers(0, 3))
    if tail == 0:
        body, program = f"    return {spec_expr}", f"outputs = ({py_expr},)"
    else:
        # at least two names: ``p0 = split(...)`` means one tensor, not a one-piece split
        k = draw(st.integers(2, 3))
        d = draw(dim)
        if tail == 1:
            sizes = draw(st.lists(st.integers(0, 3), min_size=2, max_size=3))
            k = len(sizes)
            call_spec, call_py = f"split({spec_expr}, {sizes}, dim={d})", f"torch.split({py_expr}, {sizes}, dim={d})"
        elif tail == 2:
            size = draw(st.integers(1, 3))
            call_spec, call_py = f"split({spec_expr}, {size}, dim={d})", f"torch.split({py_expr}, {size}, dim={d})"
        else:
            chunks = draw(st.integers(1, 3))
            call_spec, call_py = f"chunk({spec_expr}, {chunks}, dim={d})", f"torch.chunk({py_expr}, {chunks}, dim={d})"
        targets = ", ".join(f"p{i}" for i in range(k))
        body = f"    {targets} = {call_spec}\n    return {targets}"
        program = f"{targets} = {call_py}\noutputs = ({targets},)"
    params = ", ".join(f"{name}: {dt}{_render_shape(s)}" for name, s, dt in inputs)
    text = f"model G({params}) {{\n{body}\n}}"
    return GraphCase("graph", text, tuple(inputs), program)


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


_NO_KERNEL = re.compile(r"not implemented for '(Half|BFloat16|Bool|Long|Int|Double)'|no kernel|Could not run")


def _torch_run(fn) -> tuple[bool, list, str | None, int | None, bool]:
    """Run ``fn(training)`` (returning tensors) in train mode, and in eval mode if that raises;
    (accepted, [(shape, dtype)], error, None, training_only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            outs = fn(True)
        except Exception as exc:  # every torch error is a rejection
            message = f"{type(exc).__name__}: {exc}"
            if _NO_KERNEL.search(message):
                raise Skip(message.splitlines()[0][:200]) from None
            try:
                outs = fn(False)
            except Exception:  # noqa: BLE001 - raises in eval mode too: the training error stands
                return False, [], message.splitlines()[0][:300], None, False
            return True, [(tuple(o.shape), _dtype_name(o)) for o in outs], None, None, True
    return True, [(tuple(o.shape), _dtype_name(o)) for o in outs], None, None, False


def _run_call(text: str, x: torch.Tensor, dtype: str, training: bool = True):
    """One nndsl call on ``x`` in torch (inferred arguments filled from ``x``; ``Residual`` as x + body)."""
    if text.startswith("Residual("):
        body = text[len("Residual(") : -1]
        y = x
        for part in body.split(" -> "):
            y = _run_call(part, y, dtype, training)
        return x + y
    name, args, kwargs, selector = parse_call(text)
    if name in _TENSOR_METHODS:
        return _TENSOR_METHODS[name](x, *args, **kwargs)
    full = _keywords(name, args, kwargs)
    torch_name = _torch_name(name, tuple(x.shape))
    if name == "BatchNorm" and torch_name == "BatchNorm":
        raise ValueError(f"no BatchNorm for a {x.dim()}-D input")
    for key, rule in _INFERABLE.items():
        if key in inspect_params(torch_name) and key not in full:
            value = rule(torch_name, tuple(x.shape))
            if value is None:
                raise ValueError(f"{name}: no {key} in a {x.dim()}-D input")
            if 0 in (value if isinstance(value, tuple) else (value,)):
                raise Skip(f"{name}: a layer size of 0 taken from the input (nndsl refuses it on purpose)")
            full[key] = value
    module = torch_module_class(torch_name)(**full)
    module.train(training)
    if x.dtype.is_floating_point:
        module.to(x.dtype)
    out = module(x)
    return _select(torch_name, module, out, selector)


def torch_truth(case) -> tuple[bool, list, str | None, int | None, bool]:
    """torch's verdict on a wide case or a graph case: accepted, [(shape, dtype)], error, parameters
    (for a single layer), and whether only eval mode runs it."""
    if isinstance(case, GraphCase):

        def run(training):
            scope = {"torch": torch, **{n: torch_input(s, dt) for n, s, dt in case.inputs}}
            exec(case.program, scope)
            return scope["outputs"]

        return _torch_run(run)
    if case.family == "chain":

        def run(training):
            y = torch_input(case.shape, case.dtype)
            for part in _split_chain(case.truth_text):
                y = _run_call(part, y, case.dtype, training)
            return (y,)

        return _torch_run(run)
    outcome = torch_outcome(case.truth_text, case.shape, case.dtype)
    if not outcome.accepted:
        if _NO_KERNEL.search(outcome.error or ""):
            raise Skip(outcome.error[:200])
        return False, [], outcome.error, None, False
    return True, [(outcome.shape, outcome.dtype)], None, outcome.params, outcome.training_only


def _split_chain(text: str) -> list[str]:
    """The calls of a chain, at top-level arrows only (``Residual(a -> b)`` is one call)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and text.startswith(" -> ", i):
            parts.append(text[start:i])
            start = i + 4
    parts.append(text[start:])
    return parts


def checker_input(case: Wide) -> str:
    dims = [s if s is not None else str(d) for d, s in zip(case.shape, case.symbols or [None] * len(case.shape))]
    return f"{case.dtype}[{', '.join(map(str, dims))}]"


#: ``judge``'s answer for a zero-size case that the checker refuses and torch computes on an empty tensor
STRICTER = "stricter on an empty tensor"
#: ``judge``'s answer where a symbol is 1 and the checker warned (W308) that its shapes hold only
#: for sizes other than 1 (a Squeeze of a symbolic size, which torch removes only when it is 1)
WARNED = "warned: the shapes hold for sizes other than 1 (W308)"


def judge(case, run_emitted: bool = False) -> str | None:
    """None when the checker agrees with torch on ``case``; else what differs. Raises Skip."""
    import nndsl
    from nndsl.shapes import Sym, substitute

    accepted, outs, error, truth_params, training_only = torch_truth(case)
    if isinstance(case, GraphCase):
        result = nndsl.check_source(case.text, "<differential>")
    else:
        result = nndsl.check_source(case.text, "<differential>", input=checker_input(case))
    errors = "; ".join(f"{d.code} {d.message}" for d in result.errors)
    symbolic = getattr(case, "symbols", ()) and any(case.symbols)
    if not result.ok:
        if not accepted or training_only:  # refusing what only eval mode runs is the checker's choice
            return None
        if 0 in getattr(case, "shape", (1,)):
            return STRICTER
        if getattr(case, "family", "") == "dtype" and case.dtype in errors:
            return None  # a refused declaration (the dtype named) is a documented choice, not a wrong shape
        return f"checker rejects ({errors}); torch gives {outs}"
    model = result.program.models[0]
    warned = any(d.code == "W309" for d in result.diagnostics)  # torch raises in training mode only
    if accepted and not symbolic and warned != training_only:
        return f"checker {'warns' if warned else 'does not warn'} W309; torch raises in training: {training_only}"
    checked = [(t.shape.dims, t.dtype) for t in model.outputs]
    if symbolic:
        bindings = {Sym(s): d for s, d in zip(case.symbols, case.shape) if s is not None}
        checked = [(tuple(substitute(d, bindings) for d in dims), dt) for dims, dt in checked]
    if not accepted:
        if symbolic:
            return None  # right for other values of the symbols, perhaps
        return f"checker accepts with {checked}; torch raises {error}"
    if checked != outs:
        if symbolic and 1 in case.shape and any(d.code == "W308" for d in result.diagnostics):
            return WARNED
        return f"checker gives {checked}; torch gives {outs}"
    if truth_params is not None and len(model.layers) == 1 and model.layers[0].params != truth_params:
        return f"checker counts {model.layers[0].params} parameters; torch has {truth_params}"
    if run_emitted:
        return _emitted_disagrees(case, result, checked)
    return None


def _emitted_disagrees(case, result, checked) -> str | None:
    """The module nndsl emits runs on the declared inputs and gives the checked shapes and dtypes."""
    import nndsl

    if isinstance(case, GraphCase):
        text, given, tensors = case.text, None, [torch_input(s, dt) for _, s, dt in case.inputs]
    elif any(case.symbols or ()):
        return None
    else:
        text, given, tensors = case.text, checker_input(case), [torch_input(case.shape, case.dtype)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = nndsl.build(text, input=given)
            module.train(not any(d.code == "W309" for d in result.diagnostics))  # W309: eval mode only
            out = module(*tensors)
    except Exception as exc:  # noqa: BLE001 - any failure of the emitted module is the finding
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if _NO_KERNEL.search(message):
            return None
        return f"the emitted module raises {message}"
    outs = out if isinstance(out, tuple) else (out,)
    got = [(tuple(o.shape), _dtype_name(o)) for o in outs]
    if got != checked:
        return f"the emitted module gives {got}; the checker said {checked}"
    return None
