"""Data sources for a training script, and the preparation of train/validation/test splits.

Every loader returns a ``Dataset`` of tensors; ``prepare_data`` fits it to the model's input and
output and splits it. Any problem the user can fix is a ``DataError`` whose message says how.
"""

import ast
import csv
import gzip
import hashlib
import inspect
import itertools
import math
import os
import struct
import sys
import urllib.request
import zlib
from typing import NamedTuple

import torch

from nndsl.atomic import replace_atomically
from nndsl.suggest import did_you_mean
from nndsl.train_catalogue import LOSS_TASKS


class DataError(Exception):
    """A problem with the training data that the user can fix; the message says what to change."""


class Dataset(NamedTuple):
    """Samples on dim 0 of x and y; x_test and y_test are the source's official test set, if any."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    # what the model needs to be used after training: class_names, features, target,
    # input_scale (the factor raw inputs were multiplied by); saved beside the weights
    info: dict | None = None


class Splits(NamedTuple):
    """The (x, y) pairs to train, validate and test on, and what the targets mean."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    test: tuple[torch.Tensor, torch.Tensor] | None
    task: str
    num_classes: int | None
    source: str
    # the data's info (see Dataset), with the data source and the model's input
    info: dict | None = None


def task_of(loss_name: str) -> str:
    """The kind of targets a loss takes: "classification", "binary" or "regression"."""
    if loss_name not in LOSS_TASKS:
        raise DataError(
            f"unknown loss {loss_name!r}{did_you_mean(loss_name, LOSS_TASKS)}; use one of {', '.join(LOSS_TASKS)}."
        )
    return LOSS_TASKS[loss_name]


def import_data_library(module: str, pip_name: str, purpose: str):
    """Import an optional library, or say which package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(
            f"{purpose} needs the {pip_name} package, which is not installed: pip install {pip_name}"
        ) from None


def check_path(path, source: str) -> None:
    """A DataError unless path is a file or directory name (a number would be taken as an open file)."""
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(
            f"the {source} data source takes a path as a quoted string, not {path!r}."
        )


# --- Call texts such as csv("t.csv", target="y") -------------------------------------------------


class CallTextError(ValueError):
    """A flag's call text that is not ``name(literal, key=literal)``."""


def parse_call(text: str) -> tuple[str, list, dict]:
    """Split a call text like ``csv("t.csv", target="y")`` into its name, arguments and keywords (literals only)."""
    if not isinstance(text, str):
        raise CallTextError(f"{text!r} is not a call text like name(value, key=value)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise CallTextError(
            f"{text!r} is not a call like name(value, key=value): {error.msg}"
        ) from None
    call = tree.body
    if isinstance(call, ast.Name):  # a bare name is a call without arguments
        return call.id, [], {}
    if not isinstance(call, ast.Call):
        raise CallTextError(f"{text!r} is not a call like name(value, key=value)")
    if not isinstance(call.func, ast.Name):
        raise CallTextError(
            f"in {text!r}, {ast.unparse(call.func)!r} is not a plain name; write just the name, e.g. Adam(lr=0.001)"
        )
    args = [literal_argument(node, text) for node in call.args]
    kwargs = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise CallTextError(
                f"in {text!r}, '**' arguments are not allowed; write each key=value"
            )
        if keyword.arg in kwargs:
            raise CallTextError(
                f"in {text!r}, the argument {keyword.arg!r} is given twice"
            )
        kwargs[keyword.arg] = literal_argument(keyword.value, text)
    return call.func.id, args, kwargs


def literal_argument(node: ast.expr, text: str):
    """The value of one argument node, which must be a literal."""
    if isinstance(node, ast.Starred):
        raise CallTextError(
            f"in {text!r}, '*' arguments are not allowed; write each value"
        )
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise CallTextError(
            f"in {text!r}, {ast.unparse(node)!r} is not a literal; arguments must be numbers, "
            "quoted strings, True, False, None, or lists and tuples of them"
        ) from None


def load_dataset(text: str, loaders: dict) -> Dataset:
    """Call the loader that a data text such as ``digits()`` names, with its arguments."""
    try:
        name, args, kwargs = parse_call(text)
    except ValueError as error:
        raise DataError(f"the data source {error}.") from None
    if name not in loaders:
        raise DataError(
            f"unknown data source {name!r}{did_you_mean(name, loaders)}; "
            f"this script knows {', '.join(sorted(loaders))}."
        )
    loader = loaders[name]
    signature = inspect.signature(loader).replace(
        return_annotation=inspect.Signature.empty
    )
    try:
        signature.bind(*args, **kwargs)
        return loader(*args, **kwargs)
    except TypeError as error:
        raise DataError(
            f"bad arguments in the data source {text!r} ({error}); it takes {name}{signature}."
        ) from None


