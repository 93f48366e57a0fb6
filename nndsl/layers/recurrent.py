"""Recurrent layers RNN, LSTM, GRU, with selectors for the part of torch's output tuple to keep.

torch returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``). A chain continues with
``output`` unless the call names another part: ``.last`` (output at the last time step),
``.hidden`` (final hidden state of the top layer, both directions concatenated), ``.h_n``
and, for LSTM, ``.c_n``. Unpacked into names, one run gives every part: ``out, h_n = GRU(...)(x)``,
``out, h_n, c_n = LSTM(...)(x)`` (torch's ``out, (h_n, c_n)``).
"""

from __future__ import annotations

from nndsl import layout, shapes
from nndsl.layers.base import (
    BOOL,
    NONNEG_INT,
    POS_INT,
    PROB,
    ArgValueError,
    Layer,
    Param,
    ShapeError,
    choice,
    materialize,
    rank_error,
    require_nonempty,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign

_SELECTORS = {
    "output": "the output sequence (default)",
    "last": "the output at the last time step: [N, D*H_out]",
    "hidden": "the top layer's final hidden state (both directions concatenated): [N, D*H_out]",
    "h_n": "the final hidden state of every layer and direction: [D*num_layers, N, H_out]",
}


class _RNNBase(Layer):
    gates = 1
    selectors = _SELECTORS
    default_selector = "output"
    parts = ("output", "h_n")
    #: the initial state: ``GRU(...)(x, h_0)``; LSTM's is the pair ``(h_0, c_0)``
    tensor_inputs = ("hx",)

    @classmethod
    def _states(cls, args) -> tuple[tuple[str, int], ...]:
        """The initial state's tensors, with their last size (LSTM: h_0 of proj_size or hidden_size, c_0)."""
        return (("hx", cls._h_out(args)),)

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        out = cls.output(args, x, ctx)
        layers = (2 if args["bidirectional"] else 1) * args["num_layers"]
        batched = out.shape.rank == 3
        batch = out.shape.dims[0 if args["batch_first"] else 1] if batched else None
        for name, size in cls._states(args):
            state = inputs.get(name)
            if state is None:
                continue
            want = (layers, batch, size) if batched else (layers, size)
            expected = "(" + ", ".join(str(d) for d in want) + ")"
            if state.shape.rest or state.shape.rank != len(want):
                raise ShapeError(
                    "E202",
                    f"for a {out.shape.rank}-D input, {cls.__name__}'s {name} must be {len(want)}-D {expected}, "
                    f"got {state.shape}",
                    f"expected {expected}, got {state.shape}",
                    param=name,
                )
            if state.dtype != x.dtype:
                raise ShapeError(
                    "E204",
                    f"{cls.__name__}'s {name} must have the input's dtype {x.dtype}, got {state.dtype}",
                    f"expected {x.dtype}, got {state.dtype}",
                    param=name,
                )
            for have, should in zip(state.shape.dims, want):
                if shapes.known_equal(have, should) is False:
                    raise ShapeError(
                        "E201",
                        f"{cls.__name__}'s {name} must have size {expected}, got {state.shape}",
                        f"expected {expected}, got {state.shape}",
                        param=name,
                    )
                ctx.require_equal(have, should, f"{name} must have size {expected}, got {state.shape}", expected)
        return out

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.extra and node.args.get("proj_size"):
            return (
                "an LSTM with proj_size runs in ONNX on the unprojected state (ONNX's LSTM has no "
                "projection), which a given projected h_0 does not determine"
            )
        return None

    @classmethod
    def forward_call(cls, attr, src, dst, args, selector, inputs, forward):
        state = [Code(inputs[name]) for name, _ in cls._states(args) if name in inputs]
        given = (state[0] if len(state) == 1 else Code(f"({', '.join(state)})"),) if state else ()
        statements = cls.forward_statements(attr, src, dst, args, selector)
        applied = Call(f"self.{attr}", (Code(src), *given))
        # the same statements with the state passed: the first applies the module
        return [statements[0]._replace(value=applied), *statements[1:]]

    @classmethod
    def unpack_call(cls, attr, src, dsts, args, inputs, forward):
        state = [Code(inputs[name]) for name, _ in cls._states(args) if name in inputs]
        given = (state[0] if len(state) == 1 else Code(f"({', '.join(state)})"),) if state else ()
        output, *final = dsts
        # torch's (output, h_n), LSTM's (output, (h_n, c_n))
        final_target = final[0] if len(final) == 1 else f"({', '.join(final)})"
        return [Assign((output, final_target), Call(f"self.{attr}", (Code(src), *given)))]

    @classmethod
    def infer(cls, name, args, x):
        return x.shape.dims[-1] if x.shape.rank in (2, 3) and not x.shape.rest else None

    @classmethod
    def _h_out(cls, args) -> int:
        return args["hidden_size"]

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, 3, ("L", "N", "F") if not args["batch_first"] else ("N", "L", "F"), ctx)
        if x.shape.rank not in (2, 3):
            raise rank_error(cls.__name__, "a 2-D (unbatched) or 3-D (batched)", x)
        length = x.shape.dims[1 if args["batch_first"] and x.shape.rank == 3 else 0]
        require_nonempty(
            cls.__name__, x, (length,), "the sequence length (torch: 'Expected sequence length to be larger than 0')"
        )
        have = x.shape.dims[-1]
        n_in = args["input_size"]
        ctx.require_equal(
            have,
            n_in,
            f"{cls.__name__} expects input_size {n_in}, got {have}",
            f"expected last dim {n_in}, got {x.shape}",
            f"change input_size to {have}" if isinstance(have, int) else None,
        )
        if args["dropout"] > 0 and args["num_layers"] == 1:
            ctx.warn(
                "W302",
                f"dropout={args['dropout']} has no effect with num_layers=1 (dropout is applied between layers)",
                "set num_layers above 1, or add a Dropout layer after this one",
                param="dropout",
            )
        d = 2 if args["bidirectional"] else 1
        dims = x.shape.dims[:-1] + (d * cls._h_out(args),)
        return TensorType(Shape(dims), x.dtype)

    @classmethod
    def out_strides(cls, args, x, out, selector):
        """batch_first: torch computes the sequence as [L, N, H] and hands back its transpose."""
        if selector != "output" or not args["batch_first"] or out.shape.rank != 3:
            return None
        n, _, h = out.shape.dims
        return layout.normal(out.shape.dims, (h, shapes.mul(n, h), 1))

    @classmethod
    def select(cls, args, x, out, selector):
        d = 2 if args["bidirectional"] else 1
        h_out = cls._h_out(args)
        # read the layout from the output sequence: it keeps the input's leading dims, and an
        # input of unknown rank has been given its batched form there
        batched = out.shape.rank == 3
        if batched:
            batch = out.shape.dims[0] if args["batch_first"] else out.shape.dims[1]
        if selector == "output":
            return out
        if selector == "last" and args["batch_first"] and not batched:
            # the emitted out[:, -1] would take the last feature of every step of [L, D*H_out]
            raise ShapeError(
                "E202",
                f"{cls.__name__}(batch_first=True).last needs a batched 3-D input [N, L, F], got {out.shape}",
                f"unbatched input {out.shape}",
                "give the input a batch dimension, or drop batch_first=True for an unbatched sequence",
            )
        if selector in ("last", "hidden"):
            return TensorType(Shape(((batch,) if batched else ()) + (d * h_out,)), out.dtype)
        size = h_out if selector == "h_n" else args["hidden_size"]
        return TensorType(Shape((d * args["num_layers"],) + ((batch,) if batched else ()) + (size,)), out.dtype)

    @classmethod
    def forward_statements(cls, attr, src, dst, args, selector):
        selector = selector or "output"
        state = "(h_n, _)" if cls.__name__ == "LSTM" else "h_n"  # LSTM's state is (h_n, c_n)
        applied = Call(f"self.{attr}", (Code(src),))
        if selector == "output":
            return [Assign((dst, "_"), applied)]
        if selector == "last":
            index = "[:, -1]" if args["batch_first"] else "[-1]"
            return [Assign((dst, "_"), applied), assign(dst, Code(f"{dst}{index}"))]
        if selector == "hidden":
            if args["bidirectional"]:
                last = Call("torch.cat", ((Code("h_n[-2]"), Code("h_n[-1]")),), (("dim", -1),))
            else:
                last = Code("h_n[-1]")
            return [Assign(("_", state), applied), assign(dst, last)]
        if selector == "h_n":
            return [Assign(("_", state), applied), assign(dst, Code("h_n"))]
        return [Assign(("_", "(_, c_n)"), applied), assign(dst, Code("c_n"))]

    @classmethod
    def param_count(cls, args):
        d = 2 if args["bidirectional"] else 1
        hidden, h_out = args["hidden_size"], cls._h_out(args)
        proj = args.get("proj_size", 0)
        g = cls.gates
        total = 0
        for layer in range(args["num_layers"]):
            n_in = args["input_size"] if layer == 0 else d * h_out
            per_dir = g * hidden * n_in + g * hidden * h_out
            if args["bias"]:
                per_dir += 2 * g * hidden
            if proj:
                per_dir += proj * hidden
            total += d * per_dir
        return total

    # -- ONNX: one RNN/GRU/LSTM op per layer, run sequence-major ([L, N, F], ONNX's layout 0,
    # the only one onnxruntime's CPU kernels run); the selectors are read off Y and Y_h/Y_c

    onnx_op = "RNN"
    #: torch's gate blocks in the order ONNX stacks them
    onnx_gates = (0,)

    @classmethod
    def _onnx_attrs(cls, args, d):
        return {}

    @classmethod
    def to_onnx(cls, g, x, node, w):
        import numpy as np

        args = node.args
        d = 2 if args["bidirectional"] else 1
        hidden, h_out = args["hidden_size"], cls._h_out(args)
        proj = args.get("proj_size", 0)
        batched = node.input.shape.rank != 2
        if not batched:
            x = g.unsqueeze(x, [1])  # [L, F] -> [L, 1, F], as torch does (batch_first or not)
        elif args["batch_first"]:
            x = g.transpose(x, (1, 0, 2))

        def gates(t):
            return np.concatenate([t[i * hidden : (i + 1) * hidden] for i in cls.onnx_gates])

        # the given initial state, [D * num_layers, N, size] ([D * num_layers, size] unbatched):
        # layer l starts from its D rows, ONNX's initial_h/initial_c [D, N, size]
        states = [w.inputs.get(name) for name, _ in cls._states(args)]
        if not batched:
            states = [None if s is None else g.unsqueeze(s, [1]) for s in states]

        direction = "bidirectional" if d == 2 else "forward"
        attrs = cls._onnx_attrs(args, d)
        h_parts, c_parts = [], []
        for layer in range(args["num_layers"]):
            ws, rs, bs, ps = [], [], [], []
            for suffix in ("", "_reverse")[:d]:
                tail = f"_l{layer}{suffix}"
                w_ih, w_hh = w(f"weight_ih{tail}"), w(f"weight_hh{tail}")
                b_ih, b_hh = w.get(f"bias_ih{tail}"), w.get(f"bias_hh{tail}")
                if proj:
                    # ONNX LSTM has no projection, but it is linear: h_t = W_hr m_t with
                    # m_t = o * tanh(c_t), so W_hh h_{t-1} = (W_hh W_hr) m_{t-1}. The op runs on
                    # the unprojected m (hidden_size wide) and its Y and Y_h are projected after.
                    w_hr = w(f"weight_hr{tail}")
                    w_hh = (w_hh.astype(np.float64) @ w_hr.astype(np.float64)).astype(np.float32)
                    ps.append(w_hr.T)
                ws.append(gates(w_ih))
                rs.append(gates(w_hh))
                if b_ih is not None:
                    bs.append(np.concatenate([gates(b_ih), gates(b_hh)]))  # ONNX B is [Wb, Rb]
            inputs = [
                x,
                g.weight(np.stack(ws), w.key(f"weight_ih_l{layer}")),
                g.weight(np.stack(rs), w.key(f"weight_hh_l{layer}")),
            ]
            if bs:
                inputs.append(g.weight(np.stack(bs), w.key(f"bias_l{layer}")))
            if any(s is not None for s in states):
                inputs += [""] * (5 - len(inputs))  # no B when bias=False, no sequence_lens
                for state in states:
                    rows = (layer * d, (layer + 1) * d)
                    inputs.append(state if args["num_layers"] == 1 else g.slice(state, rows[:1], rows[1:], [0]))
            outs = g.op(
                cls.onnx_op,
                inputs,
                outputs=3 if cls.onnx_op == "LSTM" else 2,
                direction=direction,
                hidden_size=hidden,
                **attrs,
            )
            y, h = outs[0], outs[1]  # Y [L, D, N, hidden], Y_h [D, N, hidden]
            if proj:
                p = g.weight(np.stack(ps), w.key(f"weight_hr_l{layer}"))  # [D, hidden, P]
                y = g.op("MatMul", [y, p])
                h = g.op("MatMul", [h, p])
            h_parts.append(h)
            if cls.onnx_op == "LSTM":
                c_parts.append(outs[2])
            # torch's layer output [L, N, D*h_out]: the next layer's input
            if d == 1:
                x = g.squeeze(y, [1])
            else:
                x = g.op("Reshape", [g.transpose(y, (0, 2, 1, 3)), g.const([0, 0, d * h_out])])

        def part(selector: str) -> str:
            if selector == "output":
                if not batched:
                    return g.squeeze(x, [1])
                return g.transpose(x, (1, 0, 2)) if args["batch_first"] else x
            if selector == "last":
                out = g.op("Gather", [x, g.const(-1)], axis=0)  # [N, D*h_out]
                return out if batched else g.squeeze(out, [0])
            if selector == "hidden":
                top = h_parts[-1]  # [D, N, h_out]
                if d == 1:
                    out = g.squeeze(top, [0])
                else:
                    out = g.op("Reshape", [g.transpose(top, (1, 0, 2)), g.const([0, d * h_out])])
                return out if batched else g.squeeze(out, [0])
            parts = h_parts if selector == "h_n" else c_parts
            out = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0)  # [D*num_layers, N, size]
            return out if batched else g.squeeze(out, [1])

        if node.unpacked:  # every part, read off the one run's Y, Y_h and Y_c
            return tuple(part(selector) for selector in cls.parts)
        return part(node.selector or "output")


