"""Which irreducible representations (irreps) a model of given l_max and parity carries.

parity=True: every (l, p) with l <= l_max and p = +-1 (full O(3): vectors and pseudovectors).
parity=False: only the "natural" parity p = (-1)^l of the spherical harmonics (0e, 1o, 2e, ...),
cheaper, and still E(3)-equivariant (energies are invariant under reflections either way).
"""

from typing import List, Tuple

from e3nn import o3


def spherical_harmonics_irreps(l_max: int) -> o3.Irreps:
    if l_max < 0:
        raise ValueError(f"l_max must be >= 0, got {l_max}")
    return o3.Irreps.spherical_harmonics(l_max)


def allowed_irreps(l_max: int, parity: bool) -> List[Tuple[int, int]]:
    """(l, p) pairs, ordered by l then even before odd."""
    out = []
    for l in range(l_max + 1):
        natural = (-1) ** l
        if parity:
            out += [(l, 1), (l, -1)]
        else:
            out.append((l, natural))
    return out
