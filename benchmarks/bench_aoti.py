"""TorchScript vs AOTInductor (`gnnff export --format aoti`) for the same models (not a test).

Two steps, so that the compilation (minutes) does not run while the claims study is paused:

    PYTHONPATH=python python benchmarks/bench_aoti.py prepare --folder /tmp/bench_aoti
    PYTHONPATH=python /work/tools/timed.sh python benchmarks/bench_aoti.py measure \\
        --folder /tmp/bench_aoti --out benchmarks/results/aoti.json

(PYTHONPATH=python: the source tree's gnnff; `lmp` runs the installed plugin.)

``prepare`` builds pair_mlp (default options), allegro (preset small) and allegro at the issue's
size equal to the peer for Si, r_max 5 Å, float32, seeded, and writes each as NAME.pt
(TorchScript) and NAME.pt2 (AOTInductor), recording the export time.
``measure`` times (1) one call of the model on a 512-atom diamond Si cell (rattled 0.05 Å) with
the pair style's inputs (positions, types, edges, num_local, atom virial requested; for the
package an all-zero edge shift), both formats called from Python, interleaved rounds, median
and min per call; (2) NVE MD of the same cell in LAMMPS (OMP_NUM_THREADS=1, 300 K) with
pair_coeff on the .pt and on the .pt2, interleaved rounds, atom-steps/s from "Loop time"
(``--nprocs 1 2``: also on 2 MPI ranks; ``--models``: a subset).
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from ase.build import bulk

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model, load_exported
from gnnff.export_aoti import export_aoti, load_aoti
from gnnff.models.registry import build_model

BIN = os.path.dirname(sys.executable)
R_MAX = 5.0
# label: (registered builder, options); allegro_equal is the size "equal to the peer"
# (benchmarks/bench_peer.py): 2 layers, l_max 1, 32 scalar / 16 tensor channels
MODELS = {
    "pair_mlp": ("pair_mlp", dict(seed=0)),
    "allegro": ("allegro", dict(preset="small")),
    "allegro_equal": (
        "allegro",
        dict(
            n_layers=2,
            l_max=1,
            latent_dim=32,
            num_channels=16,
            parity=False,
            n_bessel=8,
            mlp_hidden=32,
        ),
    ),  # fmt: skip
}
MD_STEPS = {"pair_mlp": 200, "allegro": 40, "allegro_equal": 20}
DECK = """\
units metal
lattice diamond 5.431
region b block 0 4 0 4 0 4
create_box 1 b
create_atoms 1 box
mass 1 28.0855
velocity all create 300.0 4928 loop geom
pair_style gnnff
pair_coeff * * {model} Si
neighbor 1.0 bin
fix 1 all nve
thermo {steps}
run 5
run {steps}
"""


def machine():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }


def prepare(folder):
    """Export every model not yet in ``folder`` (export times kept in prepare.json)."""
    os.makedirs(folder, exist_ok=True)
    report = {"machine": machine(), "export_seconds": {}}
    if os.path.exists(os.path.join(folder, "prepare.json")):
        with open(os.path.join(folder, "prepare.json")) as f:
            report["export_seconds"] = json.load(f)["export_seconds"]
    for name, (builder, options) in MODELS.items():
        torch.manual_seed(0)
        options = dict(type_names=["Si"], r_max=R_MAX, **options)
        model = build_model(builder, **options).to(torch.float32).eval()
        for fmt, suffix, export in (
            ("torchscript", "pt", export_model),
            ("aoti", "pt2", export_aoti),
        ):
            if f"{name}.{fmt}" in report["export_seconds"]:
                continue
            start = time.perf_counter()
            export(model, os.path.join(folder, f"{name}.{suffix}"))
            report["export_seconds"][f"{name}.{fmt}"] = time.perf_counter() - start
            print(name, fmt, f"{report['export_seconds'][f'{name}.{fmt}']:.1f} s", flush=True)
    with open(os.path.join(folder, "prepare.json"), "w") as f:
        json.dump(report, f, indent=2)


def one_call_timings(folder, name, rounds, calls):
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((4, 4, 4))
    atoms.rattle(0.05, seed=0)
    graph = atoms_to_graph(atoms, ["Si"], R_MAX, dtype=torch.float32)
    n, e = len(atoms), int(graph[keys.EDGE_INDEX].shape[1])
    data = {k: graph[k] for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX)}
    data[keys.NUM_LOCAL] = torch.tensor([n])
    data[keys.REQUEST_ATOM_VIRIAL] = torch.ones(1, dtype=torch.long)
    scripted, _ = load_exported(os.path.join(folder, f"{name}.pt"))
    package, _ = load_aoti(os.path.join(folder, f"{name}.pt2"))
    args = (data[keys.POSITIONS], data[keys.ATOM_TYPE], data[keys.EDGE_INDEX])
    args += (torch.zeros(e, 3), data[keys.NUM_LOCAL])
    calls_of = {
        "torchscript": lambda: scripted(dict(data)),
        "aoti": lambda: package.runner(*args),
    }
    ref, got = scripted(dict(data)), package.runner(*args)
    force_error = float((got[2] - ref[keys.FORCES]).abs().max() / ref[keys.FORCES].abs().max())
    for call in calls_of.values():  # warm-up (TorchScript profiling runs, caches)
        for _ in range(3):
            call()
    times = {fmt: [] for fmt in calls_of}
    for _ in range(rounds):
        for fmt, call in calls_of.items():
            start = time.perf_counter()
            for _ in range(calls):
                call()
            times[fmt].append((time.perf_counter() - start) / calls)
    return {
        "atoms": n,
        "edges": e,
        "relative_force_difference_float32": force_error,
        **{
            f"{fmt}_ms_per_call": {
                "median": 1e3 * statistics.median(t),
                "min": 1e3 * min(t),
                "max": 1e3 * max(t),
            }
            for fmt, t in times.items()
        },
    }


def md_timings(folder, name, rounds, nprocs=1):
    out = {"torchscript": [], "aoti": []}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as work:
        for _ in range(rounds):
            for fmt, suffix in (("torchscript", "pt"), ("aoti", "pt2")):
                deck = DECK.format(
                    model=os.path.join(folder, f"{name}.{suffix}"), steps=MD_STEPS[name]
                )
                with open(os.path.join(work, "in.lammps"), "w") as f:
                    f.write(deck)
                command = [os.path.join(BIN, "lmp"), "-in", "in.lammps", "-log", "none", "-nocite"]
                if nprocs > 1:
                    mpirun = os.path.join(BIN, "mpirun")
                    command = [mpirun, "-launcher", "fork", "-np", str(nprocs)] + command
                proc = subprocess.run(
                    command, cwd=work, env=env, capture_output=True, text=True, check=True
                )
                loop = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps with (\d+) atoms", proc.stdout)[-1]  # fmt: skip
                seconds, steps, atoms = float(loop[0]), int(loop[1]), int(loop[2])
                out[fmt].append(steps * atoms / seconds / 1e3)
    return {
        f"{fmt}_katom_steps_per_s": {"min": min(v), "median": statistics.median(v), "max": max(v)}
        for fmt, v in out.items()
    }


def measure(folder, out, rounds, calls, models, nprocs):
    torch.set_num_threads(1)
    report = {
        "benchmark": "bench_aoti",
        "command": " ".join([sys.executable] + sys.argv),
        "dtype": "float32",
        "r_max_A": R_MAX,
        "machine_before": machine(),
        "results": {},
    }
    with open(os.path.join(folder, "prepare.json")) as f:
        report["prepare"] = json.load(f)
    for name in models:
        row = one_call_timings(folder, name, rounds, calls)
        for n in nprocs:
            row[f"lammps_np{n}_512_atoms"] = md_timings(folder, name, rounds, n)
        report["results"][name] = row
        print(name, json.dumps(row), flush=True)
    report["machine_after"] = machine()
    report["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prepare", "measure"])
    parser.add_argument("--folder", required=True, help="where the exported models are kept")
    parser.add_argument("--out", default="benchmarks/results/aoti.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10, help="calls per round (one-call timing)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--nprocs", nargs="+", type=int, default=[1], help="MPI ranks of the MD")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.folder)
    else:
        measure(args.folder, args.out, args.rounds, args.calls, args.models, args.nprocs)


if __name__ == "__main__":
    main()
