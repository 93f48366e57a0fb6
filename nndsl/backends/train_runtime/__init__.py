"""The training runtime: Python source that nndsl copies into every generated training script.

These modules are never imported by nndsl itself at check or compile time. The training-script
backend (``nndsl/backends/train_script.py``) reads their source, takes the top-level functions,
classes and constants a spec needs (with everything they refer to), and writes them into one
standalone script after the model classes. ``nndsl train`` executes that same script in-process.

Rules for code in this package, so that it can be copied:
- top-level imports only of the standard library, ``torch``, ``from torch import nn`` and nndsl's
  standard-library-only modules named in train_script's ``_SHARED`` (``nndsl.suggest``): the
  script gets a copy of the definitions used from those, so each is written once, there;
  every optional library (numpy, sklearn, rich, tensorboard, matplotlib, torchvision) is imported
  inside the function that needs it, and its absence is a clear message, never a traceback;
- no imports between the modules of this package and no relative imports: a function that needs
  another module's function gets it as a parameter;
- names are unique across the package (they share one namespace in the script);
- code reads like code a person would write in a training script: short functions, comments
  that explain why.

``data.py``: the data sources and the preparation of splits. ``loop.py``: the training loop,
metrics, checkpoints, distributed training and the command-line entry point. ``flags.py``: the
value types of the script's command-line flags.
"""
