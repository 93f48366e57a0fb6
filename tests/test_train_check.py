"""The train section: settings, the losses/optimizers/schedules it names, and the pairing checks."""

import inspect
from pathlib import Path

import pytest
from conftest import ROOT

from nndsl.api import check_source, compile_spec
from nndsl.check.training import INITS, LOSSES, OPTIMIZERS, SCHEDULES

MLP = "model M(x: [N, 64]) {\n    Linear(64, 32) -> ReLU -> Linear(32, 10)\n}\n"


def check(train: str, model: str = MLP):
    return check_source(model + train, "spec.nn")


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def test_settings_with_defaults():
    r = check(
        "train M {\n    loss = CrossEntropyLoss(label_smoothing=0.1)\n    optimizer = SGD(0.1, momentum=0.9)\n}\n"
    )
    assert r.ok, codes(r)
    (config,) = r.program.trainings
    s = config.settings
    assert config.model == "M" and config.task == "classification"
    assert s["loss"].name == "CrossEntropyLoss" and dict(s["loss"].args) == {"label_smoothing": 0.1}
    assert dict(s["optimizer"].args) == {"lr": 0.1, "momentum": 0.9}
    assert s["epochs"] == 10 and s["batch_size"] == 64 and s["split"] == (0.6, 0.2, 0.2)
    assert s["out_dir"] == "runs/M" and s["schedule"] is None and s["init"] is None
    assert s["data"].name == "digits"  # a 64-value input trains on the digits by default, with a note
    assert codes(r) == ["N502"]
    assert s["metrics"] == ("accuracy", "precision", "recall", "f1")


def test_model_name_may_be_left_out_with_one_model():
    r = check("train {\n    data = digits()\n    loss = CrossEntropyLoss\n}\n")
    assert r.ok and r.program.trainings[0].model == "M"


def test_bare_names_and_aliases():
    r = check(
        "train M {\n    data = digits\n    loss = CrossEntropyLoss\n    init = he_normal\n    schedule = None\n}\n"
    )
    assert r.ok, codes(r)
    assert r.program.trainings[0].settings["init"].name == "kaiming_normal"


@pytest.mark.parametrize(
    "setting, code, words",
    [
        ("batchsize = 3", "E501", "did you mean 'batch_size'"),
        ("epochs = 3.5", "E501", "positive integer"),
        ("epochs = 0", "E501", "positive"),
        ("split = [0.5, 0.2]", "E501", "add up to 1"),
        ("split = [0.5, 0.2, 0.2, 0.1]", "E501", "1 to 3"),
        ("optimizer = Adamw(lr=0.1)", "E502", "did you mean 'AdamW'"),
        ("optimizer = Adam(lr=0.1, momentum=0.9)", "E102", "no argument 'momentum'"),
        ("optimizer = Adam(lr=-1.0)", "E107", "non-negative"),
        ("optimizer = SGD(lr=0.1, nesterov=True)", "E501", "Nesterov"),
        ("optimizer = 3", "E501", "must name a optimizer"),
        ("schedule = StepLR()", "E105", "step_size"),
        ("schedule = OneCycleLR(max_lr=0.1, anneal_strategy='exp')", "E107", "'cos'"),
        ("init = kaiming_normal(nonlinearity='relux')", "E107", "'relu'"),
        ("data = cvs('a.csv', target='y')", "E502", "did you mean 'csv'"),
        ("data = csv('a.csv')", "E105", "target"),
        ("metrics = [mse]", "E108", "undefined name"),
        ("metrics = ['mse']", "E501", "does not apply to classification"),
        ("loss = CrossEntropyLoss(reduction='none')", "E107", "'mean'"),
        ("min_delta = 1e400", "E501", "finite"),
        ("device = 'cuda:x'", "E501", "got 'cuda:x'"),
        ("device = 'gpu'", "E501", 'did you mean "cuda"'),
        ("device = 'CPU'", "E501", 'did you mean "cpu"'),
        ("device = 'cuda:-1'", "E501", "cuda:N"),
        ("device = 'tpu'", "E501", "auto, cpu, cuda, cuda:N or mps"),
        ("clip_grad_norm = 1e400", "E501", "finite"),
        ("optimizer = Adam(betas=(1.0, 0.5))", "E107", "not including"),
        ("optimizer = Adam(lr=1e400)", "E107", "finite"),
        ("schedule = ReduceLROnPlateau(factor=2.0)", "E107", "between 0 and 1"),
        ("schedule = LinearLR(start_factor=0.0)", "E107", "above 0"),
        ("schedule = LinearLR(end_factor=1.5)", "E107", "between 0 and 1"),
        ("init = uniform(a=1, b=0)", "E501", "swap"),
        ("optimizer = Adagrad()\n    schedule = CyclicLR(0.001, 0.01)", "E501", "cycle_momentum=False"),
        ("init = normal(mean=-1e400)", "E107", "finite"),
    ],
)
def test_setting_errors(setting, code, words):
    train = f"train M {{\n    data = digits()\n    loss = CrossEntropyLoss()\n    {setting}\n}}\n"
    if setting.startswith("loss"):
        train = f"train M {{\n    data = digits()\n    {setting}\n}}\n"
    if setting.startswith("data"):
        train = f"train M {{\n    loss = CrossEntropyLoss()\n    {setting}\n}}\n"
    r = check(train)
    assert not r.ok
    found = [d for d in r.diagnostics if d.code == code]
    assert found, codes(r)
    assert words in found[0].message + (found[0].help or ""), found[0]


