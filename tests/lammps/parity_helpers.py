"""Helpers shared by the tests that compare a model in LAMMPS with its Python evaluation."""

import numpy as np

from gnnff import keys
from gnnff.data.graph import atoms_to_graph


def python_reference(model, atoms, type_names):
    """(energy eV, forces (N,3) eV/Å, virial (3,3) eV) of ``model`` with gnnff's own graph."""
    out = model(atoms_to_graph(atoms, type_names, model.r_max))
    return (
        out[keys.TOTAL_ENERGY].item(),
        out[keys.FORCES].detach().numpy(),
        out[keys.VIRIAL][0].detach().numpy(),
    )


def write_data(path, atoms, type_names, title="gnnff parity"):
    """LAMMPS data file (atom_style atomic) of a cell already in LAMMPS form (a along x, ...)."""
    cell = atoms.cell.array.tolist()
    lines = [
        title,
        "",
        f"{len(atoms)} atoms",
        f"{len(type_names)} atom types",
        "",
        f"0.0 {cell[0][0]!r} xlo xhi",
        f"0.0 {cell[1][1]!r} ylo yhi",
        f"0.0 {cell[2][2]!r} zlo zhi",
        f"{cell[1][0]!r} {cell[2][0]!r} {cell[2][1]!r} xy xz yz",
        "",
        "Atoms # atomic",
        "",
    ]
    for n, (symbol, pos) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions.tolist())):
        lines.append(f"{n + 1} {type_names.index(symbol) + 1} {pos[0]!r} {pos[1]!r} {pos[2]!r}")
    path.write_text("\n".join(lines) + "\n")


def read_dump(path):
    """Columns of the last frame of a text dump, rows sorted by atom id."""
    lines = path.read_text().splitlines()
    start = max(n for n, line in enumerate(lines) if line.startswith("ITEM: ATOMS"))
    columns = lines[start].split()[2:]
    rows = np.array([[float(v) for v in line.split()] for line in lines[start + 1 :]])
    rows = rows[np.argsort(rows[:, columns.index("id")])]
    return {c: rows[:, k] for k, c in enumerate(columns)}
