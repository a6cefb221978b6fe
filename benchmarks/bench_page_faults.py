"""Minor page faults and time per MD step of pair_style gnnff for the equivariant models.

    python benchmarks/bench_page_faults.py [--models nequip allegro] [--steps 5] [--src python]
                                           [--keep-freed-memory] [--pair-args "memory release"]
                                           [--out benchmarks/results/page_faults.json]

The model (issue 13's "equal size": r_max 5 Å, 2 layers, l_max 1, allegro 32 latent / 16 tensor
channels, nequip 32 features, float32, torch.manual_seed(0)) is exported from the source tree
--src (give the python/ folder of another checkout for an A/B) and run by ``lmp`` on 512 atoms of
diamond Si (NVE, 300 K, 1 rank, OMP_NUM_THREADS=1) under ``/usr/bin/time -v``. The faults of a
``run 0`` deck (start-up, first call) are subtracted from those of a ``run N`` deck, divided by N;
so is the process's CPU time (user + system, which other jobs on a loaded machine disturb less
than the loop's wall time). The first calls of a run include TorchScript's one-time optimisation:
use N >= 10.

--keep-freed-memory sets MALLOC_MMAP_THRESHOLD_=1 GiB and MALLOC_TRIM_THRESHOLD_=4 GiB for lmp:
glibc then keeps freed blocks for reuse instead of unmapping them (the default returns every
block above its mmap threshold to the kernel, so the next step's tensors of that size fault in
fresh zeroed pages). Since the pair style's ``memory keep`` (its default) does the same with
mallopt, ``--pair-args "memory release"`` measures glibc's defaults (the plugin before it).
--rounds R repeats the run/run-0 pair R times per model (interleaved across models) and reports
every round.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
OPTIONS = {
    "allegro": dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False),
    "nequip": dict(n_layers=2, l_max=1, num_features=32, parity=False),
}
KEEP_FREED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}
DECK = """units metal
lattice diamond 5.431
region b block 0 4 0 4 0 4
create_box 1 b
create_atoms 1 box
mass 1 28.0855
velocity all create 300 4928 loop geom
pair_style gnnff {pair_args}
pair_coeff * * model.pt Si
neighbor 1.0 bin
fix 1 all nve
thermo {thermo}
run {steps}
"""

EXPORT = r"""
import sys, torch
from gnnff.export import export_model
from gnnff.models.registry import build_model
import json
name, options, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
export_model(build_model(name, type_names=["Si"], r_max=5.0, **options).float(), path)
"""


def run_lammps(folder: str, steps: int, env: dict, pair_args: str = ""):
    with open(os.path.join(folder, "in.lmp"), "w") as f:
        f.write(DECK.format(thermo=max(steps, 1), steps=steps, pair_args=pair_args))
    proc = subprocess.run(
        ["/usr/bin/time", "-v", os.path.join(BIN, "lmp"), "-in", "in.lmp", "-log", "none"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lmp failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    faults = int(
        re.search(r"Minor \(reclaiming a frame\) page faults: (\d+)", proc.stderr).group(1)
    )
    loop = float(re.findall(r"Loop time of ([\d.eE+-]+)", proc.stdout)[-1])
    # CPU seconds of the process (user + system): less sensitive than wall time to other jobs
    cpu = sum(
        float(re.search(rf"{what} time \(seconds\): ([\d.]+)", proc.stderr).group(1))
        for what in ("User", "System")
    )
    return faults, loop, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["nequip", "allegro"], choices=list(OPTIONS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument(
        "--src",
        default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"),
    )
    parser.add_argument("--keep-freed-memory", action="store_true")
    parser.add_argument("--pair-args", default="", help="extra pair_style gnnff arguments")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if args.keep_freed_memory:
        env.update(KEEP_FREED)
    folders = {}
    for name in args.models:
        folder = tempfile.mkdtemp(prefix=f"gnnff_pf_{name}_")
        subprocess.run(
            [
                sys.executable,
                "-c",
                EXPORT,
                name,
                json.dumps(OPTIONS[name]),
                os.path.join(folder, "model.pt"),
            ],
            check=True,
            env=dict(os.environ, PYTHONPATH=args.src),
        )
        folders[name] = folder
    rows = []
    for round_ in range(args.rounds):
        for name in args.models:
            base_faults, _, base_cpu = run_lammps(folders[name], 0, env, args.pair_args)
            faults, loop, cpu = run_lammps(folders[name], args.steps, env, args.pair_args)
            row = {
                "model": name,
                "round": round_,
                "options": OPTIONS[name],
                "atoms": 512,
                "steps": args.steps,
                "pair_args": args.pair_args,
                "minor_faults_per_step": (faults - base_faults) / args.steps,
                "loop_s_per_step": loop / args.steps,
                "cpu_s_per_step": (cpu - base_cpu) / args.steps,
                "load_average_after": os.getloadavg()[0],
            }
            rows.append(row)
            print(
                f"{name}: {row['minor_faults_per_step']:.0f} minor page faults per step, "
                f"{1e3 * row['loop_s_per_step']:.0f} ms per step (wall), "
                f"{1e3 * row['cpu_s_per_step']:.0f} ms CPU per step",
                flush=True,
            )
    if args.out:
        report = {
            "benchmark": "bench_page_faults",
            "src": args.src,
            "keep_freed_memory": args.keep_freed_memory,
            "pair_args": args.pair_args,
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "load_average_after": list(os.getloadavg()),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": rows,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
