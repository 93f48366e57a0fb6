"""The training loop of generated training scripts (nndsl/backends/train_runtime/loop.py).

loop.py is source that gets copied into a script, so the tests run it the same way: its text is
executed into one namespace dict, and run() is called in-process with tiny models and data.
"""

from __future__ import annotations

import ast
import errno
import json
import math
import os
import re
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

RUNTIME = Path(__file__).resolve().parent.parent / "nndsl" / "backends" / "train_runtime"


def script_namespace(*modules: str) -> dict:
    """Execute runtime modules' source into one dict, as the generated script holds them."""
    namespace = {"__name__": "train_script"}
    for name in modules:
        path = RUNTIME / name
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


LOOP = script_namespace("loop.py")
run = LOOP["run"]


@pytest.fixture(autouse=True)
def no_optional_outputs(request, monkeypatch):
    """TensorBoard logs and curves.png cost about as much as a tiny run: only the tests that
    ask for the `optional_outputs` fixture write them."""
    if "optional_outputs" not in request.fixturenames:
        monkeypatch.setitem(LOOP, "open_tensorboard", lambda log_dir, first_step: None)
        monkeypatch.setitem(LOOP, "plot_curves", lambda history, path, task: False)


@pytest.fixture
def optional_outputs():
    """Keep TensorBoard logs and curves.png on (see no_optional_outputs)."""


# --- Stand-ins for data.py ----------------------------------------------------------------------------


class Splits(NamedTuple):
    train: tuple
    val: tuple | None
    test: tuple | None
    task: str
    num_classes: int | None
    source: str


def parse_call(text: str) -> tuple[str, list, dict]:
    """name(literal, key=literal) -> (name, args, kwargs), raising ValueError like data.py's."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"{text!r} is not a call: {error.msg}") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ValueError(f"{text!r} is not a call")
    kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    return call.func.id, [ast.literal_eval(arg) for arg in call.args], kwargs


def blobs(n: int = 240, task: str = "classification", seed: int = 0) -> Splits:
    """Three learnable classes (or a binary label, or a regression target) from 4 features; 60/20/20."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    if task == "classification":
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
        classes = 3
    elif task == "binary":
        y = (x[:, 0] + x[:, 2] > 0).float().unsqueeze(1)
        classes = None
    else:
        y = (x[:, :3].sum(1, keepdim=True) * 0.5).float()
        classes = None
    a, b = int(n * 0.6), int(n * 0.8)
    return Splits((x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:]), task, classes, f"blobs ({n} samples)")


class TinyNet(nn.Module):
    """Linear -> ReLU -> Dropout -> Linear; `hook(calls)` runs before each training forward pass."""

    def __init__(self, outputs: int = 3, hook=None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, outputs))
        self.hook, self.calls = hook, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.hook is not None:
                return self.hook(self.calls, self.net(x))
        return self.net(x)


def make_args(out_dir, **changes) -> SimpleNamespace:
    args = SimpleNamespace(
        data="blobs()",
        split=[0.6, 0.2, 0.2],
        loss="CrossEntropyLoss()",
        optimizer="Adam(lr=0.02)",
        lr=None,
        schedule=None,
        epochs=4,
        batch_size=16,
        early_stopping=None,
        min_delta=0.0,
        clip_grad_norm=None,
        clip_grad_value=None,
        init=None,
        seed=0,
        deterministic=False,
        device="cpu",
        threads=None,
        out_dir=str(out_dir),
        resume=False,
        extend=False,
        given=None,
        metrics_format="jsonl",
        metrics=None,
        progress=False,
        plot=False,
    )
    for key, value in changes.items():
        assert hasattr(args, key), key
        setattr(args, key, value)
    return args


def train(out_dir, splits=None, model=TinyNet, **changes) -> int:
    splits = splits or blobs()
    return run(make_args(out_dir, **changes), model, lambda args: splits, parse_call)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def steps_per_epoch(splits=None, batch_size=16) -> int:
    return math.ceil(len((splits or blobs()).train[0]) / batch_size)


# --- Training and its files ---------------------------------------------------------------------------


