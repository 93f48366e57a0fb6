"""Normalisation: BatchNorm1d/2d/3d (and the rank-resolved BatchNorm), LayerNorm, RMSNorm, GroupNorm,
InstanceNorm1d/2d/3d and LocalResponseNorm."""

from __future__ import annotations

from nndsl import shapes
from nndsl.layers.base import (
    BOOL,
    FLOAT,
    POS_INT,
    SPATIAL_NAMES,
    ArgValueError,
    Layer,
    Param,
    ShapeError,
    int_tuple,
    materialize,
    onnx_batched,
    optional,
    rank_error,
    require_nonempty,
)
from nndsl.layers.registry import register


def _bn_params():
    return (
        Param("num_features", POS_INT, infer=True),
        Param("eps", FLOAT, 1e-5),
        Param("momentum", optional(FLOAT), 0.1),
        Param("affine", BOOL, True),
        Param("track_running_stats", BOOL, True),
        _BIAS,
    )


#: torch's keyword-only ``bias`` of the batch, group and instance norms: False leaves the affine
#: transform without its shift (only ``weight``); it has no effect without ``affine``
_BIAS = Param("bias", BOOL, True, keyword_only=True)


def _affine_count(args, channels: int) -> int:
    """Parameters of the affine transform: a weight, and a bias unless ``bias=False``."""
    return channels * (1 + args["bias"]) if args["affine"] else 0


def _channel_check(name, x, c, ctx, key="num_features"):
    have = x.shape.dims[1]
    if shapes.known_equal(have, c) is True:
        return
    bind_help = None
    if x.shape.rank == 3 and shapes.known_equal(x.shape.dims[2], c) is True:
        # [N, L, C]: the features sit last, as Linear and RNNs leave them
        help_text = (
            f"{name} normalises dim 1 of [N, C, L], but these {c} features are the last dim of {x.shape}: "
            f"use LayerNorm({c}), or put the channels first"
        )
        bind_help = help_text
    elif isinstance(have, int):
        help_text = f"change {key} to {have}, or leave it out to take it from the input"
    else:
        help_text = f"declare dim 1 of the input as {c} if that is meant"
    message = f"{name} expects {c} channels (dim 1), got {have}"
    ctx.require_equal(have, c, message, f"expected {c} at dim 1, got {x.shape}", help_text, bind_help)


def _unchecked_channels(name, x, c, ctx, key="num_features", channel_dim=1):
    """torch compares the channel count only with affine weights or running stats; without them, just warn."""
    have = x.shape.dims[channel_dim]
    if shapes.known_equal(have, c) is False:
        ctx.warn(
            "W302",
            f"{name} has {key}={c} but got {have} channels; torch does not check this without affine weights"
            " or running stats",
            f"change {key} to {have}" if isinstance(have, int) else None,
        )


def _channel_shape(rank: int, channel_dim: int = 1) -> tuple[int, ...]:
    """The shape that broadcasts a per-channel vector against an input of ``rank`` dims: ``(-1, 1, 1)``."""
    return (-1,) + (1,) * (rank - channel_dim - 1)


