"""The generated training script: clean code for every train spec, its flags, and the results the
tutorials promise (XOR, the sum of three numbers, the digits MLP), trained in-process."""

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, assert_ruff_clean

from nndsl import check_file, check_source, compile_spec
from nndsl.backends.train_script import emit_train_script, load_script
from nndsl.cli import main as nndsl_main

pytest.importorskip("torch")
pytest.importorskip("sklearn")

TRAIN_SPECS = sorted(p for p in (ROOT / "specs").rglob("*.nn") if re.search(r"^train\b", p.read_text(), re.M))


def _program(path: Path):
    result = check_file(path)
    assert result.ok, [d.message for d in result.errors]
    return result.program


def _train(spec: Path | str, tmp_path: Path, *flags: str) -> dict:
    """Train in this process with the spec's settings and ``flags``; the run's results.json."""
    program = _program(spec) if isinstance(spec, Path) else check_source(spec, "spec.nn").program
    script = load_script(program, program.trainings[0])
    out = tmp_path / "run"
    assert script.main(["--out-dir", str(out), "--no-progress", *flags]) == 0
    return json.loads((out / "results.json").read_text())


def test_every_train_spec_is_found():
    names = {p.name for p in TRAIN_SPECS}
    assert {"xor.nn", "sum_regressor.nn", "digits_mlp.nn", "fashion_mlp.nn"} <= names


def test_scripts_are_ruff_clean_and_deterministic(tmp_path):
    for spec in TRAIN_SPECS:
        program = _program(spec)
        text = emit_train_script(program, program.trainings[0])
        assert text == emit_train_script(_program(spec), _program(spec).trainings[0])
        (tmp_path / f"train_{spec.stem}.py").write_text(text)
    assert_ruff_clean(tmp_path)


VARIANTS = {
    "csv": 'data = csv("table.csv", target="label", features=["a", "b"])\n    loss = CrossEntropyLoss(weight=[1.0, 2.0])',
    "npz": 'data = npz("arrays.npz")\n    loss = BCEWithLogitsLoss(pos_weight=[2.0])',
    "mnist": 'data = mnist("data/mnist", download=True)\n    loss = NLLLoss()',
    "torchvision": 'data = torchvision("MNIST")\n    loss = CrossEntropyLoss(label_smoothing=0.1)',
    "schedules": "data = xor()\n    loss = MSELoss()\n    schedule = OneCycleLR(max_lr=0.1)\n"
    "    init = xavier_uniform(gain=1.5)\n    clip_grad_norm = 1.0\n    early_stopping = 3",
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_data_source_and_setting_gives_clean_code(variant, tmp_path):
    width = {"npz": 1, "schedules": 1, "mnist": 10}.get(variant, 2)
    size = 784 if variant == "mnist" else 2
    tail = " -> LogSoftmax(dim=1)" if variant == "mnist" else ""
    spec = f"model Net(x: [N, {size}]) {{\n    Linear({size}, 8) -> ReLU -> Linear(8, {width}){tail}\n}}\n"
    spec += f"train Net {{\n    {VARIANTS[variant]}\n}}\n"
    result = check_source(spec, "net.nn")
    assert result.ok, [d.message for d in result.errors]
    text = emit_train_script(result.program, result.program.trainings[0])
    (tmp_path / "script.py").write_text(text)
    assert_ruff_clean(tmp_path)
    compile(text, "script.py", "exec")


def test_flags_show_the_specs_settings(capsys):
    program = _program(ROOT / "specs" / "digits_mlp.nn")
    script = load_script(program, program.trainings[0])
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "(default: digits())",
        "(default: Adam(lr=0.002))",
        "(default: CosineAnnealingLR())",
        "(default: 40)",
        "(default: 32)",
        '(default: kaiming_normal(nonlinearity="relu"))',
        "(default: runs/DigitsMLP)",
    ):
        assert expected in text


def test_a_model_named_like_the_runtime_keeps_its_own_class(tmp_path):
    spec = "model Trainer(x: [N, 2]) {\n    Linear(2, 1)\n}\ntrain {\n    data = xor()\n    loss = MSELoss()\n"
    spec += "    epochs = 2\n}\n"
    result = check_source(spec, "t.nn")
    text = emit_train_script(result.program, result.program.trainings[0])
    assert "class Trainer_(nn.Module):" in text and "run(args, Trainer_, load_data, parse_call)" in text
    results = _train(spec, tmp_path)
    assert results["epochs"] == 2