def _common(extra_after_layers=(), extra_tail=()):
    return (
        (
            Param("input_size", POS_INT, infer=True),
            Param("hidden_size", POS_INT),
            Param("num_layers", POS_INT, 1),
        )
        + extra_after_layers
        + (
            Param("bias", BOOL, True),
            Param("batch_first", BOOL, False),
            Param("dropout", PROB, 0.0),
            Param("bidirectional", BOOL, False),
        )
        + extra_tail
    )


@register
class RNN(_RNNBase):
    """Elman RNN with tanh or ReLU; continues with the output sequence unless a selector says otherwise."""

    gates = 1
    params = _common((Param("nonlinearity", choice("tanh", "relu"), "tanh"),))
    onnx_op = "RNN"
    onnx_gates = (0,)
    examples = (
        ("RNN(10, 20)", "[L, N, 10]", "[L, N, 20]"),
        ("RNN(10, 20, batch_first=True).last", "[N, L, 10]", "[N, 20]"),
        ("RNN(10, 20)", "[L, N, 12]", "E201"),
        ("RNN(10, 20)", "[0, N, 10]", "E203"),
    )
    onnx_examples = (
        ("RNN(3, 4, num_layers=2, nonlinearity='relu')", "[L, N, 3]"),
        ("RNN(3, 4, bidirectional=True, batch_first=True)", "[N, L, 3]"),
        ("RNN(3, 4, num_layers=2, bidirectional=True, bias=False).hidden", "[L, N, 3]"),
        ("RNN(3, 4, num_layers=2, bidirectional=True, nonlinearity='relu').h_n", "[L, N, 3]"),
        ("RNN(3, 4, bidirectional=True).last", "[L, N, 3]"),
        ("RNN(3, 4).hidden", "[L, N, 3]"),
        ("RNN(3, 4, num_layers=2)", "[L, 3]"),
        ("RNN(3, 4, batch_first=True, bidirectional=True)", "[L, 3]"),
        ("RNN(3, 4, bidirectional=True).hidden", "[L, 3]"),
        ("RNN(3, 4, num_layers=2).h_n", "[L, 3]"),
    )

    @classmethod
    def _onnx_attrs(cls, args, d):
        return {"activations": [args["nonlinearity"].capitalize()] * d}


