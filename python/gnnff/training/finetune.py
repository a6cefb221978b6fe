"""Start training from a pre-trained checkpoint (the ``init_from:`` section of a training config).

    init_from:
      checkpoint: runs/pretrain/best.pt   # a gnnff training checkpoint (required)
      use_ema: true                       # take the EMA weights when the run kept them
      freeze: [type_embedding, int_blocks.0]   # parameter-name patterns (fnmatch) not trained
      backbone_lr_factor: 0.1             # backbone lr = factor x optimizer.lr; head at 1x
      head: ["*out_block*", "*type_embedding*"]   # what counts as head (default: the model's HEAD_MODULES)

Pre-training (Maheshwari et al. 2025) is on broad data and fine-tuning on a small target set, so
the element sets and energy references usually differ:
- every weight is copied, by name, from the checkpoint; shapes must match (same architecture);
- rows of parameters whose name contains ``type_embedding`` are remapped by element name: shared
  elements keep their pre-trained rows, new elements keep the new model's fresh initialisation;
- the per-type energy shift is NOT copied (the trainer re-fits it on the new training split);
  the per-type energy scale is copied by element (new elements: mean of the pre-trained scales),
  so ``data.energy_scale: keep`` keeps the scale the backbone was trained with.
Returns the lineage stored in the new checkpoint and exported model, and the optimizer groups.
"""

import fnmatch
import os
from typing import Any, Dict, List, Tuple

import torch

from gnnff.digest import file_sha256
from gnnff.model_io import build_model, checkpoint_model_config, load_checkpoint
from gnnff.models.base import energy_model_of, head_modules
from gnnff.suggest import did_you_mean

OPTIONS = ("checkpoint", "use_ema", "freeze", "backbone_lr_factor", "head")
ENERGY_SHIFT = "per_type_energy_shift"
ENERGY_SCALE = "per_type_energy_scale"
TYPE_EMBEDDING = "type_embedding"


def default_head(model: torch.nn.Module) -> List[str]:
    """What counts as head unless init_from.head says otherwise: the modules the energy model
    names (gnnff.models.base.EnergyModel.HEAD_MODULES); none for a model without learned weights."""
    return head_modules(model) if getattr(energy_model_of(model), "HEAD_MODULES", ()) else []


def apply_init_from(
    model: torch.nn.Module, init_from_cfg: Dict[str, Any], type_names: List[str]
) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """Load pre-trained weights into ``model`` (a ForceModel); return (lineage, param_groups)."""
    cfg = _check_options(init_from_cfg)
    path = cfg["checkpoint"]
    state = load_checkpoint(path)
    _check_same_architecture(model, state, path)
    weights = state["model_state"]
    used_ema = bool(cfg.get("use_ema", True) and state.get("ema_state"))
    if used_ema:
        weights = state["ema_state"]["shadow"]
    old_types = list(state["type_names"])
    report = _copy_weights(model, weights, old_types, list(type_names), path)
    frozen = _freeze(model, cfg.get("freeze") or [], report["new_types"])
    groups = _param_groups(
        model, float(cfg.get("backbone_lr_factor", 1.0)), cfg.get("head") or default_head(model)
    )
    lineage = {
        "init_from": os.path.abspath(path),
        "checkpoint_sha256": file_sha256(path),
        "checkpoint_epoch": state.get("epoch"),
        "checkpoint_step": state.get("step"),
        "weights": "ema" if used_ema else "model",
        "pretrain_model": state["model_config"].get("name"),
        "pretrain_type_names": old_types,
        "pretrain_data": (state.get("lineage") or {}).get("data"),
        "pretrain_lineage": state.get("lineage"),
        "shared_types": report["shared_types"],
        "new_types": report["new_types"],
        "frozen": frozen,
        "backbone_lr_factor": float(cfg.get("backbone_lr_factor", 1.0)),
    }
    return lineage, groups


def _check_options(cfg: Dict[str, Any]) -> Dict[str, Any]:
    if isinstance(cfg, str):  # init_from: path/to/best.pt
        cfg = {"checkpoint": cfg}
    if not isinstance(cfg, dict) or not cfg.get("checkpoint"):
        raise ValueError(
            "init_from needs a checkpoint: `init_from: {checkpoint: runs/pretrain/best.pt}`"
        )
    for key in cfg:
        if key not in OPTIONS:
            raise ValueError(
                f"init_from has no option {key!r}{did_you_mean(key, OPTIONS)}; options: {list(OPTIONS)}"
            )
    factor = float(cfg.get("backbone_lr_factor", 1.0))
    if not factor >= 0.0:
        raise ValueError(
            f"init_from.backbone_lr_factor must be >= 0 (0 freezes the backbone), got {factor}"
        )
    if isinstance(cfg.get("freeze"), str):
        cfg = dict(cfg, freeze=[cfg["freeze"]])
    return cfg


