"""Files written by an earlier gnnff (tests/data/legacy, made at commit 9d310ec before model
loading moved out of gnnff.training; see make_legacy_models.py there) still load, through the
ASE calculator and `gnnff eval`'s loader, and give the energy, forces and stress recorded when
they were written. float64 model, same CPU code: agreement to 1e-10 relative."""

import json
import os

import numpy as np
import pytest
from ase import Atoms

from gnnff.calculator import GnnffCalculator

LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy")
FILES = {"checkpoint": "pair_mlp_checkpoint.pt", "exported": "pair_mlp_exported.pt"}


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(LEGACY, "reference.json")) as handle:
        return json.load(handle)


@pytest.mark.parametrize("kind", sorted(FILES))
def test_legacy_model_loads_and_reproduces_recorded_results(kind, reference):
    atoms = Atoms(
        numbers=reference["numbers"],
        positions=reference["positions"],
        cell=reference["cell"],
        pbc=reference["pbc"],
    )
    atoms.calc = GnnffCalculator(os.path.join(LEGACY, FILES[kind]))
    expected = reference["results"][kind]
    assert atoms.get_potential_energy() == pytest.approx(expected["energy"], rel=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), expected["forces"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(), expected["stress"], rtol=1e-10, atol=1e-14)
    assert atoms.calc.type_names == ["Cu", "Al"]


def test_legacy_exported_model_evaluates_like_its_checkpoint(reference):
    """`gnnff eval`'s path: an exported model of before the move returns no stress of its own and
    passes its inputs through; its stress errors must come from its virial, not from the label."""
    from ase.calculators.emt import EMT

    from gnnff.model_io import evaluate_structures, load_for_inference

    atoms = Atoms(
        numbers=reference["numbers"],
        positions=reference["positions"],
        cell=reference["cell"],
        pbc=reference["pbc"],
    )
    frames = []
    for k in range(3):
        frame = atoms.copy()
        frame.rattle(0.05, seed=k)
        frame.calc = EMT()
        frame.get_stress()
        frames.append(frame)
    results = {
        kind: evaluate_structures(*load_for_inference(os.path.join(LEGACY, FILES[kind])), frames)
        for kind in FILES
    }
    assert results["exported"]["stress_mae"] > 1e-4  # a real error, not label minus label
    for key, value in results["checkpoint"].items():
        assert results["exported"][key] == pytest.approx(value, rel=1e-9), key
