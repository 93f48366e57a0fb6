"""The ONNX opsets nndsl exports and the default one: a leaf, read without importing onnx."""

DEFAULT_OPSET = 21
MIN_OPSET = 17
MAX_OPSET = 23
