"""The ``train`` section: its settings, the losses, optimizers, schedules, data sources and weight
initialisations it may name (with torch's names, parameters and defaults), and the checks that pair
a loss with the model's output and a data source with the model's input."""

from __future__ import annotations

import math
import re
from types import MappingProxyType
from typing import Any, NamedTuple

from nndsl import ast
from nndsl.check.binding import Binding
from nndsl.check.common import Abort, close_matches
from nndsl.check.context import Context
from nndsl.check.values import kind_name
from nndsl.diagnostics import Label, Severity, Span
from nndsl.ir import LayerNode, ModelIR, TrainCall, TrainConfig, layers_of
from nndsl.layers.base import (
    BOOL,
    INT,
    NONNEG_INT,
    POS_INT,
    PROB,
    ArgValueError,
    Kind,
    Param,
    WrongType,
    as_float,
    choice,
    optional,
)
from nndsl.shapes import INTEGER_DTYPES
from nndsl.train_catalogue import (
    DATA_LOADERS,
    INIT_ALIASES,
    INIT_NAMES,
    LOSS_TASKS,
    TASK_METRICS,
    TRAIN_OPTIMIZERS,
    TRAIN_SCHEDULERS,
)

# ---------------------------------------------------------------- value kinds

#: settings people write in a train section that are arguments of the optimizer -> torch's name
_OPTIMIZER_ARGUMENTS = {
    "lr": "lr",
    "learning_rate": "lr",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "betas": "betas",
}


def _number(what: str, low: float | None = None, high: float | None = None, open_low=False, open_high=False) -> Kind:
    """A finite number in [low, high] (an end left open when asked): torch refuses the rest, at
    run time, or trains on nan."""

    def convert(value):
        value = as_float(value)
        if not math.isfinite(value):
            raise ArgValueError(f"must be a finite number, got {value}")
        below = low is not None and (value < low or (open_low and value == low))
        above = high is not None and (value > high or (open_high and value == high))
        if below or above:
            raise ArgValueError(f"must be {what.removeprefix('a ').removeprefix('an ')}, got {value:g}")
        return value

    return Kind(what, convert)


POS_FLOAT = _number("a positive number", 0.0, open_low=True)
NONNEG_FLOAT = _number("a non-negative number", 0.0)
FINITE = _number("a number")
#: torch: Adam's betas in [0, 1), ReduceLROnPlateau's factor below 1, LinearLR's factors in [0, 1]
BETA = _number("a number from 0 up to (not including) 1", 0.0, 1.0, open_high=True)
FACTOR = _number("a number between 0 and 1 (both excluded)", 0.0, 1.0, open_low=True, open_high=True)
START_FACTOR = _number("a number above 0 and at most 1", 0.0, 1.0, open_low=True)
END_FACTOR = _number("a number between 0 and 1", 0.0, 1.0)


def _string(value):
    if not isinstance(value, str):
        raise WrongType
    if not value:
        raise ArgValueError("must not be empty")
    return value


STRING = Kind("a string", _string)

#: torch's device strings that training supports (checked here without importing torch)
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:(0|[1-9][0-9]{0,3}))?")


def _device(value):
    value = _string(value)
    if not _DEVICE.fullmatch(value):
        lower = value.lower()
        hint = "cuda" if lower in ("gpu", "nvidia") or lower.startswith("cuda") else None
        hint = lower if lower != value and _DEVICE.fullmatch(lower) else hint
        raise ArgValueError(
            f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}",
            help=f'did you mean "{hint}"?' if hint else "cuda:N names the N-th GPU, counting from 0",
        )
    return value


DEVICE = Kind("a device such as auto, cpu, cuda, cuda:1 or mps", _device)


def _list_of(item: Kind, what: str, length: int | None = None, minimum: int = 1) -> Kind:
    def convert(value):
        if not isinstance(value, tuple):
            raise WrongType
        if length is not None and len(value) != length:
            raise ArgValueError(f"must have {length} values, got {len(value)}")
        if len(value) < minimum:
            raise ArgValueError("must not be empty")
        return tuple(item.convert(v) for v in value)

    return Kind(what, convert)


WEIGHTS = _list_of(NONNEG_FLOAT, "a list of non-negative numbers")
MILESTONES = _list_of(POS_INT, "a list of positive integers")
NAMES = _list_of(STRING, "a list of strings")
BETAS = _list_of(BETA, "a pair of numbers between 0 and 1, such as (0.9, 0.999)", length=2)
REDUCTION = choice("mean", "sum")  # 'none' gives a loss per sample, which cannot be backpropagated


