"""pair_style gnnff `comm layer` (per-layer feature exchange, ghosts one r_max deep) and `comm
shell` (ghosts n_layers r_max deep) both equal the Python evaluation of the same 3-layer NequIP
model, on 1, 2 and 4 MPI ranks, in a triclinic box, a cell shorter than 2 r_max and with a rank
that owns no atom.

Truth: ForceModel on gnnff's periodic graph in float64 (energy, per-atom energy, forces, virial,
per-atom virial). LAMMPS side: thermo pe (eV); dump fx fy fz (eV/Å); c_pe (compute pe/atom,
eV); compute pressure NULL virial -> W = P V / nktv2p (eV); compute stress/atom NULL virial ->
per-atom virial = -s / nktv2p (eV). Tolerance 1e-10 relative to the largest reference value.
A control run without the reverse exchange of ghost-feature gradients
(GNNFF_TEST_SKIP_REVERSE_EXCHANGE) must give wrong forces.
"""

import os

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.geometry import cell_to_cellpar, cellpar_to_cell
from parity_helpers import read_dump, write_data

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model
from gnnff.models.registry import build_model

NKTV2P_METAL = 1.6021765e6  # bar per eV/Å^3
TYPES = ["Si", "Ge"]
R_MAX = 3.5
RTOL = 1e-10


def _structure(repeat, seed, stretch_a=1.0):
    """Rattled triclinic Si/Ge diamond in LAMMPS form; stretch_a > 1 adds vacuum along a."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Si", "diamond", a=5.5, cubic=True).repeat(repeat)
    atoms.symbols[rng.permutation(len(atoms))[: len(atoms) // 3]] = "Ge"
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + 0.04 * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    atoms.set_cell(cellpar_to_cell(cell_to_cellpar(atoms.cell)), scale_atoms=True)
    atoms.wrap()
    if stretch_a != 1.0:
        cell = atoms.cell.array.copy()
        cell[0] *= stretch_a  # a stays along x: still LAMMPS form; atoms keep their positions
        atoms.set_cell(cell, scale_atoms=False)
    return atoms


CASES = {  # name -> (repeat, stretch of a, processors grid per rank count)
    "triclinic 64 atoms": ((2, 2, 2), 1.0, {1: "1 1 1", 2: "2 1 1", 4: "2 2 1"}),
    "cell shorter than 2 r_max": ((1, 1, 1), 1.0, {1: "1 1 1", 4: "1 2 2"}),
    "a rank owning no atom": ((1, 1, 1), 1.45, {4: "4 1 1"}),
}

DECK = """units metal
atom_style atomic
atom_modify map array
boundary p p p
processors {grid}
read_data structure.data
mass 1 28.0855
mass 2 72.63
pair_style gnnff comm {comm}
pair_coeff * * model.pt Si Ge
compute vir all pressure NULL virial
compute pe all pe/atom
compute s all stress/atom NULL virial
thermo_style custom step pe c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6] vol
thermo_modify format float %24.17g
dump d all custom 1 out.dump id fx fy fz c_pe c_s[1] c_s[2] c_s[3] c_s[4] c_s[5] c_s[6]
dump_modify d sort id format float %.17g
run 0
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(13)
    model = (
        build_model("nequip", type_names=TYPES, r_max=R_MAX, preset="small", n_layers=3)
        .double()
        .eval()
    )
    model.set_energy_reference(torch.tensor([-4.3, -3.9]), torch.tensor([0.7, 1.2]))
    path = tmp_path_factory.mktemp("layerwise") / "model.pt"
    export_model(model, str(path))
    return model, str(path)


def _voigt(w):
    """(…,3,3) -> LAMMPS order xx yy zz xy xz yz; pair_style gnnff averages the off-diagonal
    pairs (a per-atom virial is not symmetric, only their sum is)."""
    sym = 0.5 * (w + np.swapaxes(w, -1, -2))
    return np.stack(
        [
            sym[..., 0, 0],
            sym[..., 1, 1],
            sym[..., 2, 2],
            sym[..., 0, 1],
            sym[..., 0, 2],
            sym[..., 1, 2],
        ],
        -1,
    )


