"""GnnffCalculator: energy, forces, stress from a checkpoint or an exported file; checked against
finite differences of its own energy (forces, stress) and against the model itself."""

import os

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.emt import EMT

from gnnff.calculator import GnnffCalculator
from gnnff.cli import main
from gnnff.training.config import resolve_config
from gnnff.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calc")
    frames = []
    for k in range(8):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.1, seed=k)
        atoms.calc = EMT()
        atoms.get_stress()
        frames.append(atoms)
    ase.io.write(tmp / "d.extxyz", frames)
    config = resolve_config(
        {
            "model": {"name": "pair_mlp", "type_names": ["Cu"], "r_max": 4.0, "hidden": 16},
            "data": {"train": str(tmp / "d.extxyz"), "val_fraction": 0.25},
            "loss": {
                "energy": {"weight": 1.0},
                "forces": {"weight": 10.0},
                "stress": {"weight": 1.0},
            },
            "training": {
                "max_epochs": 2,
                "batch_size": 2,
                "dtype": "float64",
                "device": "cpu",
                "progress_bar": False,
            },
            "output": {"dir": str(tmp / "run")},
        }
    )
    Trainer(config).run()
    checkpoint = str(tmp / "run" / "best.pt")
    main(["export", checkpoint, "-o", str(tmp / "model.pt")])
    return checkpoint, str(tmp / "model.pt")


def _cell():
    atoms = bulk("Cu", "fcc", a=3.65, cubic=True) * (2, 1, 1)
    atoms.rattle(0.05, seed=3)
    return atoms


@pytest.mark.parametrize("which", [0, 1])
def test_forces_and_stress_are_energy_derivatives(trained, which):
    atoms = _cell()
    atoms.calc = GnnffCalculator(trained[which])
    forces, stress = atoms.get_forces(), atoms.get_stress()
    h = 1e-5
    for atom, axis in [(0, 0), (5, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.calc = minus.calc = GnnffCalculator(trained[which])
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numeric, rel=1e-6, abs=1e-9)
    # stress_ab = (1/V) dE/d(strain_ab), ASE Voigt order xx yy zz yz xz xy
    for voigt, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h / (2 if a != b else 1)
            strain[b, a] += sign * h / 2 if a != b else 0.0
            strained = atoms.copy()
            strained.calc = GnnffCalculator(trained[which])
            strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            energies.append(strained.get_potential_energy())
        numeric = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
        assert stress[voigt] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_checkpoint_and_exported_agree(trained):
    a, b = _cell(), _cell()
    a.calc, b.calc = GnnffCalculator(trained[0]), GnnffCalculator(trained[1])
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), rel=1e-12)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.get_stress(), b.get_stress(), rtol=1e-10, atol=1e-14)
    assert a.get_potential_energies().sum() == pytest.approx(a.get_potential_energy(), rel=1e-12)


def test_no_stress_without_a_periodic_cell(trained):
    atoms = _cell()
    atoms.pbc = False
    atoms.calc = GnnffCalculator(trained[0])
    atoms.get_forces()
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        atoms.get_stress()


