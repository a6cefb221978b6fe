"""PNG of every criterion over time (threshold dashed, stable time dotted) and the RDFs."""

import numpy as np

from .report import StabilityReport


def plot_report(report: StabilityReport, path) -> None:
    from ..optional import import_optional

    matplotlib = import_optional("matplotlib", "--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [c for c in report.criteria if c.values]
    n_panels = len(curves) + 1
    n_cols = 2
    n_rows = (n_panels + n_cols - 1) // n_cols
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(11, 2.8 * n_rows), squeeze=False)
    axes = axes.ravel()
    unit = report.time_unit
    for ax, c in zip(axes, curves):
        times = c.times_ps(report.first_step, report.dt_ps)
        ax.plot(times, c.values, lw=1.2, color="C0" if c.active else "0.5")
        if c.threshold is not None:
            ax.axhline(c.threshold, ls="--", color="C3", lw=1, label=f"threshold {c.threshold:g}")
        if c.first_failure_time_ps is not None:
            ax.axvline(c.first_failure_time_ps, ls=":", color="C3", lw=1)
        if not report.stable_through_end:
            ax.axvspan(
                report.stable_time,
                max(report.total_time, report.stable_time),
                color="C3",
                alpha=0.07,
            )
        state = "" if c.active else " (reported only)"
        ax.set_title(f"{c.name}{state}", fontsize=10)
        ax.set_xlabel(f"time ({unit})")
        ax.set_ylabel(c.unit)
        if c.name == "temperature" and np.nanmax(np.abs(c.values)) > 1e4:
            ax.set_yscale("symlog")
        ax.legend(fontsize=8, loc="best")
    rdf = report.criterion("rdf").extra
    ax = axes[len(curves)]
    if rdf.get("r") is not None and rdf.get("reference") is not None:
        label = "g(r)" if rdf["kind"] == "g" else "h(r)"
        ax.plot(rdf["r"], rdf["reference"], color="k", ls="--", label="reference")
        if rdf.get("stable_part") is not None:
            ax.plot(rdf["r"], rdf["stable_part"], color="C0", label="stable part")
        if rdf.get("last_window") is not None:
            ax.plot(rdf["r"], rdf["last_window"], color="C3", alpha=0.7, label="last window")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel(label)
        error = rdf.get("stable_error", float("nan"))
        ax.set_title(f"{label} (error over the stable part: {error:.3g})", fontsize=10)
        ax.legend(fontsize=8)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    verdict = (
        "stable for the whole run"
        if report.stable_through_end
        else f"stable for {report.stable_time:.4g} {unit} (first failure: "
        f"{', '.join(report.first_failed)})"
    )
    if not report.complete:  # never claim more than was read
        verdict = (
            verdict.replace("the whole run", "every frame read") + f"\n{report.coverage_note()}"
        )
    fig.suptitle(f"{report.trajectory}: {verdict}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