def test_losses_take_only_their_weight_positionally():
    r = check("train M {\n    data = digits()\n    loss = CrossEntropyLoss([1.0] * 10, -100)\n}\n")
    assert "E104" in codes(r) or "E110" in codes(r)


def test_setting_given_twice_and_second_section():
    r = check("train M {\n    loss = MSELoss()\n    loss = L1Loss()\n}\ntrain M {\n}\n")
    messages = [d.message for d in r.diagnostics]
    assert "setting 'loss' is given twice" in messages
    assert "a file holds at most one train section" in messages


def test_missing_loss_and_data():
    r = check("train M {\n    epochs = 2\n}\n", "model M(x: [N, 3]) {\n    Linear(3, 1)\n}\n")
    messages = [d.message for d in r.diagnostics]
    assert messages == ["the train section needs a loss and a data source"]


def test_which_model():
    two = MLP + "model K(x: [N, 3]) {\n    Linear(3, 1)\n}\n"
    r = check("train {\n    loss = MSELoss()\n}\n", two)
    assert [d.code for d in r.errors] == ["E503"]
    r = check("train Mm {\n    loss = MSELoss()\n}\n")
    assert r.errors[0].code == "E503" and "did you mean 'M'" in r.errors[0].help


def test_a_model_with_errors_gets_no_second_error():
    r = check(
        "train M {\n    data = digits()\n    loss = CrossEntropyLoss()\n}\n",
        "model M(x: [N, 64]) {\n    Linear(65, 10)\n}\n",
    )
    assert [d.code for d in r.errors] == ["E201"]


@pytest.mark.parametrize(
    "model, loss, code, words",
    [
        ("Linear(64, 10) -> Softmax(dim=1)", "CrossEntropyLoss()", "W501", "log-softmax itself"),
        ("Linear(64, 10)", "NLLLoss()", "W501", "log-probabilities"),
        ("Linear(64, 10) -> LogSoftmax(dim=1)", "NLLLoss()", None, None),
        ("Linear(64, 1)", "BCELoss()", "W501", "probabilities in [0, 1]"),
        ("Linear(64, 1) -> Sigmoid", "BCEWithLogitsLoss()", "W501", "second one"),
        ("Linear(64, 1) -> Sigmoid", "BCELoss()", None, None),
    ],
)
def test_loss_and_last_layer(model, loss, code, words):
    spec = f"model M(x: [N, 64]) {{\n    {model}\n}}\n"
    r = check(f"train M {{\n    data = csv('t.csv', target='y')\n    loss = {loss}\n}}\n", spec)
    assert r.ok, codes(r)
    warnings = [d for d in r.diagnostics if d.code == "W501"]
    if code is None:
        assert not warnings
    else:
        assert len(warnings) == 1 and words in warnings[0].message
        assert warnings[0].secondary, "the label points at the layer that produced the output"


