"""Reading a weights file for export: a state_dict (or a training checkpoint holding one) as numpy
arrays, from ``.safetensors`` (read here with numpy alone: no torch, no safetensors package) or
from a torch file.

Every tensor converts exactly or is refused with a message naming its key and why: bfloat16,
float16 and the float8 formats widen to float32 (every value of theirs is a float32 value); a
sparse tensor becomes dense; integer and bool tensors, float32 and float64 stay as they are (the
export rounds float64 to float32 as torch's ``load_state_dict`` into the module would).
Complex, quantized and meta tensors, block-scaled formats (F4, F6, E8M0) and keys that are not
names are refused.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from nndsl.install import install_command

#: safetensors dtype -> numpy dtype read as is
_PLAIN = {
    "BOOL": np.bool_,
    "U8": np.uint8,
    "I8": np.int8,
    "U16": np.uint16,
    "I16": np.int16,
    "U32": np.uint32,
    "I32": np.int32,
    "U64": np.uint64,
    "I64": np.int64,
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
}
#: safetensors dtype -> the ml_dtypes type its bytes are (widened to float32 exactly)
_NARROW_FLOATS = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
_MAX_HEADER = 100 * 1024 * 1024  # as the safetensors format itself limits it


class WeightsError(Exception):
    """The file cannot give the export its weights; the message says which tensor and why."""


def read_weights(path: str) -> dict[str, np.ndarray]:
    """The file's tensors by state_dict key (see the module for what converts and what is refused)."""
    if not os.path.exists(path):
        raise WeightsError(f"{path}: no such file")
    tensors = read_safetensors(path) if path.endswith(".safetensors") else read_torch_file(path)
    for prefix in ("module.", "_orig_mod."):  # DistributedDataParallel's and torch.compile's
        if tensors and all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


# ---------------------------------------------------------------- safetensors


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """A .safetensors file: an 8-byte little-endian header length, a JSON header, the data."""

    def bad(why: str) -> WeightsError:
        return WeightsError(f"{path}: not a readable safetensors file ({why})")

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) < 8:
        raise bad("too short for a header")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(_MAX_HEADER, len(data) - 8):
        raise bad("the header length is past the end of the file")
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad("its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    body = memoryview(data)[8 + length :]
    out = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], [int(d) for d in entry["shape"]], entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise bad(f"the entry of {key!r} lacks its dtype, shape or offsets") from None
        out[key] = _safetensor(path, key, dtype, shape, body, int(begin), int(end), bad)
    return out


def _safetensor(path, key, dtype, shape, body, begin, end, bad) -> np.ndarray:
    if dtype in _PLAIN:
        kind = np.dtype(_PLAIN[dtype]).newbyteorder("<")
    elif dtype in _NARROW_FLOATS:
        try:
            import ml_dtypes
        except ImportError:
            raise WeightsError(
                f"{path}: reading {dtype} tensors needs the ml_dtypes package (pip install ml_dtypes)"
            ) from None
        kind = np.dtype(getattr(ml_dtypes, _NARROW_FLOATS[dtype]))
    elif dtype.startswith("C"):
        raise WeightsError(f"{path}: {key!r} is complex ({dtype}); an ONNX export needs real weights")
    else:
        raise WeightsError(
            f"{path}: {key!r} is {dtype}, a format nndsl does not convert (block-scaled formats need their "
            "scales); dequantize the weights to float32 first"
        )
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if any(d < 0 for d in shape) or not 0 <= begin <= end <= len(body) or end - begin != count * kind.itemsize:
        raise bad(f"the data of {key!r} does not match its shape {shape} and dtype {dtype}")
    array = np.frombuffer(body[begin:end], dtype=kind).reshape(shape)
    if dtype in _NARROW_FLOATS or dtype == "F16":
        return array.astype(np.float32)  # exact: every value of theirs is a float32 value
    return array.astype(array.dtype.newbyteorder("="))  # a copy, in native byte order


# ---------------------------------------------------------------- torch files


def read_torch_file(path: str) -> dict[str, np.ndarray]:
    """A torch file (loaded with ``weights_only=True``): a state_dict, or a training checkpoint
    holding one under ``model``."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise WeightsError(
            f"{path}: reading a torch file needs torch: {install_command('torch')}, "
            "or give the weights as .safetensors, which needs no torch"
        )
    import pickle

    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable torch weights file ({first})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict) and "optimizer" in loaded:
        loaded = loaded["model"]  # a training checkpoint
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path}: holds no state_dict (a dict of tensors) nor a checkpoint with one")
    for key in loaded:
        if not isinstance(key, str):
            raise WeightsError(
                f"{path}: has the key {key!r} ({type(key).__name__}); a state_dict's keys are names such as 'fc1.weight'"
            )
    return {key: _torch_array(path, key, value) for key, value in loaded.items()}


def _torch_array(path: str, key: str, tensor) -> np.ndarray:
    import torch

    def refuse(why: str) -> WeightsError:
        return WeightsError(f"{path}: {key!r} {why}")

    tensor = tensor.detach()
    if tensor.is_meta:
        raise refuse("is a meta tensor: it has a shape but no values (saved from a model on the meta device)")
    if tensor.is_quantized:
        raise refuse(
            f"is quantized ({tensor.dtype}); an ONNX export needs the float weights: "
            "export the model before quantization, or dequantize (tensor.dequantize()) first"
        )
    if tensor.is_complex():
        raise refuse(f"is complex ({tensor.dtype}); an ONNX export needs real weights")
    if tensor.layout != torch.strided:
        tensor = tensor.to_dense()  # exact
    if tensor.is_floating_point() and tensor.element_size() < 4:
        tensor = tensor.float()  # bfloat16, float16, float8: every value is a float32 value
    try:
        return tensor.cpu().contiguous().numpy().copy()
    except (TypeError, RuntimeError) as exc:
        raise refuse(f"cannot be read as an array ({str(exc).splitlines()[0]})") from None
