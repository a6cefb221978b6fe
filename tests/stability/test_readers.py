"""The dump readers agree with ASE frame by frame on dumps written by a real LAMMPS run, and
handle gz, any column order, unsorted ids, lost atoms and truncated files."""

import gzip
import shutil

import numpy as np
import pytest
from ase.io import iread
from stability_testlib import run_lammps, write_dump

from gnnff.stability import LammpsDumpReader, TruncatedFrameWarning, open_trajectory

SW_RUN = """
units metal
boundary p p p
lattice diamond 5.431
region box block 0 2 0 2 0 2
create_box 1 box
create_atoms 1 box
mass 1 28.0855
change_box all triclinic
change_box all xy final 1.2 xz final -0.7 yz final 0.5 remap units box
pair_style sw
pair_coeff * * {potentials}/Si.sw Si
velocity all create 2500 4928459 mom yes
timestep 0.001
fix 1 all nve
thermo 20
dump a all custom 20 odd.dump fz x type id vx z y fx fy
dump b all custom 20 scaled.dump id type xs ys zs
dump c all custom 20 unwrapped.dump id type element xu yu zu
dump_modify c element Si
dump x all extxyz 20 lammps.xyz
dump_modify x element Si
run 200
"""


@pytest.fixture(scope="module")
def sw_run(lammps_module, tmp_path_factory):
    import os

    workdir = tmp_path_factory.mktemp("sw")
    potentials = os.path.join(
        os.path.dirname(lammps_module.__file__), "share", "lammps", "potentials"
    )
    run_lammps(lammps_module, workdir, SW_RUN.format(potentials=potentials))
    return workdir


def test_reader_matches_ase_on_real_lammps_dump(sw_run):
    ours = list(LammpsDumpReader(sw_run / "odd.dump"))
    theirs = list(iread(sw_run / "odd.dump", format="lammps-dump-text"))
    assert len(ours) == len(theirs) == 11
    unsorted = 0
    for frame, atoms in zip(ours, theirs):
        assert frame.step == atoms.info.get("timestep", frame.step)
        np.testing.assert_allclose(frame.cell, atoms.cell[:], atol=1e-10)
        np.testing.assert_allclose(frame.positions, atoms.positions, atol=1e-10)
        np.testing.assert_allclose(frame.forces, atoms.get_forces(), atol=1e-10)
        assert np.all(np.diff(frame.ids) > 0)
    raw_ids = [
        int(line.split()[3])
        for line in open(sw_run / "odd.dump")
        if len(line.split()) == 9 and not line.startswith("ITEM")
    ]
    unsorted = np.any(np.diff(raw_ids[:64]) < 0) or np.any(np.diff(raw_ids[-64:]) < 0)
    assert unsorted, "LAMMPS wrote sorted ids; this test would not cover unsorted input"


def test_scaled_unwrapped_and_extxyz_dumps_agree(sw_run):
    wrapped = list(LammpsDumpReader(sw_run / "odd.dump"))
    for name in ("scaled.dump", "unwrapped.dump", "lammps.xyz"):
        other = list(open_trajectory(sw_run / name))
        assert [f.step for f in other] == [f.step for f in wrapped]
        for a, b in zip(wrapped, other):
            np.testing.assert_allclose(a.cell, b.cell, atol=1e-6)
            # same atoms up to a lattice vector (wrapped vs unwrapped): compare fractional parts
            delta = np.linalg.solve(a.cell.T, (b.positions - a.positions).T).T
            np.testing.assert_allclose(delta, np.round(delta), atol=1e-5)
    assert list(open_trajectory(sw_run / "unwrapped.dump"))[0].symbols[0] == "Si"


