"""The training script as a user runs it: compiled by the real CLI, trained in separate processes,
stopped by real signals, run under torchrun, and through `nndsl train`.

Every run is a subprocess with OMP_NUM_THREADS=1 and --no-progress. Independent runs are started
together so that the file stays fast on two cores; the signal tests only need the epochs to be
long enough (batch size 2: about 700 steps) for a signal to land in the middle of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent

# the digits split below: 80% of 1,797 samples for training
TRAIN_SAMPLES = 1438

MODEL = """model Net(x: [N, 64]) {{
    Linear(64, 32) -> ReLU{dropout}
    -> Linear(32, 10)
}}
"""
# Dropout draws from torch's generator, so a resumed run must restore its state exactly
DIGITS_SPEC = (
    MODEL.format(dropout="\n    -> Dropout(0.2)")
    + """
train Net {
    data = digits()
    split = [0.8, 0.2]
    loss = CrossEntropyLoss()
    optimizer = Adam(lr=0.005)
    schedule = StepLR(step_size=1, gamma=0.7)
    epochs = 3
    batch_size = 2
    seed = 7
}
"""
)
# without Dropout, whose masks differ between the ranks of a torchrun job
NO_DROPOUT_SPEC = DIGITS_SPEC.replace("\n    -> Dropout(0.2)", "")
CSV_SPEC = """model Price(x: [N, 2]) {
    Linear(2, 1)
}

train Price {
    data = csv("table.csv", target="price")
    loss = MSELoss()
    optimizer = SGD(lr=0.01)
    epochs = 2
}
"""
MNIST_SPEC = """model Images(x: [N, 1, 28, 28]) {
    Flatten -> Linear(784, 10)
}

train Images {
    data = mnist("data/mnist")
    loss = CrossEntropyLoss()
    optimizer = Adam(lr=0.001)
}
"""
CSV_TABLE = "size,rooms,price\n" + "".join(f"{i},{i % 4},{2 * i + 1}\n" for i in range(20))


def environment() -> dict:
    """The subprocesses' environment: one thread, this checkout's nndsl, no torchrun job around."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "NNDSL_DEBUG"):
        env.pop(name, None)
    return env


ENV = environment()


class Done(NamedTuple):
    code: int
    out: str
    err: str


class Run:
    """A process started in the background, its output going to files (no pipe to fill up)."""

    started: list[Run] = []

    def __init__(self, command: list, cwd: Path, name: str, **popen):
        self.out_file, self.err_file = cwd / f"{name}.stdout", cwd / f"{name}.stderr"
        with open(self.out_file, "w") as out, open(self.err_file, "w") as err:
            command = [str(part) for part in command]
            self.process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=out, stderr=err, **popen)
        Run.started.append(self)

    def done(self, timeout: float = 180) -> Done:
        code = self.process.wait(timeout)
        return Done(code, self.out_file.read_text(), self.err_file.read_text())

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)


@pytest.fixture(scope="module", autouse=True)
def stop_leftover_runs():
    """A test that failed early may leave its processes running: end them with the module."""
    yield
    for run in Run.started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
    Run.started.clear()


def nndsl(*args) -> list:
    return [sys.executable, "-m", "nndsl", *map(str, args)]


def script(path: Path, *flags) -> list:
    return [sys.executable, str(path), "--no-progress", *map(str, flags)]


