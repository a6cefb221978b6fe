"""Criterion (d), frame part: non-finite numbers and lost atoms, from the dump and the log."""

import numpy as np

from .base import AnalysisContext, Criterion, CriterionResult
from .frame import Frame
from .options import register_criterion


@register_criterion("nonfinite")
class NonFinite(Criterion):
    """Fails at the first frame (or thermo row) holding NaN or inf."""

    accepts_nonfinite = True
    order = 40

    def prepare(self, context: AnalysisContext) -> None:
        self.results = CriterionResult(
            name="nonfinite",
            description="non-finite positions/velocities/forces/thermo",
            unit="count",
            threshold=0,
            fails_when="above",
        )
        log = context.log
        if log is not None and log.first_nonfinite_step is not None:
            self.results.fail_at(log.first_nonfinite_step, "nan/inf in the thermo output")

    def single_frame(self, frame: Frame):
        bad = sum(
            int((~np.isfinite(a)).any(axis=1).sum())
            for a in (frame.positions, frame.velocities, frame.forces)
            if a is not None
        )
        return frame.step, bad

    def conclude(self, records, stop_step=None) -> None:
        for step, bad in records:
            self.results.record(step, bad, False)
            if bad:  # fail_at keeps the earlier of dump and log evidence
                self.results.fail_at(step, f"{bad} atoms with nan/inf values")


@register_criterion("lost_atoms")
class LostAtoms(Criterion):
    """Fails at the first frame with fewer atoms than the first one, or at a LAMMPS
    'Lost atoms' error (placed at the last thermo step before it)."""

    accepts_nonfinite = True
    order = 45

    def prepare(self, context: AnalysisContext) -> None:
        self.n_first = context.first.n_atoms
        self.results = CriterionResult(
            name="lost_atoms",
            description="atoms missing relative to the first frame",
            unit="atoms",
            threshold=0,
            fails_when="above",
        )
        log = context.log
        if log is None:
            return
        steps = log.steps
        if "Atoms" in log.columns and len(steps):
            lost = np.nonzero(log.columns["Atoms"] < log.columns["Atoms"][0])[0]
            if len(lost):
                self.results.fail_at(int(steps[lost[0]]), "thermo 'Atoms' count dropped")
        lost_errors = [e for e in log.errors if "Lost atoms" in e or "Out of range atoms" in e]
        if lost_errors and log.last_row_step is not None:
            # the error comes after the last thermo row LAMMPS printed
            self.results.fail_at(log.last_row_step, "LAMMPS: " + lost_errors[0][:80])

    def single_frame(self, frame: Frame):
        return frame.step, self.n_first - frame.n_atoms

    def conclude(self, records, stop_step=None) -> None:
        for step, lost in records:
            self.results.record(step, lost, False)
            if lost > 0:  # fail_at keeps the earlier of dump and log evidence
                self.results.fail_at(step, f"{lost} of {self.n_first} atoms lost")
