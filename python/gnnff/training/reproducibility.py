"""Seeds, RNG states and the data order: what makes a resumed run equal an uninterrupted one.

The order of training structures in epoch e is ``numpy.random.default_rng([seed, e]).permutation``:
a function of (seed, epoch) only, so resuming needs no sampler state. The global RNGs (python,
numpy, torch) are still saved in checkpoints for models or terms that draw random numbers.
"""

import random
from typing import Any, Dict

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> Dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: Dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)
