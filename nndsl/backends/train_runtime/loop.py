"""The training loop of a generated training script: options, epochs, metrics, checkpoints, torchrun.

``run(args, model_class, load_data, parse_call)`` is the entry point; it returns the exit code:
0 done, 1 the training loss diverged, 2 a problem with the options, the data or the output
files, 130 / 143 stopped by SIGINT / SIGTERM after saving a checkpoint.

The data lives on the device as two tensors; every epoch draws a permutation from a dedicated
generator and gathers each batch with ``index_select``. The batch loop never waits for the
device: it keeps each batch's loss tensor and writes its predictions into a buffer, and the
epoch's loss and accuracy are computed from those once, at the epoch's end.
"""

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import pickle
import random
import signal
import sys
import time
import warnings

import torch
from torch import nn

from nndsl.atomic import replace_atomically
from nndsl.suggest import did_you_mean
from nndsl.train_catalogue import (
    BATCH_SCHEDULERS,
    INIT_ALIASES,
    INIT_NAMES,
    LOSS_TASKS,
    TASK_METRICS,
    TRAIN_OPTIMIZERS,
    TRAIN_SCHEDULERS,
)


class TrainingError(Exception):
    """A problem with the options or the output files that the user can fix; the message says what."""


class TrainingDiverged(Exception):
    """The training loss became nan or inf; the message says where, and what was kept."""


FUSED_OPTIMIZERS = ("SGD", "Adam", "AdamW", "Adagrad")
INIT_SCHEMES = {
    name: getattr(nn.init, INIT_ALIASES.get(name, name) + "_")
    for name in (*INIT_NAMES, *INIT_ALIASES)
}
CHECKPOINT_FORMAT = "nndsl-train-checkpoint-2"
# the flags that shape a run's trajectory, kept in its checkpoint: a resumed run takes them
# from there, and refuses a different value given on the command line (see resume_settings)
TRAJECTORY_FLAGS = {
    "data": "--data",
    "split": "--split",
    "seed": "--seed",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "loss": "--loss",
    "optimizer": "--optimizer",
    "lr": "--lr",
    "schedule": "--schedule",
    "clip_grad_norm": "--clip-grad-norm",
    "clip_grad_value": "--clip-grad-value",
    "early_stopping": "--early-stopping",
    "min_delta": "--min-delta",
    "deterministic": "--deterministic",
}
# what a checkpoint holds besides the weights and the optimizer's and schedule's states: each
# key's type, checked before anything is restored
CHECKPOINT_FIELDS = {
    "model": dict,
    "optimizer": dict,
    "optimizer_name": str,
    "scheduler": (dict, type(None)),
    "scheduler_name": (str, type(None)),
    "epoch": int,
    "batch": int,
    "batch_size": int,
    "world_size": int,
    "shuffle_state": torch.Tensor,
    "rng_states": list,
    "running": dict,
    "best_loss": float,
    "best_epoch": int,
    "bad_epochs": int,
    "history": list,
    "settings": dict,
    "model_fingerprint": str,
    "samples": list,
}
# batches between checks of the losses for nan/inf; each check waits for the device
DIVERGENCE_CHECK_EVERY = 100
# batches between the ranks' agreement on a stop signal under torchrun
STOP_AGREEMENT_EVERY = 10
PROGRESS_REDRAW_SECONDS = 0.1
# the most CPU threads a run takes by default (the small models trained here gain
# little from more); --threads sets any number
MAX_DEFAULT_THREADS = 8
# larger confusion matrices go to results.json only
MAX_PRINTED_CLASSES = 20


# --- Errors and signals -------------------------------------------------------------


def is_user_error(error: BaseException) -> bool:
    """Whether an exception is a problem the user can fix (options, data, files), not a bug."""
    if isinstance(error, (TrainingError, OSError)):
        return True
    # data.py's DataError: it cannot be imported here, both share the script's namespace
    return type(error).__name__ == "DataError"


class StopRequest:
    """Set by SIGINT or SIGTERM: the loop finishes its batch, saves a checkpoint and stops."""

    def __init__(self):
        self.requested = False
        self.signal = 0

    def handle(self, signum, frame):
        """Signal handler: remember the signal; a second Ctrl-C stops at once, without saving."""
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal = signum


def install_stop_handlers(stop: StopRequest) -> dict:
    """Route SIGINT and SIGTERM to stop.handle; returns the previous handlers to put back."""
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, stop.handle)
        except (ValueError, OSError):
            # not the main thread: the signals keep their handlers
            pass
    return previous


def restore_signal_handlers(previous: dict) -> None:
    """Put back the handlers that install_stop_handlers replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


# --- Device, seeds and torchrun -----------------------------------------------------


def mps_available() -> bool:
    """Whether Apple's Metal backend can be used."""
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def select_device(name: str) -> torch.device:
    """The device for --device: "auto" takes cuda, then mps, then the cpu; an explicit one must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    choices = "use auto, cpu, cuda, cuda:N or mps"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"--device: {name!r} is not a device; {choices}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(
                f"--device: {name} was requested but CUDA is not available here; "
                "use --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise TrainingError(
                f"--device: {name} does not exist; there are {count} CUDA devices"
            )
    elif device.type == "mps":
        if not mps_available():
            raise TrainingError(
                "--device: mps was requested but the Metal backend is not available; "
                "use --device cpu"
            )
    elif device.type != "cpu":
        raise TrainingError(f"--device: {name!r} is not supported; {choices}")
    return device


class DistContext:
    """This process's place in a torchrun job; rank 0 of 1 when training in one process."""

    def __init__(self, rank: int = 0, world: int = 1, device=None):
        self.rank = rank
        self.world = world
        self.device = device

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Add a tensor up over all ranks, in place."""
        if self.active:
            torch.distributed.all_reduce(tensor)
        return tensor

    def max(self, value: int) -> int:
        """The largest of one integer over all ranks."""
        if not self.active:
            return value
        tensor = torch.tensor([value], device=self.device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return int(tensor.item())

    def gather(self, value) -> list:
        """One picklable value from every rank, in rank order."""
        if not self.active:
            return [value]
        values = [None] * self.world
        torch.distributed.all_gather_object(values, value)
        return values

    def on_main(self, action):
        """Run action on rank 0 only (writing files); the others wait, and all raise if it failed."""
        result, error = None, None
        if self.is_main:
            try:
                result = action()
            except Exception as exc:
                if not is_user_error(exc):
                    raise
                error = exc
        if self.max(int(error is not None)):
            if error is None:
                error = TrainingError("rank 0 failed (it printed why)")
            raise error
        return result


def start_distributed(device_name: str) -> tuple:
    """This process's DistContext and device: under torchrun (WORLD_SIZE > 1) it joins the job,
    with nccl on cuda:LOCAL_RANK, or gloo on the cpu."""
    world = int(os.environ.get("WORLD_SIZE") or 1)
    if world <= 1:
        return DistContext(), select_device(device_name)
    rank = int(os.environ.get("RANK") or 0)
    local_rank = int(os.environ.get("LOCAL_RANK") or 0)
    wants_cuda = device_name == "auto" and torch.cuda.is_available()
    if wants_cuda or device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError(
                f"--device: {device_name} was requested but CUDA is not available here"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device_name in ("auto", "cpu"):
        device, backend = torch.device("cpu"), "gloo"
    else:
        raise TrainingError(
            f"--device: {device_name} cannot train with torchrun; use cpu or cuda"
        )
    torch.distributed.init_process_group(backend=backend)
    return DistContext(rank, world, device), device


def stop_distributed(dist) -> None:
    """Leave the torchrun job, if this process joined one."""
    if dist is not None and dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def choose_threads(requested) -> int | None:
    """The CPU threads for torch (--threads): as asked, or by default the cores this process
    may use that are not already busy (the load average), at most MAX_DEFAULT_THREADS. torch's
    own default takes every core, which on a busy machine makes the threads wait for each other
    (3.5x slower on a loaded 2-core box). None under torchrun unless asked: torchrun sets each
    process's threads itself (OMP_NUM_THREADS)."""
    if requested is not None:
        # far more threads than cores only wastes memory (10**9 of them abort the process)
        most = max(4 * (os.cpu_count() or 1), 64)
        if not 1 <= requested <= most:
            raise TrainingError(f"--threads must be from 1 to {most}, not {requested}")
        return requested
    if int(os.environ.get("WORLD_SIZE") or 1) > 1:
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]  # processes wanting a core, over the last minute
    except (AttributeError, OSError):
        busy = 0.0
    idle = max(round(cores - busy), 1)
    return max(min(MAX_DEFAULT_THREADS, idle, cores), 1)


