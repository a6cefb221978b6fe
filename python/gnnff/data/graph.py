"""The single graph builder: atoms -> model input dict with a periodic neighbour list.

Edges come from vesin (a well-kept neighbour-list library). Every pair closer than r_max appears
in both directions; in a periodic cell shorter than 2 r_max an atom meets its own images, each
image being its own edge with its own Cartesian shift.
"""

from typing import Dict, Optional, Sequence

import numpy as np
import torch
import vesin

from gnnff import keys


def neighbour_list(positions: np.ndarray, cell: np.ndarray, pbc: Sequence[bool], r_max: float):
    """Full neighbour list: (edge_index (2,E) int64, edge_shift (E,3) Å) with r_ij < r_max.

    r_ij = pos[j] - pos[i] + edge_shift, edge_shift = S @ cell for integer cell shifts S.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if pbc.any() and abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError(
            "structure is periodic but its cell has zero volume; give the cell or set pbc=False"
        )
    if not pbc.any():
        cell = np.zeros((3, 3))
    calculator = vesin.NeighborList(cutoff=float(r_max), full_list=True)
    i, j, shifts = calculator.compute(points=positions, box=cell, periodic=pbc, quantities="ijS")
    edge_index = np.stack([i, j]).astype(np.int64)
    edge_shift = shifts.astype(np.float64) @ cell
    return edge_index, edge_shift


def atoms_to_graph(
    atoms,
    type_names: Sequence[str],
    r_max: float,
    dtype: torch.dtype = torch.float64,
    type_of_symbol: Optional[Dict[str, int]] = None,
) -> Dict[str, torch.Tensor]:
    """Model inputs for one ``ase.Atoms``: positions, types, edges; labels are added elsewhere."""
    if type_of_symbol is None:
        type_of_symbol = {name: t for t, name in enumerate(type_names)}
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(type_of_symbol))
    if unknown:
        raise ValueError(
            f"elements {unknown} are not among the model's types {list(type_names)}; "
            "train a model that includes them (type_names in the config)"
        )
    edge_index, edge_shift = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, r_max)
    return {
        keys.POSITIONS: torch.as_tensor(atoms.positions, dtype=dtype),
        keys.ATOM_TYPE: torch.as_tensor([type_of_symbol[s] for s in symbols], dtype=torch.long),
        keys.EDGE_INDEX: torch.as_tensor(edge_index),
        keys.EDGE_SHIFT: torch.as_tensor(edge_shift, dtype=dtype),
        keys.CELL: torch.as_tensor(atoms.cell.array, dtype=dtype).unsqueeze(0),
        keys.PBC: torch.as_tensor(atoms.pbc, dtype=torch.bool).unsqueeze(0),
    }
