"""Kaplan-Meier PNG of one claims.json section (benchmarks/stability_claims.py).

One panel per composition / molecule, and per longer run of Amendments A4 and A5: the
fraction of runs still stable against MD time for baseline and method, censored runs (stable
to their end) marked with a "+" on the curve, the log-rank p and the median ratio in the title.
The decorrelation figure adds the paper's central scatter: mean validation feature correlation
of each model vs its stable time.
"""

import sys
from pathlib import Path
from typing import Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from gnnff.stability.survival import StableTimes, kaplan_meier  # noqa: E402

LABELS = {
    "decorrelation": ("baseline", "decorrelation loss"),
    "pretraining": ("from scratch", "pre-trained + fine-tuned"),
}


def _curve(ax, times, failed, end, label, color):
    sample = StableTimes.from_runs(times, failed)
    km = kaplan_meier(sample)
    xs = np.concatenate([[0.0], km.times, [end]])
    ys = np.concatenate([[1.0], km.survival, [km(end)]])
    ax.step(xs, ys, where="post", color=color, label=f"{label} (n={len(times)})")
    censored = sample.times[~sample.failed]
    ax.plot(censored, km(censored), "+", color=color, ms=9, mew=1.5)


def _title(name: str, entry: Dict) -> str:
    p = entry["logrank_p"]
    ratio, kind = entry["median_ratio"], entry["median_ratio_kind"]
    ratio_text = (
        "undefined" if ratio is None else (f"{'' if kind == 'estimate' else kind + ' '}{ratio:.2g}")
    )
    holm = entry.get("logrank_p_holm")
    p_text = "-" if p is None else f"{p:.2g}" + ("" if holm in (None, p) else f" (Holm {holm:.2g})")
    return f"{name}: log-rank p = {p_text}, median ratio {ratio_text}"


def panels_of(claims: Dict) -> Dict[str, Dict]:
    """{panel title: survival comparison}: the primary compositions / molecules, then the
    longer runs of docs/experiments.md's Amendments A4 (per composition) and A5 (the molecule)."""
    panels = dict(claims.get("compositions") or claims.get("molecules"))
    amended = claims.get("amended_A4", {})
    for name, entry in amended.get("compositions", {}).items():
        if entry.get("seeds"):  # no panel before a seed has both variants' longer run
            title = f"{name}, {amended['md_ps'][name]:g} ps (A4)"
            if len(entry["seeds"]) < claims.get("n_seeds", 0):  # its p is no result yet
                title += f", INTERIM {len(entry['seeds'])} of {claims['n_seeds']} seeds"
            panels[title] = entry
    amended = claims.get("amended_A5", {})
    for name, entry in amended.get("molecules", {}).items():
        panels[f"{name}, {amended['md_ps']:g} ps (A5)"] = entry
    return panels


def plot_claims(section: str, claims: Dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = panels_of(claims)
    scatter = section == "decorrelation"
    n = len(panels) + int(scatter)
    fig, axes = plt.subplots(1, n, figsize=(max(4.4 * n, 7.5), 3.6), squeeze=False)
    base_label, method_label = LABELS[section]
    for ax, (name, entry) in zip(axes[0], panels.items()):
        end = entry["censored_at_ps"]
        _curve(ax, entry["baseline_stable_ps"], entry["baseline_failed"], end, base_label, "C0")
        _curve(ax, entry["method_stable_ps"], entry["method_failed"], end, method_label, "C3")
        ax.set_xlim(0, end * 1.02)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("MD time (ps)")
        ax.set_ylabel("fraction of runs still stable")
        ax.set_title(_title(name, entry), fontsize=8)
        ax.legend(fontsize=7, loc="lower left")
    if scatter:
        _correlation_scatter(axes[0][-1], claims)
    gates = "gates met" if claims["gates"]["all_pass"] else "GATES NOT MET: no claim"
    if str(claims.get("status", "")).startswith("in progress"):  # fewer seeds than the protocol
        gates = f"IN PROGRESS, no claim yet; {gates}"
    fig.suptitle(
        f"{section}: {claims['n_seeds']} seeds, {claims['md_ps']:g} ps at "
        f"{claims['temperature_K']:g} K ({gates}); + = censored",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def correlation_points(claims: Dict) -> list:
    """One point per model run for the correlation scatter: (variant, composition, MD length in
    ps, mean validation rho over the model's layers, stable time in ps, failed). The primary runs
    and, where Amendment A4 has them, the longer out-of-distribution runs (its seeds only)."""
    seeds = claims["seeds"]
    rho = {
        variant: {
            seed: float(np.mean(list(layers.values()))) if layers else float("nan")
            for seed, layers in zip(seeds, claims["val_corr_per_layer"][variant])
        }
        for variant in ("baseline", "decorrelation")
    }
    sets = [(claims["md_ps"], seeds, name, entry) for name, entry in claims["compositions"].items()]
    amended = claims.get("amended_A4", {})
    for name, entry in amended.get("compositions", {}).items():
        sets.append((amended["md_ps"][name], entry.get("seeds", []), name, entry))
    points = []
    for md_ps, run_seeds, composition, entry in sets:
        for variant, key in (("baseline", "baseline"), ("decorrelation", "method")):
            times, failed = entry[f"{key}_stable_ps"], entry[f"{key}_failed"]
            for seed, time, fail in zip(run_seeds, times, failed):
                points.append((variant, composition, md_ps, rho[variant][seed], time, bool(fail)))
    return points


def _correlation_scatter(ax, claims: Dict) -> None:
    """Mean val rho over layers vs stable time, every model and run (open = censored); the
    longer A4 runs are drawn larger, so their 20-ps censoring line is told from the 5-ps one."""
    markers = {"SiO2": "o", "SiO1.5": "s", "SiO1.1": "^"}
    colors = {"baseline": "C0", "decorrelation": "C3"}
    for variant, composition, md_ps, rho, time, failed in correlation_points(claims):
        color = colors[variant]
        ax.plot(
            rho,
            time,
            markers.get(composition, "o"),
            color=color,
            mfc=color if failed else "none",
            ms=5 if md_ps == claims["md_ps"] else 7,
        )
    ax.set_xlabel("val feature correlation ρ (mean over layers)")
    ax.set_ylabel("stable time (ps)")
    longer = ", A4's longer runs large" if claims.get("amended_A4") else ""
    ax.set_title(
        f"ρ vs stable time (o SiO2, □ SiO1.5, △ SiO1.1{longer};\n"
        "blue baseline, red decorrelation; open = censored)",
        fontsize=8,
    )
