"""`gnnff committee CONFIG --seeds ... -o DIR` trains and exports one model per seed, and the
pair_style line it prints runs in LAMMPS with a non-zero model deviation.
"""

import os
import subprocess
import sys

import ase.build
import ase.io
import numpy as np
import yaml
from ase.calculators.emt import EMT

from gnnff.export import load_exported

PYTHON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")


def emt_cells(count, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        atoms = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
        atoms.rattle(0.1, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        atoms.get_potential_energy()
        frames.append(atoms)
    return frames


def test_committee_cli_trains_exports_and_runs_in_lammps(tmp_path, run_lammps):
    ase.io.write(tmp_path / "cu.extxyz", emt_cells(12))
    config = {
        "model": {
            "name": "pair_mlp",
            "type_names": ["Cu"],
            "r_max": 4.0,
            "hidden": 8,
            "num_basis": 4,
            "num_channels": 4,
        },
        "data": {"train": str(tmp_path / "cu.extxyz"), "val_fraction": 0.25},
        "training": {
            "max_epochs": 1,
            "batch_size": 4,
            "dtype": "float64",
            "device": "cpu",
            "progress_bar": False,
        },
        "output": {"dir": str(tmp_path / "unused")},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "committee"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gnnff.cli import main; sys.exit(main(sys.argv[1:]))",
            "committee",
            "config.yaml",
            "--seeds",
            "0",
            "1",
            "-o",
            str(out),
        ],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=PYTHON_DIR, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l.strip() for l in proc.stdout.splitlines() if l.strip().startswith("pair_style"))
    assert line == (
        f"pair_style gnnff committee {out}/model_seed1.pt model_devi model_devi.out 100"
    )

    metas = [load_exported(str(out / f"model_seed{s}.pt"))[1] for s in (0, 1)]
    assert metas[0]["type_names"] == metas[1]["type_names"] == ["Cu"]
    lineage = [yaml.safe_load(m["lineage"])["committee"] for m in metas]
    assert [l["seed"] for l in lineage] == [0, 1] and lineage[0]["split_seed"] == 0

    deck = f"""units metal
lattice fcc 3.6
region b block 0 3 0 3 0 3
create_box 1 b
create_atoms 1 box
mass 1 63.5
displace_atoms all random 0.1 0.1 0.1 99
{line.replace(" 100", " 1")}
pair_coeff * * {out}/model_seed0.pt Cu
run 0
"""
    run_lammps(deck, tmp_path)
    row = np.array((tmp_path / "model_devi.out").read_text().splitlines()[1].split(), dtype=float)
    # two differently seeded networks disagree: a finite, non-zero deviation, ordered max>=avg>=min
    assert np.all(np.isfinite(row)) and row[4] > 0
    assert row[4] >= row[6] >= row[5] >= 0