def compile_spec(directory: Path, name: str, text: str) -> Path:
    """Write a spec and compile it into a training script with the real CLI."""
    spec, target = directory / f"{name}.nn", directory / f"{name}_train.py"
    spec.write_text(text)
    done = subprocess.run(
        nndsl("compile", spec, "--target", "train", "-o", target), env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return target


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load(a), load(b)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def metrics(path: Path, drop=("train_seconds", "eval_seconds")) -> list[dict]:
    """The metrics file's records, without the timings."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in record.items() if k not in drop} for record in records]


def wait_for_epoch_end(run: Run, checkpoint: Path, epoch: int, timeout: float = 120) -> None:
    """Wait until the checkpoint is the one written at the end of `epoch` (each is written whole,
    through a rename); then the process has moved on to the next epoch."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        assert run.process.poll() is None, f"the training ended early:\n{run.done().err}"
        with contextlib.suppress(FileNotFoundError):
            stat = checkpoint.stat()
            if (stat.st_ino, stat.st_mtime_ns) != seen:  # a new file: read it
                seen = (stat.st_ino, stat.st_mtime_ns)
                state = load(checkpoint)
                if (state["epoch"], state["batch"]) == (epoch, 0):
                    return
        time.sleep(0.01)
    pytest.fail(f"no checkpoint of epoch {epoch} within {timeout} s")


def check_clean_exit(done: Done, code: int) -> None:
    assert done.code == code, done.err
    assert "Traceback" not in done.err


# --- Stopping and resuming a real training process ------------------------------------------------


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return compile_spec(tmp_path_factory.mktemp("digits"), "digits", DIGITS_SPEC)


class Scenario(threading.Thread):
    """Runs a sequence of processes (start, signal, resume) in the background and records what
    happened; the tests wait for it and check. The scenarios run side by side, on both cores."""

    def __init__(self, steps, directory: Path):
        super().__init__(daemon=True)
        self.steps, self.directory = steps, directory
        self.out = directory / "out"
        self.checkpoint = self.out / "checkpoint.pt"
        self.seen: dict = {}
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.steps(self)
        except BaseException as exc:  # handed to the test that waits for it
            self.error = exc

    def launch(self, name: str, *flags) -> Run:
        return Run(
            script(self.directory.parent / "digits_train.py", "--out-dir", self.out, *flags), self.directory, name
        )

    def stop_after_epoch(self, run: Run, epoch: int, signum: int) -> Done:
        """Send signum once `epoch` has ended, early in the next one; record the checkpoint it left."""
        wait_for_epoch_end(run, self.checkpoint, epoch)
        time.sleep(0.02)  # past the end of the epoch, well before the next one's (~700 steps)
        run.send(signum)
        done = run.done()
        self.seen[signum] = (done, load(self.checkpoint), (self.out / "model.pt").exists())
        return done

    def result(self, key, timeout: float = 300):
        deadline = time.monotonic() + timeout
        while key not in self.seen and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if key not in self.seen:
            self.join(1)
            if self.error is not None:
                raise self.error
            pytest.fail(f"the scenario in {self.directory} recorded no {key!r}")
        return self.seen[key]


def straight_steps(scenario: Scenario) -> None:
    scenario.seen["done"] = scenario.launch("straight").done()


def term_int_steps(scenario: Scenario) -> None:
    """SIGTERM early in epoch 2; resume; SIGINT early in epoch 3; resume to the end."""
    scenario.stop_after_epoch(scenario.launch("first"), 1, signal.SIGTERM)
    scenario.stop_after_epoch(scenario.launch("second", "--resume"), 2, signal.SIGINT)
    scenario.seen["done"] = scenario.launch("third", "--resume").done()


def kill_steps(scenario: Scenario) -> None:
    """SIGKILL early in epoch 2: no chance to save; resume from the checkpoint of epoch 1."""
    scenario.stop_after_epoch(scenario.launch("killed"), 1, signal.SIGKILL)
    scenario.seen["done"] = scenario.launch("resumed", "--resume").done()


def new_scenario(digits: Path, name: str, steps) -> Scenario:
    directory = digits.parent / name
    directory.mkdir()
    return Scenario(steps, directory)


@pytest.fixture(scope="module")
def straight_run(digits) -> Scenario:
    """The uninterrupted run that the others must match."""
    return new_scenario(digits, "straight", straight_steps)


@pytest.fixture(scope="module")
def scenarios(digits, straight_run) -> dict:
    """The interrupted runs, started beside the uninterrupted one."""
    return {
        "term_int": new_scenario(digits, "term_int", term_int_steps),
        "kill": new_scenario(digits, "kill", kill_steps),
    }


@pytest.fixture(scope="module")
def straight(straight_run) -> Path:
    check_clean_exit(straight_run.result("done"), 0)
    return straight_run.out


STEPS = TRAIN_SAMPLES // 2  # batches per epoch


def test_sigterm_mid_epoch_saves_a_checkpoint_and_says_how_to_resume(scenarios):
    scenario = scenarios["term_int"]
    done, state, finished = scenario.result(signal.SIGTERM)
    check_clean_exit(done, 143)
    batch = state["batch"]
    assert state["epoch"] == 1 and 0 < batch < STEPS  # in the middle of epoch 2
    assert (
        f"stopped by SIGTERM at epoch 2, batch {batch}; checkpoint saved to {scenario.checkpoint}; "
        "run again with --resume to continue"
    ) in done.err
    assert "epoch 1/3" in done.out and "epoch 2/3" not in done.out
    assert not finished  # no model.pt


def test_sigint_mid_epoch_of_a_resumed_run_exits_130(scenarios):
    scenario = scenarios["term_int"]
    first_batch = scenario.result(signal.SIGTERM)[1]["batch"]
    done, state, finished = scenario.result(signal.SIGINT)
    check_clean_exit(done, 130)
    assert f"; resuming after epoch 1, batch {first_batch}\n" in done.out
    assert re.findall(r"^epoch (\d)/3 ", done.out, re.M) == ["2"]
    assert state["epoch"] == 2 and 0 < state["batch"] < STEPS
    assert (
        f"stopped by SIGINT at epoch 3, batch {state['batch']}; checkpoint saved to {scenario.checkpoint}; "
        "run again with --resume to continue"
    ) in done.err
    assert not finished


def test_interrupted_and_resumed_twice_ends_with_identical_weights(scenarios, straight):
    scenario = scenarios["term_int"]
    last_batch = scenario.result(signal.SIGINT)[1]["batch"]
    done = scenario.result("done")
    check_clean_exit(done, 0)
    assert f"; resuming after epoch 2, batch {last_batch}\n" in done.out
    assert re.findall(r"^epoch (\d)/3 ", done.out, re.M) == ["3"]
    out = scenario.out
    assert_same_weights(straight / "model.pt", out / "model.pt")
    assert_same_weights(straight / "best.pt", out / "best.pt")
    assert metrics(out / "metrics.jsonl") == metrics(straight / "metrics.jsonl")
    assert json.loads((out / "results.json").read_text()) == json.loads((straight / "results.json").read_text())


def test_sigkill_then_resume_from_the_epoch_checkpoint_gives_identical_weights(scenarios, straight):
    scenario = scenarios["kill"]
    killed, state, finished = scenario.result(signal.SIGKILL)
    assert killed.code == -signal.SIGKILL
    assert (state["epoch"], state["batch"]) == (1, 0)  # no chance to save: the end of epoch 1
    assert not finished
    done = scenario.result("done")
    check_clean_exit(done, 0)
    assert re.search(r"; resuming after epoch 1$", done.out, re.M)
    assert re.findall(r"^epoch (\d)/3 ", done.out, re.M) == ["2", "3"]
    assert_same_weights(straight / "model.pt", scenario.out / "model.pt")
    assert metrics(scenario.out / "metrics.jsonl") == metrics(straight / "metrics.jsonl")


# --- torchrun ----------------------------------------------------------------------------------------


def torchrun() -> list:
    found = shutil.which("torchrun") or shutil.which("torchrun", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_two_processes_share_the_epoch(tmp_path):
    """Each rank takes every other sample of the same permutation and DDP averages the two
    gradients, so 2 processes with batch size 8 take the same steps as one with batch size 16
    (equal up to rounding; a rank that trained on all the data would take twice the steps)."""
    nodrop = compile_spec(tmp_path, "nodrop", NO_DROPOUT_SPEC)
    flags = ["--epochs", 2]
    command = [*torchrun(), "--standalone", "--nproc_per_node=2", *script(nodrop, *flags)[1:]]
    pair = Run([*command, "--batch-size", 8, "--out-dir", tmp_path / "pair"], tmp_path, "pair")
    single = Run(script(nodrop, *flags, "--batch-size", 16, "--out-dir", tmp_path / "single"), tmp_path, "single")
    done, alone = pair.done(), single.done()
    if done.code != 0 and "terminate called without an active exception" in done.err:
        # on a loaded machine a torchrun child sometimes aborts in torch's own teardown (gloo's
        # threads, after the training finished); the run is repeated once, and must pass then
        shutil.rmtree(tmp_path / "pair", ignore_errors=True)
        done = Run([*command, "--batch-size", 8, "--out-dir", tmp_path / "pair"], tmp_path, "pair2").done()
    if done.code != 0 and re.search(
        r"DistNetworkError|EADDRINUSE|Address already in use|Cannot assign requested address", done.err
    ):
        pytest.skip(f"torchrun cannot open its local rendezvous here: {done.err.strip().splitlines()[-1]}")
    check_clean_exit(done, 0)
    check_clean_exit(alone, 0)

    assert done.out.count("ranks agree: 2 processes have identical weights") == 1
    assert done.out.count("(classification, cpu x 2 processes)") == 1
    assert re.findall(r"^epoch (\d)/2 ", done.out, re.M) == ["1", "2"]  # rank 0 only
    assert done.out.count("finished 2 epochs") == 1
    pair_out = tmp_path / "pair"
    assert [record["epoch"] for record in metrics(pair_out / "metrics.jsonl")] == [1, 2]
    files = sorted(p.name for p in pair_out.iterdir())
    assert files == sorted(p.name for p in (tmp_path / "single").iterdir())
    assert files == [
        "best.pt",
        "checkpoint.pt",
        "metrics.jsonl",
        "model.json",
        "model.pt",
        "model.safetensors",
        "results.json",
        "tensorboard",
    ]
    assert len(list((pair_out / "tensorboard").iterdir())) == 1
    state = load(pair_out / "checkpoint.pt")
    assert state["world_size"] == 2 and len(state["rng_states"]) == 2

    both, one = load(pair_out / "model.pt"), load(tmp_path / "single" / "model.pt")
    for key in one:
        assert torch.allclose(both[key], one[key], rtol=0, atol=1e-5), key
    for a, b in zip(metrics(pair_out / "metrics.jsonl"), metrics(tmp_path / "single" / "metrics.jsonl")):
        assert a["train_accuracy"] == b["train_accuracy"]  # over all 1,438 samples, once each
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


# --- Errors: a message and an exit code, no traceback ------------------------------------------------


def limit_file_size() -> None:
    """In the child: no file may grow past 8 kB, as on a full disk (the prices checkpoint is
    about 17 kB, its weights 2 kB); Python ignores SIGXFSZ, so such a write fails with EFBIG."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, 8_000))


@pytest.fixture(scope="module")
def failures(digits, tmp_path_factory) -> dict:
    """Every failing run, started together; each test waits for its own."""
    where = tmp_path_factory.mktemp("failures")
    (where / "empty").mkdir()
    (where / "table.csv").write_text(CSV_TABLE)
    prices = compile_spec(where, "prices", CSV_SPEC)
    images = compile_spec(where, "images", MNIST_SPEC)
    quick = ["--epochs", 3, "--batch-size", 64]
    commands = {
        "no mnist": (script(images, "--data", f'mnist("{where / "empty"}")'), {}),
        "csv column": (script(prices, "--data", 'csv("table.csv", target="prise")'), {}),
        "full disk": (script(prices), {"preexec_fn": limit_file_size}),
        "diverges": (
            script(digits, *quick, "--optimizer", "SGD(lr=0.01)", "--schedule", "ExponentialLR(gamma=1e30)"),
            {},
        ),
        "bad optimizer": (script(prices, "--optimizer", "Adam(momentum=0.9)"), {}),
        # epoch 2's one step (12 rows, batch size 32) at lr 1e36 overflows the weights to inf
        "inf weights": (script(prices, "--epochs", 3, "--schedule", "ExponentialLR(gamma=1e38)"), {}),
    }
    runs = {}
    for index, (name, (command, popen)) in enumerate(commands.items()):
        if "--out-dir" not in command:
            command = [*command, "--out-dir", where / f"out{index}"]
        runs[name] = (Run(command, where, f"run{index}", **popen), Path(command[command.index("--out-dir") + 1]))
    return {"where": where, "runs": runs}


def failed(failures, name) -> tuple[Done, Path]:
    run, out = failures["runs"][name]
    return run.done(), out


def test_missing_mnist_files(failures):
    done, out = failed(failures, "no mnist")
    check_clean_exit(done, 2)
    empty = failures["where"] / "empty"
    assert done.err.startswith(f"error: MNIST data is not in {empty}/: train-images-idx3-ubyte(.gz) is missing")
    assert not out.exists()


def test_csv_target_column_that_does_not_exist(failures):
    done, _ = failed(failures, "csv column")
    check_clean_exit(done, 2)
    assert done.err.startswith("error: table.csv has no column 'prise' (did you mean 'price'?)")
    assert "its columns are size, rooms, price" in done.err


def test_full_disk_while_writing_the_checkpoint(failures):
    done, out = failed(failures, "full disk")
    check_clean_exit(done, 2)
    assert done.err.startswith(f"error: cannot write {out / 'checkpoint.pt'}: File too large")
    assert "epoch 1/2" in done.out and "epoch 2/2" not in done.out
    assert not (out / "checkpoint.pt").exists()
    # best.pt was written whole before it, and the half-written temporary file is gone
    assert load(out / "best.pt").keys() == {"fc.weight", "fc.bias"}
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_nan_loss_exits_1_and_keeps_the_last_good_checkpoint(failures):
    done, out = failed(failures, "diverges")
    check_clean_exit(done, 1)
    checkpoint = out / "checkpoint.pt"
    assert re.match(
        r"error: training loss became (nan|inf) at epoch 2 \(batch \d+\); stopping\. "
        rf"The last good checkpoint \(epoch 1\) is kept at {re.escape(str(checkpoint))}; try a lower learning rate",
        done.err,
    )
    state = load(checkpoint)
    assert (state["epoch"], state["batch"]) == (1, 0)
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert len(metrics(out / "metrics.jsonl")) == 1
    assert not (out / "model.pt").exists()


def test_bad_optimizer_argument_names_the_flag(failures):
    done, out = failed(failures, "bad optimizer")
    check_clean_exit(done, 2)
    assert done.err.startswith("error: --optimizer: Adam got an unexpected keyword argument 'momentum'")
    assert not (out / "checkpoint.pt").exists()


def test_the_kept_checkpoint_after_divergence_has_finite_weights(failures):
    done, out = failed(failures, "inf weights")
    check_clean_exit(done, 1)
    assert re.match(
        r"error: (training loss|the weights) became (nan|inf|nan or inf) at (the end of )?epoch \d", done.err
    )
    state = load(out / "checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in state["model"].values()), (state["epoch"], state["model"])


# --- nndsl train ------------------------------------------------------------------------------------


def test_nndsl_train_trains_like_the_compiled_script(digits, straight, tmp_path):
    """The same spec and flags through `nndsl train` (in its own process) and through the script
    compiled from it give the same weights; a flag after the spec overrides its setting."""
    spec = digits.with_name("digits.nn")
    out = tmp_path / "out"
    trained = Run(nndsl("train", spec, "--no-progress", "--out-dir", out, "--metrics", "accuracy"), tmp_path, "cli")
    helped = Run(nndsl("train", spec, "--help"), tmp_path, "help")
    done = trained.done()
    check_clean_exit(done, 0)
    assert re.findall(r"^epoch (\d)/3 ", done.out, re.M) == ["1", "2", "3"]
    assert "val accuracy" in done.out and "val f1" not in done.out  # --metrics accuracy
    assert len(metrics(out / "metrics.jsonl")) == 3
    assert_same_weights(straight / "model.pt", out / "model.pt")

    done = helped.done()
    check_clean_exit(done, 0)
    assert done.out.startswith(f"usage: nndsl train {spec}")
    flags = set(re.findall(r'"(--[a-z-]+)"', digits.read_text()))  # the script's argparse flags
    assert {"--data", "--epochs", "--batch-size", "--resume", "--out-dir", "--optimizer"} <= flags
    listed = set(re.findall(r"--[a-z-]+", done.out))
    assert flags <= listed, flags - listed
    assert "(default: Adam(lr=0.005))" in done.out
    assert not (tmp_path / "runs").exists()


def test_nndsl_train_with_a_shape_error_trains_nothing(tmp_path):
    spec = tmp_path / "bad.nn"
    spec.write_text(
        "model M(x: [N, 64]) {\n    Linear(64, 32) -> ReLU -> Linear(16, 10)\n}\n\n"
        "train M {\n    data = digits()\n    loss = CrossEntropyLoss()\n    optimizer = Adam(lr=0.01)\n}\n"
    )
    out = tmp_path / "out"
    done = subprocess.run(
        nndsl("train", spec, "--out-dir", out), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60
    )
    check_clean_exit(Done(done.returncode, done.stdout, done.stderr), 1)
    assert "error[E201]: Linear expects 16 input features, got 32" in done.stderr
    assert "1 error; nothing trained" in done.stderr
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_nndsl_train_without_a_train_section(tmp_path):
    spec = tmp_path / "plain.nn"
    spec.write_text(MODEL.format(dropout=""))
    done = subprocess.run(nndsl("train", spec), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
    check_clean_exit(Done(done.returncode, done.stdout, done.stderr), 2)
    assert done.stderr.startswith(f"error: {spec} has no train section; add one, for example:")
    assert not (tmp_path / "runs").exists()
