"""Lightning callback that times nequip-allegro's optimiser steps for benchmarks/bench_peer.py.

Runs inside the peer's Python (nequip-train loads it through the config's ``trainer.callbacks``
with this folder on PYTHONPATH). Per epoch it records the number of optimiser steps, the sum
of their times (``on_train_batch_start`` to ``on_train_batch_end``: forward, force double
backward, optimiser step; data loading excluded) and the wall time from the epoch's start to
its last step (data loading included, validation excluded), and the validation metrics that
Lightning logged for that epoch. Rewrites ``out`` (JSON) after every epoch.
"""

import json
import time

import lightning


class StepTimer(lightning.pytorch.callbacks.Callback):
    def __init__(self, out: str):
        self.out = out
        self.report = {"parameters": None, "epochs": []}
        self._step_start = 0.0
        self._epoch_start = 0.0
        self._last_end = 0.0
        self._steps = []

    def on_train_start(self, trainer, pl_module):
        self.report["parameters"] = sum(p.numel() for p in pl_module.model.parameters())

    def on_train_epoch_start(self, trainer, pl_module):
        self._steps = []
        self._epoch_start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._last_end = time.perf_counter()
        self._steps.append(self._last_end - self._step_start)

    def on_train_epoch_end(self, trainer, pl_module):  # Lightning 2: after validation
        if not self._steps:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if "val" in k}
        self.report["epochs"].append(
            {
                "epoch": trainer.current_epoch,
                "steps": len(self._steps),
                "step_seconds": sum(self._steps),
                "epoch_seconds_to_last_step": self._last_end - self._epoch_start,
                "val_metrics": metrics,
            }
        )
        with open(self.out, "w") as handle:
            json.dump(self.report, handle, indent=1)
