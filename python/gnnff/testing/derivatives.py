"""Derivative checks: forces against central finite differences of the energy, the virial
against a finite homogeneous strain (LAMMPS sign: W_ab = -dE/d eps_ba). Differences are taken in
float64 (a float64 copy of the model for float32 checks)."""

import copy

import numpy as np
import torch

from gnnff import keys
from gnnff.testing.helpers import (
    FD_RTOL,
    FD_STEP,
    assert_close,
    assert_nontrivial,
    evaluate_atoms,
    prepare,
    random_cluster,
    random_crystal,
)


def _fd_model(model, dtype):
    # float32 forces are checked against float64 differences of the same weights
    return model if dtype == torch.float64 else copy.deepcopy(model).to(torch.float64).eval()


def _energy(model, atoms) -> float:
    return float(evaluate_atoms(model, atoms, torch.float64)[keys.TOTAL_ENERGY].sum())


def check_forces_finite_difference(model, dtype: torch.dtype, n_directions: int = 4):
    """F = -dE/dx by central differences (step FD_STEP Å): every component of atom 0, and
    ``n_directions`` random directions moving all atoms at once (F . d = -dE/dt), on a cluster
    and a periodic cell."""
    prepare(model, dtype)
    fd_model = _fd_model(model, dtype)
    rng = np.random.default_rng(12)
    for atoms in (random_cluster(model.type_names, n_atoms=5), random_crystal(model.type_names)):
        forces = evaluate_atoms(model, atoms, dtype)[keys.FORCES].double()
        assert_nontrivial(forces)
        directions = [np.eye(len(atoms) * 3)[a].reshape(-1, 3) for a in range(3)]
        directions += [rng.standard_normal((len(atoms), 3)) for _ in range(n_directions)]
        for d in directions:
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions += FD_STEP * d
            minus.positions -= FD_STEP * d
            fd = -(_energy(fd_model, plus) - _energy(fd_model, minus)) / (2 * FD_STEP)
            projected = float((forces * torch.as_tensor(d)).sum())
            scale = float(forces.abs().max()) * float(np.abs(d).sum())
            assert_close(
                projected,
                fd,
                FD_RTOL[dtype],
                "forces vs finite differences of the energy",
                scale=scale,
            )


def check_virial_finite_strain(model, dtype: torch.dtype):
    """W_ab = -dE/d(eps_ba) for x -> (1 + eps) x applied to positions and cell (LAMMPS sign)."""
    prepare(model, dtype)
    fd_model = _fd_model(model, dtype)
    atoms = random_crystal(model.type_names)
    virial = evaluate_atoms(model, atoms, dtype)[keys.VIRIAL][0].double()
    assert_nontrivial(virial, "virial")
    fd = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1.0, -1.0):
                eps = np.zeros((3, 3))
                eps[b, a] = sign * FD_STEP
                deform = np.eye(3) + eps
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ deform.T, scale_atoms=False)
                strained.positions = atoms.positions @ deform.T
                energies.append(_energy(fd_model, strained))
            fd[a, b] = -(energies[0] - energies[1]) / (2 * FD_STEP)
    assert_close(virial, fd, FD_RTOL[dtype], "virial vs finite strain derivative")
