"""Shared steps of the MD-stability experiments (benchmarks/stability_*.py).

Every step runs gnnff's *public* commands (`gnnff data generate`, `gnnff train`, `gnnff eval`,
`gnnff export`, `mpirun -np N lmp`) in a subprocess of this Python, with PYTHONPATH pointing at
this checkout (the venv may hold a stale installed copy of gnnff), and logs each command's
output to a file. The LAMMPS deck is gnnff.workflow.md_deck's; trajectories are judged with
gnnff.stability.StabilityAnalysis. Nothing here re-implements training, export or analysis.
"""

import csv
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

import md_resume  # noqa: E402  (benchmarks/, beside this file)

from gnnff.stability import StabilityAnalysis, StabilityOptions  # noqa: E402
from gnnff.workflow.md_deck import render_deck  # noqa: E402
from gnnff.workflow.pipeline import find_tool  # noqa: E402  (the venv's lmp / mpirun)


@dataclass
class CommandResult:
    returncode: int
    wall_s: float
    log: Path


def gnnff_env(threads: Optional[int] = None) -> Dict[str, str]:
    """Environment for child processes: this checkout's gnnff first; optional torch threads."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def gnnff_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "gnnff.cli", *map(str, args)]


def run_command(
    cmd: Sequence[str],
    log: Path,
    cwd: Optional[Path] = None,
    env: Optional[Dict[str, str]] = None,
    check: bool = True,
    timeout_s: Optional[float] = None,
) -> CommandResult:
    """Run ``cmd``, its stdout+stderr to ``log``; raise (with the log's tail) if it fails and
    ``check``. A command killed by ``timeout_s`` gets return code -9."""
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"$ {' '.join(shlex.quote(str(c)) for c in cmd)}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        out.write(f"$ {' '.join(shlex.quote(str(c)) for c in cmd)}\n")
        out.flush()
        proc = subprocess.Popen(
            list(map(str, cmd)),
            cwd=cwd,
            env=env or gnnff_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the whole process group: mpirun and its ranks
            proc.wait()
            returncode = -9
    result = CommandResult(returncode, time.perf_counter() - start, log)
    if check and returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-30:])
        raise RuntimeError(f"command failed with status {returncode} (log {log}):\n{tail}")
    return result


# ---- data ------------------------------------------------------------------------------------
def generate_data(
    name: str, size: str, seed: int, outdir: Path, logs: Path, workers: int = 1
) -> Dict:
    """`gnnff data generate` (``workers`` processes); reuses ``outdir`` when its data card has
    the same name/size/seed."""
    card_file = Path(outdir) / "datacard.json"
    record = Path(outdir).parent / f"{Path(outdir).name}.card.json"
    if card_file.exists():
        card = json.loads(card_file.read_text())
        if (card.get("name"), card.get("size"), card.get("seed")) == (name, size, seed):
            missing = data_files_missing(card, Path(outdir))
            if not missing:
                print(f"reusing {name} ({size}, seed {seed}) in {outdir}", flush=True)
                return card
            # a card without its files: collected units copied in before the data were
            # regenerated (docs/experiments.md, "On a new machine"); the record of a generation
            # that did not happen here goes too
            print(
                f"{outdir}: the data card is there but {missing[0]} is not "
                f"({len(missing)} file(s) missing): generating {name} again",
                flush=True,
            )
            record.unlink(missing_ok=True)

    def generate() -> Dict:  # under cached()'s lock: jobs side by side generate it once
        run_command(
            gnnff_command(
                "data",
                "generate",
                name,
                "--size",
                size,
                "--seed",
                seed,
                "-o",
                outdir,
                "-q",
                "--overwrite",
                "-j",
                workers,
            ),
            Path(logs) / f"datagen_{name.replace(':', '_')}_{size}_{seed}.log",
            env=gnnff_env(threads=1),
        )
        return json.loads(card_file.read_text())

    return cached(record, {"name": name, "size": size, "seed": seed}, generate)


def data_files_missing(card: Dict, outdir: Path) -> List[str]:
    """The files a data card lists (its sets and reference MD) that are not in ``outdir``."""
    files = [part["file"] for part in card.get("sets", {}).values() if "file" in part]
    files += [part["file"] for part in card.get("reference_md", []) if "file" in part]
    return [f for f in files if not (outdir / f).exists()]


# ---- training --------------------------------------------------------------------------------
def read_metrics(run_dir: Path) -> List[Dict[str, float]]:
    """metrics.csv of a training run as a list of per-epoch rows (numbers as floats)."""
    with open(Path(run_dir) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def _number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def layer_correlations(row: Dict[str, float], prefix: str = "val_corr_layer") -> Dict[str, float]:
    """{layer index: rho} from one metrics row (empty when no decorrelation term logged)."""
    return {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}


def train(config: Dict, run_dir: Path, n_train: int, threads: Optional[int] = None) -> Dict:
    """Write ``config`` (output.dir = run_dir) as YAML, run `gnnff train`, summarise metrics.csv.

    ``seconds_per_step`` is the trainer's own timing of the optimiser steps (from
    train_structures_per_s, which excludes validation and checkpointing); ``wall_s`` is the
    whole command including start-up, validation and checkpoints.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = dict(config, output={"dir": str(run_dir), "overwrite": True})
    config_file = run_dir.parent / f"{run_dir.name}.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    # an interrupted training (last.pt, written at epoch ends and every
    # training.checkpoint_every_steps) continues where it stopped instead of starting again
    resume = ["--resume"] if (run_dir / "last.pt").exists() else []
    log = run_dir.parent / f"{run_dir.name}.log"
    if resume and log.exists():
        log.rename(log.with_name(f"{log.stem}.before_resume_{int(time.time())}.log"))
    result = run_command(gnnff_command("train", config_file, *resume), log, env=gnnff_env(threads))
    rows = read_metrics(run_dir)
    train_seconds = sum(n_train / r["train_structures_per_s"] for r in rows)
    steps = int(rows[-1]["step"])
    monitor = config.get("training", {}).get("monitor", "val_loss")
    best = min(rows, key=lambda r: r[monitor])
    return {
        "config_file": str(config_file),
        "code_version": model_code_version(),
        "wall_s": result.wall_s,
        "epochs": len(rows),
        "steps": steps,
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / steps if steps else None,
        "best_epoch": int(best["epoch"]),
        "final": rows[-1],
        "best": best,
        "val_corr_per_layer_best": layer_correlations(best),
        "val_corr_per_layer_final": layer_correlations(rows[-1]),
    }


