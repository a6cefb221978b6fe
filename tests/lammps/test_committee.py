"""Committee model deviation in pair_style gnnff against a Python evaluation of the same models.

Truth: each model evaluated in Python on gnnff's own periodic graph (no ghosts, no MPI), then
DeePMD-kit's definitions computed with numpy:
  per atom  e_i = sqrt(mean_k |F_k,i - mean_k F_k,i|^2)          (eV/Å)
  global    max / min / mean of e_i over atoms
  virial    per component: population std over models of W_k / N (eV/atom);
            max, min and sqrt(mean of the 9 squares)
LAMMPS side: `compute gnnff/devi/atom` (dump), `compute pair gnnff` (thermo: max/min/avg of the
virial, then of the force deviation) and the model_devi file, on 1, 2 and 4 ranks.
"""

import ase.build
import numpy as np
import pytest
from parity_helpers import python_reference, read_dump, write_data
from test_errors import assert_lammps_error

from gnnff.export import export_model
from gnnff.models.registry import build_model

R_MAX = 4.0
MEMBERS = [  # a message-passing driver, a second seed of it, and a strictly local LJ
    ("toy_message_passing", dict(type_names=["Ar"], r_max=R_MAX, seed=0)),
    ("toy_message_passing", dict(type_names=["Ar"], r_max=R_MAX, seed=1)),
    ("lennard_jones", dict(type_names=["Ar"], epsilon=0.0104, sigma=3.4, cutoff=R_MAX)),
]

DECK = """\
units metal
atom_style atomic
read_data data.lmp
mass 1 39.95
pair_style gnnff committee m1.pt m2.pt model_devi devi.out 1
pair_coeff * * m0.pt Ar
compute dev all gnnff/devi/atom
compute dg all pair gnnff
thermo_style custom step pe c_dg[1] c_dg[2] c_dg[3] c_dg[4] c_dg[5] c_dg[6]
thermo_modify format float %.17g
dump d all custom 1 devi.dump id c_dev
dump_modify d format float %.17g
run 0
"""


def structure():
    atoms = ase.build.bulk("Ar", "fcc", a=5.26, cubic=True).repeat((3, 3, 3))
    atoms.rattle(0.15, seed=3)
    return atoms


def python_deviation(models, atoms):
    results = [python_reference(m, atoms, ["Ar"]) for m in models]
    forces = np.stack([r[1] for r in results])  # (M, N, 3)
    per_atom = np.sqrt(((forces - forces.mean(0)) ** 2).sum(-1).mean(0))
    virial_std = np.stack([r[2] for r in results]).reshape(len(models), 9).std(0) / len(atoms)
    virial = [virial_std.max(), virial_std.min(), np.sqrt((virial_std**2).mean())]
    force = [per_atom.max(), per_atom.min(), per_atom.mean()]
    return per_atom, np.array(virial + force), results[0][0]


@pytest.fixture
def committee(tmp_path):
    models = [build_model(name, **kwargs) for name, kwargs in MEMBERS]
    for k, model in enumerate(models):
        export_model(model, str(tmp_path / f"m{k}.pt"))
    atoms = structure()
    write_data(tmp_path / "data.lmp", atoms, ["Ar"])
    return models, atoms


@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_committee_deviation_matches_python(run_lammps, tmp_path, committee, nprocs):
    models, atoms = committee
    per_atom, global_devi, driver_energy = python_deviation(models, atoms)
    assert per_atom.min() > 1e-3  # the members really disagree on every atom

    run = run_lammps(DECK, tmp_path, nprocs=nprocs)
    dump = read_dump(tmp_path / "devi.dump")
    np.testing.assert_allclose(dump["c_dev"], per_atom, rtol=1e-10, atol=1e-10 * per_atom.max())

    thermo = run.thermo()[0]
    # the first model alone drives the dynamics
    np.testing.assert_allclose(thermo["PotEng"][0], driver_energy, rtol=1e-10)
    got = np.array([thermo[f"c_dg[{k}]"][0] for k in range(1, 7)])
    np.testing.assert_allclose(got, global_devi, rtol=1e-10)

    lines = (tmp_path / "devi.out").read_text().splitlines()
    assert lines[0] == (
        "#       step         max_devi_v         min_devi_v         avg_devi_v"
        "         max_devi_f         min_devi_f         avg_devi_f"
    )
    row = np.array(lines[1].split(), dtype=float)
    assert row[0] == 0 and len(lines) == 2
    np.testing.assert_allclose(row[1:], global_devi, rtol=1e-9)  # written with 11 digits


def test_committee_needs_the_same_type_names(run_lammps, tmp_path, committee):
    export_model(
        build_model("lennard_jones", type_names=["Kr"], cutoff=R_MAX), str(tmp_path / "kr.pt")
    )
    deck = DECK.replace("committee m1.pt m2.pt", "committee m1.pt kr.pt")
    r = run_lammps(deck, tmp_path, expect_error=True)
    assert_lammps_error(
        r,
        r"committee: model kr\.pt has elements Kr but the pair_coeff model "
        r"m0\.pt has Ar; committee members must share type_names",
    )


def test_committee_needs_the_same_r_max(run_lammps, tmp_path, committee):
    export_model(
        build_model("lennard_jones", type_names=["Ar"], cutoff=5.0), str(tmp_path / "long.pt")
    )
    deck = DECK.replace("committee m1.pt m2.pt", "committee long.pt")
    r = run_lammps(deck, tmp_path, expect_error=True)
    assert_lammps_error(r, r"model long\.pt has r_max 5 A but the pair_coeff model m0\.pt has 4 A")


def test_model_devi_every_n_steps_and_stale_per_atom_values_refused(
    run_lammps, tmp_path, committee
):
    deck = (
        DECK.replace("model_devi devi.out 1", "model_devi devi.out 3")
        .replace("dump d all custom 1", "dump d all custom 3")
        .replace("run 0", "velocity all create 20 5\nfix 1 all nve\nthermo 3\nrun 7")
    )
    run_lammps(deck, tmp_path)
    steps = [int(line.split()[0]) for line in (tmp_path / "devi.out").read_text().splitlines()[1:]]
    assert steps == [0, 3, 6]
    # a dump every step asks for deviations the committee did not compute at steps 1, 2
    r = run_lammps(
        deck.replace("dump d all custom 3", "dump d all custom 1"), tmp_path, expect_error=True
    )
    assert_lammps_error(
        r,
        r"compute gnnff/devi/atom is used at step 1 but pair_style gnnff "
        r"evaluated its committee last at step 0",
    )


def test_model_devi_without_committee_is_refused(run_lammps, tmp_path, committee):
    deck = DECK.replace("committee m1.pt m2.pt ", "").replace(
        "compute dev all gnnff/devi/atom\n", ""
    )
    r = run_lammps(deck, tmp_path, expect_error=True)
    assert_lammps_error(r, r"'model_devi' without 'committee model2\.pt \.\.\.'")
