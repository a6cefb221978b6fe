"""fix gnnff/watch's devi_f criterion on a pair_style gnnff committee.

Independent truth: two Lennard-Jones models (different epsilon and sigma) exported as gnnff
models make the committee; LAMMPS's native lj/cut gives the forces of each. DeePMD's per-atom
deviation sqrt(mean_k |F_ik - <F_i>|^2) of a two-model committee is |F_1 - F_2| / 2.
"""

import re

import numpy as np
import pytest

MODELS = {"lj1.pt": (0.0104, 3.4), "lj2.pt": (0.0124, 3.3)}
BOX = """\
units metal
atom_modify map array
lattice fcc 5.26
region b block 0 3 0 3 0 3
create_box 1 b
create_atoms 1 box
mass 1 39.95
displace_atoms all random 0.2 0.2 0.2 872
"""


@pytest.fixture
def committee(tmp_path, export_analytic):
    for name, (eps, sigma) in MODELS.items():
        export_analytic(
            "lennard_jones",
            tmp_path / name,
            type_names=["Ar"],
            epsilon=eps,
            sigma=sigma,
            cutoff=6.0,
        )
    return tmp_path


def native_deviation(run_lammps, workdir):
    forces = []
    for k, (eps, sigma) in enumerate(MODELS.values()):
        run_lammps(
            BOX + f"pair_style lj/cut 6.0\npair_coeff * * {eps} {sigma}\nrun 0\n"
            f"write_dump all custom f{k}.dump id fx fy fz modify sort id format float "
            "%.17g\n",
            workdir,
        )
        forces.append(np.loadtxt(workdir / f"f{k}.dump", skiprows=9))
    ids = forces[0][:, 0].astype(int)
    devi = np.linalg.norm(forces[0][:, 1:] - forces[1][:, 1:], axis=1) / 2
    return ids, devi


@pytest.mark.parametrize("nprocs", [1, 2])
def test_devi_f_criterion_matches_native_forces(run_lammps, committee, nprocs):
    ids, devi = native_deviation(run_lammps, committee)
    worst = int(ids[np.argmax(devi)])
    threshold = float(0.5 * devi.max())
    deck = (
        BOX + "pair_style gnnff committee lj2.pt\npair_coeff * * lj1.pt Ar\n"
        f"fix w all gnnff/watch 1 devi_f_max {threshold!r} action warn\n"
        "thermo_style custom step f_w[5] f_w\nthermo_modify format float %.17g\nrun 0\n"
    )
    run = run_lammps(deck, committee, nprocs=nprocs)
    row = run.thermo()[-1]
    assert row["f_w[5]"][0] == pytest.approx(devi.max(), rel=1e-10)
    assert row["f_w"][0] == 16  # status bit of devi_f
    assert re.search(
        rf"FAILED devi_f: max_devi_f = \S+ eV/Å > \S+ eV/Å at atom {worst}\b", run.output
    ), run.output[-1500:]
