"""Per-type energy reference (shift) and scale, fitted on the training split only.

Shift: least squares  min_s sum_m (E_m - sum_t n_mt s_t)^2  with n_mt the count of type t in
structure m (numpy lstsq; the minimum-norm solution when compositions are collinear, e.g. one
composition only). Scale: root mean square of the training force components (eV/Å), so that the
network's raw per-atom output is O(1) (as in NequIP/Allegro). Both go into
``ForceModel.set_energy_reference(shift, scale)``.
"""

from typing import Sequence, Tuple

import numpy as np
import torch

from gnnff import keys


def type_counts(examples: Sequence[dict], n_types: int) -> np.ndarray:
    return np.stack(
        [np.bincount(e[keys.ATOM_TYPE].numpy(), minlength=n_types) for e in examples]
    ).astype(float)


def fit_energy_shift(examples: Sequence[dict], n_types: int) -> np.ndarray:
    """Per-type shift (eV/atom) by least squares on total energies."""
    counts = type_counts(examples, n_types)
    energies = np.array([float(e[keys.TOTAL_ENERGY][0]) for e in examples])
    keep = np.isfinite(energies)
    if not keep.any():
        return np.zeros(n_types)
    shift, *_ = np.linalg.lstsq(counts[keep], energies[keep], rcond=None)
    return shift


def force_rms(examples: Sequence[dict]) -> float:
    forces = torch.cat([e[keys.FORCES].reshape(-1) for e in examples]).double()
    forces = forces[torch.isfinite(forces)]
    return float(torch.sqrt((forces**2).mean())) if len(forces) else 1.0


def energy_reference(
    examples: Sequence[dict], n_types: int, shift_mode, scale_mode
) -> Tuple[np.ndarray, np.ndarray]:
    """(shift, scale) per type for the modes of the config (data.energy_shift / energy_scale)."""
    if shift_mode == "least_squares":
        shift = fit_energy_shift(examples, n_types)
    elif shift_mode in (None, "none"):
        shift = np.zeros(n_types)
    else:
        shift = np.broadcast_to(np.asarray(shift_mode, float), (n_types,)).copy()
    if scale_mode == "force_rms":
        rms = force_rms(examples)
        scale = np.full(n_types, rms if rms > 0 else 1.0)
    elif scale_mode in (None, "none"):
        scale = np.ones(n_types)
    else:
        scale = np.broadcast_to(np.asarray(scale_mode, float), (n_types,)).copy()
    return shift, scale
