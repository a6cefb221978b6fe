"""Shared pieces of the physics battery: tolerances, test structures, evaluation, comparisons.

Units: Å, eV, eV/Å. Structures are small and seeded, so every check is fast and repeatable.
"""

from typing import Callable, Dict, List

import numpy as np
import torch
from ase import Atoms
from e3nn import o3

from gnnff.data.graph import atoms_to_graph

Factory = Callable[[torch.dtype], torch.nn.Module]

# relative tolerances (to the typical size of the quantity) per dtype
RTOL = {torch.float64: 1e-9, torch.float32: 2e-4}
# finite differences are done in float64 (a float64 copy of the model for float32 checks)
FD_STEP = 1e-4  # Å (and strain)
FD_RTOL = {torch.float64: 1e-6, torch.float32: 2e-4}


def random_cluster(
    type_names: List[str], n_atoms: int = 7, seed: int = 0, min_dist: float = 1.7, box: float = 4.0
) -> Atoms:
    """Non-periodic cluster of random atoms, no pair closer than ``min_dist`` Å."""
    rng = np.random.default_rng(seed)
    pos: List[np.ndarray] = []
    while len(pos) < n_atoms:
        p = rng.uniform(0.0, box, 3)
        if all(np.linalg.norm(p - q) > min_dist for q in pos):
            pos.append(p)
    symbols = [type_names[k % len(type_names)] for k in rng.permutation(n_atoms)]
    return Atoms(symbols=symbols, positions=np.array(pos), pbc=False)


def random_crystal(type_names: List[str], seed: int = 1) -> Atoms:
    """Small triclinic periodic cell (8 atoms, rattled diamond-like) shorter than 2 r_max."""
    rng = np.random.default_rng(seed)
    a = 5.43
    frac = np.array(
        [
            [0, 0, 0],
            [0.5, 0.5, 0],
            [0.5, 0, 0.5],
            [0, 0.5, 0.5],
            [0.25, 0.25, 0.25],
            [0.75, 0.75, 0.25],
            [0.75, 0.25, 0.75],
            [0.25, 0.75, 0.75],
        ]
    )
    cell = a * (np.eye(3) + 0.05 * rng.standard_normal((3, 3)))
    pos = frac @ cell + 0.1 * rng.standard_normal((8, 3))
    symbols = [type_names[k % len(type_names)] for k in rng.permutation(8)]
    return Atoms(symbols=symbols, positions=pos, cell=cell, pbc=True)


def graph_of(model, atoms: Atoms, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    return atoms_to_graph(atoms, model.type_names, model.r_max, dtype=dtype)


def evaluate(model, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out = model(dict(data))
    return {k: v.detach() for k, v in out.items()}


def evaluate_atoms(model, atoms: Atoms, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    return evaluate(model, graph_of(model, atoms, dtype))


def prepare(model, dtype: torch.dtype):
    return model.to(dtype).eval()


def assert_close(actual, expected, rtol: float, what: str, scale=None):
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    if scale is None:
        scale = float(expected.abs().max()) if expected.numel() else 1.0
    tol = rtol * max(scale, 1e-3)
    err = float((actual - expected).abs().max()) if expected.numel() else 0.0
    assert err <= tol, f"{what}: max deviation {err:.3e} > tolerance {tol:.3e} (scale {scale:.3e})"


def assert_nontrivial(forces: torch.Tensor, what: str = "forces"):
    # a model that outputs zero forces would pass every symmetry check: refuse it
    assert float(forces.abs().max()) > 1e-6, f"{what} are all ~0: the check would be vacuous"


def random_rotation(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def wigner_d(irreps: o3.Irreps, rot: np.ndarray) -> torch.Tensor:
    """Block-diagonal D(R) of ``irreps`` for a proper rotation, exact in float64.

    e3nn's ``Irreps.D_from_matrix`` goes through Euler angles and float32 tables (errors
    ~1e-7); here each D_l solves Y_l(R v) = D_l Y_l(v) by least squares over many v instead.
    """
    r = torch.as_tensor(rot, dtype=torch.float64)
    vs = torch.as_tensor(np.random.default_rng(0).standard_normal((64, 3)))
    blocks = []
    for mul, ir in o3.Irreps(irreps):
        y = o3.spherical_harmonics(ir.l, vs, normalize=True, normalization="component")
        y_rot = o3.spherical_harmonics(ir.l, vs @ r.T, normalize=True, normalization="component")
        d_l = torch.linalg.lstsq(y, y_rot).solution.T  # y_rot = y @ d_l^T
        blocks += [d_l] * mul
    return torch.block_diag(*blocks)
