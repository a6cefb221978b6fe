"""Radial and angular bases of GemNet-T.

Radial (per edge, length d, cutoff c):  e_n(d) = u(d/c) sqrt(2/c) sin(n pi d / c) / d,  n = 1..N
with u the DimeNet polynomial envelope of order p (GemNet: p = 5); u, u', u'' vanish at d = c.

Angular (per triplet, angle theta at the shared centre):  Y_l^0(theta) = sqrt((2l+1)/4pi) P_l(cos)
for l = 0..L-1 (Legendre recursion). The circular basis of a triplet (e_out, e_in) is the outer
product Y_l^0(theta) e_n(d_out), as in GemNet's "efficient" form (the radial factor uses the
length of the edge that receives the message; see docs/gemnet_t.md).
"""

import math

import torch

from gnnff.models.common.radial import BesselBasis, PolynomialCutoff


class EnvelopedBessel(torch.nn.Module):
    """(E,) lengths (Å) -> (E, num_radial) Bessel functions times the smooth envelope."""

    def __init__(self, r_max: float, num_radial: int, envelope_exponent: int):
        super().__init__()
        self.bessel = BesselBasis(r_max, num_radial, trainable=False)
        self.envelope = PolynomialCutoff(r_max, envelope_exponent)

    def forward(self, length: torch.Tensor) -> torch.Tensor:
        return self.bessel(length).to(length.dtype) * self.envelope(length).unsqueeze(-1)


class LegendreBasis(torch.nn.Module):
    """cos(theta) (T,) -> (T, num_spherical) real spherical harmonics Y_l^0, l = 0..L-1."""

    def __init__(self, num_spherical: int):
        super().__init__()
        if num_spherical < 1:
            raise ValueError(f"num_spherical must be >= 1, got {num_spherical}")
        self.num_spherical = num_spherical
        norms = [math.sqrt((2 * l + 1) / (4.0 * math.pi)) for l in range(num_spherical)]
        self.register_buffer("norms", torch.tensor(norms, dtype=torch.float64))

    def forward(self, cos_angle: torch.Tensor) -> torch.Tensor:
        p_prev = torch.ones_like(cos_angle)
        polys = [p_prev]
        if self.num_spherical > 1:
            p_curr = cos_angle
            polys.append(p_curr)
            for l in range(1, self.num_spherical - 1):
                # (l+1) P_{l+1} = (2l+1) x P_l - l P_{l-1}
                p_next = ((2 * l + 1) * cos_angle * p_curr - l * p_prev) / (l + 1)
                polys.append(p_next)
                p_prev = p_curr
                p_curr = p_next
        return torch.stack(polys, dim=-1) * self.norms.to(cos_angle.dtype)
