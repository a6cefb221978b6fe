"""`pair_style gnnff comm layer` vs `comm shell` for a 3-layer NequIP, r_max 5 Å (not a test).

Per run, from LAMMPS's own end-of-run statistics and GNNFF_TIMING=1: ghost atoms per rank
("Nghost" average and max), wall time per MD step ("Loop time"), rank 0's time per model call,
and peak resident memory per rank (/usr/bin/time %M, kB; includes torch). Strong scaling: one
fixed silicon diamond cell at 1, 2, 4 ranks; weak scaling: the same number of atoms per rank.
Also an NVE energy-conservation run (both paths, same start).

    python benchmarks/bench_layerwise.py [--steps 5] [--out benchmarks/results/layerwise.json]

Needs the installed plugin. OMP_NUM_THREADS=1 per rank.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from gnnff.export import export_model
from gnnff.models.registry import build_model

BIN = os.path.dirname(sys.executable)
LMP = os.path.join(BIN, "lmp")
MPIRUN = os.path.join(BIN, "mpirun")

DECK = """units metal
atom_style atomic
atom_modify map array
boundary p p p
lattice diamond 5.431
region box block 0 {nx} 0 {ny} 0 {nz}
create_box 1 box
create_atoms 1 box
mass 1 28.0855
displace_atoms all random 0.05 0.05 0.05 4242
velocity all create {temp} 8 loop geom
pair_style gnnff comm {comm}
pair_coeff * * {model} Si
timestep 0.001
fix 1 all nve
thermo_style custom step pe ke etotal
thermo {thermo}
thermo_modify format float %20.12f
run {warmup}
run {steps}
"""


def run(model, comm, nprocs, cells, steps, warmup=2, temp=300.0, thermo=None):
    with tempfile.TemporaryDirectory() as work:
        deck = DECK.format(
            nx=cells[0],
            ny=cells[1],
            nz=cells[2],
            comm=comm,
            model=model,
            steps=steps,
            warmup=warmup,
            temp=temp,
            thermo=thermo or steps,
        )
        open(os.path.join(work, "in.lammps"), "w").write(deck)
        cmd = ["/usr/bin/time", "-f", "maxrss_kb %M", LMP, "-in", "in.lammps", "-log", "log.lammps"]
        if nprocs > 1:
            cmd = [MPIRUN, "-launcher", "fork", "-np", str(nprocs)] + cmd
        env = dict(os.environ, OMP_NUM_THREADS="1", GNNFF_TIMING="1")
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
        out = proc.stdout + proc.stderr
        if proc.returncode:
            raise RuntimeError(out[-3000:])
        log = open(os.path.join(work, "log.lammps")).read()
    loops = re.findall(
        r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps with (\d+) atoms", log
    )
    seconds, nsteps, natoms = float(loops[-1][0]), int(loops[-1][1]), int(loops[-1][2])
    nghost = re.findall(r"Nghost:\s+([\d.eE+-]+) ave\s+([\d.eE+-]+) max", log)[-1]
    model_ms = re.findall(r"in the TorchScript call \(([\d.]+) ms/call\)", log)
    rss = [int(v) for v in re.findall(r"maxrss_kb (\d+)", out)]
    result = {
        "comm": comm,
        "ranks": nprocs,
        "atoms": natoms,
        "steps": nsteps,
        "seconds_per_step": seconds / nsteps,
        "ghosts_per_rank_avg": float(nghost[0]),
        "ghosts_per_rank_max": float(nghost[1]),
        "local_atoms_per_rank": natoms / nprocs,
        "model_ms_per_call_rank0": float(model_ms[-1]) if model_ms else None,
        "peak_rss_mb_per_rank_max": max(rss) / 1024 if rss else None,
    }
    if thermo:
        table = log[log.rindex("Step") : log.rindex("Loop time")].splitlines()[1:]
        result["etotal"] = [float(line.split()[3]) for line in table if len(line.split()) == 4]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--nve-steps", type=int, default=60)
    parser.add_argument("--out", default="benchmarks/results/layerwise.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = (
        build_model("nequip", type_names=["Si"], r_max=5.0, preset="small", n_layers=3)
        .double()
        .eval()
    )
    model.set_energy_reference(torch.tensor([-4.6]), torch.tensor([0.1]))  # gentle forces for NVE
    workdir = tempfile.mkdtemp()
    path = os.path.join(workdir, "nequip3.pt")
    export_model(model, path)

    results = {
        "host": platform.node(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "note": "measured on a loaded 2-core machine shared with other jobs; OMP_NUM_THREADS=1 "
        "per rank, so 4 ranks share 2 cores",
        "model": "nequip preset small, 3 layers, r_max 5 A, float64, CPU",
        "strong": [],
        "weak": [],
    }
    for nprocs in (1, 2, 4):
        for comm in ("layer", "shell"):
            results["strong"].append(run(path, comm, nprocs, (3, 3, 3), args.steps, warmup=1))
            print(results["strong"][-1], flush=True)
    weak_cells = {1: (2, 2, 2), 2: (4, 2, 2), 4: (4, 4, 2)}
    for nprocs in (1, 2, 4):
        for comm in ("layer", "shell"):
            results["weak"].append(
                run(path, comm, nprocs, weak_cells[nprocs], args.steps, warmup=1)
            )
            print(results["weak"][-1], flush=True)
    nve = {}
    for comm in ("layer", "shell"):
        r = run(path, comm, 2, (2, 2, 2), args.nve_steps, warmup=0, temp=600.0, thermo=5)
        e = np.array(r.pop("etotal"))
        r["etotal_max_deviation_ev_per_atom"] = float(np.abs(e - e[0]).max() / r["atoms"])
        nve[comm] = r
        print(comm, r, flush=True)
    results["nve"] = nve
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
