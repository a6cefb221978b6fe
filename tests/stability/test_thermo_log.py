"""Log-based criteria (temperature, energy drift, nan rows, LAMMPS errors) on logs whose answer
is known, and the log parser on a real LAMMPS log."""

import numpy as np
import pytest
from stability_testlib import run_lammps, write_dump

from gnnff.stability import StabilityAnalysis, StabilityOptions, read_thermo_log

N_ATOMS = 32
DT = 0.0005  # ps, set in the log


def write_log(path, fix="nve", rows=None, crash=None):
    """LAMMPS-style log: 'timestep 0.0005', rows every 100 steps (step, T, TotEng, atoms)."""
    steps = np.arange(0, 1100, 100)
    if rows is None:
        temp = np.where(steps >= 700, 2000.0, 300.0)  # blows up at step 700
        # E_tot/atom rises 45 meV/atom/ps: |dE| = 9 meV/atom at 0.2 ps, 11.25 at 0.25 ps
        energy = -3.5 * N_ATOMS + 0.045 * N_ATOMS * steps * DT
        rows = [
            f"{s:10d} {t:14.8f} {e:16.10f} {N_ATOMS:8d}" for s, t, e in zip(steps, temp, energy)
        ]
    lines = [
        "LAMMPS (22 Jul 2025 - Update 4)",
        "units metal",
        "atom_style atomic",
        "timestep 0.0005",
        f"fix 1 all {fix}" + (" temp 300 300 0.1" if fix == "nvt" else ""),
        "thermo 100",
        "run 1000",
        "Per MPI rank memory allocation (min/avg/max) = 3.1 | 3.1",
        "   Step          Temp          TotEng        Atoms   ",
    ] + rows
    if crash:
        lines.append(crash)
    else:
        lines.append(f"Loop time of 0.01 on 1 procs for 1000 steps with {N_ATOMS} atoms")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def stable_dump(tmp_path):
    """A quiet 32-atom fcc crystal, frames every 100 steps for 1000 steps."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    rng = np.random.default_rng(0)
    frames = [atoms.positions + rng.normal(scale=0.02, size=(32, 3)) for _ in range(11)]
    path = tmp_path / "quiet.dump"
    write_dump(path, frames, ["Cu"] * 32, np.array(atoms.cell[:]))
    return path


def analyse(dump, log, **options):
    return (
        StabilityAnalysis(str(dump), log=str(log), options=StabilityOptions(**options))
        .run()
        .results
    )


def test_temperature_and_energy_drift_fail_at_the_known_times(tmp_path, stable_dump):
    log = tmp_path / "log.lammps"
    write_log(log)
    report = analyse(stable_dump, log)
    assert report.dt_ps == DT and "timestep 0.0005" in report.timestep_source
    assert report.criterion("temperature").first_failure_time_ps == pytest.approx(0.35)
    assert report.criterion("temperature").threshold == pytest.approx(900.0)
    energy = report.criterion("energy_drift")
    assert energy.active and energy.first_failure_time_ps == pytest.approx(0.25)
    assert report.first_failed == ["energy_drift"] and report.stable_time == pytest.approx(0.25)
    assert report.energy_drift_rate == pytest.approx(45.0, rel=1e-6)  # meV/atom/ps
    assert report.criterion("rdf").extra["stable_frames"] == 5  # dump frames at 0..0.2 ps


def test_thermostatted_run_reports_energy_but_does_not_fail_on_it(tmp_path, stable_dump):
    log = tmp_path / "log.lammps"
    write_log(log, fix="nvt")
    report = analyse(stable_dump, log)
    assert not report.criterion("energy_drift").active
    assert "nvt" in report.criterion("energy_drift").note
    assert report.first_failed == ["temperature"] and report.stable_time == pytest.approx(0.35)


def test_crashed_run_with_nan_rows_and_lost_atoms_error(tmp_path, stable_dump):
    rows = [f"{s:10d} {300.0:14.8f} {-112.0:16.10f} {N_ATOMS:8d}" for s in range(0, 500, 100)]
    rows += ["       500            -nan           -nan       32"]
    log = tmp_path / "log.lammps"
    write_log(
        log, rows=rows, crash="ERROR: Lost atoms: original 32 current 31 (src/thermo.cpp:494)"
    )
    thermo = read_thermo_log(log)
    assert thermo.steps.tolist() == [0, 100, 200, 300, 400]  # unterminated run kept
    assert thermo.first_nonfinite_step == 500
    report = analyse(stable_dump, log)
    assert report.criterion("nonfinite").first_failure_time_ps == pytest.approx(0.25)
    assert report.criterion("lost_atoms").first_failure_time_ps == pytest.approx(0.25)
    assert "Lost atoms" in report.criterion("lost_atoms").failure_reason
    assert any("ERROR: Lost atoms" in w for w in report.warnings)


def test_log_errors_are_clear(tmp_path, stable_dump):
    empty = tmp_path / "empty.log"
    empty.write_text("LAMMPS (22 Jul 2025)\nunits metal\n")
    with pytest.raises(ValueError, match="no thermo output found"):
        analyse(stable_dump, empty)
    with pytest.raises(FileNotFoundError, match="check --log"):
        analyse(stable_dump, tmp_path / "missing.log")


LJ_MELT = """
units metal
lattice fcc 5.26
region box block 0 4 0 4 0 4
create_box 1 box
create_atoms 1 box
mass 1 39.95
pair_style lj/cut 8.5
pair_coeff 1 1 0.0104 3.40
velocity all create {t0} 87287 mom yes
timestep 0.004
fix 1 all {fix}
thermo 100
thermo_style custom step temp pe etotal press atoms
dump d all custom 100 run.dump id type x y z
run 3000
"""


@pytest.mark.parametrize("case", ["cold_nve", "melting"])
def test_real_lammps_runs(lammps_module, tmp_path, case):
    """LJ argon from an ideal lattice (2 ps equilibration skipped by the RDF criterion): a cold
    NVE crystal stays stable and conserves energy; a crystal heated to 300 K by a thermostat
    melts and fails the RDF criterion only once hot; the log parser reads the real log."""
    fix = "nve" if case == "cold_nve" else "nvt temp 40 300 0.2"
    t0 = 20 if case == "cold_nve" else 40
    run_lammps(lammps_module, tmp_path, LJ_MELT.format(t0=t0, fix=fix))
    thermo = read_thermo_log(tmp_path / "log.lammps")
    assert thermo.steps[-1] == 3000 and thermo.timestep == 0.004 and thermo.natoms == 256
    report = analyse(
        tmp_path / "run.dump", tmp_path / "log.lammps", rdf_window=3, equilibration_ps=2.0
    )
    assert report.dt_ps == 0.004 and report.n_frames == 31
    if case == "cold_nve":
        assert report.stable_through_end, report.format_table()
        assert report.criterion("energy_drift").active
        assert abs(report.energy_drift_rate) < 0.1  # meV/atom/ps
    else:
        rdf = report.criterion("rdf")
        assert rdf.first_failure_step is not None, report.format_table()
        temp = thermo.columns["Temp"][np.searchsorted(thermo.steps, rdf.first_failure_step)]
        assert temp > 84.0  # LJ argon melts near 84 K: the RDF must not fail while cold
        assert "rdf" in report.first_failed


def test_thermo_rows_before_the_first_frame_are_ignored(tmp_path):
    """An earlier hot equilibration run in the same log must not count: only rows from the
    first dump step on (here 5000) are used, and times start at the first frame."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    frames = [atoms.positions + 0.01 * k for k in range(11)]
    dump = tmp_path / "production.dump"
    write_dump(dump, frames, ["Cu"] * 32, np.array(atoms.cell[:]), step0=5000)
    log = tmp_path / "log.lammps"
    write_log(log)  # production rows at steps 0..1000: shift them to 5000..6000
    text = log.read_text()
    header = "   Step          Temp          TotEng        Atoms   \n"
    early = "".join(
        f"{s:10d} {9000.0:14.8f} {-50.0 + s:16.10f} {N_ATOMS:8d}\n" for s in range(0, 5000, 1000)
    )
    body = text.split(header)[1].splitlines(keepends=True)
    shifted = [
        f"{int(r.split()[0]) + 5000:10d} " + r.split(None, 1)[1] if r[:10].strip().isdigit() else r
        for r in body
    ]
    prefix = text.split(header)[0]
    log.write_text(
        prefix + header + early + "Loop time of 1 on 1 procs for 5000 steps with 32 "
        "atoms\n" + header + "".join(shifted)
    )
    report = analyse(dump, log)
    assert report.first_step == 5000
    assert report.criterion("temperature").first_failure_time_ps == pytest.approx(0.35)
    assert report.criterion("energy_drift").first_failure_time_ps == pytest.approx(0.25)
    assert report.energy_drift_rate == pytest.approx(45.0, rel=1e-6)
