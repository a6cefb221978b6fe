"""Read reference data into ``ase.Atoms`` with energy (eV), forces (eV/Å) and stress (eV/Å^3).

Formats (``fmt``; "auto" guesses from the file name and, where several readers take that suffix,
from each reader's ``sniff``). Each is a reader registered below with ``register_reader``;
``available_formats()`` lists them, and a misspelt name gets the closest one:

* ``extxyz``: ASE's extended XYZ; labels under ``energy_key``/``forces_key``/``stress_key``
  (default: ASE's own ``energy``/``forces``/``stress``). Units taken as eV, Å (ASE convention).
* ``ase_db``: an ASE database (``.db``/``.json``), labels from each row's calculator.
* ``md17``: MD17 ``.npz`` with ``R`` (Å), ``z``, ``E`` (kcal/mol), ``F`` (kcal/mol/Å).
* ``rmd17``: revised MD17 ``.npz`` with ``coords`` (Å), ``nuclear_charges``, ``energies``
  (kcal/mol), ``forces`` (kcal/mol/Å).
* ``oc20``: OC20 S2EF extxyz (eV, Å). The companion ``.txt`` (``system_id,frame,reference_energy``
  per line; same stem) holds reference energies; with ``oc20_reference="subtract"`` (default)
  the labelled energy becomes E - E_ref (the adsorption energy the OC20 S2EF task trains on).

A reader is ``read(path, **options) -> List[Atoms]`` whose keyword arguments are the options it
uses (of ``read_structures``'s: index, energy_key, forces_key, stress_key, oc20_reference); it
labels frames with ``labelled`` (eV, eV/Å, eV/Å^3), so conversions are logged (logger
``gnnff.data``) and recorded in ``atoms.info["gnnff_units"]``. Conversion factors come from
``ase.units`` (1 kcal/mol = 0.0433641 eV). Adding one: docs/extending.md.
"""

import inspect
import logging
import os
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from gnnff.registry import Registry

LOG = logging.getLogger("gnnff.data")
KCAL_PER_MOL = units.kcal / units.mol  # eV
_READERS = Registry("data format", ["gnnff.data.readers"])
_NPZ_KEYS = {
    "md17": ("R", "z", "E", "F"),
    "rmd17": ("coords", "nuclear_charges", "energies", "forces"),
}
_XYZ_SUFFIXES = (".xyz", ".extxyz", ".xyz.xz", ".extxyz.xz", ".xyz.gz", ".extxyz.gz")


def register_reader(
    name: str,
    suffixes: Sequence[str],
    description: str,
    sniff: Optional[Callable[[str], bool]] = None,
):
    """Decorator: make ``read(path, **options) -> List[Atoms]`` available as ``data.format: NAME``.

    ``suffixes`` (lower case, with the dot) are the file names format "auto" offers it;
    ``sniff(path) -> bool`` tells it apart from other readers of the same suffix (a reader with
    a sniff that says yes wins over one without); ``description`` names it in error messages.
    """

    def decorate(read):
        read.suffixes = tuple(suffixes)
        read.description = description
        read.sniff = sniff
        return _READERS.register(name)(read)

    return decorate


def available_formats() -> List[str]:
    return _READERS.names()


def detect_format(path: str) -> str:
    """The registered format of ``path``, from its suffix and the readers' sniffs."""
    lower = path.lower()
    candidates = [n for n in _READERS.names() if lower.endswith(_READERS.builder(n).suffixes)]
    if not candidates:
        raise ValueError(
            f"{path}: cannot guess the format from the name; give one of {available_formats()}"
        )
    sniffers = [n for n in candidates if _READERS.builder(n).sniff is not None]
    recognised = [n for n in sniffers if _READERS.builder(n).sniff(path)]
    if len(recognised) > 1:
        raise ValueError(f"{path} could be any of {recognised}; name its format")
    fallback = [n for n in candidates if n not in sniffers]
    if recognised or fallback:
        return (recognised or fallback)[0]
    described = " nor ".join(_READERS.builder(n).description for n in candidates)
    raise ValueError(f"{path} is neither {described}; convert it to extxyz")


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
            out.extend(
                read_structures(p, fmt, index, energy_key, forces_key, stress_key, oc20_reference)
            )
        return out
    if fmt != "auto":
        _READERS.builder(fmt)  # an unknown name fails before the file is looked at
    if not os.path.exists(path):
        raise ValueError(
            f"data file {path!r} does not exist; check the path (for training: the data: "
            "section of the config)"
        )
    if fmt == "auto":
        fmt = detect_format(path)
    read = _READERS.builder(fmt)
    options = dict(
        index=index,
        energy_key=energy_key,
        forces_key=forces_key,
        stress_key=stress_key,
        oc20_reference=oc20_reference,
    )
    accepted = inspect.signature(read).parameters
    structures = read(path, **{k: v for k, v in options.items() if k in accepted})
    for i, atoms in enumerate(structures):
        atoms.info["gnnff_source"] = f"{path}[{i}]"
    return structures