def evaluate(checkpoint: Path, data: Sequence[Path], out_json: Path) -> Dict:
    """`gnnff eval --json`: energy (meV/atom) and force (meV/Å) MAE/RMSE."""
    run_command(
        gnnff_command("eval", checkpoint, *data, "--json", out_json),
        Path(out_json).with_suffix(".log"),
    )
    return json.loads(Path(out_json).read_text())


def export(checkpoint: Path, model_file: Path) -> Path:
    run_command(
        gnnff_command("export", checkpoint, "-o", model_file),
        Path(model_file).with_suffix(".export.log"),
    )
    return Path(model_file)


# ---- LAMMPS MD -------------------------------------------------------------------------------
def write_md_input(
    start,
    md_dir: Path,
    model_file: Path,
    elements: Sequence[str],
    temperature_K: float,
    steps: int,
    timestep_ps: float,
    dump_every: int,
    seed: int,
    tdamp_ps: Optional[float] = None,
    boundary: str = "p p p",
    native_pair: Optional[Dict] = None,
) -> Path:
    """Data file of ``start`` (ase.Atoms) + gnnff.workflow.md_deck's NVT deck in ``md_dir``.

    boundary "f f f" is for a molecule in vacuum: ``start`` must then carry a cell (box) that
    holds it with room to move; atoms that leave it are lost (and the run counts as failed).
    ``native_pair`` (a datagen pair dict, e.g. {"pair_style": "tersoff", "potential":
    "SiO.tersoff"}) runs the *reference potential* through the same deck instead of the model:
    the control that shows what the stability criteria say about a trajectory of the truth.
    """
    import ase.io

    md_dir = Path(md_dir)
    md_dir.mkdir(parents=True, exist_ok=True)
    ase.io.write(
        md_dir / "start.data", start, format="lammps-data", specorder=list(elements), masses=True
    )
    model_path = os.path.relpath(model_file, md_dir)
    pair_style = "gnnff"
    if native_pair is not None:
        from gnnff.datagen.lammps_engine import potential_path

        pair_style, model_path = native_pair["pair_style"], potential_path(native_pair["potential"])
    deck = render_deck(
        boundary=boundary,
        pair_style=pair_style,
        deck_name="in.md",
        data_file="start.data",
        model_file=model_path,
        elements=" ".join(elements),
        temperature=temperature_K,
        seed=seed,
        timestep_ps=timestep_ps,
        tdamp_ps=tdamp_ps or 100 * timestep_ps,
        thermo_every=dump_every,
        dump_every=dump_every,
        dump_file="traj.dump",
        steps=steps,
    )
    # a restart file now and then: a run cut short continues from the latest (md_resume.py)
    run_line = deck.rindex("\nrun ") + 1
    restart = md_resume.restart_commands(md_resume.restart_every(steps, dump_every))
    deck = deck[:run_line] + restart + deck[run_line:]
    (md_dir / "in.md").write_text(deck)
    return md_dir / "in.md"