def deterministic_flags() -> tuple:
    """The process-wide determinism settings, to put back when run() returns."""
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )


def restore_deterministic_flags(flags: tuple) -> None:
    """Put back what deterministic_flags() saw (nndsl train runs the script in its process)."""
    enabled, warn_only, cudnn_deterministic, cudnn_benchmark = flags
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.deterministic = cudnn_deterministic
    torch.backends.cudnn.benchmark = cudnn_benchmark


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed torch and random; with deterministic, also ask torch for reproducible kernels."""
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS is only deterministic with a fixed workspace
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def rng_state(device: torch.device) -> dict:
    """The random number generators' state right now (dropout draws from torch's)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    state["cuda"] = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    state["mps"] = torch.mps.get_rng_state() if device.type == "mps" else None
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what rng_state() returned."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    elif device.type == "mps" and state.get("mps") is not None:
        torch.mps.set_rng_state(state["mps"])


# --- Loss, optimizer, schedule and initialisation from their call texts -------------


def parse_flag(parse_call, flag: str, text: str) -> tuple:
    """Parse a call text such as ``Adam(lr=0.001)``; a malformed one is a TrainingError."""
    try:
        return parse_call(text)
    except Exception as exc:
        if isinstance(exc, (ValueError, SyntaxError)) or is_user_error(exc):
            raise TrainingError(f"{flag}: {exc}") from None
        raise


def unknown_name(flag: str, what: str, name: str, choices) -> TrainingError:
    """The error for a name that is not among the choices, with the closest one if any."""
    return TrainingError(
        f"{flag}: unknown {what} {name!r}{did_you_mean(name, choices)}; "
        f"use one of {', '.join(choices)}"
    )


def construct(flag: str, factory, name: str, args: list, kwargs: dict):
    """Call a torch class or function with the user's arguments; bad ones are a TrainingError."""
    try:
        return factory(*args, **kwargs)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        # "Adam.__init__() got an unexpected keyword ..." -> "Adam got an unexpected keyword ..."
        message = str(exc)
        for prefix in (f"{factory.__name__}.__init__()", f"{factory.__name__}()"):
            message = message.replace(prefix, name)
        if not message.startswith(name):
            message = f"{name}: {message}"
        raise TrainingError(f"{flag}: {message}") from None


def build_loss(text: str, parse_call, device: torch.device) -> tuple:
    """The loss module for --loss and its name; weight/pos_weight lists become tensors."""
    name, args, kwargs = parse_flag(parse_call, "--loss", text)
    if name not in LOSS_TASKS:
        raise unknown_name("--loss", "loss", name, LOSS_TASKS)
    reduction = kwargs.get("reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise TrainingError(
            f"--loss: reduction must be 'mean' or 'sum', not {reduction!r}"
        )
    for key in ("weight", "pos_weight"):
        if isinstance(kwargs.get(key), (list, tuple)):
            try:
                kwargs[key] = torch.tensor(kwargs[key], dtype=torch.float32).to(device)
            except (TypeError, ValueError, RuntimeError):
                raise TrainingError(
                    f"--loss: {key} must be a list of numbers, not {kwargs[key]!r}"
                ) from None
    return construct("--loss", getattr(nn, name), name, args, kwargs), name


def build_optimizer(text: str, parameters: list, lr, parse_call) -> tuple:
    """The optimizer for --optimizer and its name; --lr, when given, replaces its rate."""
    name, args, kwargs = parse_flag(parse_call, "--optimizer", text)
    if name not in TRAIN_OPTIMIZERS:
        raise unknown_name("--optimizer", "optimizer", name, TRAIN_OPTIMIZERS)
    if lr is not None and args:
        # every optimizer here takes lr as its first argument after the parameters
        args = [lr, *args[1:]]
    elif lr is not None:
        kwargs["lr"] = lr
    factory = getattr(torch.optim, name)
    if name in FUSED_OPTIMIZERS and not {"fused", "foreach"} & set(kwargs):
        # torch's fused kernel makes the same update in one pass over every parameter; on
        # small batches the optimizer step is a large part of the time. Where it is not
        # supported (a device or dtype), the usual implementation is used.
        try:
            return factory(parameters, *args, fused=True, **kwargs), name
        except (RuntimeError, TypeError, ValueError):
            pass
    return construct("--optimizer", factory, name, [parameters, *args], kwargs), name


def build_scheduler(text, optimizer, epochs: int, steps_per_epoch: int, parse_call):
    """The schedule for --schedule, its name, and the keys of its state planned from the
    epochs (None, None, () without a schedule).

    CosineAnnealingLR's T_max defaults to the epochs, OneCycleLR's total_steps to all the
    batches of the run.
    """
    if not text:
        return None, None, ()
    name, args, kwargs = parse_flag(parse_call, "--schedule", text)
    if name not in TRAIN_SCHEDULERS:
        raise unknown_name("--schedule", "schedule", name, TRAIN_SCHEDULERS)
    planned = ()  # the schedule's state that follows from --epochs
    if name == "CosineAnnealingLR" and not args and "T_max" not in kwargs:
        kwargs["T_max"] = max(epochs, 1)
        planned = ("T_max",)
    no_length = "total_steps" not in kwargs and "epochs" not in kwargs
    if name == "OneCycleLR" and len(args) < 2 and no_length:
        kwargs["total_steps"] = max(epochs * steps_per_epoch, 1)
        planned = ("total_steps", "_schedule_phases")
    factory = getattr(torch.optim.lr_scheduler, name)
    scheduler = construct("--schedule", factory, name, [optimizer, *args], kwargs)
    return scheduler, name, planned


def step_schedule(scheduler, *args) -> None:
    """Step a schedule. Some arguments torch checks only when stepping (StepLR(step_size=0), a
    OneCycleLR with fewer total_steps than the run): they are a TrainingError, not a traceback."""
    try:
        scheduler.step(*args)
    except (ValueError, ZeroDivisionError, TypeError, OverflowError) as exc:
        name = type(scheduler).__name__
        raise TrainingError(f"--schedule: {name}: {exc}") from None


