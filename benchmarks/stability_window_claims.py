"""Amendment A7's test (docs/experiments.md): the g(r) error after the first 5 ps of A4's
20-ps runs, decorrelation against baseline, paired by seed.

Reads the per-run JSONs of benchmarks/stability_window_rdf.py
(``seed<k>/<variant>/md_<composition>_20ps.window_rdf.json`` in a work folder or in the
collected units) and gives, per composition: the paired values, the pairs left out (a run that
failed before the window had 10 frames), the two-sided Wilcoxon signed-rank test on
decorrelation minus baseline (exact for these sizes), Holm over the compositions, and the median
paired difference with a percentile bootstrap 95 % interval. stability_claims.py writes it to
claims.json as ``decorrelation.amended_A7`` (``--window-rdf FOLDER``).
"""

import json
import re
from pathlib import Path
from typing import Dict, List

import numpy as np

VARIANTS = ("baseline", "decorrelation")
MIN_FRAMES = 10  # one g(r) window: a run failing before 5.2 ps has no value (A7)
_NAME = re.compile(r"md_(?P<composition>.+)_(?P<ps>\d+)ps\.window_rdf\.json$")


def read_window_rdf(folder: Path, length_ps: int = 20) -> Dict[str, Dict[int, Dict[str, Dict]]]:
    """{composition: {seed: {variant: record}}} of the window_rdf JSONs under ``folder``."""
    found: Dict[str, Dict[int, Dict[str, Dict]]] = {}
    for path in sorted(Path(folder).glob("seed*/*/md_*ps.window_rdf.json")):
        match = _NAME.match(path.name)
        variant, seed = path.parent.name, int(path.parent.parent.name.removeprefix("seed"))
        if not match or int(match["ps"]) != length_ps or variant not in VARIANTS:
            continue
        record = json.loads(path.read_text())
        found.setdefault(match["composition"], {}).setdefault(seed, {})[variant] = record
    return found


def median_difference_ci(d: np.ndarray, n_boot: int, seed: int) -> List[float]:
    rng = np.random.default_rng(seed)
    medians = np.median(d[rng.integers(0, len(d), size=(n_boot, len(d)))], axis=1)
    return [float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))]


def window_claims(
    records: Dict[str, Dict[int, Dict[str, Dict]]],
    holm,
    n_seeds: int = 8,
    n_boot: int = 2000,
    seed: int = 0,
) -> Dict:
    from scipy.stats import wilcoxon

    compositions = {}
    for composition in sorted(records):
        pairs, excluded = [], []
        for k in sorted(records[composition]):
            runs = records[composition][k]
            if set(runs) != set(VARIANTS):
                continue  # the other variant's run is not finished yet
            short = [v for v in VARIANTS if (runs[v].get("frames") or 0) < MIN_FRAMES]
            if short:
                excluded.append({"seed": k, "failed_before_window": short})
                continue
            pairs.append((k, runs["baseline"]["rdf_error"], runs["decorrelation"]["rdf_error"]))
        out = {
            "seeds": [k for k, _, _ in pairs],
            "baseline_rdf_error_A": [b for _, b, _ in pairs],
            "decorrelation_rdf_error_A": [d for _, _, d in pairs],
            "excluded": excluded,
            "n_pairs": len(pairs),
            "wilcoxon_statistic": None,
            "p": None,
            "median_difference_A": None,
            "median_difference_ci95": None,
            "decorrelation_lower_in": None,
        }
        if pairs:
            d = np.array([dec - base for _, base, dec in pairs])
            out["median_difference_A"] = float(np.median(d))
            out["median_difference_ci95"] = median_difference_ci(d, n_boot, seed)
            out["decorrelation_lower_in"] = int((d < 0).sum())
            if np.any(d != 0):
                test = wilcoxon(d, alternative="two-sided")
                out["wilcoxon_statistic"], out["p"] = float(test.statistic), float(test.pvalue)
        compositions[composition] = out
    names = list(compositions)
    adjusted = holm([compositions[c]["p"] for c in names])
    for i, c in enumerate(names):
        compositions[c]["p_holm"] = adjusted[i]
    counted = [c["n_pairs"] + len(c["excluded"]) for c in compositions.values()]
    status = (
        "complete"
        if compositions and min(counted) >= n_seeds
        else f"in progress: {min(counted, default=0)} of {n_seeds} seeds; no claim either way yet"
    )
    return {
        "status": status,
        "endpoint": "g(r) error after the first 5 ps of the 20-ps runs, up to the end of the "
        "stable part (Å); decorrelation minus baseline, paired by seed (docs/experiments.md, A7)",
        "test": "Wilcoxon signed-rank, two-sided, Holm over the compositions",
        "compositions": compositions,
    }
