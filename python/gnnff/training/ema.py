"""Exponential moving average of the weights: w_ema <- d w_ema + (1 - d) w after each step.

The decay warms up as d_n = min(d, (1 + n) / (10 + n)) (n = updates so far), so early averages
are not dominated by the random initial weights. Validation, the best checkpoint and export use
the averaged weights. Buffers (e.g. the per-type energy shift) are copied, not averaged.
"""

import contextlib
from typing import Dict

import torch


class ExponentialMovingAverage:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow: Dict[str, torch.Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items()
        }
        self._params = {name for name, _ in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        decay = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        for name, value in model.state_dict().items():
            if name in self._params and value.is_floating_point():
                self.shadow[name].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
            else:
                self.shadow[name].copy_(value)

    @contextlib.contextmanager
    def applied_to(self, model: torch.nn.Module):
        """Temporarily load the averaged weights into ``model``."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)

    def state_dict(self) -> Dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: Dict) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