# --- Small built-in data sets --------------------------------------------------------------------


def load_digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits: x [1797, 64] in [0, 1], labels 0 to 9."""
    datasets = import_data_library(
        "sklearn.datasets", "scikit-learn", "the data source digits()"
    )
    digits = datasets.load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0  # pixel values are 0..16
    y = torch.tensor(digits.target, dtype=torch.float32)
    info = {"input_scale": 1 / 16, "class_names": [str(d) for d in range(10)]}
    return Dataset(x, y, info=info)


def make_xor() -> Dataset:
    """The four XOR points: x [4, 2], y [4] = 0, 1, 1, 0."""
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    return Dataset(x, y)


def make_sum3(n: int = 1000, seed: int = 0) -> Dataset:
    """n random points in [0, 1)^3 and the sum of their coordinates: x [n, 3], y [n]."""
    if not isinstance(n, int) or n <= 0 or not isinstance(seed, int):
        raise DataError(
            f"sum3(n={n!r}, seed={seed!r}) takes a positive whole number of samples and a whole-number seed."
        )
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=generator)
    return Dataset(x, x.sum(dim=1))


# --- IDX files (MNIST, Fashion-MNIST) ------------------------------------------------------------

# The third byte of an IDX file's magic number is the element type.
IDX_TYPES = {
    0x08: torch.uint8,
    0x09: torch.int8,
    0x0B: torch.int16,
    0x0C: torch.int32,
    0x0D: torch.float32,
    0x0E: torch.float64,
}
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# Zalando's repository holds the files; their S3 website mirror serves plain http only
FASHION_MNIST_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
# the MD5 of each published .gz file (as torchvision checks them): a download that differs
# is refused and not saved
MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def read_idx(path: str) -> torch.Tensor:
    """Read an IDX file (gzipped when its name ends in .gz) into a tensor of the shape its header gives."""
    data = read_file_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataError(
            f"{path} is not an IDX file (bad magic number); download it again."
        )
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(
            f"{path} is truncated: its header is incomplete; download it again."
        )
    dims = struct.unpack(f">{ndim}I", data[4:start])
    dtype = IDX_TYPES[data[2]]
    itemsize = torch.empty(0, dtype=dtype).element_size()
    expected = math.prod(dims) * itemsize
    if len(data) - start != expected:
        raise DataError(
            f"{path} is truncated or corrupt: its header gives shape {list(dims)} ({expected} bytes of data) "
            f"but it holds {len(data) - start}; download it again."
        )
    if expected == 0:
        return torch.empty(dims, dtype=dtype)
    raw = torch.frombuffer(bytearray(memoryview(data)[start:]), dtype=torch.uint8)
    if itemsize > 1 and sys.byteorder == "little":  # IDX stores numbers big-endian
        raw = raw.view(-1, itemsize).flip(1).contiguous()
    return raw.view(dtype).reshape(dims)


def read_file_bytes(path: str) -> bytes:
    """The bytes of a file, decompressed when its name ends in .gz."""
    try:
        if str(path).endswith(".gz"):
            with gzip.open(path, "rb") as file:
                return file.read()
        with open(path, "rb") as file:
            return file.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"cannot read {path} ({error}); check the file, or delete it and download it again."
        ) from None


def write_idx(path: str, array) -> None:
    """Write an array or tensor as an IDX file (gzipped when path ends in .gz); for tests and benchmarks."""
    numpy = import_data_library("numpy", "numpy", "write_idx")
    values = numpy.asarray(array)
    codes = {
        numpy.dtype(str(dtype).removeprefix("torch.")): code
        for code, dtype in IDX_TYPES.items()
    }
    if values.dtype not in codes:
        raise DataError(
            f"write_idx cannot store {values.dtype} values; use one of {', '.join(str(d) for d in codes)}."
        )
    header = bytes([0, 0, codes[values.dtype], values.ndim]) + struct.pack(
        f">{values.ndim}I", *values.shape
    )
    data = header + values.astype(values.dtype.newbyteorder(">")).tobytes()
    with (
        gzip.open(path, "wb") if str(path).endswith(".gz") else open(path, "wb") as file
    ):
        file.write(data)


def find_idx_file(root: str, name: str) -> str | None:
    """The path of an IDX file in root, plain or gzipped, or None."""
    for candidate in (os.path.join(root, name), os.path.join(root, name + ".gz")):
        if os.path.isfile(candidate):
            return candidate
    return None


def download_file(url: str, path: str, md5: str | None = None) -> None:
    """Download url to path; a temporary file is renamed into place so a broken download leaves
    nothing, and one whose MD5 is not md5 is refused (a DataError) and not saved."""
    with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read()
    if md5 is not None:
        got = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if got != md5:
            raise DataError(
                f"the download of {url} is not the published file (MD5 {got}, expected {md5}); "
                "nothing was saved. Try again later, or put the files in place yourself."
            )

    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            file.write(data)

    replace_atomically(path, write)


def load_idx_dataset(
    root: str, download: bool, base_url: str, source: str, checksums: dict
) -> Dataset:
    """The four MNIST-style IDX files in root as a Dataset; images scaled to [0, 1]."""
    check_path(root, source)
    paths = {}
    for name in IDX_FILES:
        paths[name] = find_idx_file(root, name)
        if paths[name] is None and download:
            paths[name] = os.path.join(root, name + ".gz")
            try:
                os.makedirs(root, exist_ok=True)
                download_file(base_url + name + ".gz", paths[name], checksums[name])
            except DataError:
                raise
            # no network (URLError), a refused write (OSError), a broken reply
            except Exception as error:  # noqa: BLE001
                raise DataError(
                    f"cannot download {base_url}{name}.gz ({error}); without a network, put the files "
                    f"{', '.join(IDX_FILES)} (.gz or not) in {root}/ yourself."
                ) from None
        if paths[name] is None:
            raise DataError(
                f"{source} data is not in {root}/: {name}(.gz) is missing; put the four files "
                f"{', '.join(IDX_FILES)} there, or pass download=True."
            )
    x, y, scale = idx_images_and_labels(
        paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"]
    )
    x_test, y_test, _ = idx_images_and_labels(
        paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"]
    )
    if x.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"the training images in {root}/ are {list(x.shape[1:])} but the test images are {list(x_test.shape[1:])}."
        )
    return Dataset(x, y, x_test, y_test, {"input_scale": scale})


def idx_images_and_labels(
    images_path: str, labels_path: str
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One pair of IDX image and label files: images [n, h, w] (bytes scaled to [0, 1]),
    labels [n], and the factor the images were multiplied by."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() < 2:
        raise DataError(
            f"{images_path} holds {images.dim()}-d data, not images; check the file names."
        )
    if labels.dim() != 1:
        raise DataError(
            f"{labels_path} holds data of shape {list(labels.shape)}, not one label per image; check the file names."
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; download them again."
        )
    if images.dtype == torch.uint8:
        return images.float() / 255.0, labels.float(), 1 / 255
    return images.float(), labels.float(), 1.0


def load_mnist(root: str = "data/mnist", download: bool = False) -> Dataset:
    """MNIST handwritten digits from the IDX files in root: 60000 + 10000 images of 28x28."""
    dataset = load_idx_dataset(root, download, MNIST_URL, "MNIST", MNIST_MD5)
    return dataset._replace(info={**dataset.info, "class_names": MNIST_CLASSES})


def load_fashion_mnist(
    root: str = "data/fashion_mnist", download: bool = False
) -> Dataset:
    """Fashion-MNIST clothing images from the IDX files in root: 60000 + 10000 images of 28x28."""
    dataset = load_idx_dataset(
        root, download, FASHION_MNIST_URL, "Fashion-MNIST", FASHION_MNIST_MD5
    )
    return dataset._replace(info={**dataset.info, "class_names": FASHION_MNIST_CLASSES})


# --- Tables and arrays ---------------------------------------------------------------------------


def load_csv(
    path: str, target: str, features: list[str] | None = None, delimiter: str = ","
) -> Dataset:
    """A CSV table with a header row: the features columns (default: all but target) as x, target as y."""
    check_path(path, "csv")
    header, rows = read_csv_table(path, delimiter)
    if isinstance(features, str):
        features = [features]
    if features is None:
        features = [name for name in header if name != target]
    named = isinstance(features, (list, tuple)) and all(
        isinstance(name, str) for name in [target, *features]
    )
    if not named:
        raise DataError(
            f"csv(...) takes column names as quoted strings: target={target!r}, features={features!r}."
        )
    for name in [target, *features]:
        if name not in header:
            raise DataError(
                f"{path} has no column {name!r}{did_you_mean(name, header)}; its columns are {', '.join(header)}."
            )
    if target in features:
        raise DataError(
            f"the target column {target!r} of {path} is also among the features; leave it out of features."
        )
    if not features:
        raise DataError(f"{path} has no feature columns besides {target!r}.")
    columns = {name: [row[index] for row in rows] for index, name in enumerate(header)}
    x = torch.tensor(
        [csv_numbers(path, name, columns[name]) for name in features],
        dtype=torch.float32,
    ).T
    numbers, names = csv_targets(path, target, columns[target])
    info = {"features": list(features), "target": target}
    if names is not None:
        info["class_names"] = names
    return Dataset(
        x.contiguous(), torch.tensor(numbers, dtype=torch.float32), info=info
    )


def read_csv_table(path: str, delimiter: str) -> tuple[list[str], list[list[str]]]:
    """The header and data rows of a CSV file, every row as long as the header."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            table = [row for row in csv.reader(file, delimiter=delimiter) if row]
    except (OSError, UnicodeDecodeError, csv.Error, TypeError) as error:
        raise DataError(f"cannot read the CSV file {path}: {error}.") from None
    if len(table) < 2:
        raise DataError(
            f"{path} has no data rows; it needs a header row and at least one row of values."
        )
    header = [name.strip() for name in table[0]]
    if len(set(header)) != len(header):
        raise DataError(
            f"{path} has the same column name twice in its header; rename one of them."
        )
    for line, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise DataError(
                f"row {line} of {path} has {len(row)} values but the header has {len(header)} columns."
            )
    return header, [[value.strip() for value in row] for row in table[1:]]


