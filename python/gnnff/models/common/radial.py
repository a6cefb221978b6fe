"""Radial basis of edge lengths with a smooth cutoff (as in NequIP / Allegro / DimeNet).

Bessel basis (Gasteiger et al. 2020):   b_n(r) = sqrt(2 / r_max) * sin(n pi r / r_max) / r
Polynomial envelope (DimeNet, order p): u(d) = 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1)
                                              - p(p+1)/2 d^(p+2),   d = r / r_max, u = 0 for d >= 1
u(1) = u'(1) = u''(1) = 0, so anything multiplied by u has energy AND force going continuously to
zero at r_max: atoms crossing the cutoff produce no jump in energy or force.
"""

import math

import torch
from torch.jit import Final


class PolynomialCutoff(torch.nn.Module):
    """Smooth envelope u(r): 1 at r = 0, 0 with zero first and second derivative at r >= r_max."""

    def __init__(self, r_max: float, p: int = 6):
        super().__init__()
        if r_max <= 0:
            raise ValueError(f"r_max must be positive (Å), got {r_max}")
        if p < 2:
            raise ValueError(f"polynomial cutoff order p must be >= 2 for smooth forces, got {p}")
        self.r_max = float(r_max)
        self.p = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p = self.p
        d = r / self.r_max
        u = (
            1.0
            - (p + 1.0) * (p + 2.0) / 2.0 * torch.pow(d, p)
            + p * (p + 2.0) * torch.pow(d, p + 1.0)
            - p * (p + 1.0) / 2.0 * torch.pow(d, p + 2.0)
        )
        # r.dtype, not u.dtype: the same value, but pair_mlp's original graph, which TorchScript's
        # fuser then rounds the same way in float32 (tests/test_export.py's float32 bound)
        return u * (d < 1.0).to(r.dtype)


class BesselBasis(torch.nn.Module):
    """n_basis Bessel functions sqrt(2 / r_max) sin(n pi r / r_max) / r, n = 1..n_basis.

    ``trainable=True`` (NequIP, Allegro): the parameter ``frequencies`` holds n pi (dimensionless,
    as in nequip's BesselBasis) and is divided by r_max in forward, so the optimiser acts on n pi.
    ``trainable=False`` (pair_mlp, GemNet-T): the buffer ``frequencies`` holds the wavenumbers
    n pi / r_max in 1/Å, computed once in float64 (a float64 model then has exact frequencies,
    not float32-rounded pi). These are pair_mlp's original arithmetic, kept bit for bit so that
    its saved models give the same numbers. A fixed basis is a function of (r_max, n_basis), so
    loading a state dict recomputes it: GemNet-T checkpoints written before this form (which
    stored n pi) load unchanged.
    """

    # a constant to TorchScript: the branch not taken is compiled out, so the scripted fixed basis
    # is the same graph pair_mlp always had (a runtime branch changed its float32 rounding)
    trainable: Final[bool]

    def __init__(self, r_max: float, n_basis: int = 8, trainable: bool = True):
        super().__init__()
        if n_basis < 1:
            raise ValueError(f"n_basis must be >= 1, got {n_basis}")
        self.r_max = float(r_max)
        self.prefactor = math.sqrt(2.0 / self.r_max)
        self.trainable = bool(trainable)
        if trainable:
            self.frequencies = torch.nn.Parameter(
                torch.linspace(1.0, float(n_basis), n_basis) * math.pi
            )
        else:
            self.register_buffer("frequencies", self._fixed_frequencies(n_basis))

    def _fixed_frequencies(self, n_basis: int) -> torch.Tensor:
        return torch.arange(1, n_basis + 1, dtype=torch.float64) * math.pi / self.r_max

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "frequencies"
        stored = state_dict.get(key)
        if not self.trainable and stored is not None and stored.shape == self.frequencies.shape:
            state_dict[key] = self._fixed_frequencies(stored.shape[0]).to(stored.dtype)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        # edges have r > 0 (an atom is never its own neighbour), so sin(k r) / r is finite
        if self.trainable:
            r = r.unsqueeze(-1)  # (E, 1)
            return self.prefactor * torch.sin(self.frequencies * r / self.r_max) / r
        # written as pair_mlp always wrote it (two unsqueezes): the same autograd graph, so the
        # same summation order of gradients, so bit-identical forces
        return (
            self.prefactor
            * torch.sin(self.frequencies.to(r.dtype) * r.unsqueeze(-1))
            / r.unsqueeze(-1)
        )


class RadialEmbedding(torch.nn.Module):
    """Bessel basis times the polynomial envelope: (E,) lengths -> (E, n_basis), zero at r_max."""

    def __init__(self, r_max: float, n_basis: int = 8, p: int = 6, trainable: bool = True):
        super().__init__()
        self.basis = BesselBasis(r_max, n_basis, trainable)
        self.cutoff = PolynomialCutoff(r_max, p)
        self.n_basis = n_basis

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.basis(r) * self.cutoff(r).unsqueeze(-1)
