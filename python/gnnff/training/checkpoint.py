"""Training checkpoints: one torch.save'd dict, written atomically (temp file + os.replace).

Keys: "format" ("gnnff-checkpoint"), "version", "config" (full resolved config),
"model_config", "type_names", "dtype", "model_state", "ema_state" (or None), "optimizer_state",
"scheduler_state", "epoch" (completed epochs), "batch_in_epoch" (batches done in the running
epoch; 0 at an epoch boundary), "step", "lineage", "rng" (python/numpy/torch states), "history",
"best" (monitor value, epoch, epochs since best), "train_accumulators", "loss_terms".
"""

import os
import tempfile
from typing import Any, Dict, Optional

import torch

FORMAT = "gnnff-checkpoint"
VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def save_checkpoint(state: Dict[str, Any], path: str) -> None:
    """Write ``state`` to ``path`` so that a kill at any moment leaves the old file or the new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".gnnff-ckpt-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint {path!r} does not exist; training writes last.pt and best.pt in output.dir")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ValueError(f"{path!r} is not a readable gnnff checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path!r} is not a gnnff training checkpoint (no format={FORMAT!r}); an exported "
            "TorchScript model is loaded with gnnff.export.load_exported instead"
        )
    return state


def check_same_model(checkpoint: Dict[str, Any], model_config: Dict[str, Any], source: str) -> None:
    """Raise if a checkpoint was written for a different model than ``model_config``."""
    theirs = checkpoint["model_config"]
    differing = sorted(k for k in set(theirs) | set(model_config) if theirs.get(k) != model_config.get(k))
    if differing:
        details = ", ".join(f"{k}: checkpoint {theirs.get(k)!r} vs config {model_config.get(k)!r}" for k in differing)
        raise ValueError(
            f"{source} was written for another model ({details}); use the checkpoint's model: section "
            "or start a new run (init_from: to fine-tune from it)"
        )


def build_model(model_config: Dict[str, Any], dtype: str) -> torch.nn.Module:
    from gnnff.models.registry import build_model as build

    config = dict(model_config)
    return build(config.pop("name"), **config).to(_DTYPES[dtype])


def model_from_checkpoint(checkpoint: Dict[str, Any], use_ema: bool = True) -> torch.nn.Module:
    model = build_model(checkpoint["model_config"], checkpoint["dtype"])
    state = checkpoint["model_state"]
    if use_ema and checkpoint.get("ema_state"):
        state = checkpoint["ema_state"]["shadow"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"checkpoint weights do not fit model {checkpoint['model_config']['name']!r}: {err}") from err
    return model.eval()


def load_model(path: str, use_ema: bool = True) -> torch.nn.Module:
    """Rebuild the ForceModel of a checkpoint (EMA weights when the run kept them)."""
    return model_from_checkpoint(load_checkpoint(path), use_ema=use_ema)


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
