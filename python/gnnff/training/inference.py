"""Load a model for inference from a training checkpoint or an exported TorchScript file, and
evaluate it on labelled structures (used by ``gnnff eval`` and the ASE calculator)."""

import os
from typing import Any, Dict, Sequence, Tuple

import torch

from gnnff.data.dataset import collate, structure_to_example, to_device, validate_structures
from gnnff.training.metrics import ErrorAccumulator

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def is_torchscript_file(path: str) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; checkpoints have none."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def load_exported_model(path: str, device: str = "cpu") -> Tuple[torch.jit.ScriptModule, Dict[str, object]]:
    """An exported TorchScript model and its checked metadata (see gnnff.export.load_exported)."""
    from gnnff.export import load_exported

    return load_exported(path, device=device)


def load_for_inference(path: str, device: str = "cpu", use_ema: bool = True) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """(model, info) with info = {type_names, r_max, dtype (torch), model_name, kind, metadata}."""
    from gnnff.training.checkpoint import load_checkpoint, model_from_checkpoint

    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist; give a checkpoint (best.pt) or an exported model")
    if is_torchscript_file(path):
        module, meta = load_exported_model(path, device=device)
        info = {"type_names": meta["type_names"], "r_max": meta["r_max"], "dtype": DTYPES[meta["dtype"]],
                "model_name": meta["model_name"], "kind": "exported", "metadata": meta}
        return module.eval(), info
    state = load_checkpoint(path)
    model = model_from_checkpoint(state, use_ema=use_ema).to(device)
    info = {"type_names": list(model.type_names), "r_max": model.r_max, "dtype": DTYPES[state["dtype"]],
            "model_name": model.model_name, "kind": "checkpoint", "metadata": None}
    return model, info


def evaluate_structures(model: torch.nn.Module, info: Dict[str, Any], structures: Sequence, batch_size: int = 16,
                        device: str = "cpu") -> Dict[str, float]:
    """MAE/RMSE of energy per atom (eV/atom), force components (eV/Å), stress (eV/Å^3)."""
    validate_structures(structures, info["type_names"], "evaluation data", need_energy=False, need_forces=False)
    errors = ErrorAccumulator()
    for start in range(0, len(structures), batch_size):
        chunk = structures[start : start + batch_size]
        examples = [structure_to_example(a, info["type_names"], info["r_max"], info["dtype"]) for a in chunk]
        batch = to_device(collate(examples), torch.device(device))
        pred = model(dict(batch))
        errors.add(pred, batch)
    return errors.results()
