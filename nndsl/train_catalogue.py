"""The training catalogue: the losses (with the task each suits), optimizers, schedules and weight
initialisations that a train section and a training script's flags may name, and each task's
metrics. Data only, standard library only: the checker reads it (``nndsl.training`` adds each
option's parameters) and a generated training script holds a copy of what it uses."""

# each data source and the runtime function that loads it
DATA_LOADERS = {
    "digits": "load_digits",
    "mnist": "load_mnist",
    "fashion_mnist": "load_fashion_mnist",
    "csv": "load_csv",
    "npz": "load_npz",
    "torchvision": "load_torchvision",
    "xor": "make_xor",
    "sum3": "make_sum3",
}
# each loss and the targets it takes: class indices, 0/1 labels or numbers
LOSS_TASKS = {
    "CrossEntropyLoss": "classification",
    "NLLLoss": "classification",
    "BCEWithLogitsLoss": "binary",
    "BCELoss": "binary",
    "MSELoss": "regression",
    "L1Loss": "regression",
    "SmoothL1Loss": "regression",
    "HuberLoss": "regression",
}
TRAIN_OPTIMIZERS = (
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "NAdam",
    "RAdam",
)
TRAIN_SCHEDULERS = (
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
    "OneCycleLR",
    "LinearLR",
    "ConstantLR",
    "PolynomialLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
)
# stepped after every batch; the others once per epoch
BATCH_SCHEDULERS = ("OneCycleLR", "CyclicLR")
# torch.nn.init's functions, without their trailing underscore
INIT_NAMES = (
    "kaiming_normal",
    "kaiming_uniform",
    "xavier_normal",
    "xavier_uniform",
    "orthogonal",
    "normal",
    "uniform",
    "zeros",
)
INIT_ALIASES = {
    "he_normal": "kaiming_normal",
    "he_uniform": "kaiming_uniform",
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
}
# what evaluation measures for each task, besides the loss
TASK_METRICS = {
    "classification": ("accuracy", "precision", "recall", "f1"),
    "binary": ("accuracy", "precision", "recall", "f1"),
    "regression": ("mse", "mae"),
}
