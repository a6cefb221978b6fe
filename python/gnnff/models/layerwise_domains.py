"""A pure-Python emulation of a domain-decomposed layer-wise run (the scheme of pair_style gnnff
`comm layer`), used as the reference the C++ path is tested against and to prove the scheme.

The periodic cell is cut into a grid of "ranks" in fractional coordinates (as LAMMPS cuts a
triclinic box). A rank owns the atoms in its cell of the grid and holds as ghosts every periodic
image of any atom within ``ghost_cutoff`` (default r_max) of one of its own atoms. Then

* forward: h0 = embed(types) on every atom; for each layer k every rank computes h_{k+1} of its
  own atoms from h_k of its atoms and ghosts; the owners' h_{k+1} are copied to the ghosts
  (forward exchange); the energy is the sum of the owned atoms' E_i over ranks;
* backward, layer by layer in reverse: dE/dh_{k+1} of owned atoms -> (dE/dh_k of atoms and
  ghosts, dE/dr_ij); each ghost's dE/dh_k is added to its owner (reverse exchange);
* forces: F_i += g_ij, F_j -= g_ij per edge, ghost forces added to their owners (what LAMMPS
  does with newton on); virial W = -sum r_ij (x) g_ij.

``reverse_exchange=False`` drops the ghost-gradient exchange: the control a test uses to show it
sees the ghost gradients. Units: Å, eV, eV/Å.
"""

import itertools
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch


@dataclass
class Rank:
    """One emulated rank: its atoms (owned first, then ghosts) and its edges."""

    owned: np.ndarray  # (n_local,) global index of each owned atom
    ghost_atom: np.ndarray  # (n_ghost,) global index of the atom each ghost images
    positions: np.ndarray  # (n_local + n_ghost, 3) Å, ghosts at their image positions
    edge_index: np.ndarray  # (2, E) centre (< n_local), neighbour (any)

    @property
    def n_local(self) -> int:
        return len(self.owned)

    @property
    def atoms(self) -> np.ndarray:
        return np.concatenate([self.owned, self.ghost_atom])


