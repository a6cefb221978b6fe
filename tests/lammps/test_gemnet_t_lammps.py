"""An exported GemNet-T in LAMMPS (pair_style gnnff) equals its Python evaluation, 1 and 2 ranks.

GemNet-T is message passing with triplets and reverse-edge messages: each local atom's energy
needs every atom within interaction_range = (2 n_blocks + 1) r_max with its full neighbourhood.
The pair style raises the communication cutoff to interaction_range; triplets and reverse edges
are rebuilt inside the model from the LAMMPS graph (ghosts with image positions, NUM_LOCAL).
Truth: the same model on the periodic gnnff graph in Python (float64). Energy: thermo pe (eV);
forces: dump fx fy fz (eV/Å); virial: compute pressure NULL virial, W = P V / nktv2p (eV).
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
TYPES = ["Cu", "Ni"]
R_MAX = 3.0


@pytest.fixture(scope="module")
def structure():
    """Rattled, sheared 32-atom fcc Cu/Ni cell (periodic; images within the interaction range)."""
    rng = np.random.default_rng(3)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    atoms.symbols[rng.permutation(len(atoms))[:12]] = "Ni"
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    atoms.set_cell(cellpar_to_cell(cell_to_cellpar(atoms.cell)), scale_atoms=True)  # LAMMPS form
    atoms.wrap()
    return atoms


@pytest.fixture
def model():
    return (
        build_model("gemnet_t", type_names=TYPES, preset="small", r_max=R_MAX, num_blocks=2, seed=4)
        .double()
        .eval()
    )


DECK = """units metal
atom_style atomic
atom_modify map array
boundary p p p
read_data structure.data
mass * 60.0
pair_style gnnff
pair_coeff * * gemnet.pt Cu Ni
compute vir all pressure NULL virial
thermo_style custom step pe c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6] vol
thermo_modify format float %24.17g
dump d all custom 1 forces.dump id fx fy fz
dump_modify d sort id format float %.17g
run 0
"""


@pytest.mark.parametrize(
    "nprocs,dtype", [(1, torch.float64), (2, torch.float64), (2, torch.float32)]
)
def test_gemnet_t_lammps_equals_python(run_lammps, tmp_path, structure, model, nprocs, dtype):
    model = model.to(dtype)
    export_model(model, str(tmp_path / "gemnet.pt"))
    write_data(tmp_path / "structure.data", structure, TYPES)
    run = run_lammps(DECK, tmp_path, nprocs=nprocs, timeout=300)
    thermo = run.thermo()[-1]
    energy, forces, virial = python_reference(model.double(), structure, TYPES)
    assert np.max(np.abs(forces)) > 1e-3  # a model with vanishing forces would prove nothing
    # float64: the same arithmetic up to summation order; float32 export vs float64 Python
    rel, force_tol = (1e-10, 1e-9) if dtype == torch.float64 else (1e-5, 1e-4)

    assert thermo["PotEng"][0] == pytest.approx(energy, rel=rel, abs=rel)
    dump = read_dump(tmp_path / "forces.dump")
    lammps_forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], axis=1)
    np.testing.assert_allclose(lammps_forces, forces, rtol=0, atol=force_tol)
    volume = thermo["Volume"][0]
    w = np.array([thermo[f"c_vir[{k}]"][0] for k in range(1, 7)]) * volume / NKTV2P_METAL
    want = virial[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]
    np.testing.assert_allclose(w, want, rtol=100 * rel, atol=100 * rel)
