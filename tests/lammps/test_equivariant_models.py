"""Exported Allegro and NequIP models in LAMMPS (pair_style gnnff) equal their Python
evaluation, on 1 and 2 MPI ranks.

Allegro is strictly local (interaction_range = r_max: one ghost shell); NequIP passes messages
(interaction_range = n_layers r_max: the pair style must widen the ghost shell). Truth: the same
float64 model on the periodic gnnff graph in Python. Energy: thermo pe (eV); forces: dump
fx fy fz (eV/Å); virial: compute pressure NULL virial, W = P V / nktv2p (eV).
"""

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.geometry import cell_to_cellpar, cellpar_to_cell
from parity_helpers import python_reference, read_dump, write_data

from gnnff.export import export_model
from gnnff.models.registry import build_model

NKTV2P_METAL = 1.6021765e6  # bar per eV/Å^3 (LAMMPS units metal)
TYPES = ["Si", "Ge"]
MODELS = {  # name -> builder options (small presets; nequip with 2 layers: range 2 r_max)
    "allegro": dict(r_max=4.0, preset="small", n_layers=2),
    "nequip": dict(r_max=3.5, preset="small", n_layers=2),
}


def _plugin_available() -> bool:
    try:
        from gnnff.lammps import plugin_dir
    except ImportError:
        return False
    return bool(plugin_dir())


pytestmark = pytest.mark.skipif(
    not _plugin_available(),
    reason="pair_style gnnff is not installed: run `pip install --no-build-isolation -v .`",
)


@pytest.fixture(scope="module")
def structure():
    """Rattled, sheared 64-atom diamond Si/Ge cell in LAMMPS (lower-triangular) form."""
    rng = np.random.default_rng(7)
    atoms = bulk("Si", "diamond", a=5.5, cubic=True).repeat((2, 2, 2))
    atoms.symbols[rng.permutation(len(atoms))[:20]] = "Ge"
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    atoms.set_cell(cellpar_to_cell(cell_to_cellpar(atoms.cell)), scale_atoms=True)
    atoms.wrap()
    return atoms


def make_model(name):
    torch.manual_seed(11)
    model = build_model(name, type_names=TYPES, **MODELS[name]).double().eval()
    # non-trivial per-type energy reference, as the trainer fits it
    model.set_energy_reference(torch.tensor([-4.3, -3.9]), torch.tensor([0.7, 1.2]))
    return model


DECK = """units metal
atom_style atomic
atom_modify map array
boundary p p p
read_data structure.data
mass 1 28.0855
mass 2 72.63
pair_style gnnff
pair_coeff * * model.pt Si Ge
compute vir all pressure NULL virial
thermo_style custom step pe c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6] vol
thermo_modify format float %24.17g
dump d all custom 1 forces.dump id fx fy fz
dump_modify d sort id format float %.17g
run 0
"""


@pytest.mark.parametrize("nprocs", [1, 2])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_lammps_equals_python(run_lammps, tmp_path, structure, name, nprocs):
    model = make_model(name)
    meta = export_model(model, str(tmp_path / "model.pt"))
    expected_range = MODELS[name]["r_max"] * (1 if name == "allegro" else MODELS[name]["n_layers"])
    assert float(meta["gnnff/interaction_range"]) == pytest.approx(expected_range)
    write_data(tmp_path / "structure.data", structure, TYPES)
    run = run_lammps(DECK, tmp_path, nprocs=nprocs, timeout=300)
    thermo = run.thermo()[-1]
    energy, forces, virial = python_reference(model, structure, TYPES)
    assert np.max(np.abs(forces)) > 1e-3  # a model with vanishing forces would prove nothing

    assert thermo["PotEng"][0] == pytest.approx(energy, rel=1e-10, abs=1e-10)
    dump = read_dump(tmp_path / "forces.dump")
    lammps_forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], axis=1)
    np.testing.assert_allclose(lammps_forces, forces, rtol=0, atol=1e-9)
    volume = thermo["Volume"][0]
    w = np.array([thermo[f"c_vir[{k}]"][0] for k in range(1, 7)]) * volume / NKTV2P_METAL
    want = virial[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]
    np.testing.assert_allclose(w, want, rtol=1e-8, atol=1e-8)
