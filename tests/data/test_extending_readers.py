"""docs/extending.md, "A training-data reader", done for real: a reader defined here, registered by
its decorator alone, is found by ``read_structures`` from the file suffix (format "auto") and by
name, and labels frames in eV, eV/Å; a misspelt name is named."""

from typing import List

import numpy as np
import pytest
from ase import Atoms

from gnnff.data.readers import (
    available_formats,
    labelled,
    read_structures,
    register_reader,
)


# ---- the reader of docs/extending.md --------------------------------------------------------
@register_reader("energy_table", suffixes=(".etab",), description="an energy table (.etab)")
def read_energy_table(path: str, index: str = ":") -> List[Atoms]:
    """Blocks of: a line 'N energy_kJ_per_mol', then N lines 'symbol x y z fx fy fz' (Å, kJ/mol/Å)."""
    kj_per_mol = 0.01036427230  # eV (ase.units.kJ / ase.units.mol)
    lines = [line.split() for line in open(path) if line.strip()]
    frames, k = [], 0
    while k < len(lines):
        n, energy = int(lines[k][0]), float(lines[k][1])
        rows = lines[k + 1 : k + 1 + n]
        atoms = Atoms([r[0] for r in rows], positions=[[float(v) for v in r[1:4]] for r in rows])
        forces = np.array([[float(v) for v in r[4:7]] for r in rows]) * kj_per_mol
        frames.append(
            labelled(atoms, energy * kj_per_mol, forces, None, "energy_table: kJ/mol -> eV")
        )
        k += 1 + n
    return frames[_slice(index)]


def _slice(index: str) -> slice:
    return slice(*[int(p) if p else None for p in index.split(":")])


def test_registered_reader_reads_by_suffix_and_by_name(tmp_path):
    path = tmp_path / "water.etab"
    path.write_text(
        "2 -96.485\nH 0 0 0 1 0 0\nO 0.96 0 0 -1 0 0\n2 0\nH 0 0 0 0 0 0\nO 1.0 0 0 0 0 0\n"
    )
    assert "energy_table" in available_formats()
    frames = read_structures(str(path))
    assert len(frames) == 2 and frames[0].get_chemical_symbols() == ["H", "O"]
    assert frames[0].get_potential_energy() == pytest.approx(
        -96.485 * 0.01036427230, rel=1e-12
    )  # ~ -1 eV
    np.testing.assert_allclose(frames[0].get_forces()[0], [0.01036427230, 0, 0], rtol=1e-12)
    assert frames[0].info["gnnff_units"] == "energy_table: kJ/mol -> eV"
    assert frames[1].info["gnnff_source"] == f"{path}[1]"
    assert len(read_structures(str(path), fmt="energy_table", index="1:")) == 1
    with pytest.raises(ValueError, match="did you mean 'energy_table'"):
        read_structures(str(path), fmt="energy_tabel")