@register
class GRU(_RNNBase):
    """Gated recurrent unit; ``.last``/``.hidden`` give one vector per sequence."""

    gates = 3
    params = _common()
    onnx_op = "GRU"
    onnx_gates = (1, 0, 2)  # torch r, z, n; ONNX z, r, h
    examples = (
        ("GRU(10, 20, num_layers=3, bidirectional=True)", "[5, 3, 10]", "[5, 3, 40]"),
        ("GRU(10, 20, num_layers=3, bidirectional=True).h_n", "[5, 3, 10]", "[6, 3, 20]"),
        ("GRU(10, 20, batch_first=True).hidden", "[N, T, 10]", "[N, 20]"),
    )
    onnx_examples = (
        ("GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True).hidden", "[N, T, 3]"),
        ("GRU(3, 4, num_layers=2, bidirectional=True).hidden", "[L, N, 3]"),
        ("GRU(3, 4, num_layers=2, batch_first=True)", "[N, L, 3]"),
        ("GRU(3, 4, bias=False, bidirectional=True)", "[L, N, 3]"),
        ("GRU(3, 4, bidirectional=True, batch_first=True).last", "[N, L, 3]"),
        ("GRU(3, 4, num_layers=2, dropout=0.5).h_n", "[L, N, 3]"),
        ("GRU(3, 4, bidirectional=True)", "[L, 3]"),
        ("GRU(3, 4, num_layers=2, bidirectional=True).h_n", "[L, 3]"),
        ("GRU(3, 4).last", "[L, 3]"),
    )

    @classmethod
    def _onnx_attrs(cls, args, d):
        # torch applies the reset gate after the recurrent product: r * (W_hn h + b_hn)
        return {"linear_before_reset": 1}


