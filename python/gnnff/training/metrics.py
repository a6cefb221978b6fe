"""Error metrics accumulated over batches: MAE and RMSE of energy per atom and force components.

    energy_mae  = mean_g |E_g - E_g^ref| / N_g            (eV/atom; reported as meV/atom)
    forces_mae  = mean over atoms and x,y,z of |F - F^ref|  (eV/Å; reported as meV/Å)
    stress_mae  = mean over labelled cells and 9 components  (eV/Å^3)
    *_rmse      = square root of the mean squared error over the same items

Sums are kept (not means) so that batches and data-parallel processes combine exactly
(``all_reduce`` of the sums, then divide).
"""

import math
from typing import Dict, Optional

import torch

from gnnff import keys
from gnnff.data.dataset import HAS_STRESS
from gnnff.model_io import predicted_stress

_QUANTITIES = ("energy", "forces", "stress")


def atoms_per_graph(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """(G,) number of atoms of each graph of a batch (one graph when there is no BATCH)."""
    num_graphs = int(batch[keys.NUM_GRAPHS].item()) if keys.NUM_GRAPHS in batch else 1
    if keys.BATCH not in batch:
        return torch.tensor([batch[keys.POSITIONS].shape[0]], device=batch[keys.POSITIONS].device)
    return torch.bincount(batch[keys.BATCH], minlength=num_graphs)


class ErrorAccumulator:
    def __init__(self):
        # per quantity: [sum |err|, sum err^2, count]
        self.sums = torch.zeros(len(_QUANTITIES), 3, dtype=torch.float64)

    @torch.no_grad()
    def add(self, pred: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]) -> None:
        n = atoms_per_graph(batch).to(torch.float64)
        e_ref = batch[keys.TOTAL_ENERGY].double()
        ok = torch.isfinite(e_ref)
        energy_err = ((pred[keys.TOTAL_ENERGY].detach().double() - e_ref) / n)[ok]
        f_ref = batch[keys.FORCES].double()
        force_err = (pred[keys.FORCES].detach().double() - f_ref)[torch.isfinite(f_ref)]
        stress_err = torch.zeros(0, dtype=torch.float64)
        if HAS_STRESS in batch and keys.VIRIAL in pred and bool(batch[HAS_STRESS].any()):
            mask = batch[HAS_STRESS]
            stress = predicted_stress(pred, batch).detach().double()
            stress_err = (stress - batch[keys.STRESS].double())[mask].reshape(-1)
        for row, err in enumerate((energy_err, force_err, stress_err)):
            err = err.cpu()
            self.sums[row, 0] += err.abs().sum()
            self.sums[row, 1] += (err * err).sum()
            self.sums[row, 2] += err.numel()

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)

    def results(self, prefix: str = "") -> Dict[str, float]:
        """{prefix}{quantity}_{mae,rmse} in eV-based units (eV/atom, eV/Å, eV/Å^3)."""
        out: Dict[str, float] = {}
        for row, name in enumerate(_QUANTITIES):
            abs_sum, sq_sum, count = self.sums[row].tolist()
            if count > 0:
                out[f"{prefix}{name}_mae"] = abs_sum / count
                out[f"{prefix}{name}_rmse"] = math.sqrt(sq_sum / count)
        return out

    def state(self) -> torch.Tensor:
        return self.sums.clone()

    def load_state(self, sums: Optional[torch.Tensor]) -> None:
        if sums is not None:
            self.sums = sums.clone()