def longer_md_steps(
    ps: str, primary_steps: int, timestep_ps: float, option: str, example: str
) -> int:
    """MD steps of a run of ``ps`` ps that must be longer than the primary MD of
    ``primary_steps`` (the claims study's longer runs, Amendments A4 and A5 of
    docs/experiments.md). ValueError with the fix otherwise: ``option`` is what the user wrote
    (named in the message), ``example`` a valid form of it."""
    try:
        length = float(ps)
    except ValueError:
        length = math.nan
    if not math.isfinite(length):
        raise ValueError(f"{option}: {ps!r} is not a length in ps; write e.g. {example}")
    steps = round(length / timestep_ps)
    if steps <= primary_steps:
        raise ValueError(
            f"{option}: {steps * timestep_ps:g} ps is not longer than the primary MD "
            f"({primary_steps * timestep_ps:g} ps); an extension must be longer, e.g. {example}"
        )
    return steps


def md_unit_name(stem: str, md_steps: int, primary_steps: int, timestep_ps: float) -> str:
    """The folder of an MD unit: ``stem`` for the primary length and, for a longer run, with
    its length in ps (``md_60ps``, ``md_SiO1.1_20ps``), so both live side by side."""
    if md_steps == primary_steps:
        return stem
    return f"{stem}_{md_steps * timestep_ps:g}ps"


def run_md(md_dir: Path, nprocs: int = 2, timeout_s: Optional[float] = None) -> Dict:
    """`mpirun -np N lmp -in in.md`; a crash (lost atoms, NaN) is a result, not an error. A run
    that was cut short (its unit computed again) continues from its latest restart file
    (md_resume.py); ``resumed_from_step`` then says from which step, and ``wall_s`` is the
    continued segment's."""
    md_dir = Path(md_dir)
    resumed_from = md_resume.prepare(md_dir)
    deck, log = ("in.md", "log.lammps")
    if resumed_from is not None:
        deck, log = md_resume.RESUME_DECK, md_resume.SEGMENT_LOG
    cmd = [find_tool("mpirun"), "-np", str(nprocs), find_tool("lmp"), "-in", deck, "-log", log]
    result = run_command(
        cmd,
        md_dir / ("lmp.out" if resumed_from is None else "lmp.resume.out"),
        cwd=md_dir,
        env=gnnff_env(threads=1),
        check=False,
        timeout_s=timeout_s,
    )
    md_resume.finish(md_dir)
    record = {
        "returncode": result.returncode,
        "wall_s": result.wall_s,
        "timed_out": result.returncode == -9,
    }
    if resumed_from is not None:
        record["resumed_from_step"] = resumed_from
    return record


def analyse(md_dir: Path, reference: Optional[Path], elements: Sequence[str], **options) -> Dict:
    """gnnff.stability on md_dir/traj.dump (+ log.lammps); writes stability.{txt,json} there."""
    md_dir = Path(md_dir)
    log = md_dir / "log.lammps"
    return analyse_trajectory(
        md_dir / "traj.dump",
        reference,
        elements,
        log=log if log.exists() else None,
        report_dir=md_dir,
        **options,
    )