def csv_numbers(path: str, column: str, values: list[str]) -> list[float]:
    """The values of a feature column as floats."""
    numbers = []
    for line, value in enumerate(values, start=2):
        try:
            numbers.append(float(value))
        except ValueError:
            held = f"holds {value!r}" if value else "is empty"
            raise DataError(
                f"column {column!r} of {path} is not numeric (row {line} {held}); "
                "encode it as numbers or leave it out with features=[...]."
            ) from None
    return numbers


def csv_targets(
    path: str, column: str, values: list[str]
) -> tuple[list[float], list[str] | None]:
    """The target column as numbers; a column of names becomes class indices in sorted order
    (and the names, in that order, are returned too)."""
    if "" in values:
        raise DataError(
            f"the target column {column!r} of {path} is empty in row {values.index('') + 2}."
        )
    try:
        return [float(value) for value in values], None
    except ValueError:
        return class_indices(values), sorted(set(values))


def class_indices(names: list) -> list[float]:
    """Class names mapped to 0..K-1 in sorted order."""
    index = {name: float(number) for number, name in enumerate(sorted(set(names)))}
    return [index[name] for name in names]


def load_npz(path: str, x: str = "x", y: str = "y") -> Dataset:
    """Arrays x and y from a NumPy .npz file; arrays named <x>_test and <y>_test, if present, are the test set."""
    check_path(path, "npz")
    numpy = import_data_library("numpy", "numpy", "the data source npz(...)")
    arrays = read_npz_arrays(path, numpy)
    missing = [name for name in (x, y) if name not in arrays]
    if missing:
        names = ", ".join(arrays) or "none"
        raise DataError(
            f"{path} has no array named {', '.join(map(repr, missing))}; its arrays are {names}."
        )
    has_test = x + "_test" in arrays and y + "_test" in arrays
    targets = [arrays[y], *([arrays[y + "_test"]] if has_test else [])]
    names = None
    if all(array.dtype.kind in "US" for array in targets):
        # text labels: one numbering for the training and the test targets
        names = sorted({str(v) for array in targets for v in array.tolist()})
    return Dataset(
        npz_tensor(path, x, arrays[x], inputs=True),
        npz_tensor(path, y, arrays[y], inputs=False, names=names),
        npz_tensor(path, x + "_test", arrays[x + "_test"], inputs=True)
        if has_test
        else None,
        npz_tensor(path, y + "_test", arrays[y + "_test"], inputs=False, names=names)
        if has_test
        else None,
        {"class_names": names} if names else {},
    )


