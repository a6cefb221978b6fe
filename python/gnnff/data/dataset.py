"""Labelled structures -> graph dicts (data/graph.py) -> batches.

An *example* is the dict of one structure: the model inputs of ``atoms_to_graph`` plus labels
TOTAL_ENERGY (1,) eV, FORCES (N,3) eV/Å, STRESS (1,3,3) eV/Å^3 (zeros where absent) and
HAS_STRESS (1,) bool. ``collate`` joins examples into one batch graph with BATCH/NUM_GRAPHS.
Neighbour lists are built once, when the data set is made.
"""

import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from gnnff import keys
from gnnff.data.graph import atoms_to_graph

# Per-graph flag: does this structure carry a stress label? (request: move to gnnff.keys)
HAS_STRESS = keys.HAS_STRESS


def validate_structures(
    structures: Sequence,
    type_names: Sequence[str],
    source: str,
    need_energy: bool = True,
    need_forces: bool = True,
) -> None:
    """Raise a ValueError naming the structure and the fix for anything training cannot use."""
    if len(structures) == 0:
        raise ValueError(
            f"{source}: no structures; check the file and the data: section of the config"
        )
    unknown = sorted(
        {s for atoms in structures for s in atoms.get_chemical_symbols()} - set(type_names)
    )
    if unknown:
        raise ValueError(
            f"{source}: elements {unknown} have no type in the model (type_names {list(type_names)}); "
            "add them to model.type_names or remove those structures"
        )
    for i, atoms in enumerate(structures):
        where = atoms.info.get("gnnff_source", f"{source}[{i}]")
        if len(atoms) == 0:
            raise ValueError(f"{where}: structure with no atoms; remove it from the data")
        if not np.isfinite(atoms.positions).all() or not np.isfinite(atoms.cell.array).all():
            raise ValueError(
                f"{where}: positions or cell contain NaN/inf; fix or remove the structure"
            )
        results = atoms.calc.results if atoms.calc is not None else {}
        energy, forces, stress = results.get("energy"), results.get("forces"), results.get("stress")
        if need_energy and energy is None:
            raise ValueError(
                f"{where}: no energy label; give energy_key in data: or set loss.energy.weight: 0"
            )
        if need_forces and forces is None:
            raise ValueError(
                f"{where}: no forces in the data file; give the per-atom array name as data.forces_key "
                "or drop the forces term from loss:"
            )
        for name, value in (("energy", energy), ("forces", forces), ("stress", stress)):
            if value is not None and not np.isfinite(np.asarray(value, float)).all():
                raise ValueError(f"{where}: {name} contains NaN/inf; fix or remove the structure")
        if forces is not None and np.shape(forces) != (len(atoms), 3):
            raise ValueError(
                f"{where}: forces have shape {np.shape(forces)}, expected ({len(atoms)}, 3)"
            )


def _stress_matrix(stress) -> np.ndarray:
    s = np.asarray(stress, float)
    if s.size == 6:  # Voigt xx yy zz yz xz xy (ASE)
        xx, yy, zz, yz, xz, xy = s
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    return s.reshape(3, 3)


def structure_to_example(
    atoms, type_names: Sequence[str], r_max: float, dtype: torch.dtype = torch.float64
) -> Dict[str, torch.Tensor]:
    """Model inputs plus labels for one labelled ``ase.Atoms``."""
    example = atoms_to_graph(atoms, type_names, r_max, dtype=dtype)
    example[keys.ATOMIC_NUMBERS] = torch.as_tensor(atoms.numbers, dtype=torch.long)
    results = atoms.calc.results if atoms.calc is not None else {}
    energy = results.get("energy")
    example[keys.TOTAL_ENERGY] = torch.tensor(
        [math.nan if energy is None else float(energy)], dtype=dtype
    )
    forces = results.get("forces")
    forces = np.full((len(atoms), 3), np.nan) if forces is None else np.asarray(forces, float)
    example[keys.FORCES] = torch.as_tensor(forces, dtype=dtype)
    stress = results.get("stress")
    has_stress = stress is not None and bool(atoms.pbc.all())
    matrix = _stress_matrix(stress) if has_stress else np.zeros((3, 3))
    example[keys.STRESS] = torch.as_tensor(matrix, dtype=dtype).unsqueeze(0)
    example[HAS_STRESS] = torch.tensor([has_stress])
    return example


class AtomicDataset(torch.utils.data.Dataset):
    """In-memory list of examples (neighbour lists built once)."""

    def __init__(self, examples: List[Dict[str, torch.Tensor]], source: str = ""):
        self.examples = examples
        self.source = source

    @classmethod
    def from_structures(
        cls, structures, type_names, r_max, dtype=torch.float64, source: str = "", **validate_kwargs
    ):
        validate_structures(structures, type_names, source or "data", **validate_kwargs)
        return cls([structure_to_example(a, type_names, r_max, dtype) for a in structures], source)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        return self.examples[index]

    def subset(self, indices: Sequence[int]) -> "AtomicDataset":
        return AtomicDataset([self.examples[int(i)] for i in indices], self.source)

    def num_atoms(self) -> int:
        return sum(int(e[keys.POSITIONS].shape[0]) for e in self.examples)


_PER_ATOM = (keys.POSITIONS, keys.ATOM_TYPE, keys.FORCES, keys.ATOMIC_NUMBERS)
_PER_GRAPH = (keys.TOTAL_ENERGY, keys.STRESS, HAS_STRESS, keys.CELL, keys.PBC)


def collate(examples: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Join examples into one disconnected graph: atoms and edges concatenated, edge indices
    offset, BATCH (N,) = graph of each atom, NUM_GRAPHS (1,)."""
    if len(examples) == 0:
        raise ValueError("cannot collate an empty list of structures")
    batch: Dict[str, torch.Tensor] = {}
    for key in _PER_ATOM + _PER_GRAPH + (keys.EDGE_SHIFT,):
        if key in examples[0]:
            batch[key] = torch.cat([e[key] for e in examples], dim=0)
    counts = [int(e[keys.POSITIONS].shape[0]) for e in examples]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    batch[keys.EDGE_INDEX] = torch.cat(
        [e[keys.EDGE_INDEX] + int(o) for e, o in zip(examples, offsets)], dim=1
    )
    batch[keys.BATCH] = torch.repeat_interleave(torch.arange(len(examples)), torch.tensor(counts))
    batch[keys.NUM_GRAPHS] = torch.tensor([len(examples)])
    return batch


def to_device(
    batch: Dict[str, torch.Tensor], device: Optional[torch.device]
) -> Dict[str, torch.Tensor]:
    if device is None:
        return batch
    return {k: v.to(device) for k, v in batch.items()}
