"""MD stability metrics from LAMMPS dump and log files (no torch import: fast start-up).

Typical use::

    from gnnff.stability import StabilityAnalysis, StabilityOptions
    report = StabilityAnalysis("traj.dump", log="log.lammps").run().results
    print(report.format_table())
"""

from .base import AnalysisContext, Criterion, CriterionResult, FrameAnalysis
from .bonds import BondLengthDeviation, bond_lengths, bonds_from_frame
from .close_contacts import CloseContacts
from .extxyz import ExtxyzReader
from .frame import Frame, minimum_image
from .lammps_dump import LammpsDumpReader
from .options import CRITERIA, StabilityOptions, option, register_criterion
from .pipeline import StabilityAnalysis, resolve_timestep
from .rdf import RDFDrift, radial_distribution
from .readers import (
    READERS,
    DamagedFrameWarning,
    TrajectoryReader,
    TrajectoryWarning,
    TruncatedFrameWarning,
    open_trajectory,
)
from .report import StabilityReport
from .sanity import LostAtoms, NonFinite
from .thermo_criteria import EnergyDrift, TemperatureBlowup
from .thermo_log import ThermoLog, ThermoRow, read_thermo_log

__all__ = [
    "CRITERIA",
    "READERS",
    "AnalysisContext",
    "BondLengthDeviation",
    "CloseContacts",
    "Criterion",
    "CriterionResult",
    "DamagedFrameWarning",
    "EnergyDrift",
    "ExtxyzReader",
    "Frame",
    "FrameAnalysis",
    "LammpsDumpReader",
    "LostAtoms",
    "NonFinite",
    "RDFDrift",
    "StabilityAnalysis",
    "StabilityOptions",
    "StabilityReport",
    "TemperatureBlowup",
    "ThermoLog",
    "ThermoRow",
    "TrajectoryReader",
    "TrajectoryWarning",
    "TruncatedFrameWarning",
    "bond_lengths",
    "bonds_from_frame",
    "minimum_image",
    "open_trajectory",
    "option",
    "radial_distribution",
    "read_thermo_log",
    "register_criterion",
    "resolve_timestep",
]
