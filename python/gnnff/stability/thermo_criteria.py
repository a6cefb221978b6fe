"""Criteria from the thermo output: (d) temperature blow-up and (e) NVE energy drift.

They follow the frame criteria's lifecycle with thermo rows as the items: ``prepare`` reads what
the whole log says (reference temperature, units, ensemble), ``single_frame(row)`` gives one
row's value, ``conclude`` builds the curve.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .base import AnalysisContext, Criterion, CriterionResult
from .options import option, register_criterion
from .thermo_log import ENERGY_UNIT_EV, ThermoRow


@dataclass
class TemperatureOptions:
    factor: float = option(3.0, "T above this times the initial T fails", key="temperature_factor")
    max_temperature: Optional[float] = option(
        None, "absolute T limit in K (overrides --temperature-factor)", key="max_temperature"
    )
    n_ref: int = option(
        10, "thermo rows whose median temperature is the initial T", key="temperature_ref_rows"
    )


@register_criterion("temperature")
class TemperatureBlowup(Criterion):
    """Fails when T > max_temperature, by default ``factor`` x T_ref, where T_ref is the median
    of the first ``n_ref`` thermo rows (robust to the drop to ~T/2 at the start of NVE runs)."""

    Options = TemperatureOptions
    source = "log"
    order = 60

    def prepare(self, context: AnalysisContext) -> None:
        opts = self.options
        temp = context.log.columns.get("Temp")
        self.results = CriterionResult(
            name="temperature",
            description="thermo Temp",
            unit="K",
            threshold=None,
            fails_when="above",
        )
        self.limit = None
        if temp is None or len(temp) == 0:
            self.results.active = False
            self.results.note = "no 'Temp' column in the thermo output"
            return
        t_ref = float(np.median(temp[: opts.n_ref]))
        self.limit = opts.max_temperature if opts.max_temperature else opts.factor * t_ref
        self.results.threshold = self.limit
        how = (
            ""
            if opts.max_temperature
            else (f" = {opts.factor} x median of first {opts.n_ref} rows ({t_ref:.1f} K)")
        )
        self.results.note = f"limit {self.limit:.1f} K{how}"

    def single_frame(self, row: ThermoRow):
        if self.limit is None:
            return None
        return row.step, row.values["Temp"]

    def conclude(self, records, stop_step=None) -> None:
        limit = self.limit
        for record in records:
            if record is None:
                continue
            step, value = record
            failed = bool(value > limit) or not np.isfinite(value)
            self.results.record(step, value, failed, f"T = {value:.1f} K > {limit:.1f} K")


@dataclass
class EnergyDriftOptions:
    threshold: float = option(
        10.0, "|E(t)-E(0)| in meV/atom above which an NVE run fails", key="energy_threshold"
    )


@register_criterion("energy_drift")
class EnergyDrift(Criterion):
    """|E_tot(t) - E_tot(t0)| per atom in meV/atom; fails above the threshold (NVE only).

    ``drift_rate(dt_ps, before_step)`` is the least-squares slope of E_tot/atom over time in
    meV/atom/ps, the usual NVE energy-conservation number.
    """

    Options = EnergyDriftOptions
    source = "log"
    order = 70

    def prepare(self, context: AnalysisContext) -> None:
        log = self.log = context.log
        threshold = self.options.threshold
        self.results = CriterionResult(
            name="energy_drift",
            description="|E_tot(t) - E_tot(0)| per atom",
            unit="meV/atom",
            threshold=threshold,
            fails_when="above",
        )
        energy = log.columns.get("TotEng")
        self.energy = None
        if energy is None or len(energy) == 0:
            self.results.active = False
            self.results.note = "no 'TotEng' column in the thermo output"
            return
        if log.units not in ENERGY_UNIT_EV:
            self.results.active = False
            self.results.note = f"units {log.units}: no conversion to eV, drift not evaluated"
            return
        n_atoms = log.natoms or context.first.n_atoms
        per_atom = energy if log.per_atom_energies else energy / n_atoms
        self.energy = per_atom * ENERGY_UNIT_EV[log.units] * 1000.0  # meV/atom
        nve = not log.thermostat_fixes
        forced = context.forced_active
        self.results.active = nve if forced is None else forced
        fixes = ", ".join(log.thermostat_fixes)
        self.results.note = (
            "NVE (no thermostat/barostat fix in the log)"
            if nve
            else f"not NVE (fixes: {fixes}): reported only"
        )

    def single_frame(self, row: ThermoRow):
        if self.energy is None:
            return None
        return row.step, float(abs(self.energy[row.position] - self.energy[0]))

    def conclude(self, records, stop_step=None) -> None:
        threshold = self.options.threshold
        for record in records:
            if record is None:
                continue
            step, value = record
            failed = bool(value > threshold) or not np.isfinite(value)
            self.results.record(step, value, failed, f"|dE| = {value:.2f} meV/atom > {threshold}")

    def drift_rate(self, dt_ps: float, before_step: Optional[int] = None) -> Optional[float]:
        """Slope of E_tot per atom in meV/atom/ps over rows with step < before_step."""
        if self.energy is None:
            return None
        steps = self.log.steps
        keep = np.isfinite(self.energy) & (steps < before_step if before_step is not None else True)
        if keep.sum() < 2:
            return None
        return float(np.polyfit(steps[keep] * dt_ps, self.energy[keep], 1)[0])