def _split(value):
    if not isinstance(value, tuple):
        raise WrongType
    if not 1 <= len(value) <= 3:
        raise ArgValueError(f"must have 1 to 3 fractions (train, validation, test), got {len(value)}")
    fractions = tuple(NONNEG_FLOAT.convert(v) for v in value)
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ArgValueError(f"fractions must add up to 1, got {sum(fractions):g}")
    if fractions[0] == 0:
        raise ArgValueError("the training fraction must not be 0")
    return fractions


SPLIT = Kind("a list of 1 to 3 fractions adding up to 1, such as [0.6, 0.2, 0.2]", _split)


# ---------------------------------------------------------------- what a section may name


class Option(NamedTuple):
    """One loss, optimizer, schedule, data source or initialisation: its parameters as in torch."""

    name: str
    params: tuple[Param, ...]
    doc: str
    #: positional parameters in torch's order (the rest are keyword-only here)
    positional: tuple[str, ...] | None = None
    task: str | None = None  # losses: "classification", "binary" or "regression"

    def signature(self) -> str:
        parts = [p.name if p.required else f"{p.name}={p.default!r}" for p in self.params]
        return f"{self.name}({', '.join(parts)})"

    @property
    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params if not p.required}


def _options(names, *options: Option) -> dict[str, Option]:
    """The catalogue's options (``nndsl.train_catalogue``), in its order, each with its parameters
    here and, for a loss, the catalogue's task; an option the catalogue lacks, or one it names
    without parameters here, is a mistake in nndsl itself."""
    table = {o.name: o for o in options}
    if set(table) != set(names):
        raise AssertionError(f"the training catalogue and the checker differ: {set(table) ^ set(names)}")
    return {name: table[name]._replace(task=LOSS_TASKS.get(name)) for name in names}


_WEIGHT = Param("weight", optional(WEIGHTS), None)
LOSSES = _options(
    LOSS_TASKS,
    Option(
        "CrossEntropyLoss",
        (
            _WEIGHT,
            Param("ignore_index", INT, -100),
            Param("reduction", REDUCTION, "mean"),
            Param("label_smoothing", PROB, 0.0),
        ),
        "classification from logits [N, C] and class indices",
        ("weight",),
    ),
    Option(
        "NLLLoss",
        (_WEIGHT, Param("ignore_index", INT, -100), Param("reduction", REDUCTION, "mean")),
        "classification from log-probabilities (after LogSoftmax)",
        ("weight",),
    ),
    Option(
        "BCEWithLogitsLoss",
        (_WEIGHT, Param("reduction", REDUCTION, "mean"), Param("pos_weight", optional(WEIGHTS), None)),
        "binary or multi-label classification from logits",
        ("weight",),
    ),
    Option(
        "BCELoss",
        (_WEIGHT, Param("reduction", REDUCTION, "mean")),
        "binary classification from probabilities (after Sigmoid)",
        ("weight",),
    ),
    Option("MSELoss", (Param("reduction", REDUCTION, "mean"),), "regression: mean squared error", ()),
    Option("L1Loss", (Param("reduction", REDUCTION, "mean"),), "regression: mean absolute error", ()),
    Option(
        "SmoothL1Loss",
        (Param("reduction", REDUCTION, "mean"), Param("beta", NONNEG_FLOAT, 1.0)),
        "regression: L1 with a quadratic zone",
        (),
    ),
    Option(
        "HuberLoss",
        (Param("reduction", REDUCTION, "mean"), Param("delta", POS_FLOAT, 1.0)),
        "regression: Huber loss",
        (),
    ),
)