def test_class_count_and_input_size_against_known_data():
    spec = "model M(x: [N, 1, 28, 28]) {\n    Flatten -> Linear(784, 12)\n}\n"
    r = check("train M {\n    data = digits()\n    loss = CrossEntropyLoss()\n}\n", spec)
    messages = " | ".join(d.message for d in r.errors)
    assert "digits samples are 8x8 (64 values), but the model's input is [N, 1, 28, 28]" in messages
    assert "digits has 10 classes, but the model's output has 12 units" in messages
    assert {d.code for d in r.errors} == {"E505"}


def test_output_rank_and_weights():
    spec = "model M(x: [N, 64]) {\n    Linear(64, 10) -> Unflatten(1, (2, 5))\n}\n"
    r = check("train M {\n    data = digits()\n    loss = CrossEntropyLoss()\n}\n", spec)
    assert [d.code for d in r.errors] == ["E504"]
    r = check("train M {\n    data = digits()\n    loss = CrossEntropyLoss(weight=[1.0, 2.0])\n}\n")
    assert [d.code for d in r.errors] == ["E504"] and "2 values" in r.errors[0].message


def test_task_against_data():
    r = check("train M {\n    data = digits()\n    loss = MSELoss()\n}\n")
    assert [d.code for d in r.errors] == ["E505"] and "class labels" in r.errors[0].message
    spec = "model R(x: [N, 3]) {\n    Linear(3, 2)\n}\n"
    r = check("train R {\n    data = sum3()\n    loss = MSELoss()\n}\n", spec)
    assert [d.code for d in r.errors] == ["E505"] and "one target per sample" in r.errors[0].message
    spec = "model X(x: [N, 2]) {\n    Linear(2, 2)\n}\n"
    r = check("train X {\n    data = xor()\n    loss = BCEWithLogitsLoss()\n}\n", spec)
    assert [d.code for d in r.errors] == ["E505"]
    r = check("train X {\n    data = xor()\n    loss = CrossEntropyLoss()\n}\n", spec)
    assert r.ok


def test_token_input_with_float_data():
    spec = "model T(t: long[N, 64]) {\n    Embedding(17, 4) -> Flatten -> Linear(256, 10)\n}\n"
    r = check("train T {\n    data = digits()\n    loss = CrossEntropyLoss()\n}\n", spec)
    assert [d.code for d in r.errors] == ["E505"] and "float features" in r.errors[0].message


def test_bare_chain_trains_under_its_file_name():
    r = check_source(
        "Linear(64, 10)\ntrain {\n    data = digits()\n    loss = CrossEntropyLoss()\n}\n", "digits_net.nn", "[N, 64]"
    )
    assert r.ok and r.program.trainings[0].model == "DigitsNet"


# ---------------------------------------------------------------- the tables agree with torch

torch = pytest.importorskip("torch")


def _torch_defaults(obj, skip=("self", "params", "optimizer", "tensor", "generator")) -> dict:
    out = {}
    for name, p in inspect.signature(obj).parameters.items():
        if name in skip or p.kind is p.VAR_KEYWORD:
            continue
        out[name] = p.default
    return out


