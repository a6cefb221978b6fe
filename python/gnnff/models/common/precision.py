"""Keep e3nn's Clebsch-Gordan constants exact when a model changes dtype.

e3nn tensor products store their Wigner-3j tables as buffers computed in the default dtype
(float32). ``model.double()`` then only widens float32-rounded numbers, which breaks
equivariance at the 1e-7 level in float64. ``ExactConstantsMixin`` recomputes every ``_w3j_*``
buffer in float64 after each ``.to()/.double()/.float()`` and ``load_state_dict``.
"""

import re

import torch
from e3nn import o3

_W3J_NAME = re.compile(r"_w3j_(\d+)_(\d+)_(\d+)$")


def refresh_wigner_constants(module: torch.nn.Module) -> None:
    """Recompute float64 Wigner-3j buffers of all e3nn tensor products inside ``module``."""
    for sub in module.modules():
        for name, buf in list(sub._buffers.items()):
            match = _W3J_NAME.match(name)
            if match is None or buf is None or buf.dtype != torch.float64:
                continue
            l1, l2, l3 = (int(g) for g in match.groups())
            exact = o3.wigner_3j(l1, l2, l3, dtype=torch.float64, device=buf.device)
            sub._buffers[name] = exact.reshape(buf.shape)


def _refresh_after_load(module: torch.nn.Module, incompatible_keys) -> None:
    # a float64 model loading a state dict saved in float32 gets float32-rounded tables back
    refresh_wigner_constants(module)


class ExactConstantsMixin:
    """Mix into a torch.nn.Module that contains e3nn tensor products (before nn.Module) and call
    ``self.keep_constants_exact()`` at the end of __init__ (covers load_state_dict too)."""

    def keep_constants_exact(self) -> None:
        self.register_load_state_dict_post_hook(_refresh_after_load)

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        refresh_wigner_constants(self)
        return result
