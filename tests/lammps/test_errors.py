"""pair_style gnnff stops with an ERROR line naming the problem and the fix (real lmp runs).

Never a segfault or an uncaught C++ exception: every case must end with LAMMPS's own ERROR line
and a non-zero exit status.
"""

import re

import pytest
import torch

BOX = """\
units {units}
newton {newton}
lattice fcc 5.26
region b block 0 2 0 2 0 2
create_box {ntypes} b
create_atoms 1 box
mass * 39.95
"""


def deck(
    pair_style="gnnff",
    pair_coeff="* * lj.pt Ar",
    units="metal",
    newton="on",
    ntypes=1,
    extra="",
    run=0,
):
    return (
        BOX.format(units=units, newton=newton, ntypes=ntypes)
        + f"pair_style {pair_style}\npair_coeff {pair_coeff}\n{extra}\nrun {run}\n"
    )


@pytest.fixture
def lj_model(tmp_path, export_analytic):
    return export_analytic("lennard_jones", tmp_path / "lj.pt", type_names=["Ar"], cutoff=6.0)


def assert_lammps_error(result, pattern):
    assert result.returncode != 0, result.output[-2000:]
    assert "Segmentation fault" not in result.output and "terminate called" not in result.output
    lines = [l for l in result.output.splitlines() if l.startswith("ERROR")]
    assert lines, f"no ERROR line in:\n{result.output[-2000:]}"
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"


def test_missing_model_file(run_lammps, tmp_path):
    r = run_lammps(deck(pair_coeff="* * nowhere.pt Ar"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"nowhere\.pt' does not exist.*exported with `gnnff export`")


def test_corrupt_model_file(run_lammps, tmp_path, lj_model):
    data = open(lj_model, "rb").read()
    (tmp_path / "broken.pt").write_bytes(data[: len(data) // 2])  # truncated archive
    r = run_lammps(deck(pair_coeff="* * broken.pt Ar"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"broken\.pt' is not a readable TorchScript file.*re-export")


def test_torchscript_without_metadata(run_lammps, tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), str(tmp_path / "plain.pt"))
    r = run_lammps(deck(pair_coeff="* * plain.pt Ar"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"plain\.pt' is a TorchScript file without gnnff metadata.*gnnff export")


def test_unknown_element(run_lammps, tmp_path, lj_model):
    r = run_lammps(deck(pair_coeff="* * lj.pt Xe"), tmp_path, expect_error=True)
    assert_lammps_error(
        r,
        r"element 'Xe' \(atom type 1\) is not known to model lj\.pt; its "
        r"elements are: Ar\. Map every atom type",
    )


def test_wrong_number_of_names(run_lammps, tmp_path, lj_model):
    r = run_lammps(deck(pair_coeff="* * lj.pt Ar", ntypes=2), tmp_path, expect_error=True)
    assert_lammps_error(
        r,
        r"got 1 element names for 2 atom types; give exactly one name per "
        r"atom type",
    )


def test_units_other_than_metal(run_lammps, tmp_path, lj_model):
    r = run_lammps(deck(units="real"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"requires units metal .* units are real; put `units metal`")


def test_newton_pair_off(run_lammps, tmp_path, lj_model):
    r = run_lammps(deck(newton="off"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"requires newton pair on.*use `newton on`")


def test_communication_cutoff_shorter_than_interaction_range(run_lammps, tmp_path, export_analytic):
    # message passing: interaction range 2 x 3 A = 6 A, needs 6 A + skin 2 A of ghosts
    export_analytic("toy_message_passing", tmp_path / "mp.pt", type_names=["Si"], r_max=3.0)
    r = run_lammps(
        deck(pair_coeff="* * mp.pt Si", extra="comm_modify cutoff 5.0"), tmp_path, expect_error=True
    )
    assert_lammps_error(
        r,
        r"communication cutoff 5 A is shorter than the model's interaction "
        r"range 6 A.*use `comm_modify cutoff 8` or larger",
    )


def test_non_finite_forces_name_step_and_atoms(run_lammps, tmp_path, lj_model):
    # two atoms on the same spot: LJ at r = 0 is infinite
    overlap = "create_atoms 1 single 0.0 0.0 0.0\n"
    text = deck(run=0).replace("create_atoms 1 box\n", "create_atoms 1 box\n" + overlap)
    r = run_lammps(text, tmp_path, expect_error=True)
    assert_lammps_error(
        r,
        r"non-finite (forces|energy) at step 0 \(atom IDs: 1 33\).*lower the "
        r"timestep",
    )


def test_non_finite_reported_on_later_step(run_lammps, tmp_path, lj_model):
    # after 7 good steps atom 33 is put onto atom 1: the error must name step 7
    text = deck(run=7, extra="fix 1 all nve\n").replace(
        "mass * 39.95\n", "mass * 39.95\ncreate_atoms 1 single 0.25 0.25 0.25\n"
    )
    text += "set atom 33 x 0.0 y 0.0 z 0.0\nset atom 1 x 0.0 y 0.0 z 0.0\nrun 3\n"
    r = run_lammps(text, tmp_path, expect_error=True)
    assert_lammps_error(r, r"non-finite (forces|energy) at step 7 \(atom IDs: 1 33\)")


def test_bad_pair_style_arguments(run_lammps, tmp_path, lj_model):
    r = run_lammps(deck(pair_style="gnnff fast"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"Illegal pair_style gnnff argument 'fast'; use `pair_style gnnff`")
    r = run_lammps(deck(pair_style="gnnff device tpu"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"device 'tpu' is not valid; use auto, cpu, cuda or cuda:N")
    r = run_lammps(deck(pair_style="gnnff memory forever"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"'memory forever' \(use memory keep or memory release\)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_requested_without_gpu(run_lammps, tmp_path, lj_model):
    r = run_lammps(deck(pair_style="gnnff device cuda"), tmp_path, expect_error=True)
    assert_lammps_error(r, r"device cuda was requested but torch sees no GPU.*`device cpu`")


def test_centroid_stress_is_refused_not_zero(run_lammps, tmp_path, lj_model):
    r = run_lammps(
        deck(
            extra="compute s all centroid/stress/atom NULL\n"
            "compute t all reduce sum c_s[1]\nthermo_style custom step c_t"
        ),
        tmp_path,
        expect_error=True,
    )
    assert_lammps_error(r, r"centroid/stress/atom")


def test_pair_local_energy_is_refused_not_zero(run_lammps, tmp_path, lj_model):
    r = run_lammps(
        deck(extra="compute pl all pair/local eng\ndump d all local 1 pl.dump c_pl"),
        tmp_path,
        expect_error=True,
    )
    assert_lammps_error(r, r"Pair style does not support compute pair/local")


def test_error_with_two_ranks(run_lammps, tmp_path, lj_model):
    r = run_lammps(deck(pair_coeff="* * lj.pt Xe"), tmp_path, nprocs=2, expect_error=True)
    assert_lammps_error(r, r"element 'Xe'")