def read_npz_arrays(path: str, numpy) -> dict:
    """Every array in an .npz file, by name."""
    try:
        archive = numpy.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise DataError(
                f"{path} is not an .npz archive; save the arrays with numpy.savez(path, x=..., y=...)."
            )
        with archive:
            return {name: archive[name] for name in archive.files}
    except DataError:
        raise
    # numpy raises OSError, ValueError, zipfile and zlib errors for bad files
    except Exception as error:  # noqa: BLE001
        raise DataError(f"cannot read the .npz file {path}: {error}.") from None


def npz_tensor(path: str, name: str, array, inputs: bool, names=None) -> torch.Tensor:
    """An array as a tensor: integer inputs stay int64 (token ids), other values become float32;
    text labels become their index among names (all the labels, sorted)."""
    if array.dtype.kind in "US" and not inputs:
        names = names or sorted({str(v) for v in array.tolist()})
        index = {label: float(number) for number, label in enumerate(names)}
        return torch.tensor(
            [index[str(v)] for v in array.tolist()], dtype=torch.float32
        )
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"the array {name!r} in {path} holds {array.dtype} values; it must hold numbers."
        )
    dtype = torch.int64 if inputs and array.dtype.kind in "iu" else torch.float32
    return torch.as_tensor(array.copy(order="C")).to(dtype)


