"""Amendment A7 of the claims study (docs/experiments.md): the g(r) error of an MD run over the
frames after ``--start-ps``, up to the end of the run's stable part, against the reference MD.

The measure is gnnff.stability's own (``rdf`` criterion, ``rdf_error_stable``): the g(r) of each
frame (0.05-Å bins to 6 Å), averaged over the frames, minus the mean g(r) of the reference
trajectory, ∫|g - g_ref| dr in Å. With ``--start-ps 0`` it equals the analysis' ``rdf_error_stable``
(tests/benchmarks/test_stability_window_rdf.py). A7 applies it after the first 5 ps of the
20-ps runs of Amendment A4, whose first 5 ps repeat the primary runs exactly.

    python benchmarks/stability_window_rdf.py --workdir runs/claims2_decorrelation --start-ps 5

writes ``<run>/md_<composition>_20ps.window_rdf.json`` beside each finished 20-ps unit (its
analysis gives the stable time; a unit without its analysis is skipped), and prints a line
per run. The dumps stay in the work folder; the JSONs are collected into the repository.
"""

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from gnnff.stability.rdf import radial_distribution
from gnnff.stability.readers import TrajectoryWarning, open_trajectory

R_MAX_A, BIN_A = 6.0, 0.05  # the rdf criterion's defaults for periodic systems
REFERENCE = "sio_reference_{composition}-amorphous_1500K.extxyz"


def edges() -> np.ndarray:
    return np.linspace(0.0, R_MAX_A, int(round(R_MAX_A / BIN_A)) + 1)


def mean_curve(frames, bins: np.ndarray) -> Optional[np.ndarray]:
    curves = [radial_distribution(f, bins, "g") for f in frames]
    return np.mean(curves, axis=0) if curves else None


def window_rdf_error(
    trajectory: Path,
    reference: Path,
    start_ps: float,
    stable_time_ps: float,
    stable_through_end: bool,
    timestep_ps: float,
    elements=None,
) -> Dict:
    """g(r) error of the frames with start_ps <= t < stable_time_ps (every frame from start_ps
    on when the run was stable to its end); t counts from the trajectory's first frame."""
    bins = edges()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrajectoryWarning)
        g_ref = mean_curve(open_trajectory(reference), bins)
        first_step, frames = None, []
        for frame in open_trajectory(trajectory, type_symbols=elements):
            first_step = frame.step if first_step is None else first_step
            t = (frame.step - first_step) * timestep_ps
            if t < start_ps - 1e-9:
                continue
            if not stable_through_end and t >= stable_time_ps - 1e-9:
                break
            frames.append(frame)
    g = mean_curve(frames, bins)
    error = None if g is None else float(np.abs(g - g_ref).sum() * (bins[1] - bins[0]))
    return {
        "start_ps": start_ps,
        "end_ps": None if stable_through_end else stable_time_ps,
        "frames": len(frames),
        "rdf_error": error,
        "reference": str(reference),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="the study's work folder")
    parser.add_argument("--start-ps", type=float, default=5.0)
    parser.add_argument("--length-ps", type=int, default=20, help="which extended units (ps)")
    parser.add_argument("--timestep-ps", type=float, default=0.001)
    parser.add_argument("--data", default="data_sio_paper_0", help="data folder in the workdir")
    args = parser.parse_args(argv)
    work = Path(args.workdir)
    suffix = f"_{args.length_ps}ps"
    for analysis_file in sorted(work.glob(f"seed*/*/md_*{suffix}.analysis.json")):
        name = analysis_file.name.removesuffix(".analysis.json")  # md_SiO1.1_20ps
        composition = name.removeprefix("md_").removesuffix(suffix)
        out = analysis_file.with_name(f"{name}.window_rdf.json")
        if out.exists() or (analysis_file.parent / f"{name}.analysis.json.lock").exists():
            continue
        analysis = json.loads(analysis_file.read_text())["result"]
        dump = analysis_file.parent / name / "traj.dump"
        if not dump.is_file():
            print(f"{dump}: missing; skipped", file=sys.stderr)
            continue
        result = window_rdf_error(
            dump,
            work / args.data / REFERENCE.format(composition=composition),
            args.start_ps,
            analysis["stable_time_ps"],
            analysis["stable_through_end"],
            args.timestep_ps,
            elements=("Si", "O"),
        )
        result.update(
            composition=composition,
            run=str(analysis_file.parent.relative_to(work)),
            stable_time_ps=analysis["stable_time_ps"],
            stable_through_end=analysis["stable_through_end"],
            rdf_error_stable_whole_run=analysis["rdf_error_stable"],
        )
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(
            f"{result['run']} {composition}: g(r) error after {args.start_ps} ps "
            f"{result['rdf_error']} Å over {result['frames']} frames",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