def _standardize(g, x, axes, eps):
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` with the biased variance, as torch's
    batch statistics have it; plain ops, so exact at every opset."""
    mean = g.reduce("ReduceMean", x, axes, True)
    centred = g.op("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.op("Mul", [centred, centred]), axes, True)
    return g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [var, g.scalar(eps)])])])


def layer_norm_onnx(g, x, w, normalized_shape: tuple, eps: float, prefix: str = "") -> str:
    """LayerNormalization over the last ``len(normalized_shape)`` dims, with the weight and bias
    named ``{prefix}weight`` and ``{prefix}bias`` (ones stand in for a missing weight)."""
    import numpy as np

    weight, bias = w.get(prefix + "weight"), w.get(prefix + "bias")
    ones = np.ones(normalized_shape, np.float32)
    scale = g.weight(ones, "ones") if weight is None else g.weight(weight, w.key(prefix + "weight"))
    inputs = [x, scale] if bias is None else [x, scale, g.weight(bias, w.key(prefix + "bias"))]
    return g.op("LayerNormalization", inputs, axis=-len(normalized_shape), epsilon=float(eps))


def _affine(g, y, w, rank, channel_dim=1):
    """``y * weight + bias`` per channel where the layer has them (affine=True)."""
    weight, bias = w.get("weight"), w.get("bias")
    shape = _channel_shape(rank, channel_dim)
    if weight is not None:
        y = g.op("Mul", [y, g.weight(weight.reshape(shape), w.key("weight"))])
    if bias is not None:
        y = g.op("Add", [y, g.weight(bias.reshape(shape), w.key("bias"))])
    return y


def _running_stats_norm(g, x, w, eps):
    """BatchNormalization in inference mode with the running statistics; ones and zeros stand in
    for a missing affine weight and bias. ``x`` is ``[N, C, *]``."""
    mean, var = w("running_mean"), w("running_var")
    weight, bias = w.get("weight"), w.get("bias")
    size = len(mean)
    scale = g.const([1.0] * size, "float32", "ones") if weight is None else g.weight(weight, w.key("weight"))
    shift = g.const([0.0] * size, "float32", "zeros") if bias is None else g.weight(bias, w.key("bias"))
    inputs = [x, scale, shift, g.weight(mean, w.key("running_mean")), g.weight(var, w.key("running_var"))]
    return g.op("BatchNormalization", inputs, epsilon=float(eps))


class _BatchNormBase(Layer):
    ranks: tuple[int, ...] = (4,)

    @classmethod
    def infer(cls, name, args, x):
        return x.shape.dims[1] if x.shape.rank in cls.ranks and not x.shape.rest else None

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, max(cls.ranks), ("N", "C", "D", "H", "W"), ctx)
        if x.shape.rank not in cls.ranks:
            error = rank_error(cls.__name__, " or ".join(f"{r}-D" for r in cls.ranks), x)
            fits = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}.get(x.shape.rank)
            if fits is not None and fits != cls.__name__:
                error.help = f"{fits} takes a {x.shape.rank}-D input such as {x.shape}"
            raise error
        if args["affine"] or args["track_running_stats"]:
            _channel_check(cls.__name__, x, args["num_features"], ctx)
        else:
            _unchecked_channels(cls.__name__, x, args["num_features"], ctx)
        problem = cls.training_problem(args, x)
        if problem is not None:
            if not args["track_running_stats"]:
                # without running statistics eval mode normalises with the batch's own, as training does
                raise ShapeError("E207", f"{cls.__name__}: {problem}", "torch raises here", _BN_FIX)
            ctx.warn("W309", f"{cls.__name__}: {problem}; eval mode runs", help=_BN_FIX)
        return x

    @classmethod
    def validate(cls, args):
        if args["eps"] < 0:  # torch's forward raises in both modes
            raise ArgValueError(f"eps must be non-negative, got {args['eps']}", "eps")

    @classmethod
    def training_problem(cls, args, x):
        if args["eps"] == 0:
            return "torch raises in training mode: batch_norm eps must be positive during training, but got 0.0"
        dims = x.shape.dims
        per_channel = (dims[0],) + dims[2:]
        # a symbolic size could be anything, so only all-integer shapes can hold a single value
        if all(isinstance(d, int) for d in per_channel) and shapes.prod(per_channel) == 1:
            return (
                "torch raises in training mode: Expected more than 1 value per channel when training, "
                f"got input {x.shape}"
            )
        return None

    @classmethod
    def param_count(cls, args):
        return _affine_count(args, args["num_features"])

    @classmethod
    def to_onnx(cls, g, x, node, w):
        args = node.args
        if args["track_running_stats"]:
            return _running_stats_norm(g, x, w, args["eps"])
        # without running statistics torch's eval mode normalises with the batch's own
        # statistics: over every dim but the channels
        rank = node.input.shape.rank
        y = _standardize(g, x, [0] + list(range(2, rank)), args["eps"])
        return _affine(g, y, w, rank)


@register
class BatchNorm1d(_BatchNormBase):
    """Batch normalisation over ``[N, C]`` or ``[N, C, L]`` (channels at dim 1)."""

    ranks = (2, 3)
    params = _bn_params()
    examples = (
        ("BatchNorm1d(64)", "[N, 64]", "[N, 64]"),
        ("BatchNorm1d()", "[N, 16, L]", "[N, 16, L]"),
        ("BatchNorm1d(10)", "[N, 7]", "E201"),
        ("BatchNorm1d(10)", "[1, 10]", "W309"),
        ("BatchNorm1d(10, track_running_stats=False)", "[1, 10]", "E207"),
        ("BatchNorm1d(10, eps=0.0)", "[N, 10]", "W309"),
        ("BatchNorm1d(10, eps=0.0, track_running_stats=False)", "[N, 10]", "E207"),
        ("BatchNorm1d(10, eps=-1e-6)", "[N, 10]", "E107"),
        ("BatchNorm1d(10, bias=False)", "[N, 10]", "[N, 10]"),
    )
    onnx_examples = (
        ("BatchNorm1d(4, affine=False)", "[N, 4]"),
        ("BatchNorm1d(4, eps=0.1, momentum=None)", "[N, 4, L]"),
        # batch statistics: at N=1 torch refuses [1, 4] (one value per channel)
        ("BatchNorm1d(4, track_running_stats=False)", "[3, 4]"),
        ("BatchNorm1d(4, track_running_stats=False)", "[N, 4, L]"),
        ("BatchNorm1d(4, affine=False, track_running_stats=False)", "[N, 4, L]"),
    )


@register
class BatchNorm2d(_BatchNormBase):
    """Batch normalisation over ``[N, C, H, W]``."""

    ranks = (4,)
    params = _bn_params()
    examples = (
        ("BatchNorm2d(16)", "[N, 16, 8, 8]", "[N, 16, 8, 8]"),
        ("BatchNorm2d()", "[N, 32, H, W]", "[N, 32, H, W]"),
        ("BatchNorm2d(16)", "[16, 8, 8]", "E202"),
    )
    onnx_examples = (
        ("BatchNorm2d(3, affine=False, eps=0.01)", "[N, 3, 5, 5]"),
        ("BatchNorm2d(3, track_running_stats=False)", "[N, 3, 5, 5]"),
        ("BatchNorm2d(3, affine=False, track_running_stats=False)", "[N, 3, H, W]"),
    )


@register
class BatchNorm3d(_BatchNormBase):
    """Batch normalisation over ``[N, C, D, H, W]``."""

    ranks = (5,)
    params = _bn_params()
    examples = (("BatchNorm3d(4)", "[N, 4, 2, 8, 8]", "[N, 4, 2, 8, 8]"),)
    onnx_examples = (
        ("BatchNorm3d(2, affine=False)", "[N, 2, 2, 3, 3]"),
        ("BatchNorm3d(2, track_running_stats=False)", "[N, 2, 2, 3, 3]"),
    )


@register
class BatchNorm(_BatchNormBase):
    """Batch normalisation that picks BatchNorm1d/2d/3d from the input's rank (2/3, 4 or 5)."""

    ranks = (2, 3, 4, 5)
    params = _bn_params()
    examples = (
        ("BatchNorm", "[N, 64]", "[N, 64]"),
        ("BatchNorm(16)", "[N, 16, 8, 8]", "[N, 16, 8, 8]"),
        ("BatchNorm", "[N, 4, 2, 3, 3]", "[N, 4, 2, 3, 3]"),
        ("BatchNorm", "[N]", "E202"),
    )
    onnx_examples = (
        ("BatchNorm(3)", "[N, 3, L]"),
        ("BatchNorm(track_running_stats=False)", "[N, 3, 4, 4]"),
    )

    @classmethod
    def resolve(cls, args, x, ctx):
        if x.shape.rest:
            raise ShapeError(
                "E205",
                "cannot tell which BatchNorm to use: the input's rank is unknown",
                "input rank unknown",
                "write BatchNorm1d, BatchNorm2d or BatchNorm3d, or give the input shape with --input",
            )
        target = {2: BatchNorm1d, 3: BatchNorm1d, 4: BatchNorm2d, 5: BatchNorm3d}.get(x.shape.rank)
        if target is None:
            raise rank_error("BatchNorm", "a 2-D to 5-D", x)
        ctx.note(
            "N401",
            f"BatchNorm resolved to {target.__name__}, normalising the {x.shape.dims[1]} channels "
            f"of dim 1 of the {x.shape.rank}-D input {x.shape}",
            f"write {target.__name__}({x.shape.dims[1]}) to make this explicit",
        )
        return target


_BN_FIX = "train with a batch size above 1 and a positive eps; for inference only, this is fine"


def _shape_arg(dims) -> str:
    """normalized_shape as a call writes it: ``16`` or ``(5, 10)`` (a bare ``5, 10`` would be eps)."""
    return str(dims[0]) if len(dims) == 1 else "(" + ", ".join(str(d) for d in dims) + ")"


@register
class LayerNorm(Layer):
    """Normalises over the trailing ``normalized_shape`` dims (default: the last dim)."""

    layout = "contiguous"

    params = (
        Param("normalized_shape", int_tuple(1), infer=True),
        Param("eps", FLOAT, 1e-5),
        Param("elementwise_affine", BOOL, True),
        Param("bias", BOOL, True),
    )
    examples = (
        ("LayerNorm(64)", "[N, T, 64]", "[N, T, 64]"),
        ("LayerNorm((5, 10))", "[2, 5, 10]", "[2, 5, 10]"),
        ("LayerNorm()", "[N, 128]", "[N, 128]"),
        ("LayerNorm(10)", "[2, 10, 5]", "E201"),
    )
    onnx_examples = (
        ("LayerNorm(8, elementwise_affine=False)", "[N, T, 8]"),
        ("LayerNorm(8, bias=False)", "[N, 8]"),
        ("LayerNorm((3, 4), eps=0.001)", "[N, 2, 3, 4]"),
        ("LayerNorm((2, 3, 4))", "[2, 3, 4]"),
        ("LayerNorm((3, 4), elementwise_affine=False, bias=False)", "[N, 3, 4]"),
    )

    @classmethod
    def infer(cls, name, args, x):
        if not x.shape.dims or not isinstance(x.shape.dims[-1], int):
            return None
        return (x.shape.dims[-1],)

    @classmethod
    def written_value(cls, name, value):
        if name == "normalized_shape":  # as people write it: LayerNorm(256), LayerNorm([8, 8])
            return value[0] if len(value) == 1 else list(value)
        return super().written_value(name, value)

    @classmethod
    def output(cls, args, x, ctx):
        ns = args["normalized_shape"]
        x = materialize(x, len(ns), ("D",) * len(ns), ctx)
        if x.shape.rank < len(ns):
            raise rank_error(cls.__name__, f"an at least {len(ns)}-D", x)
        tail = x.shape.dims[-len(ns) :]
        if all(shapes.known_equal(have, need) is True for have, need in zip(tail, ns)):
            return x
        want = "[*, " + ", ".join(str(d) for d in ns) + "]"
        if len(ns) == 1 and x.shape.rank >= 3 and shapes.known_equal(x.shape.dims[1], ns[0]) is True:
            help_text = (
                f"{cls.__name__} normalises the last dimension(s); the {ns[0]} channels are dim 1 of {x.shape}: "
                f"use GroupNorm(1, {ns[0]}) to normalise each sample over its channels"
            )
        else:
            help_text = f"normalized_shape must equal the last dimension(s): {cls.__name__}({_shape_arg(tail)})"
        message = f"{cls.__name__}({_shape_arg(ns)}) expects an input of shape {want}, got {x.shape}"
        label = f"expected {want}, got {x.shape}"
        clash = next((pair for pair in zip(tail, ns) if shapes.known_equal(*pair) is False), None)
        if clash is not None:  # one error for the layer, not one per mismatched dim
            ctx.require_equal(*clash, message, label, help_text)
            return x
        for have, need in zip(tail, ns):
            ctx.require_equal(have, need, message, label, help_text)
        return x

    @classmethod
    def param_count(cls, args):
        if not args["elementwise_affine"]:
            return 0
        size = 1
        for d in args["normalized_shape"]:
            size *= d
        return size * (2 if args["bias"] else 1)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return layer_norm_onnx(g, x, w, node.args["normalized_shape"], node.args["eps"])


@register
class GroupNorm(Layer):
    """Normalises ``[N, C, *]`` over groups of channels."""

    params = (
        Param("num_groups", POS_INT),
        Param("num_channels", POS_INT, infer=True),
        Param("eps", FLOAT, 1e-5),
        Param("affine", BOOL, True),
        _BIAS,
    )
    examples = (
        ("GroupNorm(4, 16)", "[N, 16, 8, 8]", "[N, 16, 8, 8]"),
        ("GroupNorm(4)", "[N, 32, L]", "[N, 32, L]"),
        ("GroupNorm(3, 16)", "[N, 16, 8, 8]", "E107"),
        ("GroupNorm(4, 16)", "[N, 8, 8, 8]", "E201"),
        ("GroupNorm(4, 16, bias=False)", "[N, 16, 8, 8]", "[N, 16, 8, 8]"),
    )
    onnx_examples = (
        ("GroupNorm(2, 4, affine=False)", "[N, 4, 3, 3]"),
        ("GroupNorm(1, 6)", "[N, 6, L]"),
        ("GroupNorm(6, 6, eps=0.01)", "[N, 6, 4]"),
        ("GroupNorm(2, 4)", "[N, 4]"),
        ("GroupNorm(2, 4)", "[N, 4, 2, 3, 3]"),
        ("GroupNorm(2, 4)", "[N, 4, H, W]"),
    )

    @classmethod
    def validate(cls, args):
        if args["num_channels"] % args["num_groups"]:
            raise ArgValueError(
                f"num_channels ({args['num_channels']}) must be divisible by num_groups ({args['num_groups']})",
                "num_groups",
            )

    @classmethod
    def infer(cls, name, args, x):
        return x.shape.dims[1] if x.shape.rank >= 2 and not x.shape.rest else None

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        if x.shape.rank < 2:
            raise rank_error("GroupNorm", "an at least 2-D", x)
        groups = args["num_groups"]
        if args["affine"]:
            _channel_check("GroupNorm", x, args["num_channels"], ctx, "num_channels")
        else:
            _unchecked_channels("GroupNorm", x, args["num_channels"], ctx, "num_channels")
            have = x.shape.dims[1]
            if isinstance(have, int) and have % groups:
                raise ShapeError(
                    "E201",
                    f"GroupNorm expects a channel count divisible by num_groups ({groups}), got {have}",
                    f"{have} channels at dim 1",
                )
        dims = x.shape.dims
        # torch's check: more than one value in each normalised group of the whole batch
        values = shapes.prod((shapes.floordiv(shapes.mul(dims[0], dims[1]), groups),) + dims[2:])
        if values == 1:
            raise ShapeError(
                "E207",
                f"GroupNorm needs more than one value per group, got input {x.shape} with {groups} groups",
                "one value per group",
                "use a batch size above 1, or fewer groups",
            )
        return x

    @classmethod
    def param_count(cls, args):
        return _affine_count(args, args["num_channels"])

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # [N, C, *] -> [N, G, C/G * prod(*)] (0 keeps the input's batch size, symbolic or not),
        # standardised per group, back to the input's own shape, then the per-channel affine;
        # plain ops rather than GroupNormalization, whose opset-18 form scales per group
        grouped = g.op("Reshape", [x, g.const([0, node.args["num_groups"], -1])])
        y = _standardize(g, grouped, [2], node.args["eps"])
        y = g.op("Reshape", [y, g.op("Shape", [x])])
        return _affine(g, y, w, node.input.shape.rank)


class _InstanceNormNd(Layer):
    """Instance normalisation over the ``n`` last dims of each sample's channel."""

    layout = "contiguous"
    n = 2

    params = (
        Param("num_features", POS_INT, infer=True),
        Param("eps", FLOAT, 1e-5),
        Param("momentum", optional(FLOAT), 0.1),
        Param("affine", BOOL, False),
        Param("track_running_stats", BOOL, False),
        _BIAS,
    )

    @classmethod
    def infer(cls, name, args, x):
        n = cls.n
        return x.shape.dims[-n - 1] if x.shape.rank in (n + 1, n + 2) and not x.shape.rest else None

    @classmethod
    def output(cls, args, x, ctx):
        name, n = cls.__name__, cls.n
        x = materialize(x, n + 2, SPATIAL_NAMES[n], ctx)
        if x.shape.rank not in (n + 1, n + 2):
            raise rank_error(name, f"a {n + 1}-D (unbatched) or {n + 2}-D (batched)", x)
        have = x.shape.dims[-n - 1]
        c = args["num_features"]
        if args["affine"] or args["track_running_stats"]:
            ctx.require_equal(
                have,
                c,
                f"{name} expects {c} channels, got {have}",
                f"expected {c} channels at dim {x.shape.rank - n - 1}, got {x.shape}",
            )
        else:
            _unchecked_channels(name, x, c, ctx, channel_dim=x.shape.rank - n - 1)
        spatial = shapes.prod(x.shape.dims[-n:])
        if spatial == 1:
            raise ShapeError("E207", f"{name} needs more than one spatial element per channel")
        if args["affine"]:
            # torch repeats the weight per sample and channel, and indexes it: an empty batch or
            # channel dim raises there ("select(): index 0 out of range")
            require_nonempty(f"{name} with affine=True", x, x.shape.dims[:-n], "its batch and channel dims")
        return x

    @classmethod
    def param_count(cls, args):
        return _affine_count(args, args["num_features"])

    @classmethod
    def to_onnx(cls, g, x, node, w):
        rank, n = node.input.shape.rank, cls.n
        if node.args["track_running_stats"]:
            # torch's eval mode then normalises with the running statistics, as BatchNorm does;
            # an unbatched input gets a batch dim for BatchNormalization's layout
            return onnx_batched(g, x, rank == n + 1, lambda x: _running_stats_norm(g, x, w, node.args["eps"]))
        # each sample's channel over its own n last dims (batched or not)
        y = _standardize(g, x, list(range(rank - n, rank)), node.args["eps"])
        return _affine(g, y, w, rank, channel_dim=rank - n - 1)


@register
class InstanceNorm1d(_InstanceNormNd):
    """Instance normalisation over ``[N, C, L]`` (or unbatched ``[C, L]``)."""

    n = 1
    examples = (
        ("InstanceNorm1d(3)", "[N, 3, 16]", "[N, 3, 16]"),
        ("InstanceNorm1d(3, affine=True)", "[3, 7]", "[3, 7]"),
        ("InstanceNorm1d(3, affine=True)", "[N, 4, 16]", "E201"),
        ("InstanceNorm1d(3)", "[N, 3, 1]", "E207"),
        ("InstanceNorm1d(3)", "[N, 3, 4, 4]", "E202"),
    )
    onnx_examples = (
        ("InstanceNorm1d(3, affine=True)", "[N, 3, L]"),
        ("InstanceNorm1d(3, affine=True, track_running_stats=True)", "[3, 5]"),
    )


@register
class InstanceNorm2d(_InstanceNormNd):
    """Instance normalisation over ``[N, C, H, W]`` (or unbatched ``[C, H, W]``)."""

    n = 2
    examples = (
        ("InstanceNorm2d(3)", "[N, 3, 16, 16]", "[N, 3, 16, 16]"),
        ("InstanceNorm2d(3, affine=True)", "[N, 4, 16, 16]", "E201"),
        ("InstanceNorm2d(3)", "[3, 16, 16]", "[3, 16, 16]"),
        ("InstanceNorm2d(3, affine=True, bias=False)", "[N, 3, 4, 4]", "[N, 3, 4, 4]"),
    )
    onnx_examples = (
        ("InstanceNorm2d(3, affine=True)", "[N, 3, 5, 5]"),
        ("InstanceNorm2d(3, affine=True)", "[3, 5, 5]"),
        ("InstanceNorm2d(3, eps=0.1)", "[N, 3, H, W]"),
        # eval mode with running statistics: normalised with them, not the input's own
        ("InstanceNorm2d(3, track_running_stats=True)", "[N, 3, 5, 5]"),
        ("InstanceNorm2d(3, affine=True, track_running_stats=True)", "[N, 3, 5, 5]"),
        ("InstanceNorm2d(3, affine=True, track_running_stats=True)", "[3, 4, 4]"),
    )


@register
class InstanceNorm3d(_InstanceNormNd):
    """Instance normalisation over ``[N, C, D, H, W]`` (or unbatched ``[C, D, H, W]``)."""

    n = 3
    examples = (
        ("InstanceNorm3d(2)", "[N, 2, 4, 4, 4]", "[N, 2, 4, 4, 4]"),
        ("InstanceNorm3d(2, affine=True)", "[2, 3, 4, 5]", "[2, 3, 4, 5]"),
        ("InstanceNorm3d(2, affine=True)", "[N, 3, 4, 4, 4]", "E201"),
        ("InstanceNorm3d(2)", "[N, 2, 4, 4]", "[N, 2, 4, 4]"),
        ("InstanceNorm3d(2)", "[N, 2, 4]", "E202"),
    )
    onnx_examples = (("InstanceNorm3d(2, affine=True, track_running_stats=True)", "[N, 2, 3, 4, 5]"),)


@register
class RMSNorm(LayerNorm):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims (no centring,
    no bias); ``eps`` None is the input dtype's machine epsilon, as torch has it."""

    params = (
        Param("normalized_shape", int_tuple(1), infer=True),
        Param("eps", optional(FLOAT), None),
        Param("elementwise_affine", BOOL, True),
    )
    examples = (
        ("RMSNorm(64)", "[N, T, 64]", "[N, T, 64]"),
        ("RMSNorm((5, 10), eps=1e-6)", "[2, 5, 10]", "[2, 5, 10]"),
        ("RMSNorm()", "[N, 128]", "[N, 128]"),
        ("RMSNorm(10)", "[2, 10, 5]", "E201"),
        ("RMSNorm((2, 3))", "[3]", "E202"),
    )
    onnx_examples = (
        ("RMSNorm(8, elementwise_affine=False)", "[N, T, 8]"),
        ("RMSNorm((3, 4), eps=0.001)", "[N, 2, 3, 4]"),
    )

    @classmethod
    def param_count(cls, args):
        return shapes.prod(args["normalized_shape"]) if args["elementwise_affine"] else 0

    @classmethod
    def to_onnx(cls, g, x, node, w):
        import numpy as np

        ns, eps = node.args["normalized_shape"], node.args["eps"]
        if eps is None:
            eps = float(np.finfo(np.float32).eps)
        axes = list(range(node.input.shape.rank - len(ns), node.input.shape.rank))
        mean_square = g.reduce("ReduceMean", g.op("Mul", [x, x]), axes, True)
        y = g.op("Mul", [x, g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [mean_square, g.scalar(eps)])])])])
        weight = w.get("weight")
        return y if weight is None else g.op("Mul", [y, g.weight(weight, w.key("weight"))])


@register
class LocalResponseNorm(Layer):
    """Divides each channel (dim 1) by the activity of its ``size`` neighbouring channels (AlexNet):
    x / (k + alpha * mean of the squares in the window) ** beta."""

    integer_input = "float"  # torch computes int64 in float32 (and has no int32 kernel)
    unsupported_dtypes = frozenset({"int32"})
    params = (Param("size", POS_INT), Param("alpha", FLOAT, 1e-4), Param("beta", FLOAT, 0.75), Param("k", FLOAT, 1.0))
    examples = (
        ("LocalResponseNorm(5)", "[N, 96, 13, 13]", "[N, 96, 13, 13]"),
        ("LocalResponseNorm(2, k=2.0)", "[N, 8, L]", "[N, 8, L]"),
        ("LocalResponseNorm(3)", "[2, 4, 3, 3, 3]", "[2, 4, 3, 3, 3]"),
        ("LocalResponseNorm(3)", "[N, 8]", "E202"),
        ("LocalResponseNorm(3)", "float16[N, 8, 4, 4]", "E204"),
        ("LocalResponseNorm(0)", "[N, 8, 4, 4]", "E107"),
    )
    onnx_examples = (("LocalResponseNorm(4, alpha=0.01, beta=0.5, k=2.0)", "[N, 6, 5]"),)

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        if x.shape.rank < 3:
            raise rank_error("LocalResponseNorm", "an at least 3-D", x)
        if x.shape.rank > 3 and x.dtype in ("float16", "bfloat16"):
            # a 3-D average pool does the windowing above 3-D: torch has no CPU kernel in half precision
            raise ShapeError(
                "E204",
                f"torch has no {x.dtype} kernel for LocalResponseNorm on a {x.shape.rank}-D input on CPU, got {x}",
                f"{x.dtype} input",
                "use float32 (the default)",
            )
        return x

    @classmethod
    def to_onnx(cls, g, x, node, w):
        """torch's own computation: the squares' mean over a window of channels padded with
        size // 2 zeros before and (size - 1) // 2 after (ONNX's LRN centres even windows the
        other way), by an average pool over [N, 1, C, rest]."""
        args, size = node.args, node.args["size"]
        if node.input.dtype != "float32":
            x = g.op("Cast", [x], to=1)
        squares = g.op("Mul", [x, x])
        flat = g.op("Reshape", [g.unsqueeze(squares, [1]), g.const([0, 0, 0, -1])])
        padded = g.op("Pad", [flat, g.const([0, 0, size // 2, 0, 0, 0, (size - 1) // 2, 0])])
        mean = g.op("AveragePool", [padded], kernel_shape=[size, 1], strides=[1, 1])
        mean = g.op("Reshape", [mean, g.op("Shape", [x])])
        scaled = g.op("Add", [g.op("Mul", [mean, g.scalar(args["alpha"])]), g.scalar(args["k"])])
        return g.op("Div", [x, g.op("Pow", [scaled, g.scalar(args["beta"])])])