def decompose(
    positions: np.ndarray,
    cell: np.ndarray,
    grid: Sequence[int],
    r_max: float,
    ghost_cutoff: Optional[float] = None,
) -> List[Rank]:
    """Cut a periodic cell (rows = lattice vectors, Å) into a grid of ranks (see module doc)."""
    ghost_cutoff = r_max if ghost_cutoff is None else ghost_cutoff
    cell = np.asarray(cell, dtype=np.float64)
    frac = np.linalg.solve(cell.T, np.asarray(positions, dtype=np.float64).T).T % 1.0
    wrapped = frac @ cell
    grid = np.asarray(grid)
    owner_cell = np.minimum((frac * grid).astype(int), grid - 1)
    owner = np.ravel_multi_index(owner_cell.T, grid)
    # enough periodic images that every point within ghost_cutoff of the cell is covered
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    reach = np.ceil(ghost_cutoff / heights).astype(int) + 1
    shifts = np.array(list(itertools.product(*[range(-m, m + 1) for m in reach])))
    image_pos = (wrapped[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    image_atom = np.tile(np.arange(len(frac)), len(shifts))
    is_home = np.repeat(np.all(shifts == 0, axis=1), len(frac))
    ranks = []
    for r in range(int(np.prod(grid))):
        owned = np.flatnonzero(owner == r)
        local_pos = wrapped[owned]
        if len(owned):
            d = np.linalg.norm(image_pos[:, None, :] - local_pos[None, :, :], axis=2).min(axis=1)
            ghost = np.flatnonzero((d < ghost_cutoff) & ~(is_home & (owner[image_atom] == r)))
        else:
            ghost = np.zeros(0, dtype=int)
        pos = np.concatenate([local_pos, image_pos[ghost]])
        # edges from owned centres to every other atom or ghost closer than r_max
        if len(owned):
            dist = np.linalg.norm(pos[None, :, :] - local_pos[:, None, :], axis=2)
            dist[np.arange(len(owned)), np.arange(len(owned))] = np.inf
            centre, neighbour = np.nonzero(dist < r_max)
        else:
            centre = neighbour = np.zeros(0, dtype=int)
        ranks.append(
            Rank(owned, image_atom[ghost], pos, np.stack([centre, neighbour]).astype(np.int64))
        )
    return ranks


def evaluate_decomposed(
    model,
    positions: np.ndarray,
    cell: np.ndarray,
    atom_type: np.ndarray,
    grid: Sequence[int],
    reverse_exchange: bool = True,
    ghost_cutoff: Optional[float] = None,
) -> Dict[str, np.ndarray]:
    """Energy (eV), atomic energies, forces (eV/Å) and virial (eV, LAMMPS sign) of a
    LayerwiseForceModel run layer by layer on a grid of emulated ranks (see module doc)."""
    dtype = model.per_type_energy_shift.dtype
    ranks = decompose(positions, cell, grid, model.r_max, ghost_cutoff)
    n_atoms = len(positions)
    # row of each global atom in its owner's local block
    local_row = np.zeros(n_atoms, dtype=int)
    owner_of = np.zeros(n_atoms, dtype=int)
    for r, rank in enumerate(ranks):
        local_row[rank.owned] = np.arange(rank.n_local)
        owner_of[rank.owned] = r
    types = [torch.as_tensor(atom_type[rank.atoms], dtype=torch.long) for rank in ranks]
    edges = [torch.as_tensor(rank.edge_index) for rank in ranks]
    vectors = []  # r_ij = x_j - x_i (Å), each rank's autograd leaf
    for rank, edge in zip(ranks, edges):
        pos = torch.as_tensor(rank.positions, dtype=dtype)
        vectors.append((pos[edge[1]] - pos[edge[0]]).requires_grad_(True))

    def exchange_forward(local_h: List[torch.Tensor]) -> List[torch.Tensor]:
        """Each rank's owned rows followed by its ghosts' copies of their owners' rows."""
        return [
            torch.cat(
                [local_h[r]]
                + [local_h[owner_of[a]][local_row[a]].unsqueeze(0) for a in rank.ghost_atom]
            )
            for r, rank in enumerate(ranks)
        ]

    n_layers = model.layerwise_num_layers()
    h_in: List[List[torch.Tensor]] = []  # per layer, per rank: the leaf fed to the layer
    h_out: List[List[torch.Tensor]] = []
    local_h = [model.layerwise_embed(t[: rank.n_local]).detach() for t, rank in zip(types, ranks)]
    for k in range(n_layers):
        full = [h.detach().requires_grad_(True) for h in exchange_forward(local_h)]
        out = [
            model.layerwise_layer(k, full[r], vectors[r], edges[r], types[r], rank.n_local)
            for r, rank in enumerate(ranks)
        ]
        h_in.append(full)
        h_out.append(out)
        local_h = [o.detach() for o in out]
    final = [h.requires_grad_(True) for h in local_h]
    atomic = [
        model.layerwise_atomic_energy(final[r], types[r][: rank.n_local])
        for r, rank in enumerate(ranks)
    ]

    grad_local = [_grad(atomic[r].sum(), final[r]) for r in range(len(ranks))]
    edge_grad = [torch.zeros_like(v) for v in vectors]
    for k in reversed(range(n_layers)):
        grad_full = []
        for r in range(len(ranks)):
            if h_out[k][r].numel() == 0:  # a rank without atoms has nothing to differentiate
                grad_full.append(torch.zeros_like(h_in[k][r]))
                continue
            g_h, g_r = torch.autograd.grad(
                [h_out[k][r]],
                [h_in[k][r], vectors[r]],
                grad_outputs=[grad_local[r]],
                allow_unused=True,
            )
            grad_full.append(torch.zeros_like(h_in[k][r]) if g_h is None else g_h)
            if g_r is not None:
                edge_grad[r] = edge_grad[r] + g_r
        grad_local = [g[: rank.n_local].clone() for g, rank in zip(grad_full, ranks)]
        if reverse_exchange:
            for r, rank in enumerate(ranks):
                for n, a in enumerate(rank.ghost_atom):
                    grad_local[owner_of[a]][local_row[a]] += grad_full[r][rank.n_local + n]

    forces = np.zeros((n_atoms, 3))
    virial = np.zeros((3, 3))
    atomic_energy = np.zeros(n_atoms)
    for r, rank in enumerate(ranks):
        g = edge_grad[r].detach()
        i, j = edges[r]
        f = (
            torch.zeros(len(rank.positions), 3, dtype=g.dtype)
            .index_add(0, i, g)
            .index_add(0, j, -g)
        )
        np.add.at(forces, rank.atoms, f.numpy())  # ghost forces go to their owners
        virial -= (vectors[r].detach().unsqueeze(-1) * g.unsqueeze(-2)).sum(0).numpy()
        atomic_energy[rank.owned] = atomic[r].detach().numpy()
    return {
        "energy": float(atomic_energy.sum()),
        "atomic_energy": atomic_energy,
        "forces": forces,
        "virial": virial,
        "ghosts_per_rank": [len(rank.ghost_atom) for rank in ranks],
    }


def _grad(output: torch.Tensor, leaf: torch.Tensor) -> torch.Tensor:
    """d output / d leaf, zeros where output does not depend on it (a rank without atoms)."""
    grad = torch.autograd.grad([output], [leaf], allow_unused=True)[0]
    return torch.zeros_like(leaf) if grad is None else grad