_LR = Param("lr", NONNEG_FLOAT, 0.001)
_DECAY = Param("weight_decay", NONNEG_FLOAT, 0.0)
_EPS = Param("eps", NONNEG_FLOAT, 1e-08)
_BETAS = Param("betas", BETAS, (0.9, 0.999))
OPTIMIZERS = _options(
    TRAIN_OPTIMIZERS,
    Option(
        "SGD",
        (
            _LR,
            Param("momentum", NONNEG_FLOAT, 0.0),
            Param("dampening", NONNEG_FLOAT, 0.0),
            _DECAY,
            Param("nesterov", BOOL, False),
        ),
        "stochastic gradient descent, with momentum",
    ),
    Option("Adam", (_LR, _BETAS, _EPS, _DECAY, Param("amsgrad", BOOL, False)), "Adam"),
    Option(
        "AdamW",
        (_LR, _BETAS, _EPS, Param("weight_decay", NONNEG_FLOAT, 0.01), Param("amsgrad", BOOL, False)),
        "Adam with decoupled weight decay",
    ),
    Option(
        "RMSprop",
        (
            Param("lr", NONNEG_FLOAT, 0.01),
            Param("alpha", NONNEG_FLOAT, 0.99),
            _EPS,
            _DECAY,
            Param("momentum", NONNEG_FLOAT, 0.0),
            Param("centered", BOOL, False),
        ),
        "RMSprop",
    ),
    Option(
        "Adagrad",
        (
            Param("lr", NONNEG_FLOAT, 0.01),
            Param("lr_decay", NONNEG_FLOAT, 0.0),
            _DECAY,
            Param("initial_accumulator_value", NONNEG_FLOAT, 0.0),
            Param("eps", NONNEG_FLOAT, 1e-10),
        ),
        "Adagrad",
    ),
    Option(
        "Adadelta",
        (Param("lr", NONNEG_FLOAT, 1.0), Param("rho", PROB, 0.9), Param("eps", NONNEG_FLOAT, 1e-06), _DECAY),
        "Adadelta",
    ),
    Option("Adamax", (Param("lr", NONNEG_FLOAT, 0.002), _BETAS, _EPS, _DECAY), "Adamax (Adam with the infinity norm)"),
    Option(
        "NAdam",
        (
            Param("lr", NONNEG_FLOAT, 0.002),
            _BETAS,
            _EPS,
            _DECAY,
            Param("momentum_decay", NONNEG_FLOAT, 0.004),
            Param("decoupled_weight_decay", BOOL, False),
        ),
        "Adam with Nesterov momentum",
    ),
    Option(
        "RAdam",
        (_LR, _BETAS, _EPS, _DECAY, Param("decoupled_weight_decay", BOOL, False)),
        "rectified Adam",
    ),
)

_GAMMA = Param("gamma", POS_FLOAT, 0.1)
SCHEDULES = _options(
    TRAIN_SCHEDULERS,
    Option("StepLR", (Param("step_size", POS_INT), _GAMMA), "multiply the rate by gamma every step_size epochs"),
    Option("MultiStepLR", (Param("milestones", MILESTONES), _GAMMA), "multiply the rate by gamma at each milestone"),
    Option("ExponentialLR", (Param("gamma", POS_FLOAT),), "multiply the rate by gamma every epoch"),
    Option(
        "CosineAnnealingLR",
        (Param("T_max", optional(POS_INT), None), Param("eta_min", NONNEG_FLOAT, 0.0)),
        "cosine decay over T_max epochs (default: all of them)",
    ),
    Option(
        "ReduceLROnPlateau",
        (
            Param("mode", choice("min"), "min"),
            Param("factor", FACTOR, 0.1),
            Param("patience", NONNEG_INT, 10),
            Param("threshold", NONNEG_FLOAT, 0.0001),
            Param("min_lr", NONNEG_FLOAT, 0.0),
        ),
        "divide the rate when the validation loss stops improving",
    ),
    Option(
        "OneCycleLR",
        (
            Param("max_lr", POS_FLOAT),
            Param("pct_start", PROB, 0.3),
            Param("anneal_strategy", choice("cos", "linear"), "cos"),
            Param("div_factor", POS_FLOAT, 25.0),
            Param("final_div_factor", POS_FLOAT, 10000.0),
            Param("cycle_momentum", BOOL, True),
        ),
        "the one-cycle policy, stepped every batch over the whole run",
    ),
    Option(
        "LinearLR",
        (
            Param("start_factor", START_FACTOR, 1 / 3),
            Param("end_factor", END_FACTOR, 1.0),
            Param("total_iters", POS_INT, 5),
        ),
        "a linear warm-up or decay of the rate",
    ),
    Option(
        "ConstantLR",
        (Param("factor", END_FACTOR, 1 / 3), Param("total_iters", NONNEG_INT, 5)),
        "the rate times factor for the first total_iters epochs",
    ),
    Option(
        "PolynomialLR",
        (Param("total_iters", NONNEG_INT, 5), Param("power", NONNEG_FLOAT, 1.0)),
        "a polynomial decay of the rate to 0 over total_iters epochs",
    ),
    Option(
        "CosineAnnealingWarmRestarts",
        (Param("T_0", POS_INT), Param("T_mult", POS_INT, 1), Param("eta_min", NONNEG_FLOAT, 0.0)),
        "cosine decay restarted every T_0 epochs (each period T_mult times the last)",
    ),
    Option(
        "CyclicLR",
        (
            Param("base_lr", NONNEG_FLOAT),
            Param("max_lr", NONNEG_FLOAT),
            Param("step_size_up", POS_INT, 2000),
            Param("step_size_down", optional(POS_INT), None),
            Param("mode", choice("triangular", "triangular2", "exp_range"), "triangular"),
            Param("gamma", POS_FLOAT, 1.0),
            Param("scale_mode", choice("cycle", "iterations"), "cycle"),
            Param("cycle_momentum", BOOL, True),
            Param("base_momentum", NONNEG_FLOAT, 0.8),
            Param("max_momentum", NONNEG_FLOAT, 0.9),
        ),
        "the rate cycling between base_lr and max_lr, stepped every batch",
    ),
)

