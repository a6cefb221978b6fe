"""Saved models in, ForceModels out: the one home of model loading, outside training.

    model = load_model("run/best.pt")                    # a training checkpoint -> ForceModel
    model, info = load_for_inference("model.pt")        # checkpoint or exported TorchScript
    model = build_model({"name": "pair_mlp", "type_names": ["Si"]}, "float64")

Used by the ASE calculator, ``gnnff eval`` and ``gnnff export``; the trainer builds its models
here too. Writing checkpoints is training's job (gnnff.training.checkpoint); reading them is here,
so that inference never imports the training package. Checkpoint keys: see that module.
"""

import inspect
import os
import zipfile
from typing import Any, Dict, Sequence, Tuple

import torch

from gnnff import contract

CHECKPOINT_FORMAT = "gnnff-checkpoint"
# 2: allegro's env_bias default became "cutoff" (smooth at r_max); see LEGACY_MODEL_OPTIONS
CHECKPOINT_VERSION = 2
# model options whose default changed, with the value that checkpoints up to a version were
# trained with: {last version with the old default: {model name: {option: old value}}}. A
# checkpoint that does not name such an option gets the old value, so it gives the numbers it
# always gave (checkpoints record the user's model: section, not the resolved defaults).
LEGACY_MODEL_OPTIONS = {1: {"allegro": {"env_bias": "constant"}}}
# what a checkpoint needs to rebuild its model
_MODEL_KEYS = ("model_config", "dtype", "model_state")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype a model computes in: a ForceModel states it; any other module (a user's) is
    asked for its first floating parameter or buffer; one with none computes in the default."""
    stated = getattr(model, "dtype", None)
    if isinstance(stated, torch.dtype):
        return stated
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def _check_option_types(name: str, options: Dict[str, Any]) -> None:
    """A config value of the wrong kind (``r_max: big``) is named before the builder trips on it."""
    from gnnff.models.registry import model_builder

    params = inspect.signature(model_builder(name)).parameters
    for key, value in options.items():
        annotation = params[key].annotation if key in params else inspect.Parameter.empty
        if annotation in (float, int) and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            kind = "a number" if annotation is float else "an integer"
            raise ValueError(f"model.{key} must be {kind}, got {value!r}")
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"model.{key} must be an integer, got {value!r}")
        if annotation is bool and not isinstance(value, bool):
            raise ValueError(f"model.{key} must be true or false, got {value!r}")


def build_model(model_config: Dict[str, Any], dtype: str) -> torch.nn.Module:
    """A registered model from a ``model:`` config section, cast to ``dtype`` ("float32"/"float64")."""
    from gnnff.models.registry import available_models
    from gnnff.models.registry import build_model as build

    config = dict(model_config)
    name = config.pop("name", None)
    if not name:
        raise ValueError(
            "model config needs a name: model: {name: <registered model>, type_names: [...]}"
        )
    torch_dtype = contract.torch_dtype(dtype)
    if name in available_models():  # an unknown name: the registry's error names the closest
        _check_option_types(name, config)
    try:
        model = build(name, **config)
    except TypeError as err:  # a value the builder could not use; the registry checked the names
        raise ValueError(
            f"model {name!r}: an option has a value of the wrong type ({err}); see docs/models.md"
        ) from err
    return model.to(torch_dtype)


def checkpoint_model_config(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    """The model: section a checkpoint was trained with, with the old value of every option
    whose default changed since its version (LEGACY_MODEL_OPTIONS)."""
    config = dict(checkpoint["model_config"])
    version = checkpoint.get("version", 1)
    for last_version, per_model in LEGACY_MODEL_OPTIONS.items():
        if version <= last_version:
            for option, value in per_model.get(config.get("name"), {}).items():
                config.setdefault(option, value)
    return config


def load_checkpoint(path: str) -> Dict[str, Any]:
    """The state dict of a training checkpoint; clear errors for anything else."""
    if not os.path.isfile(path):
        raise ValueError(
            f"checkpoint {path!r} does not exist; training writes last.pt and best.pt in output.dir"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ValueError(
            f"{path!r} is not a readable gnnff checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path!r} is not a gnnff training checkpoint (no format={CHECKPOINT_FORMAT!r}); an exported "
            "TorchScript model is loaded with gnnff.export.load_exported instead"
        )
    return state


def _check_weights_fit(model: torch.nn.Module, weights: Dict[str, torch.Tensor], name: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    wrong = [
        k for k in sorted(set(own) & set(weights)) if tuple(own[k].shape) != tuple(weights[k].shape)
    ]
    if not (missing or unexpected or wrong):
        return
    details = []
    if wrong:
        k = wrong[0]
        details.append(
            f"{k} has shape {tuple(weights[k].shape)} in the checkpoint but {tuple(own[k].shape)} in "
            f"the model its model_config builds ({len(wrong)} such tensors)"
        )
    if missing:
        details.append(f"weights missing for {missing[:3]}")
    if unexpected:
        details.append(f"weights the model does not have: {unexpected[:3]}")
    raise ValueError(
        f"the checkpoint's weights do not fit its model_config ({name!r}): {'; '.join(details)}. The "
        "model_config was edited or belongs to another run; use the checkpoint as written by `gnnff train`"
    )


def model_from_checkpoint(
    checkpoint: Dict[str, Any], use_ema: bool = True, source: str = "checkpoint"
) -> torch.nn.Module:
    """Rebuild the ForceModel of a loaded checkpoint (EMA weights when the run kept them)."""
    missing = [k for k in _MODEL_KEYS if k not in checkpoint]
    if missing:
        raise ValueError(
            f"{source} has no {', '.join(missing)}: it is not a complete gnnff training checkpoint "
            "(was it written by hand or cut short?); use last.pt or best.pt of a `gnnff train` run"
        )
    model = build_model(checkpoint_model_config(checkpoint), checkpoint["dtype"])
    state = checkpoint["model_state"]
    if use_ema and checkpoint.get("ema_state"):
        state = checkpoint["ema_state"]["shadow"]
    _check_weights_fit(model, state, checkpoint["model_config"].get("name"))
    model.load_state_dict(state)
    return model.eval()


def load_model(path: str, use_ema: bool = True) -> torch.nn.Module:
    """Rebuild the ForceModel of a checkpoint file (EMA weights when the run kept them)."""
    return model_from_checkpoint(load_checkpoint(path), use_ema=use_ema, source=repr(path))


def is_torchscript_file(path: str) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; checkpoints have none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def load_for_inference(
    path: str, device: str = "cpu", use_ema: bool = True
) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """(model, info) from a checkpoint or an exported model (TorchScript .pt or AOTInductor
    .pt2), with info = {type_names, r_max, dtype (torch), model_name, kind ("checkpoint" |
    "exported"), metadata (exported only)}."""
    from gnnff.export import load_exported

    if not os.path.isfile(path):
        raise ValueError(
            f"model file {path!r} does not exist; give a checkpoint (best.pt) or an exported model"
        )
    from gnnff.export_aoti import is_aoti_package, load_aoti

    aoti = is_aoti_package(path)
    if aoti or is_torchscript_file(path):
        module, meta = (load_aoti if aoti else load_exported)(path, device=device)
        info = {
            "type_names": meta["type_names"],
            "r_max": meta["r_max"],
            "dtype": contract.torch_dtype(meta["dtype"]),
            "model_name": meta["model_name"],
            "kind": "exported",
            "metadata": meta,
        }
        return module.eval(), info
    model = load_model(path, use_ema=use_ema).to(device)
    info = {
        "type_names": list(model.type_names),
        "r_max": model.r_max,
        "dtype": model_dtype(model),
        "model_name": model.model_name,
        "kind": "checkpoint",
        "metadata": None,
    }
    return model, info


def predicted_stress(
    pred: Dict[str, torch.Tensor], inputs: Dict[str, torch.Tensor]
) -> torch.Tensor:
    """(G, 3, 3) stress (eV/Å^3, ASE sign) of a prediction. Models emit it since the model I/O
    move; models exported before did not, and it is derived from their virial the same way."""
    from gnnff import keys
    from gnnff.models.wrapper import stress_from_virial

    if keys.STRESS in pred:
        return pred[keys.STRESS]
    return stress_from_virial(pred[keys.VIRIAL], inputs[keys.CELL], inputs.get(keys.PBC))


def model_inputs(batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A batch without its labels: what a model is given. Models exported before the model I/O
    move passed their inputs through, so a label given to them would come back as a 'prediction'."""
    from gnnff import keys

    labels = (
        keys.TOTAL_ENERGY,
        keys.FORCES,
        keys.STRESS,
        keys.HAS_STRESS,
        keys.ATOMIC_ENERGY,
        keys.VIRIAL,
    )
    return {k: v for k, v in batch.items() if k not in labels}


def evaluate_structures(
    model: torch.nn.Module,
    info: Dict[str, Any],
    structures: Sequence,
    batch_size: int = 16,
    device: str = "cpu",
) -> Dict[str, float]:
    """MAE/RMSE of energy per atom (eV/atom), force components (eV/Å), stress (eV/Å^3) of a model
    loaded by load_for_inference on labelled structures (``gnnff eval``)."""
    from gnnff.data.dataset import collate, structure_to_example, to_device, validate_structures
    from gnnff.training.metrics import ErrorAccumulator  # the trainer's metrics, so numbers agree

    validate_structures(
        structures, info["type_names"], "evaluation data", need_energy=False, need_forces=False
    )
    errors = ErrorAccumulator()
    if getattr(model, "one_graph_per_call", False):  # an AOTInductor package
        batch_size = 1
    for start in range(0, len(structures), batch_size):
        chunk = structures[start : start + batch_size]
        examples = [
            structure_to_example(a, info["type_names"], info["r_max"], info["dtype"]) for a in chunk
        ]
        batch = to_device(collate(examples), torch.device(device))
        pred = model(model_inputs(batch))
        errors.add(pred, batch)
    return errors.results()
