"""Readers round-tripped against ASE; unit conversions against hand-computed values."""

import ase.db
import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from gnnff.data.readers import detect_format, read_structures

KCAL_MOL_IN_EV = 0.0433641  # 1 kcal/mol = 4184 J / 6.02214076e23 / 1.602176634e-19 J/eV


def _labelled(periodic=True, count=3):
    frames = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) if periodic else molecule("CH4")
        atoms.rattle(0.05, seed=k)
        if periodic:
            atoms.calc = EMT()
            atoms.get_stress()
        else:
            rng = np.random.default_rng(k)
            atoms.calc = SinglePointCalculator(
                atoms, energy=rng.normal(), forces=rng.normal(size=(len(atoms), 3))
            )
        atoms.get_potential_energy()
        frames.append(atoms)
    return frames


@pytest.mark.parametrize("periodic", [True, False])
def test_extxyz_round_trip(tmp_path, periodic):
    frames = _labelled(periodic)
    path = tmp_path / "d.extxyz"
    ase.io.write(path, frames)
    read = read_structures(str(path))
    plain = ase.io.read(path, index=":")  # what ASE itself reads back (extxyz keeps 8 decimals)
    assert len(read) == len(frames)
    for original, ref, got in zip(frames, plain, read):
        np.testing.assert_array_equal(got.positions, ref.positions)
        np.testing.assert_allclose(got.positions, original.positions, atol=1e-7)
        np.testing.assert_array_equal(got.cell.array, ref.cell.array)
        assert (
            list(got.pbc) == list(ref.pbc)
            and got.get_chemical_symbols() == ref.get_chemical_symbols()
        )
        assert got.get_potential_energy() == ref.get_potential_energy()
        assert got.get_potential_energy() == pytest.approx(
            original.get_potential_energy(), rel=1e-12
        )
        np.testing.assert_array_equal(got.get_forces(), ref.get_forces())
        if periodic:
            np.testing.assert_array_equal(got.get_stress(), ref.get_stress())
        assert "no conversion" in got.info["gnnff_units"]


def test_extxyz_custom_label_names(tmp_path):
    atoms = molecule("H2O")
    atoms.info["REF_energy"] = -12.5
    atoms.arrays["REF_forces"] = np.arange(9.0).reshape(3, 3)
    ase.io.write(tmp_path / "d.xyz", atoms, format="extxyz")
    got = read_structures(
        str(tmp_path / "d.xyz"), energy_key="REF_energy", forces_key="REF_forces"
    )[0]
    assert got.get_potential_energy() == -12.5
    np.testing.assert_array_equal(got.get_forces(), np.arange(9.0).reshape(3, 3))


def test_ase_database_round_trip(tmp_path):
    frames = _labelled(True)
    path = str(tmp_path / "d.db")
    with ase.db.connect(path) as db:
        for atoms in frames:
            db.write(atoms)
    read = read_structures(path)
    assert detect_format(path) == "ase_db"
    for ref, got in zip(frames, read):
        np.testing.assert_allclose(got.positions, ref.positions, rtol=1e-12)
        assert got.get_potential_energy() == pytest.approx(ref.get_potential_energy(), rel=1e-12)
        np.testing.assert_allclose(got.get_forces(), ref.get_forces(), rtol=1e-12)
        np.testing.assert_allclose(got.get_stress(), ref.get_stress(), rtol=1e-10, atol=1e-14)


def _md17_arrays(frames=4, atoms=3):
    rng = np.random.default_rng(1)
    return (
        rng.normal(size=(frames, atoms, 3)),
        np.array([6, 1, 8]),
        rng.normal(-1000, 5, size=(frames, 1)),
        rng.normal(size=(frames, atoms, 3)),
    )


@pytest.mark.parametrize(
    "fmt, names",
    [
        ("md17", ("R", "z", "E", "F")),
        ("rmd17", ("coords", "nuclear_charges", "energies", "forces")),
    ],
)
def test_md17_npz_is_converted_from_kcal_per_mol(tmp_path, fmt, names):
    coords, z, energies, forces = _md17_arrays()
    if fmt == "rmd17":
        energies = energies[:, 0]
    path = str(tmp_path / "m.npz")
    np.savez(path, **dict(zip(names, (coords, z, energies, forces))))
    assert detect_format(path) == fmt
    read = read_structures(path)
    assert len(read) == 4
    for m, atoms in enumerate(read):
        assert atoms.get_chemical_symbols() == ["C", "H", "O"] and not atoms.pbc.any()
        np.testing.assert_allclose(atoms.positions, coords[m], rtol=1e-15)  # Å stays Å
        assert atoms.get_potential_energy() == pytest.approx(
            float(np.ravel(energies)[m]) * KCAL_MOL_IN_EV, rel=1e-6
        )
        np.testing.assert_allclose(atoms.get_forces(), forces[m] * KCAL_MOL_IN_EV, rtol=1e-6)
        assert "kcal/mol -> eV" in atoms.info["gnnff_units"]


def test_unknown_npz_is_refused_with_the_expected_names(tmp_path):
    np.savez(tmp_path / "x.npz", pos=np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="neither MD17.*revised MD17"):
        read_structures(str(tmp_path / "x.npz"))


def test_oc20_reference_energies_are_subtracted(tmp_path):
    frames = _labelled(True, count=2)
    ase.io.write(tmp_path / "0.extxyz", frames)
    (tmp_path / "0.txt").write_text("random1,frame0,-3.25\nrandom2,frame7,1.5\n")
    path = str(tmp_path / "0.extxyz")
    assert detect_format(path) == "oc20"
    read = read_structures(path)
    assert read[0].get_potential_energy() == pytest.approx(
        frames[0].get_potential_energy() + 3.25, rel=1e-12
    )
    assert read[1].get_potential_energy() == pytest.approx(
        frames[1].get_potential_energy() - 1.5, rel=1e-12
    )
    assert read[1].info["oc20_system_id"] == "random2" and read[1].info["oc20_frame"] == "frame7"
    kept = read_structures(path, oc20_reference="keep")
    assert kept[0].get_potential_energy() == pytest.approx(
        frames[0].get_potential_energy(), rel=1e-12
    )


def test_oc20_without_reference_file_is_explained(tmp_path):
    ase.io.write(tmp_path / "0.extxyz", _labelled(True, 1))
    with pytest.raises(ValueError, match="reference-energy file"):
        read_structures(str(tmp_path / "0.extxyz"), fmt="oc20")


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_structures(str(tmp_path / "nothing.extxyz"))


def test_formats_are_the_registered_readers_and_misspellings_are_named(tmp_path):
    from gnnff.data.readers import _READERS, available_formats

    builtin = [
        n for n in available_formats() if _READERS.builder(n).__module__ == "gnnff.data.readers"
    ]
    assert builtin == ["ase_db", "extxyz", "md17", "oc20", "rmd17"]  # tests may register more
    ase.io.write(tmp_path / "d.extxyz", _labelled(True, 1))
    with pytest.raises(
        ValueError, match=r"unknown data format 'extyz' \(did you mean 'extxyz'\?\)"
    ):
        read_structures(str(tmp_path / "d.extxyz"), fmt="extyz")
    (tmp_path / "d.cif").write_text("data_x\n")
    with pytest.raises(ValueError, match="cannot guess the format.*'extxyz'"):
        read_structures(str(tmp_path / "d.cif"))
