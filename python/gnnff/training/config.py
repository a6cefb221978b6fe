"""Training configuration: defaults, YAML loading, ``--set a.b=value`` overrides, validation.

Every section except ``model``, ``loss`` and ``init_from`` has a fixed set of keys (DEFAULTS);
a misspelt key raises a ValueError naming the closest valid key (difflib). ``model`` keys are
checked by the model builder's signature, ``loss`` keys by the loss-term registry,
``init_from`` by gnnff.training.finetune. See docs/training.md for every key.
"""

import copy
import math
from typing import Any, Dict, List, Optional, Sequence

import yaml

from gnnff.memory import POLICIES
from gnnff.suggest import did_you_mean

DEFAULTS: Dict[str, Any] = {
    "model": {},
    "data": {
        "train": None,  # path or list of paths (required)
        "val": None,  # separate validation file(s); else a fraction of train
        "test": None,
        "format": "auto",  # auto | extxyz | ase_db | md17 | rmd17 | oc20
        "index": ":",  # ASE index string for extxyz files
        "energy_key": "energy",
        "forces_key": "forces",
        "stress_key": "stress",
        "oc20_reference": "subtract",  # subtract | keep
        "val_fraction": 0.1,
        "test_fraction": 0.0,
        "train_indices": None,  # index files into data.train (one integer per line or .npy)
        "val_indices": None,
        "test_indices": None,
        "split_seed": None,  # default: training.seed
        "energy_shift": "least_squares",  # least_squares | none | keep | number | list per type
        "energy_scale": "force_rms",  # force_rms | none | keep | number | list per type
    },
    "loss": {"energy": {"weight": 1.0}, "forces": {"weight": 100.0}},
    "optimizer": {
        "name": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "amsgrad": False,
        "betas": [0.9, 0.999],
    },
    "scheduler": {
        "name": "plateau",  # none | plateau | cosine | exponential | step
        "factor": 0.5,  # plateau, step
        "patience": 10,  # plateau (epochs)
        "min_lr": 1e-6,
        "gamma": 0.99,  # exponential
        "step_size": 50,  # step (epochs)
        "t_max": None,  # cosine (epochs; default max_epochs)
    },
    "training": {
        "max_epochs": 100,
        "batch_size": 8,  # global batch (split over DDP processes)
        "val_batch_size": None,  # default batch_size
        "seed": 0,
        "dtype": "float32",  # float32 | float64
        "device": "auto",  # auto | cpu | cuda
        "ema_decay": 0.99,  # null disables EMA
        "grad_clip": 10.0,  # max gradient norm; null disables
        "patience": 50,  # early stopping (epochs without improvement of monitor)
        "min_delta": 0.0,
        "monitor": "val_loss",
        "checkpoint_every_steps": None,  # also write last.pt inside epochs
        "ddp_backend": None,  # default gloo on CPU, nccl on CUDA
        "progress_bar": "auto",  # auto (only on a terminal) | true | false
        "memory": "keep",  # keep (glibc reuses freed memory: gnnff/memory.py) | release
    },
    "init_from": None,
    "output": {"dir": "runs/gnnff", "overwrite": False},
}
FREE_SECTIONS = ("model", "loss", "init_from")


def _closest(key: str, valid: Sequence[str]) -> str:
    return did_you_mean(key, valid)


def parse_override(text: str) -> (List[str], Any):
    """``a.b.c=value`` -> (["a","b","c"], value parsed as YAML)."""
    if "=" not in text:
        raise ValueError(
            f"override {text!r} must look like section.key=value, e.g. training.max_epochs=5"
        )
    path, value = text.split("=", 1)
    parts = [p for p in path.strip().split(".") if p]
    if not parts:
        raise ValueError(f"override {text!r} has no key before '='")
    return parts, yaml.safe_load(value) if value.strip() else None


