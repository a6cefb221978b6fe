"""StabilityAnalysis: every registered criterion in one pass over a dump, plus the log ones.

Serial or under ``mpirun`` (mpi4py): each rank reads and analyses one contiguous range of the
frames (readers.TrajectoryReader parts); the per-frame records of every criterion are gathered
in frame order on rank 0, which concludes the criteria and builds the report. The records of a
frame depend on that frame alone (base.Criterion), so the report does not depend on the number
of ranks.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import pairs
from .base import AnalysisContext, Criterion, CriterionResult
from .options import CRITERIA, StabilityOptions, criterion_classes
from .parallel import agree, threads_per_rank, world
from .readers import open_trajectory
from .report import StabilityReport
from .thermo_log import DEFAULT_TIMESTEP, TIME_UNIT_PS, ThermoLog, read_thermo_log

__all__ = ["CRITERIA", "StabilityAnalysis", "StabilityOptions", "resolve_timestep"]


@dataclass
class StabilityAnalysis:
    """``StabilityAnalysis(dump, log, reference, options).run().results`` -> StabilityReport
    (on rank 0; ``results`` is None on the other ranks of an mpirun)."""

    trajectory: str
    log: Optional[str] = None
    reference: Optional[str] = None
    options: StabilityOptions = field(default_factory=StabilityOptions)

    def run(self, comm="auto") -> "StabilityAnalysis":
        """``comm``: an mpi4py communicator, None for serial, or "auto" (COMM_WORLD when
        launched by mpirun with several ranks)."""
        comm = world() if comm == "auto" else comm
        rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
        self.results: Optional[StabilityReport] = None
        self.rank = rank
        # every rank agrees after each step that can fail (agree), so that no rank is left
        # waiting in a collective that a failed rank never reaches
        error, setup = None, None
        try:
            setup = self._setup()
        except Exception as err:  # noqa: BLE001 (re-raised on every rank by agree)
            error = err
        agree(comm, error)
        reader, first, thermo, dt, criteria = setup
        if size > 1 and "OMP_NUM_THREADS" not in os.environ:
            # vesin would start one thread per core in every rank: share the cores instead
            pairs.N_THREADS = threads_per_rank(comm)
        frame_criteria = [c for c in criteria if c.source == "frames"]
        records: Dict[str, list] = {c.name: [] for c in frame_criteria}
        frames_read: List[tuple] = []  # (step, finite) of each frame analysed, in order
        error, count = None, 0
        try:
            count = reader.count_frames(rank, size) if size > 1 else 0
        except Exception as err:  # noqa: BLE001
            error = err
        agree(comm, error)
        first_index = (comm.exscan(count) or 0) if size > 1 else 0
        try:
            frames = reader.frames(rank, size, first_index)
            if self.options.progress and rank == 0:
                from tqdm import tqdm

                frames = tqdm(frames, unit=" frames")
            for frame in frames:
                finite = not frame.has_nonfinite()
                frames_read.append((frame.step, finite))
                for criterion in frame_criteria:
                    if finite or criterion.accepts_nonfinite:
                        records[criterion.name].append(criterion.single_frame(frame))
                pairs.forget_pairs(frame)  # before the next frame is read: one list in memory
        except Exception as err:  # noqa: BLE001
            error = err
        finally:
            pairs.release()  # vesin's buffers, kept from frame to frame until here
        agree(comm, error)
        part = (records, frames_read, list(reader.warnings), list(reader.problems))
        parts = [part] if comm is None else comm.gather(part, root=0)
        if rank != 0:
            return self
        for name in records:  # concatenate the parts in frame order
            records[name] = [r for p in parts for r in p[0][name]]
        frames_read = [f for p in parts for f in p[1]]
        self.results = self._conclude(
            criteria,
            records,
            frames_read,
            first,
            thermo,
            dt,
            warnings=[w for p in parts for w in p[2]],
            problems=[q for p in parts for q in p[3]],
        )
        return self

    # ---- steps of run() ----------------------------------------------------------------------
    def _setup(self):
        """Everything every rank needs before reading its frames (the same on every rank)."""
        opts = self.options
        if opts.criteria is not None:
            unknown = set(opts.criteria) - set(CRITERIA.names())
            if unknown:
                raise ValueError(
                    f"unknown criteria {sorted(unknown)}; choose from "
                    f"{[c.name for c in criterion_classes()]}"
                )
        classes = criterion_classes()
        options = {cls.name: opts.for_criterion(cls) for cls in classes}  # checks the values
        thermo = read_thermo_log(self.log) if self.log else None
        dt_ps, time_unit, dt_source = resolve_timestep(opts.timestep_ps, thermo)
        reader = open_trajectory(self.trajectory, opts.elements)
        reference = open_trajectory(self.reference, opts.elements) if self.reference else None
        first = reader.first_frame()
        if first is None:
            raise ValueError(
                f"{self.trajectory}: no complete frame in the file; did LAMMPS write "
                "the first dump step?"
            )
        if first.has_nonfinite():
            raise ValueError(
                f"{self.trajectory}: the first frame already has nan/inf values; "
                "there is nothing stable to compare against"
            )
        if thermo is not None:  # thermo rows before the first frame belong to earlier runs
            thermo = thermo.since(first.step)
            if len(thermo.steps) == 0:
                raise ValueError(
                    f"{self.log}: no thermo row at or after the first dump step "
                    f"{first.step}; is it the log of the run that wrote the dump?"
                )
        criteria: List[Criterion] = []
        for cls in classes:
            if cls.source == "log" and thermo is None:
                continue
            criterion = cls(options[cls.name])
            criterion.prepare(
                AnalysisContext(
                    first=first,
                    reference=reference,
                    log=thermo,
                    dt_ps=dt_ps,
                    forced_active=self._forced(cls.name),
                )
            )
            self._apply_choice(criterion.results)
            criteria.append(criterion)
        return reader, first, thermo, (dt_ps, time_unit, dt_source), criteria

    def _conclude(self, criteria, records, frames_read, first, thermo, dt, warnings, problems):
        """Rank 0: the criteria's results from all records, then the report."""
        dt_ps, time_unit, dt_source = dt
        for criterion in criteria:
            if criterion.source == "log":
                criterion.conclude([criterion.single_frame(row) for row in thermo.rows()])
        for criterion in criteria:
            if criterion.source == "frames" and not criterion.needs_stop_step:
                criterion.conclude(records[criterion.name])
        # the stable part ends at the earliest failure that counts, or at the first frame with
        # nan (those frames are not passed to most criteria)
        ends = [
            c.results.first_failure_step
            for c in criteria
            if not c.needs_stop_step
            and c.results.active
            and c.results.first_failure_step is not None
        ]
        ends += [step for step, finite in frames_read if not finite][:1]
        stop_step = min(ends) if ends else None
        for criterion in criteria:
            if criterion.needs_stop_step:
                criterion.conclude(records.get(criterion.name, []), stop_step=stop_step)
        results: List[CriterionResult] = [c.results for c in criteria]
        for result in results:
            result.set_time(first.step, dt_ps)
        n_frames = len(frames_read)
        report = StabilityReport(
            trajectory=str(self.trajectory),
            log=self.log,
            reference=self.reference,
            n_frames=n_frames,
            n_atoms=first.n_atoms,
            first_step=first.step,
            last_step=frames_read[-1][0] if frames_read else first.step,
            dt_ps=dt_ps,
            time_unit=time_unit,
            timestep_source=dt_source,
            criteria=results,
            warnings=list(warnings) + ([] if thermo is None else thermo.errors),
            frame_problems=list(problems),
        )
        energy = next((c for c in criteria if c.name == "energy_drift"), None)
        report.finalize(energy)
        return report

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
