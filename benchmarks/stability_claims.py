"""claims.json and Kaplan-Meier plots from the stability experiments' result JSONs.

Reads what benchmarks/stability_decorrelation.py and stability_pretraining.py wrote (no MD is
rerun), checks the gates of docs/experiments.md and compares the variants as survival data
(gnnff.stability.survival: a run stable to its end is censored, ">= T"):

    python benchmarks/stability_claims.py --decorrelation benchmarks/results/stability_decorrelation_protocol.json \
        --pretraining benchmarks/results/stability_pretraining_protocol.json

writes benchmarks/results/claims.json (each experiment's section is replaced only when its JSON
is given) and docs/figures/km_<experiment>.png. A study that ran as several jobs (seeds or
variants split over processes, amendment runs added later) gives all their JSONs after one
flag; they are merged run by run (``merge_results``). Until an experiment has the seeds its
protocol fixes, its status says "in progress" and nothing is claimed, whatever the gates say.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from gnnff.stability.survival import (  # noqa: E402
    StableTimes,
    bootstrap_median_ci,
    logrank_test,
    median_ratio,
    median_stable_time,
)

GATE_MAE_OVER_RMS = 0.10  # gate 1: ID test force MAE <= 10 % of the RMS reference force
GATE_BASELINE_ID_STABLE = 0.75  # gate 2: baseline stable in distribution in >= 3 of 4 seeds
GATE_MAE_MATCH = 0.15  # pre-training: the two variants' force MAEs within 15 % of each other
# paired seeds each experiment's protocol fixes (docs/experiments.md; issue 14: >= 8 and >= 5)
PROTOCOL_SEEDS = {"decorrelation": 8, "pretraining": 5}
# what two result files of one study must agree on where both hold a run (the cached units
# make them identical; a difference means the files come from different studies)
_MUST_AGREE = ("stability", "forces_mae_meV_per_A")


def _merge_into(into: Dict, other: Dict, where: str) -> None:
    """Recursive union of two run records; the later file adds what the earlier lacks (an
    amendment's ``extended_md``), and the primary results must be equal in both."""
    for key, value in other.items():
        if key in into and key in _MUST_AGREE and into[key] != value:
            raise ValueError(
                f"the result files disagree on {where}/{key} ({into[key]} vs {value}): they "
                "are not runs of one study; give only the files of one --workdir"
            )
        if key in into and isinstance(into[key], dict) and isinstance(value, dict):
            _merge_into(into[key], value, f"{where}/{key}")
        else:
            into[key] = value


def merge_results(payloads: Sequence[Dict], names: Sequence[str]) -> Dict:
    """One result payload from the JSONs of several jobs of the same study: runs are joined by
    (variant, seed), the reference controls by composition, amendment lengths by name. The
    settings must be equal apart from the seeds each job ran."""
    import copy

    if len(payloads) == 1:
        return payloads[0]
    merged = copy.deepcopy(payloads[0])
    first = {k: v for k, v in merged["settings"].items() if k != "seeds"}
    by = {(r["variant"], r["seed"]): r for r in merged["runs"]}
    for payload, name in zip(payloads[1:], names[1:]):
        settings = {k: v for k, v in payload["settings"].items() if k != "seeds"}
        differ = sorted(k for k in set(first) | set(settings) if first.get(k) != settings.get(k))
        same_study = (payload.get("experiment"), payload.get("size")) == (
            merged.get("experiment"),
            merged.get("size"),
        )
        if differ or not same_study:
            raise ValueError(
                f"{name} is not a result of the same study as {names[0]} (differs in "
                f"{differ or ['experiment/size']}); merge only the JSONs of one study"
            )
        merged["extended_md_ps"] = _merged_lengths(
            merged.get("extended_md_ps"), payload.get("extended_md_ps"), name
        )
        for run in payload["runs"]:
            key = (run["variant"], run["seed"])
            if key in by:
                _merge_into(by[key], copy.deepcopy(run), f"{key[0]} seed {key[1]}")
            else:
                by[key] = copy.deepcopy(run)
        for extra in ("reference_potential_control", "reference_md_control"):
            if payload.get(extra):
                merged.setdefault(extra, {})
                _merge_into(merged[extra], copy.deepcopy(payload[extra]), extra)
    merged["runs"] = [by[k] for k in sorted(by, key=lambda k: (k[1], k[0]))]
    merged["settings"]["seeds"] = sorted({k[1] for k in by})
    merged["command"] = [p.get("command") for p in payloads]
    merged["merged_from"] = list(names)
    return merged


def _merged_lengths(first, other, name: str):
    """Amendment lengths of two jobs: per composition (Experiment 1, a dict) they are joined;
    one length for every run (Experiment 2, a number). Where both name a length it must agree."""
    if not other:
        return first
    if not first:
        return other
    if isinstance(first, dict) and isinstance(other, dict):
        if all(first[k] == other[k] for k in first.keys() & other.keys()):
            return {**first, **other}
    elif first == other:
        return first
    raise ValueError(
        f"{name} has longer runs of {other} ps, the other files of {first} ps; merge the "
        "results of one amendment length"
    )


def study_status(section: str, claims: Dict) -> str:
    """What an experiment's numbers may be read as: in progress until the protocol's seeds
    exist; then the gates decide whether the comparison counts."""
    needed = PROTOCOL_SEEDS[section]
    if claims["n_seeds"] < needed:
        return (
            f"in progress: {claims['n_seeds']} of the protocol's {needed} paired seeds; "
            "no claim either way yet (docs/experiments.md)"
        )
    if claims["gates"]["all_pass"]:
        return "gates met: the comparison counts"
    return "gates NOT met: no claim either way (docs/experiments.md)"


def stable_times(stabilities: Sequence[Dict]) -> StableTimes:
    """StableTimes from gnnff.stability summaries; a run stable to its end is censored."""
    return StableTimes.from_runs(
        [s["stable_time_ps"] for s in stabilities],
        [not s["stable_through_end"] for s in stabilities],
    )


def compare(
    baseline: Sequence[Dict],
    method: Sequence[Dict],
    censored_at_ps: float,
    n_boot: int = 2000,
    seed: int = 0,
) -> Dict:
    """The survival comparison of one composition / molecule (keys of claims.json)."""
    b, m = stable_times(baseline), stable_times(method)
    test, ratio = logrank_test(m, b), median_ratio(m, b, n_boot=n_boot, seed=seed)
    out = {
        "baseline_stable_ps": b.times.tolist(),
        "method_stable_ps": m.times.tolist(),
        "baseline_failed": b.failed.tolist(),
        "method_failed": m.failed.tolist(),
        "censored_at_ps": censored_at_ps,
        "logrank_chi2": test.chi2,
        "logrank_p": test.p_value,
    }
    for name, sample in (("baseline", b), ("method", m)):
        median = median_stable_time(sample)
        out[f"{name}_median_ps"] = median.value
        out[f"{name}_median_reached"] = median.reached  # False: the median is ">= value"
        out[f"{name}_median_ci95"] = list(bootstrap_median_ci(sample, n_boot=n_boot, seed=seed))
    out.update(
        median_ratio=ratio.value,
        median_ratio_kind=ratio.kind,
        median_ratio_ci95=list(ratio.ci95) if ratio.ci95 else None,
    )
    return out


def _ratio(mae: Optional[float], rms: Optional[float]) -> Optional[float]:
    return mae / rms if mae is not None and rms else None


def _all_at_most(values: List[Optional[float]], limit: float) -> bool:
    return bool(values) and all(v is not None and v <= limit for v in values)


def decorrelation_claims(payload: Dict, n_boot: int = 2000, seed: int = 0) -> Dict:
    variants = ("baseline", "decorrelation")
    by = {(r["variant"], r["seed"]): r for r in payload["runs"]}
    seeds = sorted({s for (_, s) in by if all((v, s) in by for v in variants)})  # paired seeds
    settings = payload["settings"]
    md_ps = settings["md_steps"] * settings["timestep_ps"]
    compositions = list(next(iter(by.values()))["compositions"]) if by else []
    gate1 = {
        v: [
            _ratio(
                by[v, s]["compositions"]["SiO2"]["forces_mae_meV_per_A"],
                by[v, s]["compositions"]["SiO2"].get("reference_force_rms_meV_per_A"),
            )
            for s in seeds
        ]
        for v in variants
    }
    id_stable = [
        by["baseline", s]["compositions"]["SiO2"]["stability"]["stable_through_end"] for s in seeds
    ]
    control = payload.get("reference_potential_control", {})
    reference_stable = bool(control) and all(
        c["stability"]["stable_through_end"] for c in control.values()
    )
    fraction = sum(id_stable) / len(id_stable) if id_stable else None
    gates = {
        "id_force_mae_over_rms": gate1,
        "id_force_mae_over_rms_pass": all(
            _all_at_most(gate1[v], GATE_MAE_OVER_RMS) for v in variants
        ),
        "baseline_id_stable_fraction": fraction,
        "baseline_id_stable_pass": fraction is not None and fraction >= GATE_BASELINE_ID_STABLE,
        "reference_stable": reference_stable,
    }
    gates["all_pass"] = (
        gates["id_force_mae_over_rms_pass"]
        and gates["baseline_id_stable_pass"]
        and reference_stable
    )
    result = {
        "source": payload.get("command"),
        "size": payload.get("size"),
        "model": payload.get("model"),
        "seeds": seeds,
        "n_seeds": len(seeds),
        "md_ps": md_ps,
        "temperature_K": settings["temperature_K"],
        "gates": gates,
        "compositions": {},
    }
    for composition in compositions:
        cells = {v: [by[v, s]["compositions"][composition] for s in seeds] for v in variants}
        entry = compare(
            [c["stability"] for c in cells["baseline"]],
            [c["stability"] for c in cells["decorrelation"]],
            md_ps,
            n_boot,
            seed,
        )
        entry["forces_mae_meV_per_A"] = {
            v: [c["forces_mae_meV_per_A"] for c in cells[v]] for v in variants
        }
        result["compositions"][composition] = entry
    for composition, p in holm(
        [result["compositions"][c]["logrank_p"] for c in compositions]
    ).items():
        result["compositions"][compositions[composition]]["logrank_p_holm"] = p
    result["val_corr_per_layer"] = {
        v: [by[v, s]["training"]["val_corr_per_layer_best"] for s in seeds] for v in variants
    }
    result["amendment_A4_rule"] = a4_rule(by)
    if payload.get("extended_md_ps"):
        result["amended_A4"] = amended_extended_md(payload, by, seeds, control, n_boot, seed)
    return result


A4_SEEDS, A4_COMPOSITIONS, A4_MIN_CENSORED = (0, 1, 2, 3), ("SiO1.1", "SiO1.5"), 6


def a4_rule(by: Dict) -> Dict:
    """Amendment A4's trigger (docs/experiments.md), from the primary runs only: per
    out-of-distribution composition, how many of the 8 runs of seeds 0-3 (both variants) are
    censored; it triggers where all 8 exist and at least 6 are censored."""
    out = {}
    for composition in A4_COMPOSITIONS:
        cells = [
            by[v, s]["compositions"].get(composition, {}).get("stability")
            for v in ("baseline", "decorrelation")
            for s in A4_SEEDS
            if (v, s) in by
        ]
        ran = [c for c in cells if c]
        censored = sum(bool(c["stable_through_end"]) for c in ran)
        complete = len(ran) == 2 * len(A4_SEEDS)
        out[composition] = {
            "runs": len(ran),
            "censored": censored,
            "evaluable": complete,
            "triggers": complete and censored >= A4_MIN_CENSORED,
        }
    return out


def amended_extended_md(payload: Dict, by: Dict, seeds, control: Dict, n_boot: int, seed: int):
    """Amendment A4 of docs/experiments.md: the longer MD at out-of-distribution compositions,
    compared like the primary runs (which stay the primary analysis), over the seeds whose two
    variants both have the longer run; gate 3 for it is the Tersoff control's longer run."""
    variants = ("baseline", "decorrelation")
    out = {"md_ps": dict(payload["extended_md_ps"]), "compositions": {}, "reference_stable": {}}
    for composition, md_ps in payload["extended_md_ps"].items():
        extended = {
            v: {s: by[v, s]["compositions"].get(composition, {}).get("extended_md") for s in seeds}
            for v in variants
        }
        paired = [s for s in seeds if all(extended[v][s] for v in variants)]
        if paired:
            entry = compare(
                [extended["baseline"][s]["stability"] for s in paired],
                [extended["decorrelation"][s]["stability"] for s in paired],
                md_ps,
                n_boot,
                seed,
            )
        else:  # one variant's longer runs only, so far: nothing to compare (no KM panel)
            entry = {"censored_at_ps": md_ps, "logrank_p": None, "note": "no paired seed yet"}
        entry["seeds"] = paired
        out["compositions"][composition] = entry
        reference = control.get(composition, {}).get("extended_md")
        out["reference_stable"][composition] = bool(
            reference and reference["stability"]["stable_through_end"]
        )
    names = list(out["compositions"])
    for index, p in holm([out["compositions"][c]["logrank_p"] for c in names]).items():
        out["compositions"][names[index]]["logrank_p_holm"] = p
    # the longer runs arrive seed by seed: a p-value of the first few seeds is no result
    paired = [len(out["compositions"][c]["seeds"]) for c in names]
    out["status"] = (
        "complete: every seed has both variants' longer runs"
        if all(n == len(seeds) for n in paired)
        else f"in progress: {min(paired)}-{max(paired)} of {len(seeds)} seeds per composition "
        "have both variants' longer runs; no claim either way yet"
    )
    return out


def pretraining_claims(payload: Dict, n_boot: int = 2000, seed: int = 0) -> Dict:
    variants = ("scratch", "finetuned")  # baseline, method
    by = {(r["variant"], r["seed"]): r for r in payload["runs"]}
    seeds = sorted({s for (_, s) in by if all((v, s) in by for v in variants)})
    settings = payload["settings"]
    md_ps = settings["md_steps"] * settings["timestep_fs"] * 1e-3
    mae = {v: [by[v, s]["forces_mae_meV_per_A"] for s in seeds] for v in variants}
    gate1 = {
        v: [
            _ratio(by[v, s]["forces_mae_meV_per_A"], by[v, s].get("reference_force_rms_meV_per_A"))
            for s in seeds
        ]
        for v in variants
    }
    id_stable = [by["scratch", s]["stability"]["stable_through_end"] for s in seeds]
    fraction = sum(id_stable) / len(id_stable) if id_stable else None
    match = force_mae_match(mae)
    control = payload.get("reference_md_control")
    gates = {
        "id_force_mae_over_rms": gate1,
        "id_force_mae_over_rms_pass": all(
            _all_at_most(gate1[v], GATE_MAE_OVER_RMS) for v in variants
        ),
        "force_mae_relative_difference": match,
        "force_mae_match_pass": match is not None and match <= GATE_MAE_MATCH,
        "baseline_stable_fraction": fraction,
        "reference_stable": bool(control and control["stable_through_end"]),
    }
    # gate 2 (baseline stable in distribution) is the decorrelation experiment's: here all MD is
    # in distribution, and a baseline that never fails leaves nothing to improve; reported only
    gates["all_pass"] = all(
        gates[k] for k in ("id_force_mae_over_rms_pass", "force_mae_match_pass", "reference_stable")
    )
    molecule = payload.get("molecule", "molecule")
    molecules = {}
    if seeds:  # until a seed has both variants' MD (the fine-tuned models come first) no test
        entry = compare(
            [by["scratch", s]["stability"] for s in seeds],
            [by["finetuned", s]["stability"] for s in seeds],
            md_ps,
            n_boot,
            seed,
        )
        molecules[molecule] = dict(entry, forces_mae_meV_per_A=mae)
    result = {
        "source": payload.get("command"),
        "size": payload.get("size"),
        "model": payload.get("model"),
        "seeds": seeds,
        "n_seeds": len(seeds),
        "md_ps": md_ps,
        "temperature_K": settings["temperature_K"],
        "gates": gates,
        "molecules": molecules,
        "amendment_A5_rule": a5_rule(by),
    }
    if payload.get("extended_md_ps"):
        result["amended_A5"] = amended_extended_pretraining_md(
            payload, by, seeds, molecule, gates["reference_stable"], n_boot, seed
        )
    return result


A5_SEEDS, A5_MIN_CENSORED = (0, 1), 3


def force_mae_match(mae: Dict[str, List[float]]) -> Optional[float]:
    """The MAE-match gate's measure: |mean finetuned - mean scratch| / the smaller mean, over the
    paired seeds' test force MAEs (None without a pair)."""
    means = [statistics.mean(mae[v]) if mae[v] else None for v in ("finetuned", "scratch")]
    return abs(means[0] - means[1]) / min(means) if all(means) else None


def mae_match_from_units(workdir: Path, scratch: str = "scratch") -> Dict:
    """The MAE-match gate from the work folder's evaluation units alone, so that the protocol's
    rule (docs/experiments.md, Experiment 2) can be applied as soon as the paired seeds are
    evaluated, before their MD: ``seed<k>/finetuned`` against ``seed<k>/<scratch>`` (e.g.
    ``scratch_8epochs`` after the budget has doubled)."""
    mae: Dict[str, Dict[int, float]] = {"finetuned": {}, "scratch": {}}
    for variant, folder in (("finetuned", "finetuned"), ("scratch", scratch)):
        for unit in sorted(Path(workdir).glob(f"seed*/{folder}/eval_test.result.json")):
            seed = int(unit.parent.parent.name.removeprefix("seed"))
            mae[variant][seed] = json.loads(unit.read_text())["result"]["forces_mae_meV_per_A"]
    seeds = sorted(set(mae["finetuned"]) & set(mae["scratch"]))
    paired = {v: [mae[v][k] for k in seeds] for v in mae}
    match = force_mae_match(paired)
    return {
        "seeds": seeds,
        "scratch_folder": scratch,
        "forces_mae_meV_per_A": paired,
        "mean_forces_mae_meV_per_A": {
            v: statistics.mean(x) if x else None for v, x in paired.items()
        },
        "force_mae_relative_difference": match,
        "force_mae_match_pass": match is not None and match <= GATE_MAE_MATCH,
    }


def pretraining_jobs(workdir: Path) -> List[Path]:
    """The result JSONs of Experiment 2 that count: those of the largest from-scratch budget.

    A job writes ``seeds*.json`` at the protocol's budget and ``seeds*_<N>epochs.json`` after the
    MAE-match rule doubled it (``--scratch-epochs N``); each JSON holds both variants of every
    seed of its job, so the largest N supersedes the rest (which stay as the failed attempts)."""
    budgets: Dict[int, List[Path]] = {}
    for path in sorted(Path(workdir).glob("seeds*.json")):
        tail = path.stem.rpartition("_")[2]
        epochs = int(tail.removesuffix("epochs")) if tail.endswith("epochs") else 0
        budgets.setdefault(epochs, []).append(path)
    return budgets[max(budgets)] if budgets else []


def mae_match_by_budget(units: Path) -> List[Dict]:
    """The MAE-match gate of every from-scratch budget with evaluated pairs in ``units`` (a work
    folder or its collected units): ``scratch`` (the protocol's budget), ``scratch_<N>epochs``."""
    folders = sorted(
        {p.name for p in Path(units).glob("seed*/scratch*") if p.is_dir()},
        key=lambda name: int(name.split("_")[1].removesuffix("epochs")) if "_" in name else 0,
    )
    return [mae_match_from_units(Path(units), folder) for folder in folders]


def a5_rule(by: Dict) -> Dict:
    """Amendment A5's trigger (docs/experiments.md), from the primary runs only: how many of
    the 4 runs of seeds 0-1 (both variants) are censored; it triggers when all 4 exist and at
    least 3 are censored."""
    ran = [
        by[v, s]["stability"]
        for v in ("scratch", "finetuned")
        for s in A5_SEEDS
        if (v, s) in by and by[v, s].get("stability")
    ]
    censored = sum(bool(st["stable_through_end"]) for st in ran)
    complete = len(ran) == 2 * len(A5_SEEDS)
    return {
        "runs": len(ran),
        "censored": censored,
        "evaluable": complete,
        "triggers": complete and censored >= A5_MIN_CENSORED,
    }


def amended_extended_pretraining_md(
    payload: Dict, by: Dict, seeds, molecule: str, reference_stable: bool, n_boot: int, seed: int
) -> Dict:
    """Amendment A5 of docs/experiments.md: every model's longer MD, compared like the primary
    runs (which stay the primary analysis) over the seeds whose two variants both have it, at
    the longer censoring time. One molecule: no Holm correction (as in the primary section).
    Gate 3 is the primary one: A5 makes no longer xTB reference run."""
    md_ps = payload["extended_md_ps"]
    extended = {
        v: {s: by[v, s].get("extended_md") for s in seeds} for v in ("scratch", "finetuned")
    }
    paired = [s for s in seeds if all(extended[v][s] for v in extended)]
    out = {
        "md_ps": md_ps,
        "seeds": paired,
        # the runs accrue over several sittings: until every seed of the primary comparison has
        # both longer runs, the section says so and nothing is claimed from it
        "status": "complete: every seed of the primary comparison"
        if paired == list(seeds)
        else f"in progress: {len(paired)} of {len(seeds)} seeds have both variants' "
        f"{md_ps:g}-ps runs; no claim yet",
        "reference_stable": reference_stable,
        "reference_note": "gate 3 stays the primary one: the 10-ps xTB reference trajectory "
        "judged by the same criteria (Amendment A5 makes no longer xTB run)",
        "molecules": {},
    }
    if paired:  # no comparison without a seed whose two variants both ran the longer MD
        entry = compare(
            [extended["scratch"][s]["stability"] for s in paired],
            [extended["finetuned"][s]["stability"] for s in paired],
            md_ps,
            n_boot,
            seed,
        )
        entry["seeds"] = paired
        out["molecules"][molecule] = entry
    return out


def holm(p_values: Sequence[Optional[float]]) -> Dict[int, Optional[float]]:
    """Holm-adjusted p-values (step-down, family-wise error) by index; None stays None."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted, running = {i: None for i, p in enumerate(p_values) if p is None}, 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def update_claims(path: Path, section: str, claims: Dict) -> Dict:
    """Replace one experiment's section of claims.json, keeping the others."""
    path = Path(path)
    everything = json.loads(path.read_text()) if path.exists() else {}
    everything[section] = claims
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(everything, indent=1) + "\n")
    return everything


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--decorrelation",
        metavar="JSON",
        nargs="+",
        help="stability_decorrelation result(s): several jobs' JSONs of one study are merged",
    )
    parser.add_argument(
        "--pretraining",
        metavar="JSON",
        nargs="+",
        help="stability_pretraining result(s): several jobs' JSONs of one study are merged",
    )
    parser.add_argument("--claims", default=str(REPO / "benchmarks/results/claims.json"))
    parser.add_argument(
        "--figures", default=str(REPO / "docs/figures"), help="folder of the KM PNGs"
    )
    parser.add_argument(
        "--window-rdf",
        metavar="FOLDER",
        help="with --decorrelation: the work folder (or collected units) holding the 20-ps "
        "runs' window_rdf JSONs (benchmarks/stability_window_rdf.py); adds amended_A7",
    )
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument(
        "--mae-match",
        metavar="WORKDIR",
        help="print Experiment 2's MAE-match gate from the evaluation units of this work folder "
        "(seeds with both variants evaluated; no MD needed) and exit",
    )
    parser.add_argument(
        "--scratch-folder",
        default="scratch",
        help="with --mae-match: the from-scratch units' folder name (scratch_8epochs, ...)",
    )
    parser.add_argument(
        "--pretraining-jobs",
        metavar="WORKDIR",
        help="print the result JSONs of Experiment 2 that count (the largest from-scratch "
        "budget's; one per line, for --pretraining) and exit",
    )
    parser.add_argument(
        "--pretraining-units",
        metavar="FOLDER",
        help="with --pretraining: the work folder or collected units; adds the MAE-match gate "
        "of every from-scratch budget evaluated there (mae_match_by_budget)",
    )
    args = parser.parse_args(argv)
    if args.pretraining_jobs:
        for path in pretraining_jobs(Path(args.pretraining_jobs)):  # none: no line at all
            print(path)
        return 0
    if args.mae_match:
        print(json.dumps(mae_match_from_units(Path(args.mae_match), args.scratch_folder), indent=1))
        return 0
    if args.window_rdf and not args.decorrelation:
        parser.error("--window-rdf belongs to the decorrelation study: give --decorrelation too")
    if not (args.decorrelation or args.pretraining):
        parser.error("give --decorrelation and/or --pretraining result JSON(s)")
    from stability_km_plot import plot_claims

    for section, source, build in (
        ("decorrelation", args.decorrelation, decorrelation_claims),
        ("pretraining", args.pretraining, pretraining_claims),
    ):
        if source:
            try:
                payload = merge_results([json.loads(Path(f).read_text()) for f in source], source)
            except ValueError as err:
                parser.error(str(err))
            claims = build(payload, n_boot=args.n_boot)
            claims["result_file"] = [
                str(Path(f).resolve().relative_to(REPO))
                if Path(f).resolve().is_relative_to(REPO)
                else str(f)
                for f in source
            ]
            # one code version is what the protocol means; several would show here
            claims["model_code_versions"] = sorted(
                {str(r["training"].get("code_version")) for r in payload["runs"]}
            )
            if section == "pretraining" and args.pretraining_units:
                claims["mae_match_by_budget"] = mae_match_by_budget(Path(args.pretraining_units))
            claims["status"] = study_status(section, claims)
            if section == "decorrelation" and args.window_rdf:
                from stability_window_claims import read_window_rdf, window_claims

                claims["amended_A7"] = window_claims(
                    read_window_rdf(Path(args.window_rdf)),
                    holm,
                    n_seeds=PROTOCOL_SEEDS[section],
                    n_boot=args.n_boot,
                )
            update_claims(Path(args.claims), section, claims)
            figure = (
                plot_claims(section, claims, Path(args.figures) / f"km_{section}.png")
                if claims["n_seeds"]
                else "no figure (no paired seed yet)"
            )
            print(
                f"{section}: {claims['n_seeds']} paired seeds, gates {claims['gates']['all_pass']}; "
                f"wrote {args.claims} and {figure}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
