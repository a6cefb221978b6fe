"""Building blocks shared by the gnnff energy models (Allegro, NequIP, GemNet-T).

- radial.py: Bessel radial basis and the smooth polynomial cutoff envelope (Å).
- type_embedding.py: per-element learned embedding (the only per-type parameters of a model).
- mlp.py: plain scalar MLPs.
- scatter.py: sum of edge values onto atoms.
- irreps.py: the irreps a model of given l_max and parity carries.
"""

from gnnff.models.common.irreps import allowed_irreps, spherical_harmonics_irreps
from gnnff.models.common.mlp import ScalarMLP
from gnnff.models.common.radial import BesselBasis, PolynomialCutoff, RadialEmbedding
from gnnff.models.common.scatter import scatter_sum
from gnnff.models.common.type_embedding import TypeEmbedding

__all__ = [
    "BesselBasis",
    "PolynomialCutoff",
    "RadialEmbedding",
    "ScalarMLP",
    "TypeEmbedding",
    "allowed_irreps",
    "scatter_sum",
    "spherical_harmonics_irreps",
]
