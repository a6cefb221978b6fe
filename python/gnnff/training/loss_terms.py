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

from typing import Dict

import torch

from gnnff.registry import Registry

_TERMS = Registry("loss term", [f"gnnff.training.{m}" for m in ("losses", "decorrelation")])


class LossTerm(torch.nn.Module):
    """One term of the loss. ``forward`` returns the *weighted* scalar that is added to the loss."""

    #: set True by terms that read per-layer edge features (gnnff.models.features)
    needs_edge_features: bool = False

    def forward(
        self, pred: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor], model: torch.nn.Module
    ) -> torch.Tensor:
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
    """Decorator: make a builder available as ``loss: {NAME: {...}}`` in configs."""
    return _TERMS.register(name)


def available_loss_terms():
    return _TERMS.names()


def build_loss_term(name: str, **kwargs) -> LossTerm:
    return _TERMS.build(name, **kwargs)
