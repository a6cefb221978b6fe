"""Layers whose initial weights are drawn from a given ``torch.Generator`` (gnnff.models.base).

``torch.nn.Linear(...)`` and ``torch.nn.Embedding(...)`` draw from the global RNG when built. These
build the same modules without drawing (``torch.nn.utils.skip_init``) and then draw exactly what
their ``reset_parameters`` draws, in the same order, from ``generator`` (the global RNG when it is
None). So a model seeded with ``seeded_generator(s)`` gets the weights that
``torch.manual_seed(s)`` followed by the plain constructors gave (tests/models/test_pair_mlp.py,
tests/models/test_gemnet_t.py check it), without touching the global RNG.
"""

import math
from typing import Optional

import torch


def linear(
    n_in: int, n_out: int, bias: bool = True, generator: Optional[torch.Generator] = None
) -> torch.nn.Linear:
    """``torch.nn.Linear(n_in, n_out, bias)`` with its default init drawn from ``generator``."""
    layer = torch.nn.utils.skip_init(torch.nn.Linear, n_in, n_out, bias=bias)
    with torch.no_grad():
        # Linear.reset_parameters: kaiming_uniform(a = sqrt 5) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        if layer.bias is not None:
            bound = 1.0 / math.sqrt(n_in) if n_in > 0 else 0.0
            torch.nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


def embedding(
    n_types: int, dim: int, generator: Optional[torch.Generator] = None
) -> torch.nn.Embedding:
    """``torch.nn.Embedding(n_types, dim)`` with its default N(0, 1) init drawn from ``generator``."""
    layer = torch.nn.utils.skip_init(torch.nn.Embedding, n_types, dim)
    with torch.no_grad():
        torch.nn.init.normal_(layer.weight, generator=generator)
    return layer