def test_a_block_named_like_the_runtime_keeps_the_state_dict_keys_exports_read(tmp_path):
    """A block class renamed around the script's own names (Splits -> Splits_) keeps the attribute
    names of the module nndsl compile writes: the checkpoint loads where exports look for it."""
    from nndsl.lowering import lower

    spec = "block Splits(x: [N, 2]) {\n    Linear(2, 2)\n}\nmodel M(x: [N, 2]) {\n    Splits() -> Splits()\n}\n"
    spec += "train {\n    data = xor()\n    loss = MSELoss()\n    epochs = 1\n}\n"
    program = check_source(spec, "t.nn").program
    script = load_script(program, program.trainings[0])
    module = script.M()
    assert type(module.splits1).__name__ == "Splits_"
    prefixes = lower(program).prefixes
    expected = {prefixes[n.id] for n in program.models[0].layers}
    assert {key.rsplit(".", 1)[0] for key in module.state_dict()} == expected


# ---------------------------------------------------------------- what the tutorials promise


def test_xor_trains_to_full_accuracy(tmp_path):
    results = _train(ROOT / "specs" / "xor.nn", tmp_path)
    assert results["metrics"]["accuracy"] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sum_of_three_reaches_low_error(seed, tmp_path):
    results = _train(ROOT / "specs" / "sum_regressor.nn", tmp_path, "--seed", str(seed))
    assert results["metrics"]["mse"] < 0.1


def test_digits_mlp_reaches_95_percent_on_the_test_split(tmp_path):
    results = _train(ROOT / "specs" / "digits_mlp.nn", tmp_path)
    assert results["split"] == "test"
    assert results["metrics"]["accuracy"] >= 0.95


# ---------------------------------------------------------------- the command line


def test_nndsl_train_runs_the_same_training(tmp_path, capsys):
    out = tmp_path / "run"
    code = nndsl_main(["train", str(ROOT / "specs" / "xor.nn"), "--epochs", "3", "--out-dir", str(out)])
    assert code == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert "epoch 3/3" in capsys.readouterr().out


def test_compile_target_train_writes_a_script(tmp_path, capsys):
    target = tmp_path / "train_xor.py"
    assert nndsl_main(["compile", str(ROOT / "specs" / "xor.nn"), "--target", "train", "-o", str(target)]) == 0
    assert target.read_text().startswith('"""Trains XOR')


def test_compile_target_train_without_a_section(tmp_path, capsys):
    target = tmp_path / "x.py"
    code = nndsl_main(["compile", str(ROOT / "specs" / "cnn.nn"), "--target", "train", "-o", str(target)])
    assert code == 2 and not target.exists()
    assert "has no train section" in capsys.readouterr().err


def test_compile_target_train_with_errors_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "bad.nn"
    spec.write_text("model M(x: [N, 64]) {\n    Linear(64, 10)\n}\ntrain M {\n    loss = MSELoss()\n}\n")
    target = tmp_path / "x.py"
    assert nndsl_main(["compile", str(spec), "--target", "train", "-o", str(target)]) == 1
    assert not target.exists()
    assert "E505" in capsys.readouterr().err