def _python(model, atoms):
    data = atoms_to_graph(atoms, TYPES, R_MAX)
    data[keys.REQUEST_ATOM_VIRIAL] = torch.ones(1)
    out = model(data)
    return {
        "energy": out[keys.TOTAL_ENERGY].item(),
        "atomic_energy": out[keys.ATOMIC_ENERGY].detach().numpy(),
        "forces": out[keys.FORCES].detach().numpy(),
        "virial": _voigt(out[keys.VIRIAL][0].detach().numpy()),
        "atom_virial": _voigt(out[keys.ATOM_VIRIAL].detach().numpy()),
    }


def _lammps(run_lammps, workdir, model_path, atoms, comm, nprocs, grid):
    os.makedirs(workdir, exist_ok=True)
    write_data(workdir / "structure.data", atoms, TYPES)
    os.symlink(model_path, workdir / "model.pt")
    run = run_lammps(DECK.format(grid=grid, comm=comm), workdir, nprocs=nprocs)
    thermo = run.thermo()[-1]
    dump = read_dump(workdir / "out.dump")
    volume = thermo["Volume"][0]
    stress = np.stack([dump[f"c_s[{k}]"] for k in range(1, 7)], -1)
    return run.output, {
        "energy": thermo["PotEng"][0],
        "atomic_energy": dump["c_pe"],
        "forces": np.stack([dump["fx"], dump["fy"], dump["fz"]], -1),
        "virial": np.array([thermo[f"c_vir[{k}]"][0] for k in range(1, 7)]) * volume / NKTV2P_METAL,
        "atom_virial": -stress / NKTV2P_METAL,
    }


def _relative_errors(got, truth):
    return {
        k: float(np.abs(np.asarray(got[k]) - truth[k]).max() / np.abs(truth[k]).max())
        for k in truth
    }


@pytest.mark.parametrize("case", list(CASES))
def test_comm_layer_and_shell_equal_python(run_lammps, tmp_path, model_file, case):
    model, path = model_file
    repeat, stretch, grids = CASES[case]
    atoms = _structure(repeat, seed=len(case), stretch_a=stretch)
    if case == "a rank owning no atom":  # processors 4 1 1: the last quarter of a is empty
        assert atoms.get_scaled_positions()[:, 0].max() < 0.75
    if case == "cell shorter than 2 r_max":
        assert min(atoms.cell.array[k, k] for k in range(3)) < 2 * R_MAX
    truth = _python(model, atoms)
    for nprocs, grid in grids.items():
        for comm in ("layer", "shell"):
            output, got = _lammps(
                run_lammps, tmp_path / f"{comm}{nprocs}", path, atoms, comm, nprocs, grid
            )
            assert f"gnnff: comm {comm}" in output
            errors = _relative_errors(got, truth)
            assert max(errors.values()) < RTOL, (comm, nprocs, errors)


def test_layer_asks_for_one_r_max_of_ghosts(run_lammps, tmp_path, model_file):
    """The log states the ghost cutoff: r_max + skin for layer, 3 r_max + skin for shell."""
    _, path = model_file
    atoms = _structure((1, 1, 1), seed=1)
    layer, _ = _lammps(run_lammps, tmp_path / "layer", path, atoms, "layer", 1, "1 1 1")
    shell, _ = _lammps(run_lammps, tmp_path / "shell", path, atoms, "shell", 1, "1 1 1")
    skin = 2.0  # metal default
    assert f"gnnff: comm layer: ghost cutoff {R_MAX + skin} A" in layer
    assert f"gnnff: comm shell: ghost cutoff {3 * R_MAX + skin} A" in shell


def test_control_without_reverse_exchange_fails(run_lammps, tmp_path, model_file, monkeypatch):
    model, path = model_file
    atoms = _structure((2, 2, 2), seed=3)
    truth = _python(model, atoms)
    monkeypatch.setenv("GNNFF_TEST_SKIP_REVERSE_EXCHANGE", "1")
    _, got = _lammps(run_lammps, tmp_path / "control", path, atoms, "layer", 2, "2 1 1")
    errors = _relative_errors(got, truth)
    assert errors["energy"] < RTOL  # the forward pass is untouched
    assert errors["forces"] > 1e3 * RTOL, errors