@pytest.mark.parametrize(
    "table, namespace, suffix",
    [
        (LOSSES, torch.nn, ""),
        (OPTIMIZERS, torch.optim, ""),
        (SCHEDULES, torch.optim.lr_scheduler, ""),
        (INITS, torch.nn.init, "_"),
    ],
    ids=["losses", "optimizers", "schedules", "inits"],
)
def test_names_parameters_and_defaults_are_torchs(table, namespace, suffix):
    for name, option in table.items():
        theirs = _torch_defaults(getattr(namespace, name + suffix))
        for param in option.params:
            assert param.name in theirs, f"{name} has no parameter {param.name}"
            default = theirs[param.name]
            if param.required:
                assert default is inspect.Parameter.empty, f"{name}.{param.name} has a default in torch"
            elif param.name == "T_max":  # ours defaults to the number of epochs
                assert default is inspect.Parameter.empty
            else:
                assert param.default == default, f"{name}.{param.name}: {param.default!r} vs torch {default!r}"


def test_the_reference_names_every_option():
    from nndsl.check.training import CALLS, INIT_ALIASES, SETTINGS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "training.md").read_text()
    names = [*SETTINGS, *CALLS, *INIT_ALIASES, *(n for table in CALLS.values() for n in table)]
    missing = [n for n in names if f"`{n}" not in doc and f"{n}(" not in doc]
    assert not missing, f"docs/training.md does not mention {missing}"


def test_the_runtime_and_the_checker_read_one_catalogue():
    """The generated script stands alone, yet what its flags accept is what the spec accepts: both
    read nndsl.train_catalogue, and the script holds a copy of the catalogue's tables it uses."""
    from nndsl import train_catalogue
    from nndsl.backends.train_runtime import data, loop
    from nndsl.check.training import INIT_ALIASES

    assert data.LOSS_TASKS is train_catalogue.LOSS_TASKS
    assert {name: option.task for name, option in LOSSES.items()} == train_catalogue.LOSS_TASKS
    assert list(LOSSES) == list(loop.LOSS_TASKS)
    assert list(OPTIMIZERS) == list(loop.TRAIN_OPTIMIZERS)
    assert list(SCHEDULES) == list(loop.TRAIN_SCHEDULERS)
    assert [*INITS, *INIT_ALIASES] == list(loop.INIT_SCHEMES)
    assert set(loop.BATCH_SCHEDULERS) <= set(SCHEDULES)
    script = compile_spec(ROOT / "specs" / "digits_mlp.nn", target="train")
    assert "TRAIN_OPTIMIZERS = (" in script and "from nndsl" not in script


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam"])
def test_every_optimizer_of_the_flags_is_accepted_in_the_spec(name):
    r = check(f"train M {{\n    data = digits()\n    loss = CrossEntropyLoss()\n    optimizer = {name}(lr=0.01)\n}}\n")
    assert r.ok, codes(r)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_cyclic_schedule_and_optimizer_agree_with_torch(name):
    """The checker refuses CyclicLR and OneCycleLR with an optimizer exactly where torch does."""
    torch = pytest.importorskip("torch")
    optimizer = getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))], lr=0.01)
    try:
        torch.optim.lr_scheduler.CyclicLR(optimizer, 0.001, 0.01)
        torch_ok = True
    except ValueError:
        torch_ok = False
    try:
        torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=10)
        assert torch_ok
    except ValueError:
        assert not torch_ok
    train = f"train M {{\n    data = digits()\n    loss = CrossEntropyLoss()\n    optimizer = {name}(lr=0.01)\n"
    for schedule in ("CyclicLR(0.001, 0.01", "OneCycleLR(max_lr=0.1"):
        assert check(train + f"    schedule = {schedule})\n}}\n").ok == torch_ok
        assert check(train + f"    schedule = {schedule}, cycle_momentum=False)\n}}\n").ok


# ---------------------------------------------------------------- mistakes in a model that is trained