HOSTILE = [
    "Smith's data, 2024.csv",
    'say "hi", then.csv',
    "a'b\"c.csv",
    "'''; import os; '''.csv",
    '"""; import os; """.csv',
    "'); import os; ('.csv",
    '"); import os; (".csv',
    "back\\slash\\.csv",
    "trailing\\",
    "new\nline.csv",
    "tab\tand\x00nul\x7f.csv",
    "\u2028separator\u00e9.csv",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_strings_stay_data(path, tmp_path):
    """Every string of the spec reaches the script through the literal writer: the script is
    clean Python whose flags hold exactly the spec's strings, and nothing else runs."""
    from nndsl.backends.pysource import literal
    from nndsl.backends.train_runtime.data import parse_call

    spec = "model Net(x: [N, 2]) {\n    Linear(2, 2)\n}\n"
    spec += f"train Net {{\n    data = csv({literal(path)}, target={literal(path)})\n    loss = CrossEntropyLoss()\n"
    spec += f"    out_dir = {literal(path)}\n    device = 'cpu'\n}}\n"
    result = check_source(spec, "net.nn")
    assert result.ok, [d.message for d in result.errors]
    text = emit_train_script(result.program, result.program.trainings[0])
    (tmp_path / "script.py").write_text(text)
    assert_ruff_clean(tmp_path)
    names = {"__name__": "hostile"}
    exec(compile(text, "script.py", "exec"), names)
    args = names["parse_args"]([])
    settings = result.program.trainings[0].settings
    checked = settings["out_dir"]  # the spec's string, its escapes read as the language reads them
    assert "'" not in path or "'" in checked
    assert parse_call(args.data) == ("csv", [], {"path": checked, "target": checked})
    assert args.out_dir == checked


def test_a_bare_resume_continues_the_run_as_it_was(tmp_path, capsys):
    """Flags not written take the checkpoint's values (not the spec's); a written one that
    differs is refused, unless --extend makes more epochs the intended change."""
    out = tmp_path / "run"
    xor = str(ROOT / "specs" / "xor.nn")
    common = ["train", xor, "--out-dir", str(out), "--no-progress"]
    assert nndsl_main([*common, "--epochs", "3", "--optimizer", "SGD(lr=0.1)"]) == 0
    assert nndsl_main([*common, "--resume"]) == 0  # the spec says 300 epochs and lr=0.5
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    capsys.readouterr()
    assert nndsl_main([*common, "--resume", "--epochs", "5", "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "--seed 0 -> 1; --epochs 3 -> 5" in err and "add --extend" in err
    assert nndsl_main([*common, "--resume", "--extend", "--epochs", "5"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5] and {r["lr"] for r in records} == {0.1}


def test_plot_is_a_setting_and_a_flag():
    spec = "model X(x: [N, 2]) {\n    Linear(2, 2)\n}\ntrain X {\n    data = xor()\n    loss = CrossEntropyLoss()\n"
    for setting, default in (("", False), ("    plot = True\n", True)):
        result = check_source(spec + setting + "}\n", "x.nn")
        assert result.ok, [d.message for d in result.errors]
        script = load_script(result.program, result.program.trainings[0])
        assert script.parse_args([]).plot is default
        assert script.parse_args(["--plot"]).plot is True and script.parse_args(["--no-plot"]).plot is False


def test_class_names_and_inputs_are_saved_beside_the_weights(tmp_path):
    """model.json: the class names (in the order of the output units), the feature columns in
    order, the target, the input's shape, dtype and scaling, so the model can be used later."""
    table = tmp_path / "flowers.csv"
    rows = ["width,kind,length"] + [f"{i % 5},{('rose', 'iris', 'lily')[i % 3]},{i % 7}" for i in range(30)]
    table.write_text("\n".join(rows) + "\n")
    spec = "model F(x: [N, 2]) {\n    Linear(2, 3)\n}\n"
    spec += f"train F {{\n    data = csv({str(table)!r}, target='kind', features=['length', 'width'])\n"
    spec += "    loss = CrossEntropyLoss()\n    epochs = 1\n}\n"
    _train(spec, tmp_path)
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["class_names"] == ["iris", "lily", "rose"]
    assert info["features"] == ["length", "width"] and info["target"] == "kind"
    assert info["input_shape"] == [None, 2] and info["input_dtype"] == "float32"
    assert info["task"] == "classification" and info["weights"] == "model.pt"
    _train(ROOT / "specs" / "xor.nn", tmp_path / "xor", "--epochs", "1")
    assert "class_names" not in json.loads((tmp_path / "xor" / "run" / "model.json").read_text())


def test_digits_record_their_scaling(tmp_path):
    _train(ROOT / "specs" / "digits_mlp.nn", tmp_path, "--epochs", "1")
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["input_scale"] == 1 / 16 and info["class_names"] == [str(d) for d in range(10)]


def test_the_script_names_its_spec_by_file_name_only(tmp_path):
    program = _program(ROOT / "specs" / "xor.nn")
    text = emit_train_script(program, program.trainings[0])
    assert "from xor.nn" in text and str(ROOT) not in text


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_a_model_declared_in_another_float_dtype_trains_in_it(tmp_path, dtype):
    """The emitted module holds its weights in the declared dtype; the script feeds it that dtype."""
    spec = (
        f"model M(x: {dtype}[N, 64]) {{\n    Linear(64, 10)\n}}\n\n"
        "train M {\n    loss = CrossEntropyLoss()\n    optimizer = Adam(lr=0.01)\n    data = digits()\n    epochs = 1\n}\n"
    )
    results = _train(spec, tmp_path)
    assert results["metrics"]["accuracy"] > 0.5


def test_the_script_copies_shared_helpers_from_their_one_definition():
    """The runtime imports did-you-mean (nndsl.suggest) and atomic writing (nndsl.atomic); the
    script holds their source, not the import."""
    import inspect

    import nndsl.atomic
    import nndsl.suggest

    script = compile_spec(ROOT / "specs" / "digits_mlp.nn", target="train")
    assert inspect.getsource(nndsl.suggest.did_you_mean) in script
    assert inspect.getsource(nndsl.suggest.close_matches) in script
    assert inspect.getsource(nndsl.atomic.replace_atomically) in script
    assert "import nndsl" not in script and "from nndsl" not in script
