"""The training runtime's data sources and splits (nndsl/backends/train_runtime/data.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import urllib.error
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nndsl.backends.train_runtime import data
from nndsl.backends.train_runtime.data import DataError, Dataset

IDX_NAMES = data.IDX_FILES
LOADERS = {
    "digits": data.load_digits,
    "xor": data.make_xor,
    "sum3": data.make_sum3,
    "csv": data.load_csv,
    "npz": data.load_npz,
    "mnist": data.load_mnist,
    "fashion_mnist": data.load_fashion_mnist,
    "torchvision": data.load_torchvision,
}


def make_args(data_text="digits()", loss="CrossEntropyLoss()", split=(1.0,), seed=0):
    return SimpleNamespace(data=data_text, loss=loss, split=list(split), seed=seed)


def write_idx_set(root, n_train=50, n_test=20, gz=True, size=28):
    """Four small IDX files in root, with images whose pixels encode their label."""
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = np.broadcast_to(labels[:, None, None] * 25, (n, size, size)).astype(np.uint8)
        data.write_idx(str(root / f"{prefix}-images-idx3-ubyte{suffix}"), images)
        data.write_idx(str(root / f"{prefix}-labels-idx1-ubyte{suffix}"), labels)


# --- small data sets ---------------------------------------------------------------------------


def test_digits_shape_range_and_labels():
    x, y, x_test, y_test = data.load_digits()[:4]
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1
    assert y.shape == (1797,) and set(y.tolist()) == set(range(10))
    assert x_test is None and y_test is None


def test_xor_and_sum3():
    x, y, _, _ = data.make_xor()[:4]
    assert x.shape == (4, 2) and y.tolist() == [0, 1, 1, 0]
    x, y, _, _ = data.make_sum3(n=100, seed=3)[:4]
    assert x.shape == (100, 3) and x.dtype == torch.float32 and 0 <= x.min() and x.max() < 1
    assert torch.allclose(y, x.sum(1))
    assert torch.equal(data.make_sum3(n=100, seed=3).x, x)
    assert not torch.equal(data.make_sum3(n=100, seed=4).x, x)


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (
        (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype) if dtype != np.uint8 else np.arange(30, dtype=dtype)
    )
    path = str(tmp_path / name)
    data.write_idx(path, array)
    assert torch.equal(data.read_idx(path), torch.as_tensor(array))
    assert (open(path, "rb").read(2) == b"\x1f\x8b") == name.endswith(".gz")  # gzip's magic number


def test_idx_from_tensor_with_other_dims(tmp_path):
    tensor = torch.arange(4 * 7 * 3, dtype=torch.uint8).reshape(4, 7, 3)
    data.write_idx(str(tmp_path / "t.idx"), tensor)
    assert torch.equal(data.read_idx(str(tmp_path / "t.idx")), tensor)


def test_idx_corrupt_magic(tmp_path):
    path = tmp_path / "bad.idx"
    data.write_idx(str(path), np.zeros((2, 2), np.uint8))
    raw = bytearray(path.read_bytes())
    raw[2] = 0x42
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="bad.idx is not an IDX file"):
        data.read_idx(str(path))


def test_idx_truncated(tmp_path):
    path = tmp_path / "short.idx"
    data.write_idx(str(path), np.zeros((5, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"short.idx is truncated or corrupt.*\[5, 4, 4\]"):
        data.read_idx(str(path))
    path.write_bytes(path.read_bytes()[:9])  # cut inside the header
    with pytest.raises(DataError, match="header is incomplete"):
        data.read_idx(str(path))


def test_idx_broken_gzip(tmp_path):
    path = tmp_path / "x.idx.gz"
    path.write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x05abcde")[:-6])
    with pytest.raises(DataError, match="cannot read .*x.idx.gz"):
        data.read_idx(str(path))


def test_idx_count_mismatch(tmp_path):
    write_idx_set(tmp_path, n_train=10, n_test=4, gz=False)
    data.write_idx(str(tmp_path / "train-labels-idx1-ubyte"), np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="has 10 images but .* has 9 labels"):
        data.load_mnist(str(tmp_path))


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("loader", [data.load_mnist, data.load_fashion_mnist])
def test_mnist_loaders_from_small_files(tmp_path, loader, gz):
    write_idx_set(tmp_path, gz=gz)
    x, y, x_test, y_test = loader(str(tmp_path))[:4]
    assert x.shape == (50, 28, 28) and x_test.shape == (20, 28, 28) and x.dtype == torch.float32
    assert y.shape == (50,) and y_test.shape == (20,) and y.dtype == torch.float32
    assert torch.allclose(x[:, 0, 0], y * 25 / 255)  # scaled to [0, 1], images kept with their labels
    assert x.max() <= 1


def test_mnist_image_size_from_header(tmp_path):
    write_idx_set(tmp_path, n_train=6, n_test=3, size=12)
    assert data.load_mnist(str(tmp_path)).x.shape == (6, 12, 12)


def test_mnist_missing_files(tmp_path):
    with pytest.raises(DataError, match=f"not in {tmp_path}/.*train-images-idx3-ubyte.*download=True"):
        data.load_mnist(str(tmp_path))


def test_download_without_network(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=f"cannot download .*fashion-mnist.*put the files .* in {tmp_path / 'f'}/"):
        data.load_fashion_mnist(str(tmp_path / "f"), download=True)
    assert list((tmp_path / "f").iterdir()) == []  # nothing half-written


def serve_idx_set(tmp_path, monkeypatch):
    """Generated IDX files served in place of the network: (their folder, the URLs asked for)."""
    source = tmp_path / "source"
    source.mkdir()
    write_idx_set(source)
    requested = []

    def serve(url, timeout=None):
        requested.append(url)
        return io.BytesIO((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    return source, requested


def test_download_serves_files(tmp_path, monkeypatch):
    source, requested = serve_idx_set(tmp_path, monkeypatch)
    fake = {name: hashlib.md5((source / f"{name}.gz").read_bytes()).hexdigest() for name in IDX_NAMES}
    monkeypatch.setattr(data, "MNIST_MD5", fake)  # the generated files stand in for the real ones
    x, y, x_test, _ = data.load_mnist(str(tmp_path / "mnist"), download=True)[:4]
    assert requested == [data.MNIST_URL + name + ".gz" for name in IDX_NAMES]
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(name + ".gz" for name in IDX_NAMES)
    assert x.shape == (50, 28, 28) and x_test.shape == (20, 28, 28)
    data.load_mnist(str(tmp_path / "mnist"), download=True)  # present files are not fetched again
    assert len(requested) == 4


# --- CSV and NPZ -------------------------------------------------------------------------------


def write_text(path, text):
    path.write_text(text)
    return str(path)


def test_csv_numeric(tmp_path):
    path = write_text(tmp_path / "t.csv", "a,b,y\n1,2,0.5\n3,4,1.5\n")
    x, y, x_test, _ = data.load_csv(path, target="y")[:4]
    assert x.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0.5, 1.5] and x_test is None


def test_csv_class_names_and_feature_subset(tmp_path):
    path = write_text(tmp_path / "t.csv", "a;b;kind;c\n1;2;dog;7\n3;4;cat;8\n5;6;emu;9\n7;8;cat;0\n")
    x, y, _, _ = data.load_csv(path, target="kind", features=["c", "a"], delimiter=";")[:4]
    assert x.tolist() == [[7, 1], [8, 3], [9, 5], [0, 7]]
    assert y.tolist() == [1, 0, 2, 0]  # cat, dog, emu in sorted order


def test_csv_unknown_column(tmp_path):
    path = write_text(tmp_path / "t.csv", "width,label\n1,0\n")
    with pytest.raises(
        DataError, match="no column 'lable' \\(did you mean 'label'\\?\\); its columns are width, label"
    ):
        data.load_csv(path, target="lable")
    with pytest.raises(DataError, match="did you mean 'width'"):
        data.load_csv(path, target="label", features=["widht"])


def test_csv_non_numeric_feature(tmp_path):
    path = write_text(tmp_path / "t.csv", "name,y\nx1,0\nx2,1\n")
    with pytest.raises(DataError, match="column 'name' of .*t.csv is not numeric \\(row 2 holds 'x1'\\)"):
        data.load_csv(path, target="y")


@pytest.mark.parametrize("text", ["", "a,y\n"])
def test_csv_empty(tmp_path, text):
    path = write_text(tmp_path / "e.csv", text)
    with pytest.raises(DataError, match="e.csv has no data rows"):
        data.load_csv(path, target="y")


def test_csv_missing_file_and_ragged_row(tmp_path):
    with pytest.raises(DataError, match="cannot read the CSV file .*nope.csv"):
        data.load_csv(str(tmp_path / "nope.csv"), target="y")
    path = write_text(tmp_path / "r.csv", "a,y\n1,2\n3\n")
    with pytest.raises(DataError, match="row 3 of .*r.csv has 1 values but the header has 2"):
        data.load_csv(path, target="y")


def test_csv_argument_types(tmp_path):
    path = write_text(tmp_path / "t.csv", "a,y\n1,2\n")
    with pytest.raises(DataError, match="takes a path as a quoted string, not 5"):
        data.load_dataset('csv(5, target="y")', LOADERS)  # a number would be read as an open file descriptor
    with pytest.raises(DataError, match="column names as quoted strings"):
        data.load_dataset(f'csv("{path}", target="y", features=5)', LOADERS)


def test_npz(tmp_path):
    path = str(tmp_path / "a.npz")
    np.savez(path, x=np.ones((5, 3)), y=np.arange(5), tokens=np.arange(10).reshape(5, 2))
    x, y, x_test, _ = data.load_npz(path)[:4]
    assert x.shape == (5, 3) and x.dtype == torch.float32 and y.tolist() == [0, 1, 2, 3, 4] and x_test is None
    assert data.load_npz(path, x="tokens").x.dtype == torch.int64


def test_npz_test_arrays(tmp_path):
    path = str(tmp_path / "a.npz")
    np.savez(path, x=np.ones((5, 3)), y=np.zeros(5), x_test=np.ones((2, 3)), y_test=np.ones(2))
    assert data.load_npz(path).y_test.tolist() == [1, 1]


def test_npz_missing_array_and_bad_file(tmp_path):
    path = str(tmp_path / "a.npz")
    np.savez(path, inputs=np.ones((5, 3)), y=np.zeros(5))
    with pytest.raises(DataError, match="no array named 'x'; its arrays are inputs, y"):
        data.load_npz(path)
    with pytest.raises(DataError, match="cannot read the .npz file"):
        data.load_npz(write_text(tmp_path / "b.npz", "not a zip"))


def test_torchvision_missing_library():
    with pytest.raises(DataError, match="pip install torchvision"):
        data.load_torchvision("CIFAR10")


# --- parse_call and load_dataset ---------------------------------------------------------------


def test_parse_call_literals():
    text = 'csv("t.csv", -1, 2.5e-3, None, True, target="y", features=["a", "b"], betas=(0.9, 0.999))'
    assert data.parse_call(text) == (
        "csv",
        ["t.csv", -1, 2.5e-3, None, True],
        {"target": "y", "features": ["a", "b"], "betas": (0.9, 0.999)},
    )
    assert data.parse_call(" digits() ") == ("digits", [], {})
    assert data.parse_call("digits") == ("digits", [], {})  # a bare name is a call without arguments


@pytest.mark.parametrize(
    "text, message",
    [
        ('os.system("x")', "not a plain name"),
        ('csv(path, target="y")', "'path' is not a literal"),
        ("Adam(lr=1e-3 * 2)", "is not a literal"),
        ("csv(*a)", "'\\*' arguments"),
        ("Adam(lr=1, lr=2)", "given twice"),
        ("digits(", "not a call"),
        ("[1, 2]", "not a call"),
        ("f()()", "not a plain name"),
    ],
)
def test_parse_call_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        data.parse_call(text)


def test_load_dataset_unknown_loader_and_bad_arguments():
    with pytest.raises(
        DataError, match="unknown data source 'digit' \\(did you mean 'digits'\\?\\); this script knows csv, digits"
    ):
        data.load_dataset("digit()", LOADERS)
    with pytest.raises(DataError, match="bad arguments .*it takes sum3\\(n: int = 1000, seed: int = 0\\)"):
        data.load_dataset("sum3(size=4)", LOADERS)
    with pytest.raises(DataError, match="the data source .*not a literal"):
        data.load_dataset("sum3(n=x)", LOADERS)
    assert data.load_dataset("sum3(7, seed=1)", LOADERS).x.shape == (7, 3)


def test_task_of():
    assert [data.task_of(n) for n in ("NLLLoss", "BCELoss", "HuberLoss")] == ["classification", "binary", "regression"]
    with pytest.raises(DataError, match="unknown loss 'MSELos' \\(did you mean 'MSELoss'\\?\\)"):
        data.task_of("MSELos")


# --- prepare_data ------------------------------------------------------------------------------


def prepare(args, input_shape=(64,), output_shape=(10,), input_dtype="float32", loaders=LOADERS):
    return data.prepare_data(args, loaders, input_shape, input_dtype, output_shape)


@pytest.mark.parametrize("shape", [(1, 8, 8), (8, 8), (64,), (None, 8), (1, None, 8), (None,)])
def test_prepare_reshapes_inputs(shape):
    splits = prepare(make_args(), input_shape=shape)
    expected = tuple(8 if d is None else d for d in shape) if len(shape) > 1 else (64,)
    assert splits.train[0].shape == (1797, *expected) and splits.train[0].dtype == torch.float32
    assert splits.train[1].dtype == torch.int64 and splits.task == "classification" and splits.num_classes == 10
    assert splits.source == "digits (1797 samples)" and splits.val is None and splits.test is None


def test_prepare_input_mismatch():
    with pytest.raises(
        DataError, match=r"samples are \[64\] \(64 values\) but the model takes \[1, 28, 28\] \(784 values\)"
    ):
        prepare(make_args(), input_shape=(1, 28, 28))
    with pytest.raises(DataError, match=r"takes \[None, 5\] \(any size that is a multiple of 5 values\)"):
        prepare(make_args(), input_shape=(None, 5))


def test_prepare_int64_inputs():
    loaders = {"tokens": lambda: Dataset(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0.0, 1.0]))}
    splits = prepare(
        make_args("tokens()"), input_shape=(None,), input_dtype="int64", output_shape=(2,), loaders=loaders
    )
    assert splits.train[0].dtype == torch.int64
    loaders = {"tokens": lambda: Dataset(torch.tensor([[1.5, 2.0]]), torch.tensor([0.0]))}
    with pytest.raises(DataError, match="whole numbers"):
        prepare(make_args("tokens()"), input_shape=(2,), input_dtype="int64", output_shape=(2,), loaders=loaders)


def test_prepare_classification_labels_out_of_range():
    loaders = {"letters": lambda: Dataset(torch.zeros(26, 4), torch.arange(26.0))}
    with pytest.raises(DataError, match="has 26 classes \\(labels 0 to 25\\) but the model's output has 10 units"):
        prepare(make_args("letters()"), input_shape=(4,), loaders=loaders)
    loaders = {"bad": lambda: Dataset(torch.zeros(3, 4), torch.tensor([0.0, 0.5, 1.0]))}
    with pytest.raises(DataError, match="whole numbers"):
        prepare(make_args("bad()"), input_shape=(4,), loaders=loaders)


def test_prepare_classification_fewer_classes_than_outputs():
    loaders = {"three": lambda: Dataset(torch.zeros(6, 2), torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0, 2.0]))}
    with pytest.raises(DataError, match="has 3 classes \\(labels 0 to 2\\) but the model's output has 10 units"):
        prepare(make_args("three()"), input_shape=(2,), output_shape=(10,), loaders=loaders)


def test_prepare_classification_label_column_squeezed():
    loaders = {"col": lambda: Dataset(torch.zeros(4, 2), torch.tensor([[0.0], [1.0], [2.0], [1.0]]))}
    splits = prepare(make_args("col()"), input_shape=(2,), output_shape=(3,), loaders=loaders)
    assert splits.train[1].shape == (4,) and splits.num_classes == 3


def test_prepare_binary_targets():
    splits = prepare(make_args("xor()", loss="BCEWithLogitsLoss()"), input_shape=(2,), output_shape=(1,))
    assert splits.train[1].shape == (4, 1) and splits.train[1].dtype == torch.float32
    assert splits.task == "binary" and splits.num_classes == 2
    loaders = {"multi": lambda: Dataset(torch.zeros(3, 2), torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))}
    splits = prepare(make_args("multi()", loss="BCELoss()"), input_shape=(2,), output_shape=(2,), loaders=loaders)
    assert splits.train[1].shape == (3, 2) and splits.num_classes is None
    with pytest.raises(DataError, match="0/1 targets"):
        prepare(make_args("sum3(n=10)", loss="BCELoss()"), input_shape=(3,), output_shape=(1,))


def test_prepare_regression_targets():
    splits = prepare(make_args("sum3(n=10)", loss="MSELoss()"), input_shape=(3,), output_shape=(1,))
    assert splits.train[1].shape == (10, 1) and splits.task == "regression" and splits.num_classes is None
    with pytest.raises(
        DataError, match=r"targets are \[\] \(1 value\) per sample but the model's output is \[2\] \(2 values\)"
    ):
        prepare(make_args("sum3(n=10)", loss="L1Loss()"), input_shape=(3,), output_shape=(2,))


def test_prepare_nan_and_empty():
    x = torch.ones(4, 2)
    x[1, 1] = float("nan")
    loaders = {"nan": lambda: Dataset(x, torch.zeros(4)), "empty": lambda: Dataset(torch.zeros(0, 2), torch.zeros(0))}
    with pytest.raises(DataError, match="NaN"):
        prepare(make_args("nan()"), input_shape=(2,), loaders=loaders)
    with pytest.raises(DataError, match="no samples"):
        prepare(make_args("empty()"), input_shape=(2,), loaders=loaders)


@pytest.mark.parametrize(
    "split, sizes",
    [((0.6, 0.2, 0.2), (1078, 360, 359)), ((0.8, 0.2), (1438, 359, None)), ((1.0,), (1797, None, None))],
)
def test_prepare_split_sizes(split, sizes):
    splits = prepare(make_args(split=split))
    got = tuple(None if part is None else len(part[0]) for part in (splits.train, splits.val, splits.test))
    assert got == sizes
    xs = torch.cat([part[0] for part in (splits.train, splits.val, splits.test) if part is not None])
    assert torch.equal(xs.sum(0), data.load_digits().x.sum(0).float())  # every sample used once


def test_prepare_split_with_official_test_set(tmp_path):
    write_idx_set(tmp_path, n_train=40, n_test=20)
    text = f'mnist("{tmp_path}")'
    splits = prepare(make_args(text, split=(0.6, 0.2, 0.2)), input_shape=(1, 28, 28))
    assert (len(splits.train[0]), len(splits.val[0]), len(splits.test[0])) == (30, 10, 20)
    assert splits.train[0].shape[1:] == (1, 28, 28) and splits.source == "mnist (40 training + 20 test samples)"
    splits = prepare(make_args(text, split=(1.0,)), input_shape=(784,))
    assert len(splits.train[0]) == 40 and splits.val is None and len(splits.test[0]) == 20


@pytest.mark.parametrize("split", [(0.5, 0.2), (0.5, 0.5, 0.1, -0.1), (1.2, -0.2), (), (0.0, 1.0), ("a",)])
def test_prepare_bad_split(split):
    with pytest.raises(DataError, match="--split"):
        prepare(make_args(split=split))


def test_prepare_split_is_seeded():
    first = prepare(make_args(split=(0.8, 0.2), seed=1)).val[1]
    assert torch.equal(prepare(make_args(split=(0.8, 0.2), seed=1)).val[1], first)
    assert not torch.equal(prepare(make_args(split=(0.8, 0.2), seed=2)).val[1], first)


def test_csv_keeps_its_class_names_and_columns(tmp_path):
    path = write_text(tmp_path / "t.csv", "a;b;kind;c\n1;2;dog;7\n3;4;cat;8\n5;6;emu;9\n7;8;cat;0\n")
    info = data.load_csv(path, target="kind", features=["c", "a"], delimiter=";").info
    assert info == {"features": ["c", "a"], "target": "kind", "class_names": ["cat", "dog", "emu"]}
    assert "class_names" not in data.load_csv(write_text(tmp_path / "n.csv", "a,y\n1,0\n2,1\n"), target="y").info


def test_npz_text_labels_are_numbered_alike_in_train_and_test(tmp_path):
    """A test set without one of the classes keeps the training set's numbering."""
    path = str(tmp_path / "a.npz")
    np.savez(
        path,
        x=np.ones((3, 2)),
        y=np.array(["ant", "bee", "cow"]),
        x_test=np.ones((2, 2)),
        y_test=np.array(["ant", "cow"]),
    )
    dataset = data.load_npz(path)
    assert dataset.y.tolist() == [0, 1, 2] and dataset.y_test.tolist() == [0, 2]
    assert dataset.info == {"class_names": ["ant", "bee", "cow"]}


@pytest.mark.parametrize("loader", ["mnist", "fashion_mnist"])
def test_a_download_with_another_checksum_is_refused(tmp_path, monkeypatch, loader):
    """Files that are not the published ones (here: generated stand-ins) are refused, and
    nothing is saved; every URL is https."""
    source, requested = serve_idx_set(tmp_path, monkeypatch)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="is not the published file .*MD5 .*nothing was saved"):
        LOADERS[loader](str(root), download=True)
    assert requested and all(url.startswith("https://") for url in requested)
    assert list(root.iterdir()) == []


def test_the_checksums_are_the_published_ones():
    for table in (data.MNIST_MD5, data.FASHION_MNIST_MD5):
        assert sorted(table) == sorted(IDX_NAMES) and all(len(md5) == 32 for md5 in table.values())
    assert data.MNIST_MD5["train-images-idx3-ubyte"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert data.FASHION_MNIST_MD5["t10k-labels-idx1-ubyte"] == "bb300cfdad3c16e7a12a480ee83cd310"