def labelled(atoms: Atoms, energy, forces, stress, note: str) -> Atoms:
    """``atoms`` carrying the labels (eV, eV/Å, eV/Å^3) and a note of the units conversion."""
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    atoms.info["gnnff_units"] = note
    return atoms


def _npz_sniff(fmt: str) -> Callable[[str], bool]:
    def sniff(path: str) -> bool:
        with np.load(path) as npz:
            return set(_NPZ_KEYS[fmt]) <= set(npz.files)

    return sniff


@register_reader("md17", (".npz",), "MD17 (R, z, E, F)", sniff=_npz_sniff("md17"))
def read_md17(path: str) -> List[Atoms]:
    return _read_md17(path, "md17")


@register_reader(
    "rmd17",
    (".npz",),
    "revised MD17 (coords, nuclear_charges, energies, forces)",
    sniff=_npz_sniff("rmd17"),
)
def read_rmd17(path: str) -> List[Atoms]:
    return _read_md17(path, "rmd17")


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
        labelled(
            Atoms(numbers=numbers, positions=coords[m], pbc=False),
            energies[m] * KCAL_PER_MOL,
            forces[m] * KCAL_PER_MOL,
            None,
            note,
        )
        for m in range(len(coords))
    ]


@register_reader("ase_db", (".db", ".json"), "an ASE database")
def read_ase_db(path: str) -> List[Atoms]:
    import ase.db

    out = []
    with ase.db.connect(path) as db:
        for row in db.select():
            atoms = row.toatoms()
            energy = row.get("energy")
            forces = row.get("forces")
            stress = row.get("stress")
            out.append(labelled(atoms, energy, forces, stress, "ase_db: eV, Å (no conversion)"))
    return out


@register_reader("extxyz", _XYZ_SUFFIXES, "extended XYZ")
def read_extxyz(
    path: str,
    index: str = ":",
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
) -> List[Atoms]:
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
        clean = Atoms(
            numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
        )
        clean.info.update(
            {k: v for k, v in atoms.info.items() if k not in (energy_key, stress_key)}
        )
        if "tags" in atoms.arrays:
            clean.set_tags(atoms.get_tags())
        if atoms.constraints:
            clean.set_constraint(atoms.constraints)
        out.append(labelled(clean, energy, forces, stress, "extxyz: eV, Å (no conversion)"))
    return out


@register_reader(
    "oc20",
    _XYZ_SUFFIXES,
    "OC20 S2EF extxyz with its reference-energy .txt",
    sniff=lambda path: _oc20_reference_file(path) is not None,
)
def read_oc20(
    path: str,
    index: str = ":",
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    oc20_reference: str = "subtract",
) -> List[Atoms]:
    if oc20_reference not in ("subtract", "keep"):  # checked before reading a large file
        raise ValueError(f"oc20_reference must be 'subtract' or 'keep', got {oc20_reference!r}")
    structures = read_extxyz(path, index, energy_key, forces_key, stress_key)
    _apply_oc20_reference(path, structures, oc20_reference)
    return structures


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
        raise ValueError(
            f"{ref_path} has {len(lines)} lines but {path} has {len(structures)} structures; they must match"
        )
    for atoms, line in zip(structures, lines):
        system_id, frame, ref_energy = [field.strip() for field in line.split(",")][:3]
        atoms.info["oc20_system_id"], atoms.info["oc20_frame"] = system_id, frame
        atoms.info["oc20_reference_energy"] = float(ref_energy)
        if (
            mode == "subtract"
            and atoms.calc is not None
            and atoms.calc.results.get("energy") is not None
        ):
            atoms.calc.results["energy"] = atoms.calc.results["energy"] - float(ref_energy)
            atoms.info["gnnff_units"] = (
                "oc20: eV, Å (no conversion); energy = E_DFT - reference_energy"
            )
    LOG.info("%s: OC20 reference energies from %s (%s)", path, ref_path, mode)
