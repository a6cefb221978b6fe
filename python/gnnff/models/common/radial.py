"""Radial basis of edge lengths with a smooth cutoff (as in NequIP / Allegro / DimeNet).

Bessel basis (Gasteiger et al. 2020):   b_n(r) = sqrt(2 / r_max) * sin(n pi r / r_max) / r
Polynomial envelope (DimeNet, order p): u(d) = 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1)
                                              - p(p+1)/2 d^(p+2),   d = r / r_max, u = 0 for d >= 1
u(1) = u'(1) = u''(1) = 0, so anything multiplied by u has energy AND force going continuously to
zero at r_max: atoms crossing the cutoff produce no jump in energy or force.
"""

import math

import torch


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
        return u * (d < 1.0).to(u.dtype)


class BesselBasis(torch.nn.Module):
    """n_basis Bessel functions sin(n pi r / r_max) / r with trainable frequencies."""

    def __init__(self, r_max: float, n_basis: int = 8, trainable: bool = True):
        super().__init__()
        if n_basis < 1:
            raise ValueError(f"n_basis must be >= 1, got {n_basis}")
        self.r_max = float(r_max)
        self.prefactor = math.sqrt(2.0 / self.r_max)
        weights = torch.linspace(1.0, float(n_basis), n_basis) * math.pi
        if trainable:
            self.frequencies = torch.nn.Parameter(weights)
        else:
            self.register_buffer("frequencies", weights)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)  # (E, 1); edges have r > 0 (an atom is never its own neighbour)
        return self.prefactor * torch.sin(self.frequencies * r / self.r_max) / r


class RadialEmbedding(torch.nn.Module):
    """Bessel basis times the polynomial envelope: (E,) lengths -> (E, n_basis), zero at r_max."""

    def __init__(self, r_max: float, n_basis: int = 8, p: int = 6, trainable: bool = True):
        super().__init__()
        self.basis = BesselBasis(r_max, n_basis, trainable)
        self.cutoff = PolynomialCutoff(r_max, p)
        self.n_basis = n_basis

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.basis(r) * self.cutoff(r).unsqueeze(-1)
