"""Pluggable terms of the training loss.

A term is a ``LossTerm`` built by name from the ``loss:`` section of a training config, e.g.

    loss:
      energy: {weight: 1.0}
      forces: {weight: 100.0}
      decorrelation: {schedule: cosine, ...}

The trainer sums the weighted values of all terms, logs each term on its own (train and
validation), and calls ``on_step``/``on_epoch_end`` so that terms with schedules (the
decorrelation coefficient) can adapt. Builders register with ``@register_loss_term(name)``.
"""

import difflib
import inspect
from typing import Callable, Dict

import torch

_TERMS: Dict[str, Callable[..., "LossTerm"]] = {}


class LossTerm(torch.nn.Module):
    """One term of the loss. ``forward`` returns the *weighted* scalar that is added to the loss."""

    #: set True by terms that read per-layer edge features (gnnff.models.features)
    needs_edge_features: bool = False

    def forward(self, pred: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor], model: torch.nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def on_step(self, step: int, epoch: int, term_values: Dict[str, float]) -> None:
        """Called after each optimiser step with the unweighted values of all terms."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called at the end of each training epoch."""

    def batch_logs(self) -> Dict[str, float]:
        """Scalars measured on the last batch (e.g. each layer's correlation); the trainer
        averages them over the epoch and logs them for training and validation data."""
        return {}

    def epoch_logs(self) -> Dict[str, float]:
        """Scalars logged once per epoch (e.g. the scheduled coefficient lambda)."""
        return {}


def register_loss_term(name: str):
    def decorate(builder):
        if name in _TERMS:
            raise ValueError(f"loss term {name!r} is registered twice")
        _TERMS[name] = builder
        return builder

    return decorate


def available_loss_terms():
    _import_builtin_terms()
    return sorted(_TERMS)


def build_loss_term(name: str, **kwargs) -> LossTerm:
    _import_builtin_terms()
    if name not in _TERMS:
        close = difflib.get_close_matches(name, _TERMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown loss term {name!r}{hint}; available: {sorted(_TERMS)}")
    builder = _TERMS[name]
    params = inspect.signature(builder).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                close = difflib.get_close_matches(key, list(params), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"loss term {name!r} has no option {key!r}{hint}; options: {sorted(params)}")
    return builder(**kwargs)


def _import_builtin_terms():
    import importlib

    for module in ("losses", "decorrelation"):
        try:
            importlib.import_module(f"gnnff.training.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"gnnff.training.{module}":
                raise