def replan_schedule(scheduler, saved: dict, planned: tuple) -> None:
    """Load a schedule's saved state, but with the length this run planned (--extend): the
    rate continues from the same step on the curve over the new number of epochs."""
    fresh = scheduler.state_dict()
    scheduler.load_state_dict({**saved, **{key: fresh[key] for key in planned}})
    # the rate at the current step of the new curve (cosine's own step is relative to the
    # current rate, so it must start on the curve)
    closed_form = getattr(scheduler, "_get_closed_form_lr", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # get_lr() outside step() warns
        rates = closed_form() if closed_form is not None else scheduler.get_lr()
    for group, rate in zip(scheduler.optimizer.param_groups, rates):
        group["lr"] = rate


def apply_init(model: nn.Module, text, parse_call) -> None:
    """Initialise every weight of 2+ dims as --init says, and zero those modules' biases.

    Linear, Conv*, Embedding, the RNNs' weight_ih/weight_hh, attention's in_proj_weight;
    norm layers have 1-d weights and keep their ones and zeros.
    """
    if not text:
        return
    name, args, kwargs = parse_flag(parse_call, "--init", text)
    if name not in INIT_SCHEMES:
        raise unknown_name("--init", "initialisation", name, INIT_SCHEMES)
    scheme = INIT_SCHEMES[name]
    with torch.no_grad():
        for module in model.modules():
            own = list(module.named_parameters(recurse=False))
            weights = [p for key, p in own if "weight" in key and p.dim() >= 2]
            if not weights:
                continue
            for weight in weights:
                construct("--init", scheme, name, [weight, *args], kwargs)
            for key, p in own:
                if "bias" in key:
                    p.zero_()
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                # as nn.Embedding makes it: the padding row stays zero
                module.weight[module.padding_idx].zero_()


# --- Metrics ------------------------------------------------------------------------


def record_predictions(
    task: str, outputs, into: torch.Tensor, threshold: float
) -> None:
    """Write a training batch's predictions into its rows of the epoch's buffer.

    One kernel, and no waiting for the device: class indices (argmax over dim 1), 0/1 labels
    (output above the threshold), or for regression the outputs themselves.
    """
    if task == "classification":
        torch.argmax(outputs, 1, out=into)
    elif task == "binary":
        torch.gt(outputs, threshold, out=into)
    else:
        into.copy_(outputs)


def score_predictions(task: str, predicted, targets) -> torch.Tensor:
    """What record_predictions kept, against the targets: correct ones, or squared errors."""
    if task == "classification":
        return (predicted == targets).sum()
    if task == "binary":
        return (predicted == (targets > 0.5)).sum()
    return (predicted - targets).square().sum()


def first_nonfinite(losses: list):
    """Position of the first nan or inf among 0-d loss tensors, or None; waits for the device."""
    if not losses:
        return None
    bad = torch.nonzero(~torch.isfinite(torch.stack(losses)))
    return int(bad[0, 0]) if len(bad) else None


def confusion_counts(predicted, targets, classes: int) -> torch.Tensor:
    """Confusion matrix [true, predicted] of class indices.

    Targets outside 0..classes-1 (a loss's ignore_index) are left out.
    """
    predicted, targets = predicted.reshape(-1), targets.reshape(-1)
    keep = (targets >= 0) & (targets < classes)
    pairs = targets[keep] * classes + predicted[keep]
    counts = torch.bincount(pairs, minlength=classes * classes)
    return counts.reshape(classes, classes)


def matrix_metrics(matrix: torch.Tensor) -> dict:
    """Accuracy and macro precision, recall and F1 of a confusion matrix.

    As scikit-learn with zero_division=0: a class never predicted has precision 0, one never
    present recall 0, and the macro average runs over the classes that occur as a target or
    as a prediction.
    """
    m = matrix.double().cpu()
    hits, predicted, actual = m.diag(), m.sum(0), m.sum(1)
    zeros = torch.zeros_like(hits)
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), zeros)
    recall = torch.where(actual > 0, hits / actual.clamp(min=1), zeros)
    both = predicted + actual
    f1 = torch.where(both > 0, 2 * hits / both.clamp(min=1), zeros)
    present = both > 0
    if not present.any():
        return {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {
        "accuracy": (hits.sum() / m.sum()).item(),
        "precision": precision[present].mean().item(),
        "recall": recall[present].mean().item(),
        "f1": f1[present].mean().item(),
    }


def finite_or_none(value):
    """A value for JSON: nan and inf become None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metric_text(name: str, value) -> str:
    """One metric for the console, to 4 significant digits: 'accuracy 0.9231', 'mse 3.721e-06'
    (a small regression error keeps its digits)."""
    if value is None:
        return f"{name} -"
    if not isinstance(value, float):
        return f"{name} {value}"
    return f"{name} {value:#.4g}" if value else f"{name} 0"


def matrix_text(matrix: list) -> str:
    """A confusion matrix as aligned text: rows the true class, columns the predicted one."""
    width = max(
        len(str(len(matrix) - 1)), *(len(str(v)) for row in matrix for v in row)
    )
    columns = " ".join(f"{c:>{width}}" for c in range(len(matrix)))
    lines = [" " * (width + 2) + columns]
    for label, row in enumerate(matrix):
        lines.append(f"{label:>{width}}  " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


# --- Files --------------------------------------------------------------------------


def write_atomically(path: str, data: bytes, durable: bool = True) -> None:
    """Write a file through a temporary file beside it, so that a crash or a full disk leaves
    the previous version whole; durable: on the disk itself before the rename (fsync)."""

    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            file.write(data)

    try:
        replace_atomically(path, write, durable)
    except OSError as exc:
        raise TrainingError(f"cannot write {path}: {exc.strerror or exc}") from None


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def remove_stale_temporaries(directory: str) -> None:
    """Delete the temporary files of write_atomically that a killed run left behind
    (.NAME.PID.tmp, for a PID no longer running); a running process's are left alone."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        parts = name.rsplit(".", 2)
        if not (name.startswith(".") and len(parts) == 3 and parts[2] == "tmp"):
            continue
        if parts[1].isdigit() and not process_alive(int(parts[1])):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))


def save_torch_file(obj, path: str) -> None:
    """torch.save through write_atomically (serialised in memory first, so that a disk error
    is an OSError of our own write)."""
    buffer = io.BytesIO()
    try:
        torch.save(obj, buffer)
    except OSError as exc:
        raise TrainingError(f"cannot write {path}: {exc.strerror or exc}") from None
    write_atomically(path, buffer.getvalue())


def save_safetensors(state: dict, path: str) -> bool:
    """The weights as safetensors too, when that library is installed: `nndsl export` reads
    them without torch. Returns whether it wrote them."""
    try:
        from safetensors.torch import save
    except ImportError:
        return False
    tensors = {key: value.detach().cpu().contiguous() for key, value in state.items()}
    write_atomically(path, save(tensors))
    return True


