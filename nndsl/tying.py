"""The weights a layer holds, by their state_dict names and shapes, for weight tying
(``lm_head.weight = wte.weight``): the layers whose weights are commonly tied."""

from __future__ import annotations

from typing import Any

#: the layers whose weights can be tied
TIEABLE = ("Linear", "Embedding", "Conv1d", "Conv2d", "Conv3d", "LayerNorm")


def _sizes(value: Any, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def weight_shapes(layer: type, args) -> dict[str, tuple] | None:
    """Each weight of a layer (``weight``, ``bias``) and its shape, as torch holds them; None
    for a layer not in TIEABLE."""
    name = layer.dsl_name()
    if name == "Linear":
        out = {"weight": (args["out_features"], args["in_features"])}
        if args.get("bias", True):
            out["bias"] = (args["out_features"],)
        return out
    if name == "Embedding":
        return {"weight": (args["num_embeddings"], args["embedding_dim"])}
    if name in ("Conv1d", "Conv2d", "Conv3d"):
        kernel = _sizes(args["kernel_size"], int(name[4]))
        out = {"weight": (args["out_channels"], args["in_channels"] // args.get("groups", 1), *kernel)}
        if args.get("bias", True):
            out["bias"] = (args["out_channels"],)
        return out
    if name == "LayerNorm":
        if not args.get("elementwise_affine", True):
            return {}
        shape = _sizes(args["normalized_shape"], 1)
        return {"weight": shape, **({"bias": shape} if args.get("bias", True) else {})}
    return None


def size(shape: tuple) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
