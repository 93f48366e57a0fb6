"""Names the spec chooses never break or hijack the emitted module.

Generated specs name block parameters, sub-network parameters, input sizes, body constants,
loop variables, let-constants, blocks, models, model inputs and values after Python keywords,
builtins, dunders, nn.Module members and the names the emitted code itself uses; each compiles,
passes ruff, builds, runs, switches train/eval, and gives the checker's output shapes.
"""

from __future__ import annotations

import builtins
import keyword
import re

import pytest
from conftest import assert_ruff_clean

import nndsl
from nndsl.backends.torch_module import class_names, emit_program, load_module
from nndsl.lowering import MODULE_MEMBERS, Names, lower, python_name
from nndsl.shapes import Sym, substitute

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


def _module_members() -> set[str]:
    return set(dir(nn.Module)) | set(vars(nn.Module()))


NAMES = sorted(
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | {n for n in dir(builtins) if n.isidentifier() and not n[0].isupper()}
    | _module_members()
    | {"__class__", "__init__", "__x", "_x", "__", "x", "self", "nn", "torch", "h_n", "c_n", "out"}
    | {"class_", "lambda_", "self_", "forward_", "p__class__", "pp__class__", "m_modules"}
    | {"Train", "Training", "Forward", "Eval", "Float", "Cuda", "To", "Type", "State_dict", "Modules"}
)
#: names that broke the emitted module before: each must be usable in every role
MUST = {"lambda", "forward", "training", "__class__", "class", "self", "super", "Train", "eval", "type", "float"}

# role -> (definitions, uses in the model ``Main(x: [N, 4])``, one line each, all keeping [N, 4])
ROLES = {
    "block parameter": ("block P{i}(x: [N, C], {n}) {{ Linear(C, {n}) }}", "-> P{i}(4)"),
    "sub-network parameter": ("block Q{i}(x: [N, C], {n}) {{ {n} -> ReLU }}", "-> Q{i}(Linear(4, 4))"),
    "optional shortcut": (
        "block R{i}(x: [N, C], {n}=1) {{ Residual(Linear(C, C), shortcut=Linear(C, C) if {n} != 1 else None) }}",
        "-> R{i}(1) -> R{i}(2)",
    ),
    "input size": ("block S{i}(x: [N, {n}]) {{ Linear({n}, 4) }}", "-> S{i}"),
    "body constant": ("block K{i}(x: [N, C], w) {{ {n} = w * 2\n Linear(C, {n}) -> Linear({n}, C) }}", "-> K{i}(3)"),
    "loop variable": ("block L{i}(x: [N, C]) {{ for {n} in [C, C] {{ Linear(C, {n}) }} }}", "-> L{i}"),
    "let constant": ("let {n} = 4", "-> Linear(4, {n})"),
    "block": ("block {n}(x: [N, C]) {{ Linear(C, 4) }}", "-> {n}"),
    "value": ("", "{n} = {p} -> Linear(4, 4)"),
}


def _spec(role: str, names: list[str]) -> tuple[str, dict[int, str]]:
    """The spec for ``names`` in ``role``, and which name each line is about."""
    definition, use = ROLES[role]
    lines, owner = [], {}
    for i, n in enumerate(names):
        for text in definition.format(i=i, n=n).split("\n") if definition else ():
            owner[len(lines) + 1] = n
            lines.append(text)
    lines.append("model Main(x: [N, 4]) {")
    if role != "value":
        lines.append("    x")
    for i, n in enumerate(names):
        owner[len(lines) + 1] = n
        lines.append("    " + use.format(i=i, n=n, p=names[i - 1] if i else "x"))
    if role == "value":
        lines.append(f"    return {names[-1]}")
    lines.append("}")
    return "\n".join(lines) + "\n", owner


def _accepted(role: str) -> tuple[str, list[str]]:
    """The role's spec over every name the language accepts there (a DSL keyword is not a name)."""
    names = [n for n in NAMES if n not in ("x", "Main")]
    for _ in range(24):  # a syntax error in the body hides the rest of it: a keyword a round
        text, owner = _spec(role, names)
        result = nndsl.check_source(text, f"{role}.nn")
        if result.ok:
            return text, names
        bad = {owner.get(result.source.line_col(d.span.start)[0]) for d in result.errors}
        assert bad - {None}, [d.message for d in result.errors]
        names = [n for n in names if n not in bad]
    pytest.fail(f"{role}: no spec the checker accepts")


def _run(text: str, name: str) -> None:
    program = nndsl.check_source(text, name).program
    namespace = load_module(program)
    classes = class_names(program)
    prefixes = lower(program).prefixes
    for model in program.complete_models:
        module = namespace[classes[model.name]]()
        inputs = [torch.randn(2, 4) for _ in model.input_types]
        module.eval()
        assert not module.training
        with torch.no_grad():
            out = module(*inputs)
        module.train()
        assert module.training and all(m.training for m in module.modules())
        outs = out if isinstance(out, tuple) else (out,)
        want = [tuple(substitute(d, {Sym("N"): 2}) for d in t.shape.dims) for t in model.outputs]
        assert [tuple(o.shape) for o in outs] == want
        keys = {k.rsplit(".", 1)[0] for k in module.state_dict()}
        assert keys == {prefixes[node.id] for node in model.layers if node.params}


@pytest.mark.parametrize("role", list(ROLES))
def test_spec_names_in_every_role_build_and_run(role, tmp_path):
    text, names = _accepted(role)
    assert MUST <= set(names), MUST - set(names)
    assert len(names) > 0.8 * len(NAMES)
    _run(text, f"{role}.nn")
    (tmp_path / "emitted.py").write_text(emit_program(nndsl.check_source(text, f"{role}.nn").program))
    assert_ruff_clean(tmp_path)


def test_models_and_model_inputs_named_like_python():
    names = [n for n in NAMES if nndsl.check_source(f"model {n}(x: [N, 4]) {{ Linear(4, 2) }}").ok]
    assert MUST <= set(names)
    _run("\n".join(f"model {n}(x: [N, 4]) {{ Linear(4, 2) }}" for n in names), "models.nn")
    inputs = [n for n in NAMES if nndsl.check_source(f"model M({n}: [N, 4]) {{ Linear(4, 2) }}").ok]
    assert MUST <= set(inputs)
    _run("\n".join(f"model M{i}({n}: [N, 4]) {{ Linear(4, 2) }}" for i, n in enumerate(inputs)), "inputs.nn")
    several = ", ".join(f"{n}: [N, 4]" for n in inputs[:40])
    _run(f"model Many({several}) {{ return {' + '.join(inputs[:40])} }}", "many.nn")


def test_the_attribute_list_is_torchs():
    """The allocator's static list of nn.Module members is every public one torch has; private
    ``_`` names are avoided as a whole."""
    public = {n for n in _module_members() if not n.startswith("_")}
    assert public <= MODULE_MEMBERS, sorted(public - MODULE_MEMBERS)
    attrs = Names(attributes=True)
    for n in sorted(_module_members()):
        taken = attrs.take(n)
        assert taken not in _module_members() and not taken.startswith("_") and taken.isidentifier()


def test_python_name_is_one_to_one_and_safe():
    images = {python_name(n): n for n in NAMES}
    assert len(images) == len(NAMES)
    for image in images:
        assert image.isidentifier() and not keyword.iskeyword(image) and not image.startswith("__")
        assert image.rstrip("_") not in ("self", "super", "torch", "nn", "float") or image.endswith("_")
        assert not re.fullmatch(r"__\w*__", image)