_NONLINEARITY = choice("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_KAIMING = (
    Param("a", NONNEG_FLOAT, 0.0),
    Param("mode", choice("fan_in", "fan_out"), "fan_in"),
    Param("nonlinearity", _NONLINEARITY, "leaky_relu"),
)
_GAIN = (Param("gain", POS_FLOAT, 1.0),)
INITS = _options(
    INIT_NAMES,
    Option("kaiming_normal", _KAIMING, "He initialisation, normal"),
    Option("kaiming_uniform", _KAIMING, "He initialisation, uniform"),
    Option("xavier_normal", _GAIN, "Glorot initialisation, normal"),
    Option("xavier_uniform", _GAIN, "Glorot initialisation, uniform"),
    Option("orthogonal", _GAIN, "orthogonal matrices"),
    Option("normal", (Param("mean", FINITE, 0.0), Param("std", POS_FLOAT, 1.0)), "normal distribution"),
    Option("uniform", (Param("a", FINITE, 0.0), Param("b", FINITE, 1.0)), "uniform distribution on [a, b)"),
    Option("zeros", (), "all zeros"),
)


class Source(NamedTuple):
    """What nndsl knows about a data source before reading it."""

    values: int | None  # values per sample, when fixed
    shape: str  # how a sample is described in messages
    classes: int | None  # for a labelled classification dataset
    tasks: tuple[str, ...]  # the tasks its targets suit


DATA = _options(
    DATA_LOADERS,
    Option("digits", (), "scikit-learn's 8x8 digits (1,797 images, 10 classes), offline"),
    Option(
        "mnist",
        (Param("root", STRING, "data/mnist"), Param("download", BOOL, False)),
        "MNIST from its IDX files in root (60,000 + 10,000 images of 28x28, 10 classes)",
    ),
    Option(
        "fashion_mnist",
        (Param("root", STRING, "data/fashion_mnist"), Param("download", BOOL, False)),
        "FashionMNIST from its IDX files in root (60,000 + 10,000 images of 28x28, 10 classes)",
    ),
    Option(
        "csv",
        (
            Param("path", STRING),
            Param("target", STRING),
            Param("features", optional(NAMES), None),
            Param("delimiter", STRING, ","),
        ),
        "a table with a header row: feature columns and a target column",
    ),
    Option(
        "npz",
        (Param("path", STRING), Param("x", STRING, "x"), Param("y", STRING, "y")),
        "arrays x (samples first) and y in a NumPy .npz file",
    ),
    Option(
        "torchvision",
        (Param("name", STRING), Param("root", STRING, "data"), Param("download", BOOL, False)),
        "a torchvision dataset by name (needs torchvision)",
    ),
    Option("xor", (), "the four XOR points"),
    Option(
        "sum3",
        (Param("n", POS_INT, 1000), Param("seed", INT, 0)),
        "n random triples in [0, 1) and their sums (regression)",
    ),
)
SOURCES = {
    "digits": Source(64, "8x8 (64 values)", 10, ("classification",)),
    "mnist": Source(784, "28x28 (784 values)", 10, ("classification",)),
    "fashion_mnist": Source(784, "28x28 (784 values)", 10, ("classification",)),
    "xor": Source(2, "2 values", 2, ("classification", "binary", "regression")),
    "sum3": Source(3, "3 values", None, ("regression",)),
}

METRICS = TASK_METRICS


class Setting(NamedTuple):
    """A plain (not call-valued) setting of the train section."""

    kind: Kind
    default: Any
    doc: str