def test_eval_cli_reports_mae_computed_by_hand(trained, tmp_path, capsys):
    frames = []
    for k in range(4):
        atoms = _cell()
        atoms.rattle(0.05, seed=10 + k)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    ase.io.write(tmp_path / "t.extxyz", frames)
    assert (
        main(["eval", trained[1], str(tmp_path / "t.extxyz"), "--json", str(tmp_path / "e.json")])
        == 0
    )
    import json

    report = json.loads((tmp_path / "e.json").read_text())
    energy_err, force_err = [], []
    for atoms in frames:
        copy = atoms.copy()
        copy.calc = GnnffCalculator(trained[1])
        energy_err.append((copy.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
        force_err.append((copy.get_forces() - atoms.get_forces()).ravel())
    force_err = np.concatenate(force_err)
    assert report["energy_mae"] == pytest.approx(1e3 * np.mean(np.abs(energy_err)), rel=1e-9)
    assert report["energy_rmse"] == pytest.approx(
        1e3 * np.sqrt(np.mean(np.square(energy_err))), rel=1e-9
    )
    assert report["forces_mae"] == pytest.approx(1e3 * np.mean(np.abs(force_err)), rel=1e-9)
    assert report["forces_rmse"] == pytest.approx(1e3 * np.sqrt(np.mean(force_err**2)), rel=1e-9)
    assert "meV/atom" in capsys.readouterr().out


def test_parameter_free_model_states_its_dtype_and_matches_ase_lennard_jones():
    """An analytic model has no parameters (model_dtype used to raise StopIteration on it);
    forces and stress against ASE's own Lennard-Jones (an independent implementation)."""
    from ase.calculators.lj import LennardJones

    from gnnff.models import build_model

    model = build_model(
        "lennard_jones", epsilon=0.0104, sigma=3.4, cutoff=8.0, type_names=["Ar"], dtype="float64"
    )
    assert not list(model.parameters()) and model.dtype == torch.float64
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True)
    atoms.rattle(0.05, seed=3)
    atoms.calc = GnnffCalculator(model=model)
    forces, stress = atoms.get_forces(), atoms.get_stress()
    assert atoms.calc.dtype == torch.float64
    reference = atoms.copy()
    reference.calc = LennardJones(epsilon=0.0104, sigma=3.4, rc=8.0, smooth=False)
    np.testing.assert_allclose(forces, reference.get_forces(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stress, reference.get_stress(), rtol=1e-9, atol=1e-12)


def test_model_stress_is_its_own_prediction_not_the_label():
    """Inputs no longer pass through the model: a stress label given with the input does not come
    back as the prediction; the stress is -virial / volume (hand formula, ASE's volume), NaN
    without a periodic cell."""
    from gnnff import keys
    from gnnff.data.graph import atoms_to_graph
    from gnnff.models import build_model

    model = build_model(
        "lennard_jones", epsilon=0.0104, sigma=3.4, cutoff=8.0, type_names=["Ar"], dtype="float64"
    )
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True)
    atoms.rattle(0.05, seed=4)
    graph = atoms_to_graph(atoms, ["Ar"], 8.0)
    graph[keys.STRESS] = torch.full((1, 3, 3), 123.0, dtype=torch.float64)  # a label
    graph[keys.FORCES] = torch.zeros(len(atoms), 3, dtype=torch.float64)
    out = model(dict(graph))
    expected = -out[keys.VIRIAL][0].detach().numpy() / atoms.get_volume()
    np.testing.assert_allclose(out[keys.STRESS][0].detach().numpy(), expected, rtol=1e-12)
    assert float(out[keys.FORCES].abs().max()) > 1e-4  # the prediction, not the zero label
    assert keys.POSITIONS not in out and keys.EDGE_INDEX not in out
    atoms.pbc = False
    isolated = model(atoms_to_graph(atoms, ["Ar"], 8.0))
    assert torch.isnan(isolated[keys.STRESS]).all()


def test_trainer_keeps_loss_denominators_out_of_the_model_input(trained, tmp_path):
    """LOSS_NORM_* are training bookkeeping: the loss terms get them, the model does not."""
    from gnnff import keys

    config = resolve_config({
        "model": {"name": "pair_mlp", "type_names": ["Cu"], "r_max": 4.0, "hidden": 8},
        "data": {"train": os.path.join(os.path.dirname(trained[0]), "..", "d.extxyz"), "val_fraction": 0.25},
        "training": {"max_epochs": 1, "batch_size": 2, "dtype": "float64", "device": "cpu", "progress_bar": False},
        "output": {"dir": str(tmp_path / "run")},
    })  # fmt: skip
    trainer = Trainer(config)
    seen = set()
    trainer.model.register_forward_pre_hook(lambda module, args: seen.update(args[0]))
    trainer.run()
    assert keys.POSITIONS in seen
    assert not seen & {keys.LOSS_NORM_GRAPHS, keys.LOSS_NORM_ATOMS, keys.LOSS_NORM_STRESS}
