"""Plain scalar MLP (SiLU), the radial and latent networks of the equivariant models."""

from typing import Sequence

import torch


class ScalarMLP(torch.nn.Module):
    """Linear layers with SiLU between them (none after the last); sizes = [in, hidden..., out].

    ``bias=False`` keeps f(0) = 0, so a radial input that vanishes at r_max gives a vanishing
    output (SiLU(0) = 0).
    """

    def __init__(self, sizes: Sequence[int], bias: bool = True):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least input and output sizes, got {sizes}")
        layers = []
        for k in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[k], sizes[k + 1], bias=bias))
            if k < len(sizes) - 2:
                layers.append(torch.nn.SiLU())
        self.net = torch.nn.Sequential(*layers)
        self.in_dim = sizes[0]
        self.out_dim = sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