SETTINGS = {
    "split": Setting(SPLIT, (0.6, 0.2, 0.2), "train/validation/test fractions"),
    "epochs": Setting(POS_INT, 10, "passes over the training data"),
    "batch_size": Setting(POS_INT, 64, "samples per step (per process when distributed)"),
    "early_stopping": Setting(optional(POS_INT), None, "patience: epochs without a better validation loss"),
    "min_delta": Setting(NONNEG_FLOAT, 0.0, "the least decrease of the validation loss that counts"),
    "clip_grad_norm": Setting(optional(POS_FLOAT), None, "clip the gradients' total norm to this"),
    "clip_grad_value": Setting(optional(POS_FLOAT), None, "clip each gradient value to +-this"),
    "seed": Setting(INT, 0, "seed of every random generator"),
    "deterministic": Setting(BOOL, False, "use only deterministic algorithms"),
    "device": Setting(DEVICE, "auto", "auto, cpu, cuda, cuda:N or mps"),
    "out_dir": Setting(optional(STRING), None, "where checkpoints, metrics and the best model go (None: runs/MODEL)"),
    "metrics_format": Setting(choice("jsonl", "csv"), "jsonl", "metrics file format"),
    "metrics": Setting(optional(NAMES), None, "metrics printed every epoch"),
    "plot": Setting(BOOL, False, "draw the loss and metric curves into curves.png (needs matplotlib)"),
}
#: call-valued settings: the table they name from, and their default
CALLS = {"data": DATA, "loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "init": INITS}
ROLE = {
    "data": "data source",
    "loss": "loss",
    "optimizer": "optimizer",
    "schedule": "schedule",
    "init": "initialisation",
}
ALL_SETTINGS = (*CALLS, *SETTINGS)


# ---------------------------------------------------------------- checking a section


def check_trainings(
    ctx: Context, binding: Binding, sections: list[ast.Train], models: list[ModelIR], declared: dict
) -> tuple:
    """Check a file's ``train`` sections after its models: one TrainConfig per section that
    checked. ``declared`` maps model names to their spans (models that failed to check are
    declared but absent from ``models``)."""
    out = []
    for extra in sections[1:]:
        ctx.error(
            "E501",
            "a file holds at most one train section",
            extra.keyword,
            "second train section",
            (Label(sections[0].keyword, "first train section"),),
            help="put each trained model in its own file, importing shared blocks",
        )
    if sections:
        # the section's values are evaluated outside every model: no model's tensors or names
        ctx.begin_model()
        config = _SectionChecker(ctx, binding, sections[0], models, declared).run()
        if config is not None:
            out.append(config)
    return tuple(out)


class _SectionChecker:
    def __init__(self, ctx: Context, binding: Binding, section: ast.Train, models: list[ModelIR], declared: dict):
        self.ctx = ctx
        self.binding = binding
        self.section = section
        self.models = {m.name: m for m in models}
        self.declared = declared
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}
        self.failed = False

    def error(self, *args, **kwargs) -> None:
        self.ctx.error(*args, **kwargs)
        self.failed = True

    def run(self) -> TrainConfig | None:
        model = self._model()
        for setting in self.section.settings:
            self._setting(setting)
        if model is None:
            return None
        self._defaults(model)
        self._trainable(model)
        self._schedule_fits_optimizer()
        if "loss" in self.values and "data" in self.values:  # checked even when other settings failed
            self._pairing(model)
        if self.failed:
            return None
        task = LOSSES[self.values["loss"].name].task
        return TrainConfig(
            model.name,
            MappingProxyType(dict(self.values)),
            MappingProxyType(dict(self.spans)),
            self.section.span,
            task,
        )

    def _trainable(self, model: ModelIR) -> None:
        """Layers whose torch forward raises in training mode only (warned about as W309 where
        the model is checked) make the model untrainable."""
        for node in layers_of(model.graph):
            problem = node.layer.training_problem(node.args, node.input)
            if problem is not None:
                self.error(
                    "E207",
                    f"{node.written} on line {node.line} cannot be trained: {problem}",
                    self.section.model.span if self.section.model is not None else self.section.keyword,
                    "trains this model",
                    help="use a batch size above 1 in the input declaration, and a positive eps",
                )

    # ---------------------------------------------------------- which model

    def _model(self) -> ModelIR | None:
        name = self.section.model
        if name is None:
            if len(self.declared) == 1:
                return self._checked(next(iter(self.declared)))
            listed = ", ".join(self.declared) or "none"
            self.error(
                "E503",
                "this train section does not say which model it trains",
                self.section.keyword,
                "which model?",
                help=f"name it: `train {next(iter(self.declared), 'Model')} {{ ... }}` (models here: {listed})",
            )
            return None
        if name.text in self.declared:
            return self._checked(name.text)
        close = close_matches(name.text, list(self.declared), n=1)
        self.error(
            "E503",
            f"no model '{name.text}' to train",
            name.span,
            "not a model in this file",
            help=f"did you mean '{close[0]}'?" if close else f"models here: {', '.join(self.declared) or 'none'}",
        )
        return None

    def _checked(self, name: str) -> ModelIR | None:
        """The model to pair with the loss and data; None when its checking stopped at an error
        (already reported): its output is unknown, so only the settings are checked."""
        model = self.models.get(name)
        if model is None or not model.complete or not model.graph.outputs:
            self.failed = True
            return None
        return model

    # ---------------------------------------------------------- settings

    def _setting(self, setting: ast.Setting) -> None:
        key = setting.name.text
        if key in self.spans:
            self.error(
                "E501",
                f"setting '{key}' is given twice",
                setting.name.span,
                "given again here",
                (Label(self.spans[key], "first given here"),),
            )
            return
        self.spans[key] = setting.span
        if key in CALLS:
            value = self._call(key, setting.value)
        elif key in SETTINGS:
            value = self._plain(key, setting.value)
        else:
            close = close_matches(key, list(ALL_SETTINGS), n=1)
            value = self.ctx.text(setting.value.span)
            if key in _OPTIMIZER_ARGUMENTS:
                name = _OPTIMIZER_ARGUMENTS[key]
                what = "the learning rate" if key == "learning_rate" else key
                help = f"{what} is an argument of the optimizer: optimizer = SGD({name}={value}) (or Adam, ...)"
            elif key in ("lr_scheduler", "scheduler"):
                help = f"the setting is called schedule: schedule = {value}"
            else:
                help = f"did you mean '{close[0]}'?" if close else "settings: " + ", ".join(ALL_SETTINGS)
            self.error("E501", f"unknown training setting '{key}'", setting.name.span, "not a setting", help=help)
            return
        if value is not _FAILED:
            self.values[key] = value

    def _plain(self, key: str, expr: ast.Expr):
        setting = SETTINGS[key]
        try:
            raw = self.binding.evaluate(expr)
        except Abort:
            self.failed = True
            return _FAILED
        try:
            return setting.kind.convert(raw)
        except WrongType:
            self.error(
                "E501",
                f"{key} must be {setting.kind.describe}, got {kind_name(raw)}",
                expr.span,
                kind_name(raw),
            )
        except ArgValueError as exc:
            self.error("E501", f"{key} {exc.message}", expr.span, "invalid value", help=exc.help)
        return _FAILED

    def _call(self, key: str, expr: ast.Expr):
        """A loss, optimizer, ... written as a call or a bare name; ``None`` for no schedule or init."""
        table = CALLS[key]
        if isinstance(expr, ast.NameRef) and expr.name == "None" and key in ("schedule", "init"):
            return None
        if isinstance(expr, ast.NameRef):
            call = ast.Call(ast.Name(expr.name, expr.span), (), None, expr.span)
        elif isinstance(expr, ast.Call) and expr.selector is None:
            call = expr
        else:
            example = {"data": "digits()", "loss": "CrossEntropyLoss()", "optimizer": "Adam(lr=0.001)"}
            self.error(
                "E501",
                f"{key} must name a {ROLE[key]}, such as {example.get(key, next(iter(table)) + '()')}",
                expr.span,
                f"not a {ROLE[key]}",
                help=f"{ROLE[key]}s: " + ", ".join(table),
            )
            return _FAILED
        name = call.name.text
        name = INIT_ALIASES.get(name, name) if key == "init" else name
        option = table.get(name)
        if option is None:
            close = close_matches(name, list(table), n=1)
            self.error(
                "E502",
                f"unknown {ROLE[key]} '{name}'",
                call.name.span,
                f"not a known {ROLE[key]}",
                help=f"did you mean '{close[0]}'?" if close else f"{ROLE[key]}s: " + ", ".join(table),
            )
            return _FAILED
        values, spans, failed = self.binding.convert_arguments(
            call, name, option.params, option.defaults, option.signature(), option.positional
        )
        if failed:
            self.failed = True
            return _FAILED
        if name == "SGD" and values["nesterov"] and (values["momentum"] <= 0 or values["dampening"] != 0):
            self.error(
                "E501",
                "SGD: Nesterov momentum requires a momentum and zero dampening",
                call.span,
                "invalid combination",
                help="add momentum=0.9, or drop nesterov=True",
            )
            return _FAILED
        if name == "uniform" and values["a"] > values["b"]:
            self.error(
                "E501",
                f"uniform: a must not be above b, got a={values['a']:g} and b={values['b']:g}",
                call.span,
                "an empty range",
                help="swap a and b",
            )
            return _FAILED
        given = {p: values[p] for p in values if p in spans}
        return TrainCall(name, MappingProxyType(given), call.span, MappingProxyType(dict(spans)))

    # ---------------------------------------------------------- defaults

    def _defaults(self, model: ModelIR) -> None:
        # a setting that failed to check (already reported) takes its default too, so that the
        # checks below see every setting
        for key, setting in SETTINGS.items():
            self.values.setdefault(key, setting.default)
        if self.values["out_dir"] is None:
            self.values["out_dir"] = f"runs/{model.name}"
        self.values.setdefault("optimizer", TrainCall("Adam", MappingProxyType({"lr": 0.001}), None))
        for key in ("schedule", "init"):
            self.values.setdefault(key, None)
        missing = [] if "loss" in self.spans else ["a loss"]
        if "data" not in self.spans:
            if len(model.input_types) == 1 and _values(model.input.shape.dims[1:]) == 64:
                self.values["data"] = TrainCall("digits", MappingProxyType({}), None)
                self.ctx.diag(
                    Severity.NOTE,
                    "N502",
                    "no data source given: training on scikit-learn's digits (8x8 images, 10 classes)",
                    self.section.keyword,
                    "data = digits()",
                    help="set `data = ...` to train on other data",
                )
            else:
                missing.append("a data source")
        if missing:
            helps = [] if "loss" in self.spans else ["`loss = CrossEntropyLoss()` (or MSELoss() for regression)"]
            if "a data source" in missing:
                helps.append(
                    "`data = ...` (" + ", ".join(f"{n}()" if not o.params else n for n, o in DATA.items()) + ")"
                )
            self.error(
                "E501",
                f"the train section needs {' and '.join(missing)}",
                self.section.keyword,
                "incomplete",
                help="add " + " and ".join(helps),
            )

    def _schedule_fits_optimizer(self) -> None:
        """CyclicLR and OneCycleLR cycle the momentum too, unless told not to: torch refuses an
        optimizer without one (Adagrad, Adadelta)."""
        schedule, optimizer = self.values.get("schedule"), self.values.get("optimizer")
        if schedule is None or optimizer is None or schedule.name not in ("CyclicLR", "OneCycleLR"):
            return
        option = OPTIMIZERS[optimizer.name]
        with_momentum = {p.name for p in option.params} & {"momentum", "betas"}
        if schedule.args.get("cycle_momentum", True) and not with_momentum:
            self.error(
                "E501",
                f"{schedule.name} cycles the momentum, which {optimizer.name} does not have",
                schedule.span or self.section.keyword,
                "cycles the momentum",
                (Label(optimizer.span, f"{optimizer.name} here"),) if optimizer.span else (),
                help="add cycle_momentum=False, or use an optimizer with momentum (SGD, Adam, ...)",
            )

    # ---------------------------------------------------------- loss and data against the model

    def _pairing(self, model: ModelIR) -> None:
        if len(model.input_types) != 1 or len(model.graph.outputs) != 1:
            self.error(
                "E503",
                f"training needs a model with one input and one output; {model.name} has "
                f"{len(model.input_types)} input(s) and {len(model.graph.outputs)} output(s)",
                self.section.keyword,
                "cannot train this model",
            )
            return
        loss: TrainCall = self.values["loss"]
        data: TrainCall = self.values["data"]
        task = LOSSES[loss.name].task
        out = model.output
        last = _last_layer(model)
        producer = (Label(last[1], f"the model's output {out} is produced here"),) if last[1] else ()
        out_dims = out.shape.dims
        width = out_dims[1] if len(out_dims) == 2 and isinstance(out_dims[1], int) else None
        if task in ("classification", "binary") and len(out_dims) != 2:
            labels, help_text = producer, "end the model with Flatten -> Linear(out_features=C)"
            recurrent = _sequence_layer(model)
            if recurrent is not None:
                # flattening a sequence ties the classifier to its length: take one vector of it
                name = recurrent.layer.dsl_name()
                labels += (Label(recurrent.span, f"{name} gives one output per time step, {recurrent.output}"),)
                help_text = (
                    f"take one vector per sequence: `{name}(...).last` (the last time step) or "
                    f"`{name}(...).hidden` (the final hidden state), then Linear(out_features=C)"
                )
            self.error(
                "E504",
                f"{loss.name} needs the model's output as [N, C], got {out}",
                loss.span,
                f"{loss.name} here",
                labels,
                help=help_text,
            )
            return
        self._activation(loss, last[0], producer)
        self._input_fit(model, data)
        source = SOURCES.get(data.name)
        if source is not None and task not in source.tasks:
            suggestion = "CrossEntropyLoss()" if "classification" in source.tasks else "MSELoss()"
            self.error(
                "E505",
                f"{data.name} has {'class labels' if source.classes else 'numeric targets'}, which {loss.name} "
                "cannot train on",
                loss.span,
                f"a {task} loss",
                (Label(data.span, "data from here"),) if data.span else (),
                help=f"use {suggestion}",
            )
            return
        classes = source.classes if source is not None else None
        if width is not None:
            if task == "classification" and classes is not None and width != classes:
                self._width_error(data, loss, model, classes, f"{classes} classes", producer)
            elif task == "binary" and source is not None and classes == 2 and width != 1:
                self._width_error(data, loss, model, 1, "one 0/1 target per sample", producer)
            elif task == "regression" and source is not None and source.classes is None and width != 1:
                self._width_error(data, loss, model, 1, "one target per sample", producer)
        if task == "regression" and source is not None and source.values is not None and len(out_dims) > 2:
            self._width_error(data, loss, model, 1, "one target per sample", producer)
        self._weights(loss, width, producer)
        self._metrics(task)

    def _width_error(self, data, loss, model, want: int, what: str, producer) -> None:
        """The output's width disagrees with the data: reported at the layer that produces it."""
        units = model.output.shape.dims[-1]
        where = producer[0].span if producer else loss.span
        self.error(
            "E505",
            f"{data.name} has {what}, but the model's output has {units} units",
            where,
            f"{units} units",
            (Label(data.span, f"{what} in this data"),) if data.span else (),
            help=f"make the model's last layer produce {want} value{'s' if want != 1 else ''} per sample",
        )

    def _activation(self, loss: TrainCall, last: str | None, producer) -> None:
        """Warn where the model's last layer and the loss disagree on what the output means."""
        message = help_text = None
        if loss.name == "CrossEntropyLoss" and last in ("Softmax", "LogSoftmax"):
            message = f"CrossEntropyLoss applies log-softmax itself; the model's final {last} flattens the gradients"
            help_text = f"remove the final {last} (apply softmax at inference), or end with LogSoftmax and use NLLLoss"
        elif loss.name == "NLLLoss" and last != "LogSoftmax":
            message = f"NLLLoss expects log-probabilities, but the model ends with {last or 'no LogSoftmax'}"
            help_text = "end the model with LogSoftmax(dim=1), or use CrossEntropyLoss on the logits"
        elif loss.name == "BCELoss" and last != "Sigmoid":
            message = f"BCELoss expects probabilities in [0, 1], but the model ends with {last or 'no Sigmoid'}"
            help_text = "end the model with Sigmoid, or use BCEWithLogitsLoss on the logits (more stable)"
        elif loss.name == "BCEWithLogitsLoss" and last == "Sigmoid":
            message = "BCEWithLogitsLoss applies a sigmoid itself; the model's final Sigmoid applies a second one"
            help_text = "remove the final Sigmoid, or use BCELoss"
        if message:
            self.ctx.diag(Severity.WARNING, "W501", message, loss.span, f"{loss.name} here", producer, help_text)

    def _input_fit(self, model: ModelIR, data: TrainCall) -> None:
        source = SOURCES.get(data.name)
        if source is None:
            return
        x = model.input
        if x.dtype in INTEGER_DTYPES:
            self.error(
                "E505",
                f"{data.name} gives float features, but the model's input {model.input_name} is {x}",
                data.span or self.section.keyword,
                "float features",
                help="declare the input without an integer dtype",
            )
            return
        have = _values(x.shape.dims[1:])
        if have is not None and source.values is not None and have != source.values:
            self.error(
                "E505",
                f"{data.name} samples are {source.shape}, but the model's input is {x} ({have} values)",
                data.span or self.section.keyword,
                f"samples of {source.values} values",
                help=f"declare the input with {source.values} values per sample, e.g. [N, {source.values}]",
            )

    def _weights(self, loss: TrainCall, width: int | None, producer) -> None:
        for key in ("weight", "pos_weight"):
            weights = loss.args.get(key)
            if weights is not None and width is not None and len(weights) != width:
                self.error(
                    "E504",
                    f"{loss.name}'s {key} has {len(weights)} values, but the model's output has {width} units",
                    loss.arg_spans[key],
                    f"{len(weights)} values",
                    producer,
                    help=f"give one {key} per output unit ({width})",
                )

    def _metrics(self, task: str) -> None:
        wanted = self.values.get("metrics")
        if wanted is None:
            self.values["metrics"] = METRICS[task]
            return
        for name in wanted:
            if name not in METRICS[task]:
                self.error(
                    "E501",
                    f"metric '{name}' does not apply to {task}",
                    self.spans["metrics"],
                    "unknown metric",
                    help=f"{task} metrics: " + ", ".join(METRICS[task]),
                )


_FAILED = object()


def _values(dims) -> int | None:
    """How many values a sample of these dims holds; None when a dim is symbolic."""
    total = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        total *= d
    return total


_RECURRENT = ("RNN", "LSTM", "GRU")


def _sequence_layer(model: ModelIR) -> LayerNode | None:
    """The last recurrent layer whose whole output sequence flows on (no ``.last``/``.hidden``)."""
    found = None
    for node in model.layers:
        if node.layer.dsl_name() in _RECURRENT:
            found = node if node.selector is None else None
    return found


def _last_layer(model: ModelIR) -> tuple[str | None, Span | None]:
    """The class name of the layer that produces the output, and where the model's text shows it."""
    graph, value, span = model.graph, model.graph.outputs[0], None
    while True:
        node = next((n for n in reversed(graph.nodes) if value in n.writes), None)
        if node is None:
            return None, span
        span = span or node.span
        if node.tag == "layer":
            return node.layer.dsl_name(), span
        if node.tag in ("block", "seq") and node.body.outputs:
            graph, value = node.body, node.body.outputs[0]
            continue
        return None, span