def test_trains_and_writes_every_output(tmp_path, capsys, optional_outputs):
    assert train(tmp_path / "no-plot", epochs=1) == 0
    assert not (tmp_path / "no-plot" / "curves.png").exists()  # curves.png only with --plot
    assert train(tmp_path, epochs=6, plot=True) == 0
    history = read_jsonl(tmp_path / "metrics.jsonl")
    assert [record["epoch"] for record in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert {"val_accuracy", "val_precision", "val_recall", "val_f1", "lr", "train_seconds", "eval_seconds"} <= set(
        history[0]
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["split"] == "test" and results["epochs"] == 6 and results["stopped"] == "completed"
    assert results["metrics"]["accuracy"] > 0.6
    matrix = results["confusion_matrix"]
    assert len(matrix) == 3 and sum(map(sum, matrix)) == 48
    best = min(history, key=lambda record: record["val_loss"])
    assert results["best_epoch"] == best["epoch"]
    final = load(tmp_path / "model.pt")
    assert set(final) == {"net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"}
    assert set(load(tmp_path / "best.pt")) == set(final)
    assert load(tmp_path / "checkpoint.pt")["epoch"] == 6
    pytest.importorskip("matplotlib")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    out = capsys.readouterr().out
    assert out.count("epoch ") >= 6 and "test (48 samples): loss" in out and "confusion matrix" in out


def test_csv_metrics_and_no_validation_split(tmp_path):
    data = blobs()
    splits = data._replace(val=None, test=None)
    assert train(tmp_path, splits, epochs=3, metrics_format="csv") == 0
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["epoch", "train_loss", "train_accuracy"]
    assert len(lines) == 4 and not (tmp_path / "metrics.jsonl").exists()
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["split"] == "train" and results["samples"] == len(data.train[0])


def test_tensorboard_scalars(tmp_path, optional_outputs):
    pytest.importorskip("tensorboard")
    assert train(tmp_path, epochs=2) == 0
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_binary_and_regression_tasks(tmp_path):
    assert train(tmp_path / "bin", blobs(task="binary"), lambda: TinyNet(1), loss="BCEWithLogitsLoss()") == 0
    results = json.loads((tmp_path / "bin" / "results.json").read_text())
    assert results["metrics"]["accuracy"] > 0.6 and len(results["confusion_matrix"]) == 2
    assert train(tmp_path / "reg", blobs(task="regression"), lambda: TinyNet(1), loss="MSELoss()", epochs=8) == 0
    history = read_jsonl(tmp_path / "reg" / "metrics.jsonl")
    assert history[-1]["val_mse"] < history[0]["val_mse"] and "val_mae" in history[0]
    results = json.loads((tmp_path / "reg" / "results.json").read_text())
    assert set(results["metrics"]) == {"loss", "mse", "mae"} and "confusion_matrix" not in results


def test_bce_probabilities_are_thresholded_at_one_half(tmp_path):
    def model():
        return nn.Sequential(TinyNet(1), nn.Sigmoid())

    assert train(tmp_path, blobs(task="binary"), model, loss="BCELoss()", epochs=6) == 0
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["accuracy"] > 0.6


def test_metrics_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(1)
    for classes in (2, 4, 6):
        targets = torch.randint(0, classes - 1, (200,), generator=generator)  # the last class never occurs
        predicted = torch.randint(0, classes, (200,), generator=generator)
        predicted[predicted == 0] = 1  # class 0 is never predicted
        matrix = LOOP["confusion_counts"](predicted, targets, classes)
        ours = LOOP["matrix_metrics"](matrix)
        assert matrix.tolist() == metrics.confusion_matrix(targets, predicted, labels=list(range(classes))).tolist()
        assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(targets, predicted))
        for name, function in (
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
            ("f1", metrics.f1_score),
        ):
            assert ours[name] == pytest.approx(function(targets, predicted, average="macro", zero_division=0))


def test_epoch_lines_show_the_chosen_metrics(tmp_path, capsys):
    assert train(tmp_path / "all", epochs=1, metrics=["accuracy", "precision", "recall", "f1"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("epoch 1/1  train loss ") and "val loss" in line
    assert all(f"val {name} " in line for name in ("accuracy", "precision", "recall", "f1"))
    assert train(tmp_path / "default", epochs=1, splits=blobs()._replace(val=None)) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "train accuracy" in line and "val" not in line


def test_summed_losses_are_reported_per_sample(tmp_path):
    # with lr 0 the weights never change: both reductions must report the same losses
    for reduction in ("mean", "sum"):
        loss = f'CrossEntropyLoss(reduction="{reduction}")'
        assert train(tmp_path / reduction, loss=loss, optimizer="SGD(lr=0.0)", epochs=1) == 0
    mean, summed = (read_jsonl(tmp_path / r / "metrics.jsonl")[0] for r in ("mean", "sum"))
    assert summed["train_loss"] == pytest.approx(mean["train_loss"], rel=1e-5)
    assert summed["val_loss"] == pytest.approx(mean["val_loss"], rel=1e-5)


def test_early_stopping_stops_when_validation_stops_improving(tmp_path, capsys):
    # lr 0: the validation loss never changes, so only epoch 1 improves on infinity
    assert train(tmp_path, optimizer="SGD(lr=0.0)", epochs=10, early_stopping=2) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["stopped"] == "early_stopping" and results["epochs"] == 3 and results["best_epoch"] == 1
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 3
    assert "stopped early after epoch 3" in capsys.readouterr().out


# --- Schedules, clipping and initialisation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "expected_lr"),
    [
        ("StepLR(step_size=1, gamma=0.5)", 0.1 * 0.5**3),
        ("MultiStepLR(milestones=[1, 2], gamma=0.1)", 0.1 * 0.01),
        ("ExponentialLR(gamma=0.5)", 0.1 * 0.5**3),
        ("CosineAnnealingLR()", 0.0),  # T_max defaults to the epochs
        ("LinearLR(start_factor=0.5, total_iters=2)", 0.1),
        ("CosineAnnealingWarmRestarts(T_0=3)", 0.1),
        ("ConstantLR(factor=0.5, total_iters=4)", 0.05),
        ("PolynomialLR(total_iters=6, power=1.0)", 0.05),
        ("CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=100)", 0.01 + 0.09 * 3 * 9 / 100),
        # a threshold no loss can beat: every epoch counts as a plateau
        ("ReduceLROnPlateau(patience=0, factor=0.5, threshold=10.0)", 0.1 * 0.5**3),
        ("OneCycleLR(max_lr=0.5)", None),
    ],
)
def test_every_schedule_builds_and_steps(tmp_path, schedule, expected_lr):
    assert train(tmp_path, schedule=schedule, optimizer="SGD(lr=0.1, momentum=0.9)", epochs=3) == 0
    checkpoint = load(tmp_path / "checkpoint.pt")
    final_lr = checkpoint["optimizer"]["param_groups"][0]["lr"]
    if expected_lr is not None:
        assert final_lr == pytest.approx(expected_lr, abs=1e-12)
    else:  # OneCycle steps once per batch, ending at its last step
        assert checkpoint["scheduler"]["last_epoch"] == checkpoint["scheduler"]["total_steps"] == 3 * steps_per_epoch()
        lrs = [record["lr"] for record in read_jsonl(tmp_path / "metrics.jsonl")]
        assert 0.5 > lrs[0] > lrs[1] > lrs[2] > 0  # the peak is 30% in, near the end of epoch 1


def test_plateau_schedule_follows_the_monitored_loss(tmp_path):
    for out, splits, key in ((tmp_path / "val", blobs(), "val_loss"), (tmp_path / "train", None, "train_loss")):
        splits = splits or blobs()._replace(val=None, test=None)
        assert train(out, splits, schedule="ReduceLROnPlateau(threshold=0.0)") == 0
        scheduler = load(out / "checkpoint.pt")["scheduler"]
        assert scheduler["last_epoch"] == 4
        assert scheduler["best"] == min(record[key] for record in read_jsonl(out / "metrics.jsonl"))


def test_gradient_clipping_bounds_each_step(tmp_path):
    torch.manual_seed(0)
    initial = torch.cat([p.detach().reshape(-1) for p in TinyNet().parameters()])
    steps = 2 * steps_per_epoch()
    for flag, value, norm in (("clip_grad_norm", 1e-4, 2), ("clip_grad_value", 1e-5, math.inf)):
        out = tmp_path / flag
        assert train(out, optimizer="SGD(lr=1.0)", epochs=2, **{flag: value}) == 0
        final = torch.cat([t.reshape(-1) for t in load(out / "model.pt").values()])
        change = torch.linalg.vector_norm(final - initial, ord=norm).item()
        assert 0 < change <= steps * value + 1e-6  # float32 rounding of the weights adds a little


def test_init_schemes(tmp_path):
    apply_init = LOOP["apply_init"]

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(400, 600), nn.LayerNorm(600), nn.Embedding(50, 400, padding_idx=0))

    def std_of(text):
        net = model()
        apply_init(net, text, parse_call)
        assert not net[0].bias.any()
        assert net[1].weight.eq(1).all() and not net[1].bias.any()  # the norm is untouched
        assert not net[2].weight[0].any()  # the padding row stays zero
        return net[0].weight.std().item()

    assert std_of("xavier_normal()") == pytest.approx(math.sqrt(2 / (400 + 600)), rel=0.03)
    assert std_of("xavier_uniform(gain=2.0)") == pytest.approx(2 * math.sqrt(2 / (400 + 600)), rel=0.03)
    assert std_of('kaiming_normal(nonlinearity="relu")') == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert std_of("he_normal()") == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert std_of("glorot_uniform()") == pytest.approx(math.sqrt(2 / (400 + 600)), rel=0.03)
    assert std_of("kaiming_uniform()") == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert std_of("normal(std=0.01)") == pytest.approx(0.01, rel=0.03)
    assert std_of("zeros()") == 0
    net = model()
    apply_init(net, "orthogonal()", parse_call)
    rows = net[0].weight  # 600 x 400: the columns are orthonormal
    assert torch.allclose(rows.T @ rows, torch.eye(400), atol=1e-4)
    with pytest.raises(LOOP["TrainingError"], match="--init: unknown initialisation 'xavier'"):
        apply_init(model(), "xavier()", parse_call)
    with pytest.raises(LOOP["TrainingError"], match="--init: kaiming_normal got an unexpected keyword argument 'gain'"):
        apply_init(model(), "kaiming_normal(gain=2)", parse_call)


def test_init_flag_changes_the_trained_model(tmp_path):
    assert train(tmp_path, init="zeros()", optimizer="SGD(lr=0.0)", epochs=1) == 0
    assert all(not t.any() for t in load(tmp_path / "model.pt").values())


# --- Errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("optimizer", "Adam(momentum=0.9)", "--optimizer: Adam got an unexpected keyword argument 'momentum'"),
        ("optimizer", "Adamw(lr=0.1)", "--optimizer: unknown optimizer 'Adamw' (did you mean 'AdamW'?)"),
        ("optimizer", "SGD(lr=-1.0)", "--optimizer: SGD: Invalid learning rate: -1.0"),
        ("optimizer", "Adam(lr=", "--optimizer: 'Adam(lr=' is not a call"),
        ("loss", "CrossEntropy()", "--loss: unknown loss 'CrossEntropy'"),
        ("loss", "CrossEntropyLoss(smoothing=0.1)", "--loss: CrossEntropyLoss got an unexpected keyword argument"),
        ("loss", 'CrossEntropyLoss(weight=["a"])', "--loss: weight must be a list of numbers"),
        ("schedule", "StepLR()", "--schedule: StepLR missing 1 required positional argument: 'step_size'"),
        ("schedule", "Cosine()", "--schedule: unknown schedule 'Cosine'"),
        ("init", "lecun_normal()", "--init: unknown initialisation 'lecun_normal'"),
        ("init", "uniform(a=1.0, b=0.0)", "--init: uniform_ expects to return a [from, to) range"),
        ("loss", 'MSELoss(reduction="none")', "--loss: reduction must be 'mean' or 'sum'"),
        ("metrics", ["accuracy", "mse"], "--metrics: 'mse' is not a classification metric"),
        ("device", "tpu", "--device: 'tpu' is not a device"),
        ("batch_size", 0, "--batch-size must be at least 1"),
        ("seed", 2**70, "--seed must be from -2**63 to 2**64 - 1"),
        ("threads", 10**9, "--threads must be from 1 to"),
        ("schedule", "StepLR(step_size=0)", "--schedule: StepLR: integer modulo by zero"),
        ("schedule", "OneCycleLR(max_lr=0.1, total_steps=1)", "--schedule: OneCycleLR: Tried to step 2 times"),
        ("loss", "CrossEntropyLoss(weight=[1.0])", "--loss: CrossEntropyLoss cannot take the model's output [1, 3]"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(tmp_path, capsys, flag, text, message):
    assert train(tmp_path, **{flag: text}) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err


def test_data_errors_exit_2(tmp_path, capsys):
    class DataError(Exception):
        pass

    def load_data(args):
        raise DataError("cannot read data.csv")

    assert run(make_args(tmp_path), TinyNet, load_data, parse_call) == 2
    assert capsys.readouterr().err == "error: cannot read data.csv\n"


def test_nan_loss_exits_1_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    steps = steps_per_epoch()

    def poison(calls, outputs):  # the loss turns nan from the 5th batch of epoch 2
        return outputs * math.nan if calls > steps + 4 else outputs

    assert train(tmp_path, model=lambda: TinyNet(hook=poison), epochs=4) == 1
    err = capsys.readouterr().err
    assert "training loss became nan at epoch 2 (batch 5)" in err
    assert f"The last good checkpoint (epoch 1) is kept at {tmp_path / 'checkpoint.pt'}" in err
    assert "try a lower learning rate" in err
    checkpoint = load(tmp_path / "checkpoint.pt")
    assert checkpoint["epoch"] == 1 and all(torch.isfinite(t).all() for t in checkpoint["model"].values())
    assert not (tmp_path / "model.pt").exists()


def test_divergence_is_noticed_within_100_batches(tmp_path, capsys):
    calls = []

    def poison(count, outputs):  # batches of one sample: 144 per epoch, nan from the 30th
        calls.append(count)
        return outputs * math.inf if count >= 30 else outputs

    assert train(tmp_path, model=lambda: TinyNet(hook=poison), batch_size=1) == 1
    assert "training loss became nan at epoch 1 (batch 30)" in capsys.readouterr().err
    assert len(calls) == 100


def test_huge_learning_rate_diverges_in_the_first_epoch(tmp_path, capsys):
    assert train(tmp_path, optimizer="SGD(lr=1e30)") == 1
    err = capsys.readouterr().err
    assert "training loss became" in err and "at epoch 1" in err and "No checkpoint was written" in err
    assert not (tmp_path / "checkpoint.pt").exists()


# torch.save fails while serialising (best.pt and checkpoint.pt of epoch 1 pass); os.replace once the
# temporary file is written (the metrics file at the start and after epoch 1, best.pt and checkpoint.pt pass)
@pytest.mark.parametrize(("module", "name", "passing"), [(torch, "save", 2), (os, "replace", 4)])
def test_write_failure_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch, module, name, passing):
    real = getattr(module, name)
    calls = []

    def fail_late(*args, **kwargs):
        calls.append(1)
        if len(calls) > passing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, fail_late)
    assert train(tmp_path) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {tmp_path}") and err.endswith(": No space left on device\n")
    assert load(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_unwritable_out_dir_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert train(tmp_path / "file" / "out") == 2
    assert capsys.readouterr().err.startswith(f"error: cannot create {tmp_path / 'file' / 'out'}")


# --- Checkpoints and resuming -------------------------------------------------------------------------


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load(a), load(b)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_sigterm_mid_epoch_then_resume_gives_identical_weights(tmp_path, capsys):
    handler = signal.getsignal(signal.SIGTERM)
    straight = tmp_path / "straight"
    assert train(straight, schedule="OneCycleLR(max_lr=0.05)") == 0
    steps = steps_per_epoch()

    def terminate(calls, outputs):  # SIGTERM in the 4th batch of epoch 2: the loop stops after it
        if calls == steps + 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return outputs

    resumed = tmp_path / "resumed"
    assert train(resumed, model=lambda: TinyNet(hook=terminate), schedule="OneCycleLR(max_lr=0.05)") == 143
    assert "stopped by SIGTERM at epoch 2, batch 4" in capsys.readouterr().err
    checkpoint = load(resumed / "checkpoint.pt")
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 4)
    assert signal.getsignal(signal.SIGTERM) is handler  # run() put the handler back
    assert train(resumed, schedule="OneCycleLR(max_lr=0.05)", resume=True) == 0
    assert_same_weights(straight / "model.pt", resumed / "model.pt")
    assert_same_weights(straight / "best.pt", resumed / "best.pt")
    drop = ("train_seconds", "eval_seconds")
    history = [{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(resumed / "metrics.jsonl")]
    assert history == [{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(straight / "metrics.jsonl")]


def test_crash_then_resume_from_the_epoch_checkpoint_gives_identical_weights(tmp_path):
    straight = tmp_path / "straight"
    assert train(straight, schedule="StepLR(step_size=1, gamma=0.7)", early_stopping=3) == 0
    steps = steps_per_epoch()

    def crash(calls, outputs):  # like SIGKILL in epoch 3: only the checkpoint of epoch 2 is left
        if calls == 2 * steps + 2:
            raise RuntimeError("killed")
        return outputs

    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="killed"):
        train(crashed, model=lambda: TinyNet(hook=crash), schedule="StepLR(step_size=1, gamma=0.7)", early_stopping=3)
    assert load(crashed / "checkpoint.pt")["epoch"] == 2
    assert train(crashed, schedule="StepLR(step_size=1, gamma=0.7)", early_stopping=3, resume=True) == 0
    assert_same_weights(straight / "model.pt", crashed / "model.pt")
    assert len(read_jsonl(crashed / "metrics.jsonl")) == 4


def test_sigint_exits_130(tmp_path, capsys):
    handler = signal.getsignal(signal.SIGINT)

    def interrupt(calls, outputs):
        if calls == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return outputs

    assert train(tmp_path, model=lambda: TinyNet(hook=interrupt)) == 130
    assert "stopped by SIGINT at epoch 1, batch 3" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is handler


def test_resume_without_a_checkpoint_exits_2(tmp_path, capsys):
    assert train(tmp_path, resume=True) == 2
    err = capsys.readouterr().err
    assert "--resume: there is no checkpoint at" in err and "run without --resume" in err


def test_resume_refuses_another_model_or_optimizer(tmp_path, capsys):
    assert train(tmp_path, epochs=1) == 0
    assert train(tmp_path, model=lambda: TinyNet(outputs=4), epochs=1, resume=True) == 2
    assert "holds the weights of a different model" in capsys.readouterr().err
    assert train(tmp_path, optimizer="SGD(lr=0.1)", epochs=1, resume=True) == 2
    assert "--optimizer Adam(lr=0.02) -> SGD(lr=0.1)" in capsys.readouterr().err
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert train(tmp_path, resume=True) == 2
    assert "--resume: cannot read" in capsys.readouterr().err


def test_resume_continues_to_more_epochs(tmp_path):
    assert train(tmp_path / "straight", epochs=4) == 0
    assert train(tmp_path / "twice", epochs=2) == 0
    assert train(tmp_path / "twice", epochs=4, resume=True, extend=True) == 0
    assert_same_weights(tmp_path / "straight" / "model.pt", tmp_path / "twice" / "model.pt")


def test_resume_refuses_a_different_experiment(tmp_path, capsys):
    schedule = "CosineAnnealingLR()"
    assert train(tmp_path, epochs=3, schedule=schedule) == 0
    capsys.readouterr()
    changed = {"epochs": 6, "split": [0.8, 0.1, 0.1], "seed": 7, "schedule": schedule}
    assert train(tmp_path, resume=True, **changed) == 2
    err = capsys.readouterr().err
    assert "settings: --split 0.6,0.2,0.2 -> 0.8,0.1,0.1; --seed 0 -> 7; --epochs 3 -> 6." in err, err
    assert "add --extend" in err and "Traceback" not in err
    # --extend makes only the number of epochs an intended change
    assert train(tmp_path, resume=True, extend=True, **changed) == 2
    assert "--epochs" not in capsys.readouterr().err.split("settings:")[1].split(".")[0]
    assert train(tmp_path, resume=True, extend=True, epochs=2, schedule=schedule) == 2
    assert "--extend: give --epochs above the run's 3" in capsys.readouterr().err
    assert train(tmp_path / "new", extend=True) == 2
    assert "use it with --resume" in capsys.readouterr().err


def test_a_bare_resume_takes_the_runs_settings(tmp_path):
    """Flags left at their defaults (the spec's settings) give way to the checkpoint's."""
    assert train(tmp_path, epochs=2, seed=3, batch_size=32) == 0
    bare = {"resume": True, "given": {"resume", "out_dir"}}
    assert train(tmp_path, epochs=5, seed=0, batch_size=16, **bare) == 0
    assert [r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2]
    # an interrupted run resumed bare goes on with its own number of epochs and schedule

    def interrupt(calls, outputs):
        if calls == steps_per_epoch() + 2:
            os.kill(os.getpid(), signal.SIGINT)
        return outputs

    cosine = "CosineAnnealingLR()"
    assert train(tmp_path / "b", epochs=3, schedule=cosine, model=lambda: TinyNet(hook=interrupt)) == 130
    assert train(tmp_path / "b", epochs=40, **bare) == 0
    history = read_jsonl(tmp_path / "b" / "metrics.jsonl")
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert [r["lr"] for r in history] == pytest.approx([0.01 * (1 + math.cos(math.pi * k / 3)) for k in (0, 1, 2)])


@pytest.mark.parametrize("schedule", ["CosineAnnealingLR()", "OneCycleLR(max_lr=0.05)"])
def test_extend_plans_the_schedule_over_the_new_epochs(tmp_path, schedule):
    """The rate goes on along the curve over the new number of epochs: no wrap to lr 0 (cosine),
    no step past the end (one-cycle)."""
    assert train(tmp_path, epochs=3, schedule=schedule) == 0
    assert train(tmp_path, epochs=6, schedule=schedule, resume=True, extend=True) == 0
    rates = [r["lr"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert len(rates) == 6
    if schedule.startswith("Cosine"):
        planned = [0.01 * (1 + math.cos(math.pi * k / 6)) for k in (3, 4, 5)]
        assert rates[3:] == pytest.approx(planned)
        assert rates[:3] == pytest.approx([0.01 * (1 + math.cos(math.pi * k / 3)) for k in (0, 1, 2)])


CRAFTED = {
    "no settings": lambda s: s.pop("settings"),
    "epoch a string": lambda s: s.update(epoch="3"),
    "negative batch": lambda s: s.update(batch=-1),
    "weights not tensors": lambda s: s.update(model={"net.0.weight": 1.0}),
    "short shuffle state": lambda s: s.update(shuffle_state=torch.zeros(3, dtype=torch.uint8)),
    "empty random states": lambda s: s.update(rng_states=[{}]),
    "bad random state": lambda s: s.update(rng_states=[{"torch": torch.zeros(2), "python": None}]),
    "history not epochs": lambda s: s.update(history=[1, 2]),
    "running totals": lambda s: s.update(running={}),
    "optimizer state": lambda s: s.update(optimizer={"state": {}, "param_groups": [1]}),
    "fewer epochs than done": lambda s: s["settings"].update(epochs=0),
}


def test_a_checkpoint_of_an_older_format_is_refused(tmp_path, capsys):
    assert train(tmp_path, epochs=1) == 0
    state = load(tmp_path / "checkpoint.pt")
    torch.save({**state, "format": "nndsl-train-checkpoint-1"}, tmp_path / "checkpoint.pt")
    assert train(tmp_path, epochs=1, resume=True) == 2
    assert "written by another version of nndsl's training scripts" in capsys.readouterr().err


@pytest.mark.parametrize("change", CRAFTED.values(), ids=CRAFTED.keys())
def test_a_checkpoint_with_bad_contents_is_refused_with_a_message(tmp_path, capsys, change):
    assert train(tmp_path, epochs=1) == 0
    state = load(tmp_path / "checkpoint.pt")
    change(state)
    torch.save(state, tmp_path / "checkpoint.pt")
    capsys.readouterr()
    assert train(tmp_path, epochs=1, resume=True) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume:") and "run without --resume" in err, err


# --- Progress, determinism, and the shared namespace with data.py -------------------------------------


def test_text_progress_bar_without_rich(tmp_path, capsys, monkeypatch):
    def no_rich(*args):
        raise ImportError("rich")

    monkeypatch.setitem(LOOP, "RichProgress", no_rich)
    assert train(tmp_path, epochs=1, progress=True, batch_size=1) == 0
    assert "\repoch 1/1 [" in capsys.readouterr().err


def test_deterministic_flags_are_put_back(tmp_path):
    assert train(tmp_path, epochs=1, deterministic=True) == 0
    assert not torch.are_deterministic_algorithms_enabled()


def test_runs_with_data_py_in_one_namespace(tmp_path):
    if not (RUNTIME / "data.py").exists():
        pytest.skip("data.py is not there yet")
    data = script_namespace("data.py")
    shared = {name for name in set(data) & set(LOOP) if not name.startswith("__")}
    # what both import (a module, a class, nndsl's shared helpers) is one object in both
    defined_twice = {name for name in shared if data[name] is not LOOP[name]}
    assert defined_twice - {"NamedTuple"} == set(), "names defined in both data.py and loop.py"
    namespace = script_namespace("data.py", "loop.py")
    args = make_args(tmp_path, data="xor()", loss="BCEWithLogitsLoss()", split=[0.8, 0.2], epochs=2)
    loaders = {"xor": namespace["make_xor"]}

    def load_data(args):
        return namespace["prepare_data"](args, loaders, (2,), "float32", (1,))

    def model():
        return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    assert namespace["run"](args, model, load_data, namespace["parse_call"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["split"] == "val"


@pytest.mark.parametrize(
    "value, text",
    [(0.92314, "0.9231"), (1.0, "1.000"), (3.7214e-06, "3.721e-06"), (0.0, "0"), (12345.6, "1.235e+04"), (None, "-")],
)
def test_metrics_print_significant_digits(value, text):
    assert LOOP["metric_text"]("mse", value) == f"mse {text}"


def test_a_regression_with_a_tiny_error_shows_its_digits(tmp_path, capsys):
    splits = blobs(task="regression")
    small = Splits(*((x, y * 1e-4) for x, y in splits[:3]), "regression", None, "tiny")
    zero = {"init": "zeros()", "optimizer": "SGD(lr=0.0)", "loss": "MSELoss()", "epochs": 1}  # predicts 0
    assert train(tmp_path, splits=small, model=lambda: TinyNet(outputs=1), **zero) == 0
    out = capsys.readouterr().out
    assert "mse 0.0000" not in out and re.search(r"mse \d\.\d{3}e-\d\d", out), out


def test_a_killed_runs_temporary_files_are_removed(tmp_path):
    """A SIGKILL between writing a temporary file and renaming it leaves .NAME.PID.tmp: the
    next run in that directory removes those of processes that no longer run."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".metrics.jsonl.{int(dead.stdout)}.tmp"
    live = tmp_path / f".checkpoint.pt.{os.getppid()}.tmp"  # a running process's: kept
    other = tmp_path / ".notes.tmp"
    for path in (stale, live, other):
        path.write_text("partial")
    assert train(tmp_path, epochs=1) == 0
    assert not stale.exists() and live.exists() and other.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and p not in (live, other)]


def test_threads_default_to_the_idle_cores_and_are_put_back(tmp_path, capsys, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 1.0, 1.0), raising=False)
    assert LOOP["choose_threads"](None) == 1  # two cores, one of them busy
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0), raising=False)
    assert LOOP["choose_threads"](None) == LOOP["MAX_DEFAULT_THREADS"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert LOOP["choose_threads"](None) is None  # torchrun sets each process's threads itself
    assert LOOP["choose_threads"](3) == 3
    monkeypatch.delenv("WORLD_SIZE")
    assert train(tmp_path, epochs=1, threads=3) == 0
    assert "3 CPU threads" in capsys.readouterr().out
    assert torch.get_num_threads() == before
    assert train(tmp_path / "b", epochs=1, threads=0) == 2
    assert "--threads must be from 1 to" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize(
    ("task", "outputs", "loss"),
    [("classification", 3, "CrossEntropyLoss(weight=[1.0, 2.0, 1.0])"), ("regression", 1, "HuberLoss()")],
)
def test_a_model_in_another_float_dtype_trains_on_targets_of_its_dtype(tmp_path, dtype, task, outputs, loss):
    """A spec declared float64 (or bfloat16) gives a module in that dtype: inputs come in it
    (fit_inputs), float targets and the loss's class weights follow the output's dtype."""
    splits = blobs(task=task)
    splits = splits._replace(**{part: (x.to(dtype), y) for part, (x, y) in zip(("train", "val", "test"), splits[:3])})
    assert train(tmp_path, splits, lambda: TinyNet(outputs).to(dtype), loss=loss, epochs=2) == 0
    assert load(tmp_path / "model.pt")["net.0.weight"].dtype == dtype