def analyse_trajectory(
    trajectory: Path,
    reference: Optional[Path],
    elements: Sequence[str],
    log: Optional[Path] = None,
    report_dir: Optional[Path] = None,
    **options,
) -> Dict:
    """StabilityAnalysis of any trajectory (LAMMPS dump or extxyz); the headline numbers.

    ``options`` are StabilityOptions fields (rdf_window, timestep_ps, ...).
    """
    report = (
        StabilityAnalysis(
            str(trajectory),
            log=str(log) if log else None,
            reference=str(reference) if reference else None,
            options=StabilityOptions(elements=list(elements), **options),
        )
        .run()
        .results
    )
    full = report.to_dict()
    if report_dir is not None:
        (Path(report_dir) / "stability.txt").write_text(report.format_table() + "\n")
        with open(Path(report_dir) / "stability.json", "w") as handle:
            json.dump(full, handle, indent=1)
    failed = [c for c in full["criteria"] if c["name"] in (full["first_failed"] or [])]
    bonds = next((c for c in full["criteria"] if c["name"] == "bonds"), None)
    return {
        "stable_time_ps": full["stable_time"],
        "total_time_ps": full["total_time"],
        "stable_through_end": full["stable_through_end"],
        "first_failed": full["first_failed"],
        "failure_reason": [c["failure_reason"] for c in failed],
        "rdf_error_stable": full["rdf_error_stable"],
        "rdf_kind": full["rdf_kind"],
        "max_bond_deviation_A": _max(bonds["curve"]["value"]) if bonds else None,
        "active_criteria": [c["name"] for c in full["criteria"] if c["active"]],
        "n_frames": full["n_frames"],
        "warnings": full["warnings"],
    }


def _max(values) -> Optional[float]:
    finite = [v for v in values if v is not None and v == v]
    return max(finite) if finite else None


# ---- results ---------------------------------------------------------------------------------
def machine_info() -> Dict:
    import torch

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average": list(os.getloadavg()),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json(path: Path, payload: Dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    tmp.replace(path)
    print(f"wrote {path}", flush=True)


def reference_force_rms(path: Path) -> float:
    """RMS of the reference force *components* of a data file, meV/Å: the scale gate 1 divides
    the (per-component) force MAE by (docs/experiments.md)."""
    import ase.io
    import numpy as np

    forces = np.concatenate([a.get_forces().ravel() for a in ase.io.read(path, ":")])
    return float(1e3 * np.sqrt(np.mean(forces**2)))


def cached(
    result_file: Path,
    key: Dict,
    compute: Callable[[], Dict],
    poll_s: float = 15.0,
    redo_if_other: bool = False,
) -> Dict:
    """One work unit (a training, one MD run + analysis) computed once per work folder.

    The result is stored with ``key`` (the settings that determine it) in ``result_file``; a
    later call with the same key reads it back, a different key is an error (use another
    --workdir). While one process computes a unit it holds ``<result_file>.lock`` (its pid);
    another process that needs the same unit waits for it, so jobs may run side by side in one
    work folder; a lock whose process has died is taken over. An interrupted unit is redone.
    ``redo_if_other``: a stored result of another key is recomputed instead (analyses, whose
    key holds the analysis code's version).
    """
    result_file, key = Path(result_file), json.loads(json.dumps(key, default=str))
    lock = result_file.with_name(result_file.name + ".lock")
    while True:
        if result_file.exists():
            stored = json.loads(result_file.read_text())
            if stored.get("key") != key and redo_if_other:
                result_file.unlink(missing_ok=True)
                continue
            if stored.get("key") != key:
                raise ValueError(
                    f"{result_file} holds a result of other settings:\n  stored "
                    f"{stored.get('key')}\n  wanted {key}\nuse another --workdir"
                )
            return stored["result"]
        result_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if not _lock_alive(lock):
                lock.unlink(missing_ok=True)
                continue
            time.sleep(poll_s)
            continue
        with os.fdopen(handle, "w") as out:
            out.write(str(os.getpid()))
        try:
            result = compute()
            write_json(result_file, {"key": key, "result": result})
        finally:
            lock.unlink(missing_ok=True)
        return result