def test_comm_layer_needs_a_layerwise_file(run_lammps, tmp_path):
    torch.manual_seed(1)
    model = build_model(
        "nequip", type_names=TYPES, r_max=R_MAX, preset="small", n_layers=2
    ).double()
    export_model(model, str(tmp_path / "plain.pt"), layerwise=False)
    write_data(tmp_path / "structure.data", _structure((1, 1, 1), seed=2), TYPES)
    deck = DECK.format(grid="1 1 1", comm="layer").replace("model.pt", "plain.pt")
    run = run_lammps(deck, tmp_path, expect_error=True)
    assert "has no layer-wise form" in run.output and "comm shell" in run.output


def test_float32_layer_equals_shell(run_lammps, tmp_path):
    """float32: both paths agree with the float32 Python evaluation to float32 rounding."""
    torch.manual_seed(13)
    model = (
        build_model("nequip", type_names=TYPES, r_max=R_MAX, preset="small", n_layers=3)
        .float()
        .eval()
    )
    model.set_energy_reference(torch.tensor([-4.3, -3.9]), torch.tensor([0.7, 1.2]))
    export_model(model, str(tmp_path / "f32.pt"))
    atoms = _structure((2, 2, 2), seed=5)
    data = atoms_to_graph(atoms, TYPES, R_MAX, dtype=torch.float32)
    out = model(data)
    truth = {
        "energy": out[keys.TOTAL_ENERGY].double().item(),
        "forces": out[keys.FORCES].detach().double().numpy(),
    }
    for comm in ("layer", "shell"):
        _, got = _lammps(
            run_lammps, tmp_path / comm, str(tmp_path / "f32.pt"), atoms, comm, 2, "2 1 1"
        )
        errors = _relative_errors({k: got[k] for k in truth}, truth)
        assert max(errors.values()) < 1e-5, (comm, errors)


LJ_DECK = """units metal
atom_style atomic
lattice fcc 5.26
region box block 0 2 0 2 0 2
create_box 1 box
create_atoms 1 box
mass 1 39.95
pair_style gnnff comm layer
pair_coeff * * lj.pt Ar
run 0
"""


def test_strictly_local_models_ignore_comm(run_lammps, tmp_path, export_analytic):
    export_analytic("lennard_jones", tmp_path / "lj.pt", type_names=["Ar"], cutoff=6.0)
    run = run_lammps(LJ_DECK, tmp_path)
    assert "gnnff: comm option ignored: the model is strictly local" in run.output


NVE = """
velocity all create 600 8 loop geom
timestep 0.001
fix 1 all nve
thermo_style custom step pe ke etotal
thermo_modify format float %24.17g
thermo 5
run 20
"""


def test_nve_layer_follows_shell(run_lammps, tmp_path, model_file):
    """20 NVE steps: `layer` gives the trajectory of `shell` (total energy at every printed step
    to 1e-10 relative), so it conserves energy exactly as well."""
    _, path = model_file
    atoms = _structure((1, 1, 1), seed=9)
    etotal = {}
    for comm in ("layer", "shell"):
        work = tmp_path / comm
        os.makedirs(work)
        write_data(work / "structure.data", atoms, TYPES)
        os.symlink(path, work / "model.pt")
        deck = DECK.format(grid="2 1 1", comm=comm).replace("run 0\n", NVE)
        etotal[comm] = run_lammps(deck, work, nprocs=2).thermo()[-1]["TotEng"]
    assert len(etotal["layer"]) == 5
    assert np.abs(etotal["layer"] - etotal["shell"]).max() < 1e-10 * np.abs(etotal["shell"]).max()
    assert np.ptp(etotal["layer"]) < 1e-3 * len(atoms)  # eV: a sane 1 fs integration
