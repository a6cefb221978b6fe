"""pair_style gnnff runs an AOTInductor package (`gnnff export --format aoti`, a .pt2) like the
TorchScript file of the same model: same energy, forces and virial on 1 and 2 ranks.

The model is a two-type float64 Lennard-Jones (gnnff.models.analytic), exported to both formats;
its AOTInductor compilation takes about a minute on the loaded 2-core test machine, so it runs
once per session (module fixture) and the test is marked slow. Units metal: `pe` eV, forces
eV/Å from `dump custom id fx fy fz`, virial as pressure components `pxx ... pyz` (bar, no kinetic
part with `compute pressure NULL virial`). Tolerance: 1e-10 relative (both paths run the same
float64 arithmetic; measured differences are at rounding level, ~1e-15)."""

import numpy as np
import pytest
from parity_helpers import read_dump

from gnnff.export import export_model
from gnnff.export_aoti import export_aoti
from gnnff.models.registry import build_model

DECK = """\
units metal
lattice fcc 5.26
region b block 0 4 0 4 0 4
create_box 2 b
create_atoms 1 box
set type 1 type/fraction 2 0.3 4519
mass * 39.95
displace_atoms all random 0.1 0.1 0.1 8127
pair_style gnnff
pair_coeff * * {model} Ar Kr
compute vir all pressure NULL virial
thermo_style custom step pe c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6]
thermo_modify format float %.17g
dump f all custom 1 forces.dump id fx fy fz
run 0
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("aoti_lammps")
    model = build_model(
        "lennard_jones",
        type_names=["Ar", "Kr"],
        epsilon=[[0.0104, 0.0125], [0.0125, 0.0140]],
        sigma=[[3.4, 3.5], [3.5, 3.6]],
        cutoff=6.0,
        dtype="float64",
    )
    export_model(model, str(folder / "lj.pt"))
    export_aoti(model, str(folder / "lj.pt2"))
    return folder / "lj.pt", folder / "lj.pt2"


@pytest.mark.slow
@pytest.mark.parametrize("nprocs", [1, 2])
def test_package_equals_torchscript_in_lammps(run_lammps, tmp_path, models, nprocs):
    results = {}
    for path in models:
        workdir = tmp_path / path.suffix[1:]
        workdir.mkdir()
        thermo = run_lammps(DECK.format(model=path), workdir, nprocs=nprocs).thermo()[0]
        forces = read_dump(workdir / "forces.dump")
        results[path.suffix] = (
            thermo["PotEng"][0],
            np.array([thermo[f"c_vir[{k}]"][0] for k in range(1, 7)]),
            np.stack([forces[c] for c in ("fx", "fy", "fz")], axis=1),
        )
    (e_ref, w_ref, f_ref), (e, w, f) = results[".pt"], results[".pt2"]
    assert abs(e_ref) > 1.0 and np.abs(f_ref).max() > 1e-3  # a real, strained crystal
    assert abs(e - e_ref) <= 1e-10 * abs(e_ref)
    assert np.abs(w - w_ref).max() <= 1e-10 * np.abs(w_ref).max()
    assert np.abs(f - f_ref).max() <= 1e-10 * np.abs(f_ref).max()