def source_version(*packages: str) -> str:
    """sha1 of the Python sources of gnnff sub-packages (e.g. "stability", "models")."""
    import hashlib

    digest = hashlib.sha1()
    for package in packages:
        for source in sorted((REPO / "python" / "gnnff" / package).rglob("*.py")):
            digest.update(str(source.relative_to(REPO)).encode() + source.read_bytes())
    return digest.hexdigest()[:12]


def analysis_version() -> str:
    """Stored with each analysis, so that a change of the criteria re-judges every stored
    trajectory (without rerunning its MD)."""
    return source_version("stability")


def model_code_version() -> str:
    """Recorded (not keyed) with each training: a study whose models came from different
    model/trainer code shows it in its results."""
    return source_version("models", "training")


def md_then_analysis(
    md_dir: Path, key: Dict, run: Callable[[], Dict], judge: Callable[[], Dict]
) -> Dict:
    """An MD run (cached under ``key``) and its analysis (cached under ``key`` + the analysis
    version, redone when gnnff.stability changes): {"md": ..., "stability": ...}."""
    md_dir = Path(md_dir)
    md = cached(md_dir.parent / f"{md_dir.name}.run.json", key, run)
    stability = cached(
        md_dir.parent / f"{md_dir.name}.analysis.json",
        dict(key, analysis=analysis_version()),
        judge,
        redo_if_other=True,
    )
    return {"md": md, "stability": stability}


def _lock_alive(lock: Path) -> bool:
    try:
        text = lock.read_text().strip()
        if not text:  # just created, pid not written yet
            return time.time() - lock.stat().st_mtime < 60
        os.kill(int(text), 0)
    except (OSError, ValueError):  # no such process, or an unreadable lock
        return False
    return True


def reusable_runs(paths: Optional[Sequence[str]], payload: Dict, same: Sequence[str]) -> Dict:
    """Runs of earlier result JSONs at ``paths`` whose ``same`` top-level fields and settings
    (apart from the seed list) equal ``payload``'s, keyed by (variant, seed), plus their controls
    and pre-training under ("__extra__", key): lets a later call add seeds, or merge results of
    calls run side by side, without redoing runs (--reuse). Later files win."""
    found: Dict = {}
    strip = lambda settings: {k: v for k, v in settings.items() if k != "seeds"}  # noqa: E731
    for path in paths or []:
        if not Path(path).exists():
            raise ValueError(f"--reuse {path}: no such file")
        old = json.loads(Path(path).read_text())
        mismatched = [k for k in same if old.get(k) != payload.get(k)]
        if strip(old.get("settings", {})) != strip(json.loads(json.dumps(payload["settings"]))):
            mismatched.append("settings")
        if mismatched:
            raise ValueError(
                f"--reuse {path}: its {mismatched} differ from this run's; "
                "reuse only a result of the same experiment settings"
            )
        found.update({(run["variant"], run["seed"]): run for run in old.get("runs", [])})
        found.update(
            {
                ("__extra__", key): old[key]
                for key in old
                if key.endswith("_control") or key == "pretraining"
            }
        )
    return found


def add_run_arguments(parser, name: str, reuse_help: str) -> None:
    """Options both stability experiments share: MPI ranks, threads, folders, reuse, table."""
    parser.add_argument("--np", dest="nprocs", type=int, default=2, help="MPI ranks for lmp")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument(
        "--datagen-workers",
        type=int,
        default=2,
        help="processes for `gnnff data generate` (1 when jobs run side by side)",
    )
    parser.add_argument("--workdir", default=str(REPO / f"runs/{name}"))
    parser.add_argument("--json", default=str(REPO / f"benchmarks/results/{name}.json"))
    parser.add_argument("--reuse", metavar="JSON", nargs="+", help=reuse_help)
    parser.add_argument("--table", metavar="JSON", help="only print JSON's results as markdown")


def print_table_only(args, markdown_tables) -> bool:
    """With --table: print that result JSON as markdown and say so (the caller then returns)."""
    if not args.table:
        return False
    import json

    print(markdown_tables(json.loads(Path(args.table).read_text())))
    return True
