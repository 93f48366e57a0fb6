"""The emitted modules built and run with torch: a model's class with given weights, or torch's
own seeded initialisation (what exports, verification and tests compare against)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nndsl.backends.torch_module import class_names, load_module
from nndsl.ir import ModelIR, Program


def build_model(program: Program, model: ModelIR, weights: Mapping[str, np.ndarray] | None = None):
    """The emitted nn.Module in eval mode, holding ``weights`` when given (then built without
    torch's initialisation, which they replace)."""
    import torch

    cls = load_module(program)[class_names(program)[model.name]]
    if weights is None:
        return cls().eval()
    with torch.device("meta"):
        module = cls()
    if any(m._non_persistent_buffers_set for m in module.modules()):
        module = cls()  # buffers that no state_dict holds: keep their initial values
    else:
        module = module.to_empty(device="cpu")
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    module.load_state_dict(state, strict=True)
    return module.eval()


def fresh_module(program: Program, model: ModelIR, seed: int = 0):
    """The emitted module with torch's own initialisation, seeded, in eval mode."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(program, model)


def fresh_weights(program: Program, model: ModelIR, seed: int = 0) -> dict[str, np.ndarray]:
    """torch's own initialisation of the emitted module, seeded: the weights of a fresh export."""
    return module_weights(fresh_module(program, model, seed))


def module_weights(module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
