"""Frames -> extended XYZ files (ASE's writer) and the data card (JSON).

Labels are stored the ASE way, as a SinglePointCalculator, so ``ase.io.read`` gives them back
through ``atoms.get_potential_energy()``, ``get_forces()``, ``get_stress()``: in the file they are
the comment keys ``energy`` (eV) and ``stress`` (eV/Å^3, 3x3, ASE sign) and the per-atom
column ``forces`` (eV/Å).
"""

import json
import os
from typing import Dict, List

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from gnnff import keys

# label names in the files (ASE calculator property names) and the model-contract keys they feed
LABEL_KEYS = {"energy": keys.TOTAL_ENERGY, "forces": keys.FORCES, "stress": keys.STRESS}


def frame_to_atoms(frame: Dict) -> Atoms:
    atoms = Atoms(
        numbers=frame["numbers"], positions=frame["positions"], cell=frame["cell"], pbc=frame["pbc"]
    )
    results = {"energy": frame["energy"], "forces": frame["forces"]}
    if "stress" in frame:
        results["stress"] = frame["stress"]
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(frame["info"])
    return atoms


def write_frames(path: str, frames: List[Dict]) -> None:
    import ase.io

    # write to a temporary name first so a crash never leaves a half file under the real name
    tmp = path + ".part"
    ase.io.write(tmp, [frame_to_atoms(f) for f in frames], format="extxyz")
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_datacard(path: str, card: Dict) -> None:
    with open(path, "w") as f:
        json.dump(_jsonable(card), f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