def load_torchvision(name: str, root: str = "data", download: bool = False) -> Dataset:
    """A torchvision data set with train=True/False parts, e.g. torchvision("CIFAR10", root="data")."""
    check_path(root, "torchvision")
    datasets = import_data_library(
        "torchvision.datasets", "torchvision", f"the data source torchvision({name!r})"
    )
    dataset_class = getattr(datasets, str(name), None)
    if not isinstance(dataset_class, type):
        raise DataError(
            f"torchvision has no data set {name!r}{did_you_mean(name, dir(datasets))}."
        )
    try:
        train = dataset_class(root, train=True, download=download)
        test = dataset_class(root, train=False, download=download)
    except TypeError:
        raise DataError(
            f"torchvision's {name} has no train=True/False parts; save it with numpy.savez and use npz(...)."
        ) from None
    # torchvision raises RuntimeError, OSError and others for missing or broken files
    except Exception as error:  # noqa: BLE001
        hint = "" if download else " (pass download=True to fetch it)"
        raise DataError(
            f"cannot load torchvision's {name} from {root}/{hint}: {error}"
        ) from None
    x, y = torchvision_tensors(name, train)
    x_test, y_test = torchvision_tensors(name, test)
    info = (
        {"input_scale": 1 / 255}
        if torch.as_tensor(train.data).dtype == torch.uint8
        else {}
    )
    classes = getattr(train, "classes", None)
    if isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
        info["class_names"] = list(classes)
    return Dataset(x, y, x_test, y_test, info)