def test_gz_dump_gives_the_same_frames(sw_run, tmp_path):
    gz = tmp_path / "odd.dump.gz"
    with open(sw_run / "odd.dump", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain, packed = list(open_trajectory(sw_run / "odd.dump")), list(open_trajectory(gz))
    assert len(plain) == len(packed)
    for a, b in zip(plain, packed):
        np.testing.assert_array_equal(a.positions, b.positions)


@pytest.mark.parametrize("cut", ["mid_atoms", "mid_line", "mid_header"])
def test_truncated_last_frame_is_dropped_with_warning(sw_run, tmp_path, cut):
    text = open(sw_run / "odd.dump").read()
    last = text.rindex("ITEM: TIMESTEP")
    atoms_item = text.index("ITEM: ATOMS", last)
    end = {"mid_atoms": atoms_item + 600, "mid_line": atoms_item + 611, "mid_header": last + 40}[
        cut
    ]
    path = tmp_path / "cut.dump"
    path.write_text(text[:end])
    with pytest.warns(TruncatedFrameWarning, match="truncated"):
        frames = list(open_trajectory(path))
    assert len(frames) == 10 and frames[-1].step == 180


def test_any_column_order_unsorted_ids_and_lost_atoms(tmp_path):
    rng = np.random.default_rng(1)
    cell = np.array([[8.0, 0, 0], [1.0, 7.0, 0], [-0.5, 0.8, 9.0]])
    frames = [rng.uniform(0, 7, size=(20, 3)) for _ in range(3)]
    ids = [np.arange(1, 21), np.arange(1, 21), np.array([1, 2, 3, 5, 8, 13, 14, 20])]
    frames[2] = frames[1][ids[2] - 1]
    symbols = ["O", "H"] * 10
    path = tmp_path / "mixed.dump"
    write_dump(
        path,
        frames,
        symbols,
        cell,
        columns=("vz", "zs", "element", "ys", "id", "xs"),
        ids=ids,
        shuffle_seed=3,
    )
    read = list(open_trajectory(path))
    for frame, pos, frame_ids in zip(read, frames, ids):
        np.testing.assert_array_equal(frame.ids, frame_ids)
        np.testing.assert_allclose(frame.positions, pos, atol=1e-9)
        np.testing.assert_array_equal(frame.symbols, np.array(symbols)[frame_ids - 1])
    np.testing.assert_allclose(read[0].cell, cell)


def test_type_only_dump_takes_elements_from_option(tmp_path):
    cell = np.eye(3) * 10
    path = tmp_path / "types.dump"
    write_dump(
        path,
        [np.random.default_rng(0).uniform(0, 9, (4, 3))],
        ["C", "H", "H", "C"],
        cell,
        columns=("id", "type", "x", "y", "z"),
    )
    frame = next(iter(open_trajectory(path, type_symbols=["C", "H"])))
    assert frame.symbols.tolist() == ["C", "H", "H", "C"]
    with pytest.raises(ValueError, match="one element per LAMMPS type"):
        next(iter(open_trajectory(path, type_symbols=["C"])))


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("hello world\n", "neither a LAMMPS text dump"),
        (
            "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n0 1\n0 1\n0 1\n"
            "ITEM: ATOMS id type vx\n1 1 0.0\n",
            "no complete set of position columns",
        ),
        (
            "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS abc origin\n1 0 0 0\n"
            "0 1 0 0\n0 0 1 0\nITEM: ATOMS id type x y z\n1 1 0 0 0\n",
            "general triclinic",
        ),
    ],
)
def test_unusable_files_raise_clear_errors(tmp_path, content, match):
    path = tmp_path / "bad.dump"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        list(open_trajectory(path))


def test_truncated_extxyz_keeps_the_complete_frames(tmp_path):
    from ase.build import bulk
    from ase.io import write

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    frames = []
    for k in range(4):
        frame = atoms.copy()
        frame.positions += 0.01 * k
        frame.info["Timestep"] = 100 * k
        frames.append(frame)
    path = tmp_path / "run.extxyz"
    write(path, frames)
    text = path.read_text()
    path.write_text(text[: len(text) - 200])
    with pytest.warns(TruncatedFrameWarning, match="truncated"):
        read = list(open_trajectory(path))
    assert [f.step for f in read] == [0, 100, 200]
    np.testing.assert_allclose(read[2].positions, frames[2].positions, atol=1e-7)