def metrics_file_text(history: list, file_format: str) -> str:
    """The whole metrics file: one JSON object per epoch, or CSV with a header."""
    if file_format == "jsonl":
        return "".join(json.dumps(record) + "\n" for record in history)
    columns = []
    for record in history:
        columns += [key for key in record if key not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    if history:
        writer.writeheader()
        writer.writerows(history)
    return text.getvalue()


def results_json_text(results: dict) -> str:
    """results.json: indented, with each row of the confusion matrix on one line."""
    rest = {key: value for key, value in results.items() if key != "confusion_matrix"}
    text = json.dumps(rest, indent=2)
    if "confusion_matrix" not in results:
        return text + "\n"
    rows = ",\n".join(f"    {json.dumps(row)}" for row in results["confusion_matrix"])
    # text ends with "\n}": the matrix goes in as the last key
    return f'{text[:-2]},\n  "confusion_matrix": [\n{rows}\n  ]\n}}\n'


def open_tensorboard(log_dir: str, first_step: int):
    """A TensorBoard SummaryWriter, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    # purge_step hides the later epochs of a run that this one resumes: none shows twice
    return SummaryWriter(log_dir, purge_step=first_step)


def plot_curves(history: list, path: str, task: str) -> bool:
    """Draw loss and accuracy (or MSE) per epoch into a PNG; False without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    metric = "mse" if task == "regression" else "accuracy"
    epochs = [record["epoch"] for record in history]
    figure = Figure(figsize=(10, 4))
    # draw with Agg, without touching pyplot's global state
    FigureCanvasAgg(figure)
    loss_axes, metric_axes = figure.subplots(1, 2)
    for split in ("train", "val"):
        if f"{split}_loss" not in history[0]:
            continue
        for axes, key in (
            (loss_axes, f"{split}_loss"),
            (metric_axes, f"{split}_{metric}"),
        ):
            # a missing (nan) value leaves a gap
            values = [math.nan if r.get(key) is None else r[key] for r in history]
            axes.plot(epochs, values, marker=".", label=split)
    for axes, title in ((loss_axes, "loss"), (metric_axes, metric)):
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomically(path, buffer.getvalue())
    return True


# --- Progress bars ------------------------------------------------------------------


class TextProgress:
    """A one-line progress bar on stderr, redrawn in place with a carriage return."""

    def __init__(self, label: str, total: int, done: int):
        self.label, self.total = label, max(total, 1)
        self.update(done)

    def update(self, done: int) -> None:
        filled = 30 * done // self.total
        bar = "#" * filled + "." * (30 - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\r" + " " * (len(self.label) + 45) + "\r")
        sys.stderr.flush()


class RichProgress:
    """A rich progress bar over one epoch's batches, removed when the epoch ends."""

    def __init__(self, label: str, total: int, done: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(label, total=total, completed=done)

    def update(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        self.progress.stop()


def open_progress(label: str, total: int, done: int):
    """A progress bar: rich's when it is installed, else a text one."""
    try:
        return RichProgress(label, total, done)
    except ImportError:
        return TextProgress(label, total, done)


# --- The training run ---------------------------------------------------------------


class EpochTally:
    """The training batches of the epoch in progress, for its loss and accuracy (or MSE).

    Each batch appends its loss tensor to `losses` and writes its predictions into the
    trainer's buffer, so the batch loop never waits for the device; the totals are computed
    once, at the epoch's end or for a mid-epoch checkpoint. After a mid-epoch resume, `losses`
    starts at first_batch and `carried` holds the (loss sum, metric sum, rows) before it.
    """

    def __init__(
        self, first_batch: int = 0, carried: tuple = (0.0, 0.0, 0.0), seconds=0.0
    ):
        self.first_batch = first_batch
        self.losses = []
        self.carried = carried
        self.seconds = seconds


class Trainer:
    """One training run: the model, the data on the device, the optimizer and the schedule,
    and how far the run has got."""

    def __init__(
        self, args, model_class, splits, parse_call, device, dist, stop, resumed=None
    ):
        self.args, self.splits, self.stop = args, splits, stop
        # the checkpoint to continue from (--resume), read and checked by read_checkpoint
        self.resumed = resumed
        self.device, self.dist = device, dist
        self.task = splits.task
        self.epochs, self.batch_size = check_counts(args)
        self.out_dir = args.out_dir
        self.checkpoint_path = os.path.join(args.out_dir, "checkpoint.pt")
        self.train_x, self.train_y = (t.to(device) for t in splits.train)
        self.val = on_device(splits.val, device)
        self.test = on_device(splits.test, device)
        # labels per sample: 1, or K for multi-label targets and sequences
        self.target_size = self.train_y[0].numel()
        # mps has no float64
        self.sum_dtype = torch.float32 if device.type == "mps" else torch.float64

        self.raw_model = model_class()
        apply_init(self.raw_model, args.init, parse_call)
        self.raw_model.to(device)
        self.model = self.raw_model  # wrapped in DistributedDataParallel under torchrun
        self.parameters = [p for p in self.raw_model.parameters() if p.requires_grad]
        self.loss_fn, self.loss_name = build_loss(args.loss, parse_call, device)
        # BCELoss takes probabilities, BCEWithLogitsLoss logits
        self.threshold = 0.5 if self.loss_name == "BCELoss" else 0.0
        # a batch's loss is the mean over its samples, or with reduction="sum" their sum
        self.loss_is_sum = self.loss_fn.reduction == "sum"
        self.match_output_dtype()
        self.shown_metrics = check_metrics(getattr(args, "metrics", None), self.task)
        self.num_classes = self.count_classes()
        self.check_loss_fits()
        self.optimizer, self.optimizer_name = build_optimizer(
            args.optimizer, self.parameters, args.lr, parse_call
        )
        shard = -(-len(self.train_x) // dist.world)  # this rank's samples per epoch
        self.steps_per_epoch = -(-shard // self.batch_size)
        self.scheduler, self.scheduler_name, self.planned = build_scheduler(
            args.schedule, self.optimizer, self.epochs, self.steps_per_epoch, parse_call
        )
        per_batch = self.scheduler_name in BATCH_SCHEDULERS
        self.batch_scheduler = self.scheduler if per_batch else None
        self.predictions = self.prediction_buffer(shard)

        # the epochs' permutations; the generator's state goes into the checkpoint
        self.shuffle = torch.Generator()
        self.shuffle.manual_seed(args.seed)
        # completed epochs, and batches done in the next one (after a mid-epoch resume)
        self.epoch, self.batch = 0, 0
        self.tally = EpochTally()
        self.best_loss, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self.history = []
        # (epoch, batch) of the checkpoint on disk, for the divergence message
        self.last_checkpoint = None
        self.tensorboard = None

    # --- setup ---

    def count_classes(self):
        """Classes of the confusion matrix (None for regression): 2 for binary labels; for
        classification, the model's output width or the data's classes, whichever is more."""
        if self.task == "binary":
            return 2
        if self.task != "classification":
            return None
        # in eval mode there is no dropout: this forward pass draws no random numbers
        self.raw_model.eval()
        with torch.no_grad():
            width = self.raw_model(self.train_x[:1]).shape[1]
        return max(int(width), int(self.splits.num_classes or 0))

    def match_output_dtype(self) -> None:
        """A model declared in float64, float16 or bfloat16 computes in that dtype: its float
        targets and the loss's class weights follow it (torch's losses want one dtype)."""
        self.raw_model.eval()
        with torch.no_grad():
            dtype = self.raw_model(self.train_x[:1]).dtype
        if not dtype.is_floating_point or dtype == torch.float32:
            return

        def follow(pair):
            if pair is None:
                return None
            x, y = pair
            return x, y.to(dtype) if y.is_floating_point() else y

        self.train_x, self.train_y = follow((self.train_x, self.train_y))
        self.val, self.test = follow(self.val), follow(self.test)
        self.loss_fn.to(dtype)

    def check_loss_fits(self) -> None:
        """The loss of one sample, before training: a --loss that does not fit the model's
        output or the targets (class weights of another number) is a message, not a traceback
        in the first batch. Like count_classes, this draws no random numbers."""
        self.raw_model.eval()
        with torch.no_grad():
            outputs = self.raw_model(self.train_x[:1])
            try:
                self.loss_fn(outputs, self.train_y[:1])
            except (RuntimeError, ValueError, IndexError) as exc:
                reason = str(exc).strip().splitlines()[0]
                raise TrainingError(
                    f"--loss: {self.loss_name} cannot take the model's output "
                    f"{list(outputs.shape)} and these targets: {reason}"
                ) from None

    def prediction_buffer(self, rows: int) -> torch.Tensor:
        """The buffer that record_predictions fills during an epoch: one row per sample."""
        dtypes = {"classification": torch.int64, "binary": torch.bool}
        dtype = dtypes.get(self.task, self.train_y.dtype)
        shape = (rows, *self.train_y.shape[1:])
        return torch.empty(shape, dtype=dtype, device=self.device)

    def wrap_distributed(self) -> None:
        """Wrap the model in DistributedDataParallel under torchrun."""
        if self.dist.active:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(
                self.raw_model, device_ids=ids
            )

    # --- the epoch ---

    def epoch_order(self) -> torch.Tensor:
        """This rank's sample order for the next epoch, on the device.

        Every rank draws the same permutation; it is padded by wrapping to a multiple of the
        world size and each rank takes every world-th index, so all run the same steps.
        """
        n, world = len(self.train_x), self.dist.world
        order = torch.randperm(n, generator=self.shuffle)
        if world > 1:
            padded = -(-n // world) * world
            order = order.repeat(-(-padded // n))[:padded][self.dist.rank :: world]
        return order.to(self.device)

    def train_epoch(self, order: torch.Tensor, epoch: int) -> int:
        """Train on the batches of `order` from self.batch on; returns the batches done."""
        total = -(-len(order) // self.batch_size)
        bar = self.open_bar(epoch, total, self.batch)
        try:
            return self.run_batches(order, epoch, self.batch, total, bar)
        finally:
            if bar is not None:
                bar.close()

    def run_batches(self, order, epoch: int, batch: int, total: int, bar) -> int:
        """The batch loop, from batch to total; a stop signal ends it after a whole batch.

        This is the hot path: nothing here waits for the device (see EpochTally) except the
        divergence check every DIVERGENCE_CHECK_EVERY batches, and the progress bar is
        redrawn at most every PROGRESS_REDRAW_SECONDS.
        """
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer
        x, y, size, task = self.train_x, self.train_y, self.batch_size, self.task
        parameters, threshold, stop = self.parameters, self.threshold, self.stop
        clip_norm, clip_value = self.args.clip_grad_norm, self.args.clip_grad_value
        batch_scheduler, distributed = self.batch_scheduler, self.dist.active
        losses, predictions = self.tally.losses, self.predictions
        next_draw = time.monotonic() + PROGRESS_REDRAW_SECONDS
        model.train()
        while batch < total:
            begin = batch * size
            index = order[begin : begin + size]
            inputs, targets = x.index_select(0, index), y.index_select(0, index)
            optimizer.zero_grad(set_to_none=True)
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
            loss.backward()
            if clip_norm is not None:
                nn.utils.clip_grad_norm_(parameters, clip_norm)
            if clip_value is not None:
                nn.utils.clip_grad_value_(parameters, clip_value)
            optimizer.step()
            if batch_scheduler is not None:
                step_schedule(batch_scheduler)
            losses.append(loss.detach())
            into = predictions[begin : begin + size]
            record_predictions(task, outputs.detach(), into, threshold)
            batch += 1
            if batch % DIVERGENCE_CHECK_EVERY == 0:
                recent = losses[-DIVERGENCE_CHECK_EVERY:]
                self.check_divergence(epoch, batch - len(recent), recent)
            if distributed:
                # the ranks must stop after the same batch: they agree every few batches
                if batch % STOP_AGREEMENT_EVERY == 0 and self.agreed_stop_signal():
                    break
            elif stop.requested:
                break
            if bar is not None and time.monotonic() >= next_draw:
                bar.update(batch)
                next_draw = time.monotonic() + PROGRESS_REDRAW_SECONDS
        return batch

    def open_bar(self, epoch: int, total: int, done: int):
        """The epoch's progress bar with --progress (on rank 0 only), else None."""
        if not self.args.progress or not self.dist.is_main:
            return None
        return open_progress(f"epoch {epoch}/{self.epochs}", total, done)

    def agreed_stop_signal(self) -> int:
        """The stop signal any rank received (0 for none); all ranks call it together."""
        signum = self.dist.max(self.stop.signal if self.stop.requested else 0)
        if signum:
            self.stop.requested, self.stop.signal = True, signum
        return signum

    def check_divergence(self, epoch: int, first_batch: int, losses: list) -> None:
        """Raise TrainingDiverged when the loss of one of these batches (numbered from
        first_batch + 1) is nan or inf, on any rank."""
        index = first_nonfinite(losses)
        batch = self.dist.max(first_batch + index + 1 if index is not None else 0)
        if not batch:
            return
        value = losses[index].item() if index is not None else math.nan
        word = "inf" if math.isinf(value) else "nan"
        raise TrainingDiverged(
            f"training loss became {word} at epoch {epoch} (batch {batch}); stopping. "
            f"{self.kept_checkpoint()}; try a lower learning rate"
        )

    def check_weights(self, epoch: int) -> None:
        """Raise TrainingDiverged when the epoch's last steps made a weight nan or inf: the
        losses, computed before each step, cannot show it, and it must not be checkpointed."""
        if all(bool(torch.isfinite(p).all()) for p in self.parameters):
            return
        raise TrainingDiverged(
            f"the weights became nan or inf at the end of epoch {epoch}; stopping. "
            f"{self.kept_checkpoint()}; try a lower learning rate"
        )

    def kept_checkpoint(self) -> str:
        """Which checkpoint a diverged run leaves, for its message."""
        if self.last_checkpoint is None:
            return "No checkpoint was written before it"
        done_epochs, done_batches = self.last_checkpoint
        point = f"epoch {done_epochs}"
        if done_batches:
            point = f"epoch {done_epochs + 1} at batch {done_batches}"
        return f"The last good checkpoint ({point}) is kept at {self.checkpoint_path}"

    def epoch_totals(self, order: torch.Tensor, done: int) -> tuple:
        """(loss sum, metric sum, rows) of the epoch's batches up to `done`, over all ranks.

        This waits for the device.
        """
        tally, size = self.tally, self.batch_size
        totals = torch.tensor(tally.carried, dtype=self.sum_dtype, device=self.device)
        if tally.losses:
            first = tally.first_batch
            begin, end = first * size, min(done * size, len(order))
            losses = torch.stack(tally.losses).to(self.sum_dtype)
            if not self.loss_is_sum:
                # a batch's loss is its mean: weigh it by the batch's rows
                rows = [min(size, len(order) - b * size) for b in range(first, done)]
                losses *= torch.tensor(rows, dtype=self.sum_dtype, device=self.device)
            totals[0] += losses.sum()
            targets = self.train_y.index_select(0, order[begin:end])
            predicted = self.predictions[begin:end]
            totals[1] += score_predictions(self.task, predicted, targets)
            totals[2] += end - begin
        return tuple(self.dist.sum(totals).tolist())

    def train_metrics(self, loss_sum: float, metric_sum: float, rows: float) -> dict:
        """The epoch's training loss and accuracy (or MSE), from epoch_totals."""
        metric = "mse" if self.task == "regression" else "accuracy"
        elements = max(rows * self.target_size, 1)
        return {"loss": loss_sum / max(rows, 1), metric: metric_sum / elements}

    # --- evaluation ---

    def evaluate(self, data: tuple, with_matrix: bool = False) -> dict:
        """Loss and metrics of the model on (x, y), without gradients, in large batches.

        Under torchrun each rank takes every world-th sample and the sums are added up.
        """
        x, y = data
        if self.dist.active:
            x = x[self.dist.rank :: self.dist.world]
            y = y[self.dist.rank :: self.dist.world]
        size, classes = max(self.batch_size, 1024), self.num_classes
        sums = torch.zeros(3, dtype=self.sum_dtype, device=self.device)
        loss_sum, squares_sum, abs_sum = sums.unbind()
        matrix = None
        if classes is not None:
            matrix = torch.zeros(
                classes, classes, dtype=torch.int64, device=self.device
            )
        self.raw_model.eval()
        with torch.no_grad():
            for start in range(0, len(x), size):
                inputs, targets = x[start : start + size], y[start : start + size]
                outputs = self.raw_model(inputs)
                weight = 1 if self.loss_is_sum else len(targets)
                loss_sum.add_(self.loss_fn(outputs, targets), alpha=weight)
                if matrix is not None:
                    predicted = self.predicted_classes(outputs)
                    actual = self.target_classes(targets)
                    matrix += confusion_counts(predicted, actual, classes)
                else:
                    squares_sum.add_((outputs - targets).square().sum())
                    abs_sum.add_((outputs - targets).abs().sum())
        rows = self.dist.sum(torch.tensor(len(x), device=self.device)).item()
        loss_sum, squares_sum, abs_sum = self.dist.sum(sums).tolist()
        loss = loss_sum / max(rows, 1)
        if matrix is None:
            elements = max(rows * self.target_size, 1)
            return {
                "loss": loss,
                "mse": squares_sum / elements,
                "mae": abs_sum / elements,
            }
        matrix = self.dist.sum(matrix)
        metrics = {"loss": loss, **matrix_metrics(matrix)}
        if with_matrix:
            metrics["confusion_matrix"] = matrix.cpu().tolist()
        return metrics

    def predicted_classes(self, outputs: torch.Tensor) -> torch.Tensor:
        """Classes the model predicts: argmax over dim 1, or the threshold for binary labels."""
        if self.task == "binary":
            return (outputs > self.threshold).long()
        return outputs.argmax(1)

    def target_classes(self, targets: torch.Tensor) -> torch.Tensor:
        """Class indices of the targets (binary targets are 0.0 / 1.0)."""
        return (targets > 0.5).long() if self.task == "binary" else targets

    # --- epochs and their end ---

    def fit(self) -> str:
        """Train until the last epoch, early stopping or a stop signal; returns which."""
        while self.epoch < self.epochs:
            patience = self.args.early_stopping
            if patience and self.bad_epochs >= patience:
                return "early_stopping"
            epoch = self.epoch + 1
            epoch_start_state = self.shuffle.get_state()
            order = self.epoch_order()
            started = time.perf_counter()
            done = self.train_epoch(order, epoch)
            totals = self.epoch_totals(order, done)
            self.tally.seconds += time.perf_counter() - started
            self.check_divergence(epoch, self.tally.first_batch, self.tally.losses)
            self.check_weights(epoch)
            if done < -(-len(order) // self.batch_size):
                # a stop signal in the middle of the epoch: save where it got to
                self.batch = done
                self.save_checkpoint(epoch_start_state, totals)
                return "interrupted"
            self.end_epoch(epoch, self.train_metrics(*totals))
            if self.agreed_stop_signal():
                return "interrupted"
        return "completed"

    def end_epoch(self, epoch: int, train: dict) -> None:
        """Validate, record and print the epoch, keep the best model, step the schedule, and
        save a checkpoint."""
        started = time.perf_counter()
        val = self.evaluate(self.val) if self.val is not None else None
        eval_seconds = time.perf_counter() - started
        record = {"epoch": epoch}
        record.update({f"train_{key}": value for key, value in train.items()})
        record.update({f"val_{key}": value for key, value in (val or {}).items()})
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        record["train_seconds"] = self.tally.seconds
        record["eval_seconds"] = eval_seconds
        record = {key: finite_or_none(value) for key, value in record.items()}
        self.history.append(record)
        if self.dist.is_main:
            self.print_epoch(record, val is not None)
            self.log_tensorboard(record)
        self.dist.on_main(self.write_metrics)
        monitored = (val or train)["loss"]
        if monitored < self.best_loss - (self.args.min_delta or 0.0):
            self.best_loss, self.best_epoch, self.bad_epochs = monitored, epoch, 0
            self.dist.on_main(lambda: self.save_weights("best.pt"))
        else:
            self.bad_epochs += 1
        if self.scheduler_name == "ReduceLROnPlateau":
            step_schedule(self.scheduler, monitored)
        elif self.scheduler is not None and self.batch_scheduler is None:
            step_schedule(self.scheduler)
        self.epoch, self.batch, self.tally = epoch, 0, EpochTally()
        self.save_checkpoint(self.shuffle.get_state())

    def print_epoch(self, record: dict, has_val: bool) -> None:
        """The epoch's line on the console: losses, the --metrics of the validation split
        (of the training split without one, which has only accuracy or MSE), lr, seconds."""
        split = "val" if has_val else "train"
        parts = [f"epoch {record['epoch']}/{self.epochs}"]
        parts.append(metric_text("train loss", record["train_loss"]))
        if has_val:
            parts.append(metric_text("val loss", record["val_loss"]))
        for name in self.shown_metrics:
            key = f"{split}_{name}"
            if key in record:
                parts.append(metric_text(f"{split} {name}", record[key]))
        parts.append(f"lr {record['lr']:.3g}")
        parts.append(f"{record['train_seconds'] + record['eval_seconds']:.1f}s")
        print("  ".join(parts), flush=True)

    def log_tensorboard(self, record: dict) -> None:
        """The epoch's losses, metrics and learning rate in TensorBoard, when installed."""
        if self.tensorboard is None:
            return
        for key, value in record.items():
            if key == "epoch" or key.endswith("_seconds") or value is None:
                continue
            split, _, name = key.partition("_")
            tag = f"{name}/{split}" if split in ("train", "val") else key
            self.tensorboard.add_scalar(tag, value, record["epoch"])
        self.tensorboard.flush()

    def write_metrics(self) -> None:
        """Rewrite the metrics file from the history: a resumed run's matches its checkpoint."""
        file_format = "csv" if self.args.metrics_format == "csv" else "jsonl"
        text = metrics_file_text(self.history, file_format)
        # no fsync: the checkpoint holds the history, and a resumed run rewrites this file
        path = self.out_path(f"metrics.{file_format}")
        write_atomically(path, text.encode(), durable=False)

    def save_weights(self, name: str) -> None:
        """The model's state_dict into out_dir/name."""
        save_torch_file(self.raw_model.state_dict(), self.out_path(name))

    def out_path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    # --- checkpoints ---

    def save_checkpoint(self, shuffle_state, totals: tuple = (0.0, 0.0, 0.0)) -> None:
        """Write checkpoint.pt: everything needed to continue from exactly this point.

        shuffle_state is the permutation generator's state at the start of the epoch in
        progress (or of the next one, at an epoch's end), so that a resumed run draws the same
        order and skips self.batch batches. totals are the epoch's training totals so far,
        over all ranks; rank 0 takes them back on resume. Every rank's RNG state is kept.
        """
        scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        loss_sum, metric_sum, rows = totals
        running = {"loss": loss_sum, "metric": metric_sum, "rows": rows}
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "optimizer_name": self.optimizer_name,
            "scheduler": scheduler,
            "scheduler_name": self.scheduler_name,
            "epoch": self.epoch,
            "batch": self.batch,
            "batch_size": self.batch_size,
            "world_size": self.dist.world,
            "shuffle_state": shuffle_state,
            "rng_states": self.dist.gather(rng_state(self.device)),
            "running": {**running, "seconds": self.tally.seconds},
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "settings": trajectory_settings(self.args),
            "model_fingerprint": model_fingerprint(self.raw_model),
            "samples": self.sample_counts(),
        }
        self.dist.on_main(lambda: save_torch_file(state, self.checkpoint_path))
        self.last_checkpoint = (self.epoch, self.batch)

    def sample_counts(self) -> list:
        """Samples in the train, validation and test splits (None for a split left out)."""
        splits = ((self.train_x,), self.val, self.test)
        return [None if data is None else len(data[0]) for data in splits]

    def load_checkpoint(self, state: dict) -> None:
        """Continue from checkpoint.pt (--resume): weights, optimizer, schedule, position in
        the epoch, random states and history; the settings were reconciled by resume_settings."""
        path = self.checkpoint_path
        if state["model_fingerprint"] != model_fingerprint(self.raw_model):
            raise TrainingError(
                f"--resume: {path} holds the weights of a different model; "
                "run without --resume, or with another --out-dir"
            )
        counts = self.sample_counts()
        if state["samples"] != counts:
            then = "/".join(str(n or 0) for n in state["samples"])
            now = "/".join(str(n or 0) for n in counts)
            raise TrainingError(
                f"--resume: the data has changed: the run had {then} train/val/test "
                f"samples, the data now gives {now}; run without --resume"
            )
        batching = (state["batch_size"], state["world_size"])
        if state["batch"] and batching != (self.batch_size, self.dist.world):
            raise TrainingError(
                f"--resume: {path} stopped mid-epoch with batch size {batching[0]} on "
                f"{batching[1]} process(es); resume with the same number of processes"
            )
        try:
            self.restore_state(state)
        except (RuntimeError, TypeError, ValueError, KeyError, IndexError) as exc:
            raise TrainingError(
                f"--resume: {path} is damaged ({type(exc).__name__}: {exc}); "
                "run without --resume"
            ) from None

    def restore_state(self, state: dict) -> None:
        """Load a checked checkpoint's contents into this run."""
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            extended = state["settings"]["epochs"] != self.epochs
            if extended and self.planned:
                replan_schedule(self.scheduler, state["scheduler"], self.planned)
            else:
                self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batch = state["epoch"], state["batch"]
        self.best_loss = state["best_loss"]
        self.best_epoch, self.bad_epochs = state["best_epoch"], state["bad_epochs"]
        self.history = list(state["history"])
        self.shuffle.set_state(state["shuffle_state"])
        running = state["running"]
        carried = (0.0, 0.0, 0.0)
        if self.dist.is_main:
            # the totals over all ranks go to rank 0; the others start from zero
            carried = (running["loss"], running["metric"], running["rows"])
        self.tally = EpochTally(self.batch, carried, running["seconds"])
        if self.dist.rank < len(state["rng_states"]):
            set_rng_state(state["rng_states"][self.dist.rank], self.device)
        self.last_checkpoint = (self.epoch, self.batch)

    # --- the whole run ---

    def train(self) -> int:
        """Resume or start, train, then evaluate and write the results; returns the exit code."""
        self.dist.on_main(lambda: make_out_dir(self.out_dir))
        if self.dist.is_main:
            remove_stale_temporaries(self.out_dir)
        if self.resumed is not None:
            self.load_checkpoint(self.resumed)
        self.wrap_distributed()
        if self.dist.is_main:
            log_dir = self.out_path("tensorboard")
            self.tensorboard = open_tensorboard(log_dir, self.epoch + 1)
            print(self.start_line(), flush=True)
        try:
            self.dist.on_main(self.write_metrics)
            reason = self.fit()
            if self.history and getattr(self.args, "plot", False):
                # off by default: matplotlib alone costs more than a small run
                curves = self.out_path("curves.png")
                self.dist.on_main(lambda: plot_curves(self.history, curves, self.task))
            if reason == "interrupted":
                return self.report_interrupt()
            self.finish(reason)
            self.check_ranks_agree()
            return 0
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()

    def start_line(self) -> str:
        """What is trained on what, printed once at the start."""
        sizes = [f"{len(self.train_x)} train"]
        for name, data in (("val", self.val), ("test", self.test)):
            if data is not None:
                sizes.append(f"{len(data[0])} {name}")
        where = str(self.device)
        if self.dist.active:
            where += f" x {self.dist.world} processes"
        line = f"training on {self.splits.source}: {', '.join(sizes)} samples"
        line += f" ({self.task}, {where})"
        if self.device.type == "cpu":
            threads = torch.get_num_threads()
            line += f", {threads} CPU thread{'s' if threads != 1 else ''}"
            line += " each" if self.dist.active else ""
        if self.args.resume:
            line += f"; resuming after epoch {self.epoch}"
            if self.batch:
                line += f", batch {self.batch}"
        return line

    def report_interrupt(self) -> int:
        """Say where training stopped and how to continue; returns 128 + the signal number."""
        signum = self.stop.signal or signal.SIGINT
        if self.dist.is_main:
            where = f"the end of epoch {self.epoch}"
            if self.batch:
                where = f"epoch {self.epoch + 1}, batch {self.batch}"
            print(
                f"stopped by {signal.Signals(signum).name} at {where}; checkpoint saved "
                f"to {self.checkpoint_path}; run again with --resume to continue",
                file=sys.stderr,
                flush=True,
            )
        return 128 + int(signum)

    def finish(self, reason: str) -> None:
        """Evaluate the final model on the test split (else val, else train), write model.pt
        and results.json, and print the summary."""
        if self.test is not None:
            name, data = "test", self.test
        elif self.val is not None:
            name, data = "val", self.val
        else:
            name, data = "train", (self.train_x, self.train_y)
        metrics = self.evaluate(data, with_matrix=True)
        matrix = metrics.pop("confusion_matrix", None)
        results = {
            "split": name,
            "samples": len(data[0]),
            "task": self.task,
            "source": self.splits.source,
            "metrics": {key: finite_or_none(value) for key, value in metrics.items()},
            "epochs": self.epoch,
            "stopped": reason,
            "best_epoch": self.best_epoch,
            "best_loss": finite_or_none(self.best_loss),
        }
        if matrix is not None:
            results["confusion_matrix"] = matrix
        self.dist.on_main(lambda: self.save_weights("model.pt"))
        state = self.raw_model.state_dict()
        wrote = self.dist.on_main(
            lambda: save_safetensors(state, self.out_path("model.safetensors"))
        )
        self.safetensors_written = bool(wrote)
        usage = json.dumps(self.model_info(), indent=2) + "\n"
        self.dist.on_main(
            lambda: write_atomically(self.out_path("model.json"), usage.encode())
        )
        text = results_json_text(results).encode()
        self.dist.on_main(lambda: write_atomically(self.out_path("results.json"), text))
        if self.dist.is_main:
            self.print_summary(results, matrix)

    def model_info(self) -> dict:
        """model.json, beside the weights: what using the trained model needs. The input's
        shape and dtype, the factor raw inputs were scaled by, the CSV's feature columns in
        order and its target, and the class names in the order of the output units."""
        info = {"weights": "model.pt", "task": self.task}
        info.update(getattr(self.splits, "info", None) or {})
        if self.num_classes is not None and self.task == "classification":
            info["num_classes"] = self.num_classes
        return info

    def print_summary(self, results: dict, matrix) -> None:
        """The final metrics and, for up to MAX_PRINTED_CLASSES classes, the confusion matrix."""
        if results["stopped"] == "early_stopping":
            print(
                f"stopped early after epoch {self.epoch}: "
                f"no improvement for {self.bad_epochs} epochs"
            )
        else:
            print(f"finished {self.epoch} epochs")
        metrics = results["metrics"].items()
        shown = "  ".join(metric_text(key, value) for key, value in metrics)
        print(f"{results['split']} ({results['samples']} samples): {shown}")
        if matrix is not None and len(matrix) <= MAX_PRINTED_CLASSES:
            print("confusion matrix (rows: true class, columns: predicted):")
            print(matrix_text(matrix))
        best = f" (best: epoch {self.best_epoch})" if self.best_epoch else ""
        weights = (
            "model.pt, model.safetensors" if self.safetensors_written else "model.pt"
        )
        files = f"{weights}, model.json, best.pt{best}, checkpoint.pt, results.json"
        print(f"saved to {self.out_dir}: {files}", flush=True)

    def check_ranks_agree(self) -> None:
        """Under torchrun, compare a checksum of every rank's weights: they must be equal."""
        if not self.dist.active:
            return
        parameters = self.raw_model.parameters()
        flat = torch.cat([p.detach().reshape(-1).double() for p in parameters])
        positions = torch.arange(
            1, len(flat) + 1, dtype=torch.float64, device=flat.device
        )
        checksum = torch.stack([flat.sum(), (flat * positions).sum(), flat.abs().sum()])
        gathered = [torch.empty_like(checksum) for _ in range(self.dist.world)]
        torch.distributed.all_gather(gathered, checksum)
        if not all(torch.equal(other, gathered[0]) for other in gathered):
            raise TrainingError(
                f"ranks disagree: the {self.dist.world} processes ended with "
                "different weights"
            )
        if self.dist.is_main:
            print(f"ranks agree: {self.dist.world} processes have identical weights")


def trajectory_settings(args) -> dict:
    """The flags that shape the run (TRAJECTORY_FLAGS), as a checkpoint keeps them."""
    return {key: plain_setting(getattr(args, key, None)) for key in TRAJECTORY_FLAGS}


def plain_setting(value):
    """A flag's value in a comparable form: lists for tuples."""
    return list(value) if isinstance(value, tuple) else value


def setting_text(value) -> str:
    """A flag's value as it would be written on the command line."""
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def model_fingerprint(model: nn.Module) -> str:
    """A digest of the model's layers with their settings, and its parameters' names and shapes."""
    parts = [repr(model)]
    for key, value in model.state_dict().items():
        parts.append(f"{key} {tuple(value.shape)} {value.dtype}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def read_checkpoint(path: str) -> dict:
    """checkpoint.pt for --resume, its structure checked; anything else is a TrainingError."""
    if not os.path.exists(path):
        raise TrainingError(
            f"--resume: there is no checkpoint at {path}; "
            "run without --resume to start training"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        message = f"--resume: cannot read {path}: {exc.strerror}"
        raise TrainingError(message) from None
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise TrainingError(
            f"--resume: cannot read {path}: it is damaged or not a checkpoint of this "
            f"training script ({type(exc).__name__}); run without --resume"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        older = isinstance(state, dict) and str(state.get("format")).startswith(
            "nndsl-train-checkpoint-"
        )
        why = (
            "another version of nndsl's training scripts" if older else "something else"
        )
        raise TrainingError(
            f"--resume: {path} is not a checkpoint of this training script (it was "
            f"written by {why}); run without --resume"
        )
    problem = checkpoint_problem(state)
    if problem:
        raise TrainingError(
            f"--resume: {path} is damaged ({problem}); run without --resume"
        )
    return state


def checkpoint_problem(state: dict):
    """What is wrong with a checkpoint's contents, or None: missing keys, wrong types,
    impossible counts."""
    for key, kind in CHECKPOINT_FIELDS.items():
        if key not in state:
            return f"it has no {key!r}"
        value = state[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            return f"its {key!r} is a {type(value).__name__}"
    for key in ("epoch", "batch", "best_epoch", "bad_epochs"):
        if state[key] < 0:
            return f"its {key!r} is negative"
    if state["batch_size"] < 1 or state["world_size"] < 1:
        return "its batch size or number of processes is below 1"
    if not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        return "its weights are not all tensors"
    running = state["running"]
    numbers = ("loss", "metric", "rows", "seconds")
    if not all(isinstance(running.get(key), (int, float)) for key in numbers):
        return "its running totals are incomplete"
    rngs = state["rng_states"]
    if not all(
        isinstance(r, dict) and isinstance(r.get("torch"), torch.Tensor) for r in rngs
    ):
        return "its random states are incomplete"
    if not all(isinstance(record, dict) for record in state["history"]):
        return "its history is not a list of epochs"
    missing = [key for key in TRAJECTORY_FLAGS if key not in state["settings"]]
    if missing:
        return f"its settings lack {', '.join(missing)}"
    epochs = state["settings"]["epochs"]
    if (
        not isinstance(epochs, int)
        or isinstance(epochs, bool)
        or epochs < state["epoch"]
    ):
        return "its number of epochs is not a count of at least the epochs done"
    if len(state["samples"]) != 3:
        return "its sample counts are incomplete"
    return None


def resume_settings(args, state: dict, path: str) -> None:
    """Make args continue the checkpoint's run.

    The flags that shape the run (TRAJECTORY_FLAGS) and are not written on the command line
    take the checkpoint's values; one written with another value is refused, every such flag
    listed at once. With --extend, a larger --epochs is the intended change: the run goes on
    to the new number of epochs, with a schedule planned over them (see replan_schedule).
    """
    saved = state["settings"]
    given = getattr(args, "given", None)  # None: every flag counts as written
    extend = getattr(args, "extend", False)
    changes = []
    for key, flag in TRAJECTORY_FLAGS.items():
        old, new = saved[key], plain_setting(getattr(args, key, None))
        if given is not None and key not in given:
            setattr(args, key, old)
        elif old != new and not (key == "epochs" and extend):
            changes.append(f"{flag} {setting_text(old)} -> {setting_text(new)}")
    if changes:
        more = any(c.startswith("--epochs") for c in changes)
        hint = "; to train it on to more epochs, add --extend" if more else ""
        raise TrainingError(
            f"--resume: {path} is a run with other settings: {'; '.join(changes)}. "
            f"To continue it as it was, drop these flags{hint}; to start a new run, "
            "leave out --resume or give another --out-dir"
        )
    if extend and args.epochs <= saved["epochs"]:
        raise TrainingError(
            f"--extend: give --epochs above the run's {saved['epochs']} to train it on"
        )


def check_metrics(names, task: str) -> tuple:
    """The metrics the epoch lines show (--metrics); accuracy, or MSE, when not given."""
    if not names:
        return TASK_METRICS[task][:1]
    known = TASK_METRICS[task]
    for name in names:
        if name not in known:
            raise TrainingError(
                f"--metrics: {name!r} is not a {task} metric; use {', '.join(known)}"
            )
    return tuple(names)


def on_device(pair, device: torch.device):
    """An (x, y) split moved to the device, or None."""
    return None if pair is None else tuple(t.to(device) for t in pair)


def check_counts(args) -> tuple:
    """--epochs and --batch-size, which must be usable (and --early-stopping, if given)."""
    if args.epochs < 0:
        raise TrainingError(f"--epochs must be 0 or more, not {args.epochs}")
    if args.batch_size < 1:
        raise TrainingError(f"--batch-size must be at least 1, not {args.batch_size}")
    if not -(2**63) <= args.seed < 2**64:
        raise TrainingError(f"--seed must be from -2**63 to 2**64 - 1, not {args.seed}")
    if args.early_stopping is not None and args.early_stopping < 1:
        raise TrainingError(
            f"--early-stopping must be at least 1 epoch, not {args.early_stopping}"
        )
    return args.epochs, args.batch_size


def make_out_dir(path: str) -> None:
    """Create the output directory."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"cannot create {path}: {exc.strerror or exc}") from None


def load_splits(load_data, args, dist: DistContext):
    """The data; under torchrun rank 0 loads first (it may download), then the others."""
    splits = dist.on_main(lambda: load_data(args))
    return splits if dist.is_main else load_data(args)


def run(args, model_class, load_data, parse_call) -> int:
    """Train model_class() on load_data(args) as args say; returns the exit code.

    0 done, 1 the training loss diverged, 2 a problem with the options, the data or the
    output files (printed as "error: ..."), 130 / 143 stopped by SIGINT / SIGTERM.
    """
    stop = StopRequest()
    previous_handlers = install_stop_handlers(stop)
    saved_flags = deterministic_flags()
    saved_threads = torch.get_num_threads()
    threads = None
    dist = None
    try:
        threads = choose_threads(getattr(args, "threads", None))
        if threads is not None:
            torch.set_num_threads(threads)
        dist, device = start_distributed(args.device)
        resumed = None
        if args.resume:
            # before the data is loaded: a bare --resume takes the run's data, split and seed
            resumed = read_checkpoint(os.path.join(args.out_dir, "checkpoint.pt"))
            resume_settings(args, resumed, os.path.join(args.out_dir, "checkpoint.pt"))
        elif getattr(args, "extend", False):
            raise TrainingError(
                "--extend trains a run on to more epochs: use it with --resume"
            )
        check_counts(args)
        seed_everything(args.seed, args.deterministic)
        splits = load_splits(load_data, args, dist)
        if dist.rank:
            # other dropout masks on the other ranks (DDP gives them rank 0's weights)
            torch.manual_seed(args.seed + dist.rank)
        trainer = Trainer(
            args, model_class, splits, parse_call, device, dist, stop, resumed
        )
        code = trainer.train()
        if dist is not None and dist.active:
            # every rank finishes its last collective before any tears the group down: a rank that
            # left early aborts a peer still inside gloo ("terminate called without an active
            # exception"); a rank that failed instead is stopped by torchrun, not awaited here
            torch.distributed.barrier()
        return code
    except TrainingDiverged as exc:
        if dist is None or dist.is_main:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted again: stopped without saving", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_user_error(exc):
            raise
        # the options and the data are the same on every rank: rank 0 speaks for all
        if dist is None or dist.is_main:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        restore_signal_handlers(previous_handlers)
        restore_deterministic_flags(saved_flags)
        if threads is not None:
            torch.set_num_threads(saved_threads)
        stop_distributed(dist)
