"""Graph data sets: batching, splits, energy reference, and clear errors for bad data."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from gnnff import keys
from gnnff.data import (
    AtomicDataset,
    collate,
    fit_energy_shift,
    force_rms,
    split_indices,
    validate_structures,
)
from gnnff.models import build_model

TYPES = ["Cu", "Al"]


def _frames(count=6, seed=0):

    frames = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (1, 1, 1 + k % 2)
        atoms.numbers[: k % 3] = 13
        atoms.rattle(0.1, seed=k)
        if k % 2:
            atoms.pbc = False  # mix of periodic and non-periodic structures
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    return frames


def test_batched_model_equals_one_structure_at_a_time():
    dataset = AtomicDataset.from_structures(_frames(), TYPES, r_max=4.0)
    model = build_model("pair_mlp", type_names=TYPES, r_max=4.0).double()
    batch = collate(dataset.examples)
    assert (
        int(batch[keys.NUM_GRAPHS]) == 6
        and batch[keys.BATCH].shape[0] == batch[keys.POSITIONS].shape[0]
    )
    out = model(dict(batch))
    start = 0
    for g, example in enumerate(dataset.examples):
        single = model(dict(collate([example])))
        n = example[keys.POSITIONS].shape[0]
        assert float(out[keys.TOTAL_ENERGY][g]) == pytest.approx(
            float(single[keys.TOTAL_ENERGY][0]), rel=1e-12
        )
        torch.testing.assert_close(
            out[keys.FORCES][start : start + n], single[keys.FORCES], rtol=1e-10, atol=1e-12
        )
        start += n


def test_labels_are_carried_into_examples():
    frames = _frames(2)
    example = AtomicDataset.from_structures(frames, TYPES, r_max=4.0).examples[0]
    assert float(example[keys.TOTAL_ENERGY][0]) == pytest.approx(
        frames[0].get_potential_energy(), rel=1e-12
    )
    np.testing.assert_allclose(example[keys.FORCES].numpy(), frames[0].get_forces(), rtol=1e-12)


def test_splits_are_reproducible_disjoint_and_complete():
    a = split_indices(50, val_fraction=0.2, test_fraction=0.1, seed=3)
    b = split_indices(50, val_fraction=0.2, test_fraction=0.1, seed=3)
    c = split_indices(50, val_fraction=0.2, test_fraction=0.1, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["val"], c["val"])
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (35, 10, 5)
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(50))


def test_splits_from_index_files(tmp_path):
    (tmp_path / "val.txt").write_text("3\n7\n")
    np.save(tmp_path / "test.npy", np.array([0, 1]))
    splits = split_indices(
        10, index_files={"val": str(tmp_path / "val.txt"), "test": str(tmp_path / "test.npy")}
    )
    assert splits["val"].tolist() == [3, 7] and splits["test"].tolist() == [0, 1]
    assert splits["train"].tolist() == [2, 4, 5, 6, 8, 9]
    (tmp_path / "bad.txt").write_text("12\n")
    with pytest.raises(ValueError, match="outside 0..9"):
        split_indices(10, index_files={"val": str(tmp_path / "bad.txt")})


def test_energy_shift_is_least_squares_and_scale_is_force_rms():
    frames = _frames(6)
    per_type = {"Cu": -3.5, "Al": -2.25}
    rng = np.random.default_rng(0)
    for atoms in frames:  # energies exactly linear in the composition
        energy = sum(per_type[s] for s in atoms.get_chemical_symbols())
        atoms.calc = SinglePointCalculator(
            atoms, energy=energy, forces=rng.normal(size=(len(atoms), 3))
        )
    examples = AtomicDataset.from_structures(frames, TYPES, r_max=4.0).examples
    np.testing.assert_allclose(fit_energy_shift(examples, 2), [-3.5, -2.25], rtol=1e-10)
    forces = np.concatenate([a.get_forces().ravel() for a in frames])
    assert force_rms(examples) == pytest.approx(np.sqrt(np.mean(forces**2)), rel=1e-12)


def _with(atoms, **results):
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def test_data_without_forces_is_refused():
    atoms = _with(bulk("Cu"), energy=1.0)
    with pytest.raises(ValueError, match="no forces.*forces_key"):
        validate_structures([atoms], TYPES, "train")


def test_nan_is_refused():
    atoms = _with(bulk("Cu") * 2, energy=1.0, forces=np.zeros((8, 3)))
    atoms.calc.results["forces"][3, 1] = np.nan
    with pytest.raises(ValueError, match="forces contains NaN"):
        validate_structures([atoms], TYPES, "train")
    bad = _with(bulk("Cu"), energy=float("nan"), forces=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="energy contains NaN"):
        validate_structures([bad], TYPES, "train")


def test_element_without_type_is_refused():
    atoms = _with(
        Atoms("CuO", positions=[[0, 0, 0], [2, 0, 0]]), energy=1.0, forces=np.zeros((2, 3))
    )
    with pytest.raises(ValueError, match=r"elements \['O'\] have no type.*type_names"):
        validate_structures([atoms], TYPES, "train")


def test_empty_data_is_refused():
    with pytest.raises(ValueError, match="no structures"):
        validate_structures([], TYPES, "val split")
