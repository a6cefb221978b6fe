"""Reference data: readers (eV, Å), graph building, data sets, splits and statistics."""

from gnnff.data.dataset import (
    HAS_STRESS,
    AtomicDataset,
    collate,
    structure_to_example,
    validate_structures,
)
from gnnff.data.readers import read_structures
from gnnff.data.splits import split_indices
from gnnff.data.statistics import energy_reference, fit_energy_shift, force_rms

__all__ = [
    "HAS_STRESS",
    "AtomicDataset",
    "collate",
    "energy_reference",
    "fit_energy_shift",
    "force_rms",
    "read_structures",
    "split_indices",
    "structure_to_example",
    "validate_structures",
]
