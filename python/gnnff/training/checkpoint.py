"""Training checkpoints: one torch.save'd dict, written atomically (temp file + os.replace).

Keys: "format" ("gnnff-checkpoint"), "version", "config" (full resolved config),
"model_config", "type_names", "dtype", "model_state", "ema_state" (or None), "optimizer_state",
"scheduler_state", "epoch" (completed epochs), "batch_in_epoch" (batches done in the running
epoch; 0 at an epoch boundary), "step", "lineage", "rng" (python/numpy/torch states), "history",
"best" (monitor value, epoch, epochs since best), "train_accumulators", "loss_terms".

Reading checkpoints and rebuilding their models is gnnff.model_io's job (inference needs it
without training); ``load_checkpoint`` is re-exported here for the trainer's callers.
"""

import logging
import os
from typing import Any, Dict, Optional

import torch

from gnnff.atomic_file import atomic_path, remove_stale_temp_files
from gnnff.model_io import CHECKPOINT_FORMAT as FORMAT
from gnnff.model_io import CHECKPOINT_VERSION as VERSION
from gnnff.model_io import checkpoint_model_config, load_checkpoint

__all__ = [
    "FORMAT",
    "VERSION",
    "load_checkpoint",
    "save_checkpoint",
    "clean_stale_temp_files",
    "check_same_model",
    "export_lineage",
]
LOG = logging.getLogger("gnnff.training")


def save_checkpoint(state: Dict[str, Any], path: str) -> None:
    """Write ``state`` to ``path`` so that a kill at any moment leaves the old file or the new one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, "ckpt", suffix=".pt") as tmp:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())


def clean_stale_temp_files(folder: str) -> None:
    """Remove temporary files that killed writes left in ``folder``, and say so."""
    removed = remove_stale_temp_files(folder)
    if removed:
        LOG.warning(
            "removed %d stale temporary file(s) of an interrupted checkpoint or log write in %s: %s",
            len(removed),
            folder,
            ", ".join(removed),
        )


def check_same_model(checkpoint: Dict[str, Any], model_config: Dict[str, Any], source: str) -> None:
    """Raise if a checkpoint was written for a different model than ``model_config``."""
    if not isinstance(checkpoint.get("model_config"), dict):
        raise ValueError(
            f"{source} has no model_config: it is not a complete gnnff training checkpoint"
        )
    theirs = checkpoint_model_config(checkpoint)  # an older version's defaults made explicit
    differing = sorted(
        k for k in set(theirs) | set(model_config) if theirs.get(k) != model_config.get(k)
    )
    if differing:
        details = ", ".join(
            f"{k}: checkpoint {theirs.get(k)!r} vs config {model_config.get(k)!r}"
            for k in differing
        )
        legacy = [k for k in differing if k not in checkpoint["model_config"] and k in theirs]
        if legacy and all(k not in model_config for k in legacy):
            pins = ", ".join(f"{k}: {theirs[k]}" for k in legacy)
            raise ValueError(
                f"{source} was written by an older gnnff (checkpoint version "
                f"{checkpoint.get('version', 1)}) whose default for {', '.join(legacy)} has since "
                f"changed; to resume it with the model it was trained as, add {pins} to the "
                "model: section (docs/models.md)"
            )
        raise ValueError(
            f"{source} was written for another model ({details}); use the checkpoint's model: section "
            "or start a new run (init_from: to fine-tune from it)"
        )


def export_lineage(checkpoint: Dict[str, Any], path: Optional[str]) -> Dict[str, Any]:
    """Lineage stored in an exported file: the run's lineage plus this checkpoint."""
    lineage = dict(checkpoint.get("lineage") or {})
    lineage["checkpoint"] = {
        "path": os.path.abspath(path) if path else None,
        "epoch": checkpoint.get("epoch"),
        "step": checkpoint.get("step"),
        "best": checkpoint.get("best"),
    }
    return lineage