@register
class LSTM(_RNNBase):
    """Long short-term memory; ``.c_n`` also gives the final cell state."""

    gates = 4
    selectors = {**_SELECTORS, "c_n": "the final cell state: [D*num_layers, N, hidden_size]"}
    parts = ("output", "h_n", "c_n")
    tuple_inputs = {"hx": ("h_0", "c_0")}

    @classmethod
    def _states(cls, args):
        return (("h_0", cls._h_out(args)), ("c_0", args["hidden_size"]))

    params = _common(extra_tail=(Param("proj_size", NONNEG_INT, 0),))
    onnx_op = "LSTM"
    onnx_gates = (0, 3, 1, 2)  # torch i, f, g, o; ONNX i, o, f, c
    examples = (
        ("LSTM(10, 20, num_layers=2, batch_first=True)", "[N, T, 10]", "[N, T, 20]"),
        ("LSTM(10, 20, num_layers=2, batch_first=True).last", "[N, T, 10]", "[N, 20]"),
        (
            "LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=7, batch_first=True).h_n",
            "[3, 5, 10]",
            "[4, 3, 7]",
        ),
        ("LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True).c_n", "[3, 5, 10]", "[4, 3, 20]"),
        ("LSTM(10, 20, proj_size=20)", "[L, N, 10]", "E107"),
        ("LSTM(10, 20)", "[N, 1, 10, 10]", "E202"),
        ("LSTM(10, 20, batch_first=True).last", "[5, 10]", "E202"),
        ("LSTM(10, 20).last", "[5, 10]", "[20]"),
    )
    onnx_examples = (
        ("LSTM(3, 4, num_layers=2, bidirectional=True).hidden", "[L, N, 3]"),
        ("LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).hidden", "[N, L, 3]"),
        ("LSTM(3, 4, num_layers=2, bidirectional=True)", "[L, N, 3]"),
        ("LSTM(3, 4, bidirectional=True, batch_first=True)", "[N, L, 3]"),
        ("LSTM(3, 4, bias=False, bidirectional=True).c_n", "[L, N, 3]"),
        ("LSTM(3, 4, num_layers=2, dropout=0.5).h_n", "[L, N, 3]"),
        ("LSTM(3, 4, bidirectional=True).last", "[L, N, 3]"),
        ("LSTM(3, 4, proj_size=2, num_layers=2, bidirectional=True)", "[L, N, 3]"),
        ("LSTM(3, 4, proj_size=2, num_layers=2, bidirectional=True).hidden", "[L, N, 3]"),
        ("LSTM(3, 4, proj_size=2, batch_first=True, bias=False).last", "[N, L, 3]"),
        ("LSTM(3, 4, proj_size=2, num_layers=2).c_n", "[L, 3]"),
        ("LSTM(3, 4, num_layers=2, bidirectional=True).h_n", "[L, 3]"),
        ("LSTM(3, 4, bidirectional=True, batch_first=True)", "[L, 3]"),
        ("LSTM(3, 4, bidirectional=True).hidden", "[L, 3]"),
    )

    @classmethod
    def validate(cls, args):
        if args["proj_size"] >= args["hidden_size"]:
            raise ArgValueError(
                f"proj_size ({args['proj_size']}) must be smaller than hidden_size ({args['hidden_size']})",
                "proj_size",
            )

    @classmethod
    def _h_out(cls, args):
        return args["proj_size"] or args["hidden_size"]
