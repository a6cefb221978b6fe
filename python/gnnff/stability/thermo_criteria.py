"""Criteria from the thermo output: (d) temperature blow-up and (e) NVE energy drift."""

from typing import Optional

import numpy as np

from .base import CriterionResult
from .thermo_log import ENERGY_UNIT_EV, ThermoLog


class TemperatureBlowup:
    """Fails when T > max_temperature, by default ``factor`` x T_ref, where T_ref is the median
    of the first ``n_ref`` thermo rows (robust to the drop to ~T/2 at the start of NVE runs)."""

    def __init__(self, log: ThermoLog, factor: float = 3.0,
                 max_temperature: Optional[float] = None, n_ref: int = 10):
        self.log, self.factor, self.n_ref = log, factor, n_ref
        self.max_temperature = max_temperature

    def run(self) -> "TemperatureBlowup":
        temp = self.log.columns.get("Temp")
        self.results = CriterionResult(
            name="temperature", description="thermo Temp", unit="K", threshold=None,
            fails_when="above")
        if temp is None or len(temp) == 0:
            self.results.active = False
            self.results.note = "no 'Temp' column in the thermo output"
            return self
        t_ref = float(np.median(temp[: self.n_ref]))
        limit = self.max_temperature if self.max_temperature else self.factor * t_ref
        self.results.threshold = limit
        how = "" if self.max_temperature else (
            f" = {self.factor} x median of first {self.n_ref} rows ({t_ref:.1f} K)")
        self.results.note = f"limit {limit:.1f} K{how}"
        for step, value in zip(self.log.steps, temp):
            failed = bool(value > limit) or not np.isfinite(value)
            self.results.record(step, value, failed, f"T = {value:.1f} K > {limit:.1f} K")
        return self


class EnergyDrift:
    """|E_tot(t) - E_tot(t0)| per atom in meV/atom; fails above ``threshold_mev`` (NVE only).

    ``drift_rate(stable_step)`` is the least-squares slope of E_tot/atom over time in
    meV/atom/ps, the usual NVE energy-conservation number.
    """

    def __init__(self, log: ThermoLog, n_atoms: int, threshold_mev: float = 10.0,
                 active: Optional[bool] = None):
        self.log, self.n_atoms, self.active = log, n_atoms, active
        self.threshold_mev = threshold_mev

    def run(self) -> "EnergyDrift":
        log = self.log
        self.results = CriterionResult(
            name="energy_drift", description="|E_tot(t) - E_tot(0)| per atom", unit="meV/atom",
            threshold=self.threshold_mev, fails_when="above")
        energy = log.columns.get("TotEng")
        if energy is None or len(energy) == 0:
            self.results.active = False
            self.results.note = "no 'TotEng' column in the thermo output"
            self.energy = None
            return self
        if log.units not in ENERGY_UNIT_EV:
            self.results.active = False
            self.results.note = f"units {log.units}: no conversion to eV, drift not evaluated"
            self.energy = None
            return self
        n_atoms = log.natoms or self.n_atoms
        per_atom = energy if log.per_atom_energies else energy / n_atoms
        self.energy = per_atom * ENERGY_UNIT_EV[log.units] * 1000.0  # meV/atom
        nve = not log.thermostat_fixes
        self.results.active = nve if self.active is None else self.active
        fixes = ", ".join(log.thermostat_fixes)
        self.results.note = ("NVE (no thermostat/barostat fix in the log)" if nve else
                             f"not NVE (fixes: {fixes}): reported only")
        deviation = np.abs(self.energy - self.energy[0])
        for step, value in zip(log.steps, deviation):
            failed = bool(value > self.threshold_mev) or not np.isfinite(value)
            self.results.record(step, value, failed,
                                f"|dE| = {value:.2f} meV/atom > {self.threshold_mev}")
        return self

    def drift_rate(self, dt_ps: float, before_step: Optional[int] = None) -> Optional[float]:
        """Slope of E_tot per atom in meV/atom/ps over rows with step < before_step."""
        if self.energy is None:
            return None
        steps = self.log.steps
        keep = np.isfinite(self.energy) & (steps < before_step if before_step is not None else True)
        if keep.sum() < 2:
            return None
        return float(np.polyfit(steps[keep] * dt_ps, self.energy[keep], 1)[0])
