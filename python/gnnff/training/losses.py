"""The standard loss terms: "energy", "forces", "stress" (weighted mean squared errors).

    energy:  w * sum_g ((E_g - E_g^ref) / N_g)^2 / n_graphs            (per-atom energy, eV^2)
    forces:  w * sum_i sum_a (F_ia - F_ia^ref)^2 / (3 n_atoms)           ((eV/Å)^2)
    stress:  w * sum_g [has stress] sum_ab (s_gab - s_gab^ref)^2 / (9 n_stress)   ((eV/Å^3)^2)
             with s the model's STRESS output (-virial / volume, ASE sign)

The denominators n_* are read from the targets (LOSS_NORM_* keys) when the trainer sets them
(they go to the loss terms with the labels, never into the model):
under data parallelism each process sums its share and divides by (global count / world size),
so that DDP's gradient average equals the gradient of the loss of the whole global batch; alone,
they are the counts of the batch itself. ``kind: l1`` swaps the square for an absolute value.
"""

from typing import Dict

import torch

from gnnff import keys
from gnnff.data.dataset import HAS_STRESS
from gnnff.training.loss_terms import LossTerm, register_loss_term
from gnnff.training.metrics import atoms_per_graph

# set by the trainer: the per-process denominators
LOSS_NORM_GRAPHS = keys.LOSS_NORM_GRAPHS
LOSS_NORM_ATOMS = keys.LOSS_NORM_ATOMS
LOSS_NORM_STRESS = keys.LOSS_NORM_STRESS


def _error(diff: torch.Tensor, kind: str) -> torch.Tensor:
    return diff.abs() if kind == "l1" else diff * diff


def _norm(batch: Dict[str, torch.Tensor], key: str, default: float) -> float:
    return float(batch[key].item()) if key in batch else float(default)


class _WeightedTerm(LossTerm):
    def __init__(self, weight: float, kind: str):
        super().__init__()
        if kind not in ("mse", "l1"):
            raise ValueError(f"loss kind must be 'mse' or 'l1', got {kind!r}")
        self.weight = float(weight)
        self.kind = kind


class EnergyLoss(_WeightedTerm):
    def forward(self, pred, batch, model):
        n = atoms_per_graph(batch).to(pred[keys.TOTAL_ENERGY].dtype)
        diff = (pred[keys.TOTAL_ENERGY] - batch[keys.TOTAL_ENERGY]) / n
        return (
            self.weight
            * _error(diff, self.kind).sum()
            / _norm(batch, LOSS_NORM_GRAPHS, diff.shape[0])
        )


class ForcesLoss(_WeightedTerm):
    def forward(self, pred, batch, model):
        diff = pred[keys.FORCES] - batch[keys.FORCES]
        return (
            self.weight
            * _error(diff, self.kind).sum()
            / (3.0 * _norm(batch, LOSS_NORM_ATOMS, diff.shape[0]))
        )


class StressLoss(_WeightedTerm):
    def forward(self, pred, batch, model):
        mask = batch[HAS_STRESS]
        diff = (pred[keys.STRESS] - batch[keys.STRESS])[mask]
        norm = _norm(batch, LOSS_NORM_STRESS, int(mask.sum()))
        if norm == 0.0:  # no stress labels anywhere in this batch (stress may be NaN: no cell)
            return pred[keys.VIRIAL].sum() * 0.0
        return self.weight * _error(diff, self.kind).sum() / (9.0 * norm)


@register_loss_term("energy")
def energy(weight: float = 1.0, kind: str = "mse") -> LossTerm:
    return EnergyLoss(weight, kind)


@register_loss_term("forces")
def forces(weight: float = 100.0, kind: str = "mse") -> LossTerm:
    return ForcesLoss(weight, kind)


@register_loss_term("stress")
def stress(weight: float = 1.0, kind: str = "mse") -> LossTerm:
    return StressLoss(weight, kind)