MISTAKES = {
    "unknown layer": ("Lienar(64, 10)", "E101"),
    "misspelled argument": ("Linear(64, 10, bais=False)", "E102"),
    "size mismatch": ("Linear(65, 10)", "E201"),
    "undefined name": ("Linear(64, k)", "E108"),
    "missing argument": ("Linear()", "E105"),
    "wrong type": ("Linear(64, 'ten')", "E106"),
    "wrong rank": ("Conv2d(1, 4, 3)", "E202"),
    "invalid value": ("Linear(64, -10)", "E107"),
    "too many arguments": ("Linear(64, 10, True, 3, 4)", "E104"),
    "unknown block": ("Blok(3)", "E101"),
    "not a layer after ->": ("Linear(64, 10) -> 3", "E114"),
    "cannot infer": ("Linear(out_features=10)", "E205"),
}


@pytest.mark.parametrize("body, code", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_in_a_trained_model_is_reported_as_itself(body, code, tmp_path, capsys):
    """A model whose checking stopped at an error has no known output: the train section's
    settings are still checked, the pairing with the loss is not, and nothing crashes."""
    import nndsl
    from nndsl.api import SpecError
    from nndsl.cli import main

    size = "D" if code == "E205" else "64"
    spec = f"model M(x: [N, {size}]) {{\n    {body}\n}}\ntrain M {{\n    data = digits()\n    loss = CrossEntropyLoss()\n}}\n"
    r = check_source(spec, "spec.nn")
    assert code in [d.code for d in r.errors], codes(r)
    assert {d.code for d in r.errors} <= {code, "E104"}
    with pytest.raises(SpecError):
        nndsl.build(spec)
    path = tmp_path / "spec.nn"
    path.write_text(spec)
    for command in (["check"], ["compile", "--target", "train"], ["train"]):
        assert main([command[0], str(path), *command[1:]]) == 1, command
        out = capsys.readouterr()
        assert f"error[{code}]" in out.out + out.err, command
    assert not (tmp_path / "spec_train.py").exists()


def test_settings_are_checked_outside_every_model():
    """A train section's values are not evaluated in a model's scope, with or without a model."""
    r = check("train {\n    optimizer = SGD(lr -> 0.5)\n}\n", "")
    assert "E108" in codes(r), codes(r)
    r = check("train M {\n    data = digits()\n    loss = CrossEntropyLoss()\n    epochs = x\n}\n")
    assert "E108" in codes(r), codes(r)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_devices_torch_knows(device):
    r = check(f"train M {{\n    data = digits()\n    loss = CrossEntropyLoss()\n    device = '{device}'\n}}\n")
    assert r.ok, codes(r)
    torch = pytest.importorskip("torch")
    if device != "auto":
        torch.device(device)


def test_out_dir_none_is_the_default():
    r = check("train M {\n    data = digits()\n    loss = CrossEntropyLoss()\n    out_dir = None\n}\n")
    assert r.ok, codes(r)
    assert r.program.trainings[0].settings["out_dir"] == "runs/M"


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "RNN"])
def test_a_sequence_before_a_classification_loss_is_told_to_take_one_step(layer):
    spec = f"model S(x: [N, 20, 8]) {{\n    {layer}(8, 16, batch_first=True) -> Linear(16, 10)\n}}\n"
    train = "train S {\n    data = csv('t.csv', target='y')\n    loss = CrossEntropyLoss()\n}\n"
    r = check(train, spec)
    (error,) = r.errors
    assert error.code == "E504" and ".last" in error.help and ".hidden" in error.help, error.help
    assert "Flatten" not in error.help
    assert any(layer in label.message for label in error.secondary)
    for selector in ("last", "hidden"):  # the advice checks
        fixed = spec.replace("batch_first=True)", f"batch_first=True).{selector}")
        assert check(train, fixed).ok
    flat = "model F(x: [N, 4, 8]) {\n    Linear(8, 10)\n}\n"
    r = check(train.replace("train S", "train F"), flat)
    assert "Flatten" in r.errors[0].help