def apply_overrides(config: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    config = copy.deepcopy(config)
    for text in overrides or []:
        parts, value = parse_override(text)
        node = config
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ValueError(f"override {text!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return config


def resolve_config(user: Optional[Dict[str, Any]], overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Merge a user config (and overrides) into DEFAULTS and check every key."""
    user = apply_overrides(user or {}, overrides)
    unknown = [k for k in user if k not in DEFAULTS]
    if unknown:
        raise ValueError(
            f"unknown config section {unknown[0]!r}{_closest(unknown[0], DEFAULTS)}; sections: {sorted(DEFAULTS)}"
        )
    config = copy.deepcopy(DEFAULTS)
    for section, value in user.items():
        if section in FREE_SECTIONS:
            config[section] = copy.deepcopy(value)
            continue
        if not isinstance(value, dict):
            raise ValueError(
                f"config section {section!r} must be a mapping, got {type(value).__name__}"
            )
        for key, item in value.items():
            if key not in DEFAULTS[section]:
                raise ValueError(
                    f"unknown key {section}.{key}{_closest(key, DEFAULTS[section])}; "
                    f"valid keys of {section}: {sorted(DEFAULTS[section])}"
                )
            config[section][key] = item
    _check(config)
    return config


def _check(config: Dict[str, Any]) -> None:
    model = config["model"]
    if not isinstance(model, dict) or "name" not in model:
        raise ValueError(
            "config needs model: {name: <registered model>, type_names: [...], r_max: ...}"
        )
    if not model.get("type_names"):
        raise ValueError(
            "model.type_names is required: the element names the model handles, e.g. [Si]"
        )
    if not config["data"]["train"]:
        raise ValueError("data.train is required: the file(s) with reference structures")
    if not isinstance(config["loss"], dict) or not config["loss"]:
        raise ValueError(
            "loss: needs at least one term, e.g. {energy: {weight: 1.0}, forces: {weight: 100.0}}"
        )
    _check_value_types(config)
    training = config["training"]
    if training["dtype"] not in ("float32", "float64"):
        raise ValueError(f"training.dtype must be float32 or float64, got {training['dtype']!r}")
    for key in ("max_epochs", "batch_size"):
        if not isinstance(training[key], int) or training[key] < 1:
            raise ValueError(f"training.{key} must be a positive integer, got {training[key]!r}")
    if training["memory"] not in POLICIES:
        raise ValueError(
            f"training.memory must be keep (reuse freed memory; the default) or release "
            f"(glibc's defaults), got {training['memory']!r}"
        )
    decay = training["ema_decay"]
    if decay is not None and not 0.0 <= float(decay) < 1.0:
        raise ValueError(f"training.ema_decay must be in [0, 1) or null, got {decay}")
    lr = float(config["optimizer"]["lr"])
    if not (lr >= 0.0 and math.isfinite(lr)):  # 0 is allowed: the weights stay (tests use it)
        raise ValueError(
            "optimizer.lr must be a learning rate >= 0 (e.g. 0.001), got "
            f"{config['optimizer']['lr']!r}"
        )


# keys whose default is a number but that may also be null
NULLABLE = {
    ("training", "grad_clip"),
    ("training", "ema_decay"),
    ("training", "val_batch_size"),
    ("training", "checkpoint_every_steps"),
    ("scheduler", "t_max"),
    ("data", "split_seed"),
}


def _check_value_types(config: Dict[str, Any]) -> None:
    """A value of the wrong kind (``--set optimizer.lr=fast``) is named here, not deep in torch."""
    for section, defaults in DEFAULTS.items():
        if section in FREE_SECTIONS:
            continue
        for key, default in defaults.items():
            value = config[section][key]
            if value is None and ((section, key) in NULLABLE or default is None):
                continue
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{section}.{key} must be true or false, got {value!r}")
            elif isinstance(default, (int, float)):
                try:  # YAML reads 1e-3 (no dot) as a string; float() takes it, as torch would
                    number = float(value) if not isinstance(value, bool) else None
                except (TypeError, ValueError):
                    number = None
                if number is None:
                    raise ValueError(f"{section}.{key} must be a number, got {value!r}")
                if isinstance(default, int) and not number.is_integer():
                    raise ValueError(f"{section}.{key} must be an integer, got {value!r}")


def load_config(path: str, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    with open(path) as handle:
        user = yaml.safe_load(handle) or {}
    if not isinstance(user, dict):
        raise ValueError(
            f"{path}: a training config is a YAML mapping with sections {sorted(DEFAULTS)}"
        )
    return resolve_config(user, overrides)
