"""Read reference data into ``ase.Atoms`` with energy (eV), forces (eV/Å) and stress (eV/Å^3).

Formats (``fmt``; "auto" guesses from the file name and, for .npz, from the array names):

* ``extxyz``: ASE's extended XYZ; labels under ``energy_key``/``forces_key``/``stress_key``
  (default: ASE's own ``energy``/``forces``/``stress``). Units taken as eV, Å (ASE convention).
* ``ase_db``: an ASE database (``.db``/``.json``), labels from each row's calculator.
* ``md17``: MD17 ``.npz`` with ``R`` (Å), ``z``, ``E`` (kcal/mol), ``F`` (kcal/mol/Å).
* ``rmd17``: revised MD17 ``.npz`` with ``coords`` (Å), ``nuclear_charges``, ``energies``
  (kcal/mol), ``forces`` (kcal/mol/Å).
* ``oc20``: OC20 S2EF extxyz (eV, Å). The companion ``.txt`` (``system_id,frame,reference_energy``
  per line; same stem) holds reference energies; with ``oc20_reference="subtract"`` (default)
  the labelled energy becomes E - E_ref (the adsorption energy the OC20 S2EF task trains on).

Every conversion is logged (logger ``gnnff.data``) and recorded in ``atoms.info["gnnff_units"]``.
Conversion factors come from ``ase.units`` (1 kcal/mol = 0.0433641 eV).
"""

import logging
import os
from typing import List, Optional, Sequence, Union

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

LOG = logging.getLogger("gnnff.data")
KCAL_PER_MOL = units.kcal / units.mol  # eV
FORMATS = ("auto", "extxyz", "ase_db", "md17", "rmd17", "oc20")
_NPZ_KEYS = {"md17": ("R", "z", "E", "F"), "rmd17": ("coords", "nuclear_charges", "energies", "forces")}


def detect_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".npz"):
        with np.load(path) as npz:
            names = set(npz.files)
        for fmt, required in _NPZ_KEYS.items():
            if set(required) <= names:
                return fmt
        raise ValueError(
            f"{path}: .npz with arrays {sorted(names)} is neither MD17 (R, z, E, F) nor revised "
            "MD17 (coords, nuclear_charges, energies, forces); convert it to extxyz"
        )
    if lower.endswith((".db", ".json")):
        return "ase_db"
    if lower.endswith((".xyz", ".extxyz", ".xyz.xz", ".extxyz.xz", ".xyz.gz", ".extxyz.gz")):
        return "oc20" if _oc20_reference_file(path) else "extxyz"
    raise ValueError(f"{path}: cannot guess the format from the name; give one of {FORMATS[1:]}")


def read_structures(
    path: Union[str, Sequence[str]],
    fmt: str = "auto",
    index: str = ":",
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    oc20_reference: str = "subtract",
) -> List[Atoms]:
    """Structures of one file (or several, concatenated) with labels in eV, eV/Å, eV/Å^3."""
    if not isinstance(path, str):
        out: List[Atoms] = []
        for p in path:
            out.extend(read_structures(p, fmt, index, energy_key, forces_key, stress_key, oc20_reference))
        return out
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; use one of {FORMATS}")
    if not os.path.exists(path):
        raise ValueError(f"data file {path!r} does not exist; check the data: section of the config")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt in _NPZ_KEYS:
        structures = _read_md17(path, fmt)
    elif fmt == "ase_db":
        structures = _read_ase_db(path)
    else:
        structures = _read_extxyz(path, index, energy_key, forces_key, stress_key)
        if fmt == "oc20":
            _apply_oc20_reference(path, structures, oc20_reference)
    for i, atoms in enumerate(structures):
        atoms.info["gnnff_source"] = f"{path}[{i}]"
    return structures


def _labelled(atoms: Atoms, energy, forces, stress, note: str) -> Atoms:
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    atoms.info["gnnff_units"] = note
    return atoms


