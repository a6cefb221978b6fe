"""Export a ForceModel to the TorchScript file that pair_style gnnff and the ASE calculator load.

The file carries the model contract's metadata as extra files (gnnff/contract.py). Export happens
on CPU; the pair style moves the model to its device when it loads it.
"""

import json
import os
from typing import Dict, Optional, Tuple

import torch

from gnnff import contract, ops
from gnnff.atomic_file import atomic_path
from gnnff.model_io import model_dtype
from gnnff.models import features
from gnnff.models.layerwise import layerwise_form

__all__ = ["export_model", "load_exported", "model_dtype"]


def prepare_for_export(
    model: torch.nn.Module, path: str, lineage: Optional[Dict]
) -> Tuple[Dict[str, str], bool]:
    """What every export format does first: check the target folder, build the contract's
    metadata, and put the model in inference mode on the CPU with feature recording off.
    Returns the metadata and whether the model was training (to restore it afterwards)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"cannot write {path!r}: folder {folder!r} does not exist; create it first"
        )
    metadata = contract.make_metadata(
        r_max=model.r_max,
        interaction_range=model.interaction_range,
        type_names=model.type_names,
        dtype=contract.dtype_name(model_dtype(model)),
        model_name=model.model_name,
        lineage=json.dumps(lineage or {}, sort_keys=True),
    )
    was_training = model.training
    model.eval().cpu()
    try:
        features.set_recording(model, False)
    except ValueError:
        pass  # analytic reference models expose no features
    return metadata, was_training


def export_model(
    model: torch.nn.Module, path: str, lineage: Optional[Dict] = None, layerwise: bool = True
) -> Dict[str, str]:
    """Script ``model`` (a ForceModel) and save it to ``path`` with its metadata; return them.

    ``layerwise``: a model with a layer-wise form (NequIP) is saved with the layer-wise methods
    and metadata (docs/model_contract.md), which `pair_style gnnff comm layer` needs."""
    metadata, was_training = prepare_for_export(model, path, lineage)
    to_script, extra = layerwise_form(model) if layerwise else (model, {})
    metadata.update(extra)
    scripted = torch.jit.script(to_script)
    # write atomically: a half-written model file must never replace a good one
    with atomic_path(path, "export", suffix=".pt") as tmp:
        torch.jit.save(scripted, tmp, _extra_files=metadata)
    model.train(was_training)
    return metadata


def load_exported(
    path: str, device: str = "cpu"
) -> Tuple[torch.jit.ScriptModule, Dict[str, object]]:
    """Load an exported model and its decoded metadata; clear errors for files that are not."""
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist; export one with `gnnff export`")
    extra = {k: "" for k in contract.REQUIRED_KEYS + contract.OPTIONAL_KEYS}
    ops.load()  # exported models may call gnnff's compiled operators
    try:
        module = torch.jit.load(path, map_location=device, _extra_files=extra)
    except Exception as err:  # torch raises RuntimeError subclasses for corrupt archives
        missing = ops.explain_missing_operator(err, path)
        if missing:
            raise ValueError(missing) from err
        raise ValueError(
            f"{path!r} is not a readable TorchScript file ({type(err).__name__}); "
            "re-export it with `gnnff export CHECKPOINT -o model.pt`"
        ) from err
    # torch returns extra files as bytes
    extra = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in extra.items()}
    metadata = contract.parse_metadata(extra, source=repr(path))
    if torch.device(device).type == "cpu":
        use_unspecialised_graphs_on_cpu()
    return module, metadata


def use_unspecialised_graphs_on_cpu() -> None:
    """Run TorchScript models unspecialised on the CPU, as pair_style gnnff does
    (cpp/src/model.cpp): torch's profiling executor specialises graphs to input shapes for its
    fusers, which do not run on the CPU; the unspecialised graph is 1.1-1.4x faster per call and
    gives eager autograd's forces bit for bit (docs/benchmarks.md, "TorchScript executor on the
    CPU"). Process-wide, as torch's setting is; GNNFF_TORCHSCRIPT_SPECIALIZE=1 keeps torch's
    default."""
    if os.environ.get("GNNFF_TORCHSCRIPT_SPECIALIZE") != "1":
        torch.jit.set_fusion_strategy([("STATIC", 0), ("DYNAMIC", 0)])
