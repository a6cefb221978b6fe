"""Building what a training run needs from its config: data splits, optimizer, scheduler."""

import logging
import os
from typing import Any, Dict, List, Tuple

import torch

from gnnff.data.dataset import AtomicDataset
from gnnff.data.readers import read_structures
from gnnff.data.splits import split_indices
from gnnff.digest import file_sha256

LOG = logging.getLogger("gnnff.training")


def _paths(value) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _read(data_cfg: Dict[str, Any], paths: List[str]):
    return read_structures(
        paths,
        fmt=data_cfg["format"],
        index=data_cfg["index"],
        energy_key=data_cfg["energy_key"],
        forces_key=data_cfg["forces_key"],
        stress_key=data_cfg["stress_key"],
        oc20_reference=data_cfg["oc20_reference"],
    )


def load_splits(
    config: Dict[str, Any],
    type_names,
    r_max: float,
    dtype: torch.dtype,
    need_energy: bool,
    need_forces: bool,
) -> Tuple[Dict[str, AtomicDataset], Dict[str, Any]]:
    """train/val(/test) data sets and a lineage record (files, digests, split indices)."""
    data_cfg = config["data"]
    seed = (
        data_cfg["split_seed"] if data_cfg["split_seed"] is not None else config["training"]["seed"]
    )
    train_paths = _paths(data_cfg["train"])
    pool = _read(data_cfg, train_paths)
    index_files = {name: data_cfg[f"{name}_indices"] for name in ("train", "val", "test")}
    has_val_file, has_test_file = bool(data_cfg["val"]), bool(data_cfg["test"])
    if any(index_files.values()):
        indices = split_indices(len(pool), seed=seed, index_files=index_files)
    else:
        indices = split_indices(
            len(pool),
            val_fraction=0.0 if has_val_file else float(data_cfg["val_fraction"]),
            test_fraction=0.0 if has_test_file else float(data_cfg["test_fraction"]),
            seed=seed,
        )
    structures = {name: [pool[int(i)] for i in idx] for name, idx in indices.items()}
    if has_val_file:
        structures["val"] = _read(data_cfg, _paths(data_cfg["val"]))
    if has_test_file:
        structures["test"] = _read(data_cfg, _paths(data_cfg["test"]))
    fixes = {
        "train": "add structures or lower data.val_fraction/test_fraction",
        "val": "set data.val_fraction > 0 (at least one structure) or give data.val",
    }
    for name, fix in fixes.items():
        if not structures.get(name):
            raise ValueError(
                f"the {name} split is empty ({len(pool)} structures in data.train); {fix}"
            )
    datasets = {}
    for name, items in structures.items():
        if not items:
            continue
        datasets[name] = AtomicDataset.from_structures(
            items,
            type_names,
            r_max,
            dtype=dtype,
            source=f"{name} split",
            need_energy=need_energy,
            need_forces=need_forces,
        )
    lineage = {
        "files": {
            name: [
                {"path": os.path.abspath(p), "sha256": file_sha256(p)}
                for p in _paths(data_cfg[name])
            ]
            for name in ("train", "val", "test")
        },
        "split_seed": seed,
        "split_sizes": {name: len(ds) for name, ds in datasets.items()},
        "split_indices": {name: [int(i) for i in idx] for name, idx in indices.items()},
    }
    return datasets, lineage


def make_optimizer(
    param_groups: List[Dict[str, Any]], cfg: Dict[str, Any]
) -> torch.optim.Optimizer:
    """Optimizer over param groups; a group may carry its own "lr" or an "lr_factor" x optimizer.lr."""
    groups = []
    for group in param_groups:
        group = dict(group)
        factor = group.pop("lr_factor", None)
        if factor is not None:
            group["lr"] = float(cfg["lr"]) * float(factor)
        group["params"] = [p for p in group["params"] if p.requires_grad]
        if group["params"]:
            groups.append(group)
    if not groups:
        raise ValueError("no trainable parameters: everything is frozen (check init_from.freeze)")
    name = str(cfg["name"]).lower()
    common = dict(
        lr=float(cfg["lr"]),
        weight_decay=float(cfg["weight_decay"]),
        amsgrad=bool(cfg["amsgrad"]),
        betas=tuple(cfg["betas"]),
    )
    if name == "adam":
        return torch.optim.Adam(groups, **common)
    if name == "adamw":
        return torch.optim.AdamW(groups, **common)
    raise ValueError(f"optimizer.name must be 'adam' or 'adamw', got {cfg['name']!r}")


def make_scheduler(optimizer, cfg: Dict[str, Any], max_epochs: int):
    """Epoch-level LR schedule (stepped once per epoch; plateau reads the monitored metric)."""
    name = str(cfg["name"]).lower()
    if name == "none":
        return None
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            factor=float(cfg["factor"]),
            patience=int(cfg["patience"]),
            min_lr=float(cfg["min_lr"]),
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=int(cfg["t_max"] or max_epochs), eta_min=float(cfg["min_lr"])
        )
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(cfg["gamma"]))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=int(cfg["step_size"]), gamma=float(cfg["factor"])
        )
    raise ValueError(
        f"scheduler.name must be one of none, plateau, cosine, exponential, step; got {cfg['name']!r}"
    )