def _check_same_architecture(model: torch.nn.Module, state: Dict[str, Any], path: str) -> None:
    theirs = state["model_config"].get("name")
    ours = getattr(model, "model_name", type(model).__name__)
    if theirs != ours:
        raise ValueError(
            f"checkpoint {path!r} holds a {theirs!r} model but the config builds {ours!r}; fine-tuning "
            f"keeps the architecture: set model.name: {theirs} (and the checkpoint's sizes)"
        )
    pretrained = build_model(checkpoint_model_config(state), state.get("dtype", "float32"))
    if abs(float(pretrained.r_max) - float(model.r_max)) > 1e-12:
        raise ValueError(
            f"checkpoint {path!r} was trained with r_max {pretrained.r_max} Å, the config builds r_max "
            f"{model.r_max} Å; the radial basis depends on r_max: use the same model.r_max"
        )


def _copy_weights(
    model, weights, old_types: List[str], new_types: List[str], path: str
) -> Dict[str, List[str]]:
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {path!r} does not fit the configured {model.model_name!r} model (architecture "
            f"options differ): missing {missing[:5]}, unexpected {unexpected[:5]}; use the checkpoint's model: sizes"
        )
    old_index = {name: k for k, name in enumerate(old_types)}
    shared = [n for n in new_types if n in old_index]
    rows_new = torch.tensor([new_types.index(n) for n in shared], dtype=torch.long)
    rows_old = torch.tensor([old_index[n] for n in shared], dtype=torch.long)
    new_state = {}
    for name, current in own.items():
        value = weights[name].to(device=current.device, dtype=current.dtype)
        if name == ENERGY_SHIFT:
            new_state[name] = current  # re-fitted on the new training split by the trainer
        elif name == ENERGY_SCALE or TYPE_EMBEDDING in name:
            if value.shape[1:] != current.shape[1:] or value.shape[0] != len(old_types):
                raise ValueError(
                    f"{name}: checkpoint shape {tuple(value.shape)} does not fit {tuple(current.shape)}; use the checkpoint's model sizes"
                )
            remapped = current.clone()
            if name == ENERGY_SCALE and len(shared) < len(new_types):
                remapped[:] = value.mean()  # new elements: typical pre-trained scale
            remapped[rows_new] = value[rows_old]
            new_state[name] = remapped
        else:
            if value.shape != current.shape:
                raise ValueError(
                    f"{name}: checkpoint shape {tuple(value.shape)} != model shape {tuple(current.shape)}; "
                    "the architecture options differ: use the checkpoint's model: sizes"
                )
            new_state[name] = value
    model.load_state_dict(new_state)
    return {"shared_types": shared, "new_types": [n for n in new_types if n not in old_index]}


def _matches(name: str, pattern: str) -> bool:
    """fnmatch on the parameter name, with or without the ForceModel prefix; a bare module name
    (``int_blocks.0``) matches everything below it, and a plain word matches as a name part."""
    short = name[len("energy_model.") :] if name.startswith("energy_model.") else name
    for candidate in (name, short):
        if fnmatch.fnmatch(candidate, pattern) or candidate.startswith(pattern + "."):
            return True
    return not any(c in pattern for c in "*?[") and pattern in name.split(".")


def _freeze(model, patterns: List[str], new_types: List[str]) -> List[str]:
    names = [n for n, _ in model.named_parameters()]
    frozen = []
    for pattern in patterns:
        hits = [n for n in names if _matches(n, str(pattern))]
        if not hits:
            modules = sorted({".".join(n.split(".")[:2]) for n in names})
            raise ValueError(
                f"init_from.freeze pattern {pattern!r} matches no parameter; module names: {modules}"
            )
        if new_types and any(TYPE_EMBEDDING in n for n in hits):
            raise ValueError(
                f"init_from.freeze pattern {pattern!r} freezes the type embedding, but elements {new_types} are new "
                "and would keep random embeddings; do not freeze type_embedding when the element set grows"
            )
        frozen += hits
    params = dict(model.named_parameters())
    for name in frozen:
        params[name].requires_grad_(False)
    return sorted(set(frozen))


def _param_groups(model, factor: float, head_patterns: List[str]) -> List[Dict[str, Any]]:
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if factor == 1.0:
        return [{"params": [p for _, p in trainable], "lr_factor": 1.0, "name": "all"}]
    head = [p for n, p in trainable if any(_matches(n, h) for h in head_patterns)]
    backbone = [p for n, p in trainable if not any(_matches(n, h) for h in head_patterns)]
    if not head:
        raise ValueError(
            f"init_from.head patterns {head_patterns} match no trainable parameter; name the output layers"
        )
    groups = [{"params": head, "lr_factor": 1.0, "name": "head"}]
    if backbone and factor > 0.0:
        groups.append({"params": backbone, "lr_factor": factor, "name": "backbone"})
    elif backbone:  # factor 0: the backbone is frozen
        for p in backbone:
            p.requires_grad_(False)
    return groups
