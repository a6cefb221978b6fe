"""StabilityAnalysis: every criterion in one pass over a dump, plus the log-based ones."""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from .base import CriterionResult
from .bonds import BondLengthDeviation
from .close_contacts import CloseContacts
from .readers import open_trajectory
from .rdf import RDFDrift
from .report import StabilityReport
from .sanity import LostAtoms, NonFinite
from .thermo_criteria import EnergyDrift, TemperatureBlowup
from .thermo_log import DEFAULT_TIMESTEP, TIME_UNIT_PS, ThermoLog, read_thermo_log

CRITERIA = ("bonds", "rdf", "close_contacts", "nonfinite", "lost_atoms", "temperature",
            "energy_drift")


@dataclass
class StabilityOptions:
    timestep_ps: Optional[float] = None  # time per MD step; default: from the log, else 0.001
    elements: Optional[Sequence[str]] = None  # element of LAMMPS type 1, 2, ...
    criteria: Optional[Sequence[str]] = None  # the ones that count; default: automatic choice
    bond_threshold: float = 0.5  # Å
    rdf_threshold: Optional[float] = None  # default 1.0 Å for g(r), 0.5 for h(r)
    rdf_window: int = 10  # frames
    rdf_r_max: Optional[float] = None  # default 6 Å for g(r), 10 Å for h(r)
    rdf_bins: Optional[int] = None  # default: 0.05 Å bins
    equilibration_ps: float = 0.0  # RDF criterion ignores frames before this time
    rdf_every: int = 1  # RDF from every n-th frame only (large systems)
    close_fraction: float = 0.5
    temperature_factor: float = 3.0
    max_temperature: Optional[float] = None  # K; overrides temperature_factor
    energy_threshold: float = 10.0  # meV/atom
    progress: bool = False


@dataclass
class StabilityAnalysis:
    """``StabilityAnalysis(dump, log, reference, options).run().results`` -> StabilityReport."""

    trajectory: str
    log: Optional[str] = None
    reference: Optional[str] = None
    options: StabilityOptions = field(default_factory=StabilityOptions)

    def run(self) -> "StabilityAnalysis":
        opts = self.options
        if opts.criteria is not None:
            unknown = set(opts.criteria) - set(CRITERIA)
            if unknown:
                raise ValueError(f"unknown criteria {sorted(unknown)}; choose from {CRITERIA}")
        thermo = read_thermo_log(self.log) if self.log else None
        dt_ps, time_unit, dt_source = resolve_timestep(opts.timestep_ps, thermo)
        reader = open_trajectory(self.trajectory, opts.elements)
        reference = open_trajectory(self.reference, opts.elements) if self.reference else None
        rdf = RDFDrift(opts.rdf_threshold, opts.rdf_window, opts.rdf_r_max, opts.rdf_bins,
                       reference, active=self._forced("rdf"), every=opts.rdf_every)
        sanity = [NonFinite(), LostAtoms()]  # these also look at the log
        frame_analyses = [
            BondLengthDeviation(opts.bond_threshold, reference, active=self._forced("bonds")),
            rdf, CloseContacts(opts.close_fraction, reference), *sanity,
        ]
        frames = iter(reader)
        try:
            first = next(frames)
        except StopIteration:
            raise ValueError(f"{self.trajectory}: no complete frame in the file; did LAMMPS write "
                             "the first dump step?") from None
        if opts.equilibration_ps:
            rdf.start_step = first.step + int(np.ceil(opts.equilibration_ps / dt_ps - 1e-9))
        if first.has_nonfinite():
            raise ValueError(f"{self.trajectory}: the first frame already has nan/inf values; "
                             "there is nothing stable to compare against")
        if thermo is not None:  # thermo rows before the first frame belong to earlier runs
            thermo = thermo.since(first.step)
            if len(thermo.steps) == 0:
                raise ValueError(f"{self.log}: no thermo row at or after the first dump step "
                                 f"{first.step}; is it the log of the run that wrote the dump?")
            for analysis in sanity:
                analysis.log = thermo
        log_results, energy = self._log_criteria(thermo, first.n_atoms)
        for analysis in frame_analyses:
            analysis.prepare(first)
            self._apply_choice(analysis.results)
        # failures known from the log before the pass: they end the RDF's stable part too
        known = log_results + [a.results for a in sanity]
        log_failure = min([r.first_failure_step for r in known
                           if r.active and r.first_failure_step is not None], default=None)
        n_frames, last_step = 0, first.step
        for frame in tqdm(_chain(first, frames), disable=not opts.progress, unit=" frames"):
            n_frames, last_step = n_frames + 1, frame.step
            finite = not frame.has_nonfinite()
            for analysis in frame_analyses:
                if finite or analysis.accepts_nonfinite:
                    analysis.single_frame(frame)
            if (not finite or (log_failure is not None and frame.step >= log_failure) or
                    any(a.results.active and a.results.first_failure_step is not None
                        for a in frame_analyses)):
                rdf.freeze(frame.step)
        for analysis in frame_analyses:
            analysis.conclude()
        criteria: List[CriterionResult] = [a.results for a in frame_analyses] + log_results
        for result in criteria:
            result.set_time(first.step, dt_ps)
        self.results = StabilityReport(
            trajectory=str(self.trajectory), log=self.log, reference=self.reference,
            n_frames=n_frames, n_atoms=first.n_atoms, first_step=first.step, last_step=last_step,
            dt_ps=dt_ps, time_unit=time_unit, timestep_source=dt_source, criteria=criteria,
            warnings=list(reader.warnings) + ([] if thermo is None else thermo.errors),
            frame_problems=list(reader.problems),
        )
        self.results.finalize(energy)
        return self

    def _log_criteria(self, thermo: Optional[ThermoLog], n_atoms: int):
        """Temperature and energy-drift results (empty without a log), and the EnergyDrift."""
        if thermo is None:
            return [], None
        opts = self.options
        temperature = TemperatureBlowup(thermo, opts.temperature_factor, opts.max_temperature)
        energy = EnergyDrift(thermo, n_atoms, opts.energy_threshold,
                             active=self._forced("energy_drift"))
        results = [temperature.run().results, energy.run().results]
        for result in results:
            self._apply_choice(result)
        return results, energy

    def _forced(self, name: str) -> Optional[bool]:
        """True/False when --criteria chose explicitly, None for the automatic choice."""
        return None if self.options.criteria is None else name in self.options.criteria

    def _apply_choice(self, result: CriterionResult) -> None:
        if self.options.criteria is not None and result.active is not False:
            result.active = result.name in self.options.criteria


def resolve_timestep(timestep_ps: Optional[float], thermo: Optional[ThermoLog]):
    """(dt per step, time unit, where it came from)."""
    if timestep_ps is not None:
        if timestep_ps <= 0:
            raise ValueError(f"--timestep must be positive (ps per MD step), got {timestep_ps}")
        return timestep_ps, "ps", "--timestep option"
    if thermo is None:
        return 0.001, "ps", "default for metal units (no --log, no --timestep)"
    units = thermo.units
    scale, unit = (TIME_UNIT_PS[units], "ps") if units in TIME_UNIT_PS else (1.0, "tau")
    if thermo.timestep is not None:
        return thermo.timestep * scale, unit, f"log 'timestep {thermo.timestep:g}' ({units} units)"
    default = DEFAULT_TIMESTEP.get(units, 1.0)
    return default * scale, unit, f"LAMMPS default for {units} units (no 'timestep' in the log)"


def _chain(first, rest):
    yield first
    yield from rest