def _read_md17(path: str, fmt: str) -> List[Atoms]:
    r_key, z_key, e_key, f_key = _NPZ_KEYS[fmt]
    with np.load(path) as npz:
        coords, numbers = np.asarray(npz[r_key], float), np.asarray(npz[z_key], int)
        energies, forces = np.asarray(npz[e_key], float).reshape(-1), np.asarray(npz[f_key], float)
    note = (
        f"{fmt}: energies kcal/mol -> eV (x {KCAL_PER_MOL:.7g}), forces kcal/mol/Å -> eV/Å "
        f"(x {KCAL_PER_MOL:.7g}), positions Å unchanged"
    )
    LOG.info("%s: %s", path, note)
    if coords.ndim != 3 or forces.shape != coords.shape or len(energies) != len(coords):
        raise ValueError(
            f"{path}: {fmt} arrays have inconsistent shapes ({r_key} {coords.shape}, "
            f"{f_key} {forces.shape}, {e_key} {energies.shape}); expected (M,N,3), (M,N,3), (M,)"
        )
    return [
        _labelled(Atoms(numbers=numbers, positions=coords[m], pbc=False), energies[m] * KCAL_PER_MOL, forces[m] * KCAL_PER_MOL, None, note)
        for m in range(len(coords))
    ]


def _read_ase_db(path: str) -> List[Atoms]:
    import ase.db

    out = []
    with ase.db.connect(path) as db:
        for row in db.select():
            atoms = row.toatoms()
            energy = row.get("energy")
            forces = row.get("forces")
            stress = row.get("stress")
            out.append(_labelled(atoms, energy, forces, stress, "ase_db: eV, Å (no conversion)"))
    return out


def _read_extxyz(path, index, energy_key, forces_key, stress_key) -> List[Atoms]:
    import ase.io

    frames = ase.io.read(path, index=index, format="extxyz")
    frames = frames if isinstance(frames, list) else [frames]
    out = []
    for atoms in frames:
        calc_results = dict(atoms.calc.results) if atoms.calc is not None else {}
        energy = calc_results.get(energy_key, atoms.info.get(energy_key))
        forces = calc_results.get(forces_key, atoms.arrays.get(forces_key))
        stress = calc_results.get(stress_key, atoms.info.get(stress_key))
        if stress is not None:
            stress = np.asarray(stress, float)
            stress = stress.reshape(3, 3) if stress.size == 9 else stress
        clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        clean.info.update({k: v for k, v in atoms.info.items() if k not in (energy_key, stress_key)})
        if "tags" in atoms.arrays:
            clean.set_tags(atoms.get_tags())
        if atoms.constraints:
            clean.set_constraint(atoms.constraints)
        out.append(_labelled(clean, energy, forces, stress, "extxyz: eV, Å (no conversion)"))
    return out


def _oc20_reference_file(path: str) -> Optional[str]:
    stem = path
    for suffix in (".xz", ".gz"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    stem = os.path.splitext(stem)[0]
    for candidate in (stem + ".txt", stem + ".txt.xz"):
        if os.path.exists(candidate):
            return candidate
    return None


def _apply_oc20_reference(path: str, structures: List[Atoms], mode: str) -> None:
    if mode not in ("subtract", "keep"):
        raise ValueError(f"oc20_reference must be 'subtract' or 'keep', got {mode!r}")
    ref_path = _oc20_reference_file(path)
    if ref_path is None:
        raise ValueError(
            f"{path}: OC20 S2EF data needs its reference-energy file {os.path.splitext(path)[0]}.txt "
            "(system_id,frame,reference_energy per line); put it next to the extxyz or use fmt='extxyz'"
        )
    if ref_path.endswith(".xz"):
        import lzma

        with lzma.open(ref_path, "rt") as handle:
            lines = handle.read().splitlines()
    else:
        with open(ref_path) as handle:
            lines = handle.read().splitlines()
    lines = [line for line in lines if line.strip()]
    if len(lines) != len(structures):
        raise ValueError(f"{ref_path} has {len(lines)} lines but {path} has {len(structures)} structures; they must match")
    for atoms, line in zip(structures, lines):
        system_id, frame, ref_energy = [field.strip() for field in line.split(",")][:3]
        atoms.info["oc20_system_id"], atoms.info["oc20_frame"] = system_id, frame
        atoms.info["oc20_reference_energy"] = float(ref_energy)
        if mode == "subtract" and atoms.calc is not None and atoms.calc.results.get("energy") is not None:
            atoms.calc.results["energy"] = atoms.calc.results["energy"] - float(ref_energy)
            atoms.info["gnnff_units"] = "oc20: eV, Å (no conversion); energy = E_DFT - reference_energy"
    LOG.info("%s: OC20 reference energies from %s (%s)", path, ref_path, mode)