def torchvision_tensors(name: str, dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The .data and .targets of a torchvision data set: images float in [0, 1], channels first."""
    if not hasattr(dataset, "data") or not hasattr(dataset, "targets"):
        raise DataError(
            f"torchvision's {name} has no .data and .targets arrays; save it with numpy.savez and use npz(...)."
        )
    x = torch.as_tensor(dataset.data)
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    if (
        x.dim() == 4 and x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4)
    ):  # HWC images to CHW
        x = x.permute(0, 3, 1, 2).contiguous()
    return x.float(), torch.as_tensor(dataset.targets).float()


# --- Fitting the data to the model ---------------------------------------------------------------


def reshape_samples(t: torch.Tensor, shape: tuple) -> torch.Tensor | None:
    """t reshaped to (n, *shape), None dims taking any size; None when it cannot be."""
    own = tuple(t.shape[1:])
    if len(own) == len(shape) and all(
        want is None or want == have for want, have in zip(shape, own)
    ):
        return t
    known = math.prod(dim for dim in shape if dim is not None)
    unknown = [i for i, dim in enumerate(shape) if dim is None]
    count = math.prod(own)
    if len(unknown) > 1 or known == 0 or count % known:
        return None
    if not unknown:
        return t.reshape(len(t), *shape) if count == known else None
    filled = list(shape)
    filled[unknown[0]] = count // known
    return t.reshape(len(t), *filled)


def shape_text(shape: tuple) -> str:
    """A sample shape and its number of values, e.g. '[1, 28, 28] (784 values)'."""
    dims = "[" + ", ".join("None" if dim is None else str(dim) for dim in shape) + "]"
    if None in shape:
        known = math.prod(dim for dim in shape if dim is not None)
        return f"{dims} (any size{'' if known == 1 else f' that is a multiple of {known} values'})"
    return f"{dims} ({math.prod(shape)} value{'' if math.prod(shape) == 1 else 's'})"


def check_finite(t: torch.Tensor, what: str) -> None:
    """A DataError when t holds NaN or infinity."""
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise DataError(
            f"the {what} contain NaN or infinite values; clean the data first."
        )


def fit_inputs(
    x: torch.Tensor, input_shape: tuple, input_dtype: str, what: str
) -> torch.Tensor:
    """x reshaped to the model's input shape and converted to its dtype."""
    if x.dim() == 0 or len(x) == 0:
        raise DataError(f"the {what} holds no samples.")
    check_finite(x, f"{what}'s inputs")
    fitted = reshape_samples(x, tuple(input_shape))
    if fitted is None:
        own = tuple(x.shape[1:])
        raise DataError(
            f"the {what}'s samples are {shape_text(own)} but the model takes "
            f"{shape_text(tuple(input_shape))}; use data that matches the model's input or change the input shape."
        )
    if input_dtype == "int64":
        if fitted.is_floating_point() and not (fitted == fitted.round()).all():
            raise DataError(
                f"the model takes whole numbers (token ids) but the {what}'s inputs have fractions."
            )
        return fitted.long()
    if input_dtype == "bool":
        if not ((fitted == 0) | (fitted == 1)).all():
            raise DataError(
                f"the model takes a bool mask but the {what}'s inputs are not all 0 or 1."
            )
        return fitted != 0
    # the declared dtype: float64, float16 and bfloat16 models compute in it
    return fitted.to(getattr(torch, input_dtype, torch.float32))


def fit_targets(
    y: torch.Tensor, n: int, task: str, output_shape: tuple, what: str
) -> tuple[torch.Tensor, int | None]:
    """Targets in the form the loss takes, and the number of classes (None when it does not apply)."""
    if y.dim() == 0 or len(y) != n:
        raise DataError(
            f"the {what} has {n} samples but {len(y) if y.dim() else 0} targets; each sample needs one."
        )
    check_finite(y, f"{what}'s targets")
    output_shape = tuple(output_shape)
    if task == "classification":
        return class_targets(y, output_shape, what)
    if task == "binary" and len(output_shape) == 1 and y.dim() == 1:
        y = y.reshape(-1, 1)  # one 0/1 target per sample for a one-unit output
    fitted = reshape_samples(y.float(), output_shape)
    if fitted is None:
        own = tuple(y.shape[1:])
        raise DataError(
            f"the {what}'s targets are {shape_text(own)} per sample but the model's "
            f"output is {shape_text(output_shape)}; make them match."
        )
    if task == "binary":
        if not ((fitted == 0) | (fitted == 1)).all():
            raise DataError(
                f"a BCE loss takes 0/1 targets but the {what}'s targets have other values; "
                "use a classification or regression loss."
            )
        return fitted, 2 if output_shape == (1,) else None
    return fitted, None


def class_targets(
    y: torch.Tensor, output_shape: tuple, what: str
) -> tuple[torch.Tensor, int | None]:
    """Class indices (int64) for CrossEntropyLoss/NLLLoss, checked against the model's number of classes."""
    if y.dim() == 2 and y.shape[1] == 1 and len(output_shape) <= 1:
        y = y.squeeze(1)  # a single label column
    # per-position labels, e.g. one per token, when the output has more dims
    extra = output_shape[1:]
    if y.dim() - 1 != len(extra) or any(
        want is not None and want != have for want, have in zip(extra, y.shape[1:])
    ):
        raise DataError(
            f"classification takes one class label per sample{' position' if extra else ''}, "
            f"but the {what}'s targets have shape {list(y.shape)}; for one-hot labels, use their argmax."
        )
    if (y.is_floating_point() and not (y == y.round()).all()) or (y < 0).any():
        raise DataError(
            f"class labels must be whole numbers from 0, but the {what}'s targets are not; "
            "use a regression loss for real values."
        )
    y = y.long()
    num_classes = (
        output_shape[0]
        if output_shape and output_shape[0] is not None
        else int(y.max()) + 1
    )
    found = int(y.max()) + 1
    # the training data must use every output unit; a test set may lack some classes
    if found > num_classes or (found < num_classes and what == "data"):
        raise DataError(
            f"the {what} has {found} classes (labels 0 to {found - 1}) but the model's output has {num_classes} units; "
            f"give the model's last layer {found} units"
            + (
                f" or keep only labels below {num_classes}."
                if found > num_classes
                else "."
            )
        )
    return y, num_classes


# --- Splitting -----------------------------------------------------------------------------------


def split_fractions(split) -> list[float]:
    """The --split fractions, checked: 1 to 3 numbers >= 0 that sum to 1."""
    if split is None:
        split = [1.0]
    fractions = list(split) if isinstance(split, (list, tuple)) else [split]
    if not 1 <= len(fractions) <= 3 or not all(
        isinstance(f, (int, float)) and not isinstance(f, bool) for f in fractions
    ):
        raise DataError(
            f"--split takes 1 to 3 fractions (train, val, test), e.g. 0.8 0.2; got {split!r}."
        )
    if (
        any(not math.isfinite(f) or f < 0 for f in fractions)
        or abs(sum(fractions) - 1.0) > 1e-6
    ):
        raise DataError(
            f"the --split fractions {fractions} must be >= 0 and sum to 1, e.g. 0.6 0.2 0.2."
        )
    if fractions[0] == 0:
        raise DataError(
            f"the --split fractions {fractions} leave nothing to train on; give train a fraction above 0."
        )
    return [float(f) for f in fractions]


def split_sizes(n: int, fractions: list[float]) -> list[int]:
    """Split n samples by fractions, rounding the cumulative bounds so the sizes add up to n."""
    bounds, total = [0], 0.0
    for fraction in fractions[:-1]:
        total += fraction
        bounds.append(min(n, round(n * total)))
    bounds.append(n)
    return [end - start for start, end in itertools.pairwise(bounds)]


def split_dataset(
    x: torch.Tensor, y: torch.Tensor, fractions: list[float], seed: int
) -> list[tuple | None]:
    """Shuffle (x, y) with a seeded permutation and cut it into parts; an empty part is None."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for size in split_sizes(len(x), fractions):
        index = order[start : start + size]
        parts.append((x[index], y[index]) if size else None)
        start += size
    return parts


def prepare_data(
    args, loaders: dict, input_shape: tuple, input_dtype: str, output_shape: tuple
) -> Splits:
    """Load args.data, fit it to the model's input and output, and split it into train/val/test."""
    dataset = load_dataset(args.data, loaders)
    try:
        task = task_of(parse_call(args.loss)[0])
    except ValueError as error:
        raise DataError(f"the loss {error}.") from None
    x = fit_inputs(dataset.x, input_shape, input_dtype, "data")
    y, num_classes = fit_targets(dataset.y, len(x), task, output_shape, "data")
    fractions = split_fractions(args.split)
    name = parse_call(args.data)[0]
    if dataset.x_test is None or dataset.y_test is None:
        train, val, test = (split_dataset(x, y, fractions, args.seed) + [None, None])[
            :3
        ]
        source = f"{name} ({len(x)} samples)"
    else:
        # The source's own test set is the test split; the training data gives train and val by their ratio.
        x_test = fit_inputs(dataset.x_test, input_shape, input_dtype, "test data")
        y_test, test_classes = fit_targets(
            dataset.y_test, len(x_test), task, output_shape, "test data"
        )
        kept = fractions[:2]
        train, val = (
            split_dataset(x, y, [f / sum(kept) for f in kept], args.seed) + [None]
        )[:2]
        test = (x_test, y_test)
        if (
            task == "classification"
        ):  # without a fixed output size, the labels of both sets count
            num_classes = max(num_classes, test_classes)
        source = f"{name} ({len(x)} training + {len(x_test)} test samples)"
    if train is None:
        raise DataError(
            f"the split {fractions} leaves no training samples out of {len(x)}; give train a larger fraction."
        )
    info = {
        "data": args.data,
        "task": task,
        "input_shape": [None, *input_shape],
        "input_dtype": input_dtype,
        **(dataset.info or {}),
    }
    return Splits(train, val, test, task, num_classes, source, info)
