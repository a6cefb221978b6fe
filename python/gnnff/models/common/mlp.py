"""Plain scalar MLP (SiLU), the radial and latent networks of the equivariant models."""

from typing import Sequence

import torch


class ScalarMLP(torch.nn.Module):
    """Linear layers with SiLU between them (none after the last); sizes = [in, hidden..., out].

    ``bias=False`` keeps f(0) = 0, so a radial input that vanishes at r_max gives a vanishing
    output (SiLU(0) = 0).

    ``init``: "torch" keeps torch's Linear init (U(+-1/sqrt(fan_in)): activations shrink from
    layer to layer); "variance_preserving" draws N(0, g/fan_in) with g = 1 for the first layer and
    2 after a SiLU, and zero biases, so unit-variance inputs keep O(1) activations (the
    learning-curve trials in docs/benchmarks.md, "Is the per-epoch gap real").
    """

    INITS = ("torch", "variance_preserving")

    def __init__(self, sizes: Sequence[int], bias: bool = True, init: str = "torch"):
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
        if init not in self.INITS:
            raise ValueError(f"unknown MLP init {init!r}; choose one of {list(self.INITS)}")
        if init == "variance_preserving":
            linears = [m for m in layers if isinstance(m, torch.nn.Linear)]
            with torch.no_grad():
                for k, lin in enumerate(linears):
                    gain = 1.0 if k == 0 else 2.0  # 2: SiLU passes about half the variance
                    lin.weight.normal_(0.0, (gain / lin.in_features) ** 0.5)
                    if lin.bias is not None:
                        lin.bias.zero_()
        self.in_dim = sizes[0]
        self.out_dim = sizes[-1]
        self.n_modules = len(layers)
        self.scale_inside = not bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def scaled(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """forward(x) * scale (scale: one factor per row, (B, 1)). Without biases the last layer
        is linear in its input, so the factor goes onto that input: hidden-width rows instead
        of output-width ones, forwards and in every derivative (NequIP's radial weights times
        the cutoff: 16-64 columns instead of up to 1000)."""
        if not self.scale_inside:
            return self.net(x) * scale
        for k, layer in enumerate(self.net):
            if k == self.n_modules - 1:
                x = x * scale
            x = layer(x)
        return x
