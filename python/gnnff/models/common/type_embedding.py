"""Per-element embedding: the one place where a model keeps parameters indexed by atom type.

Fine-tuning (gnnff.training.finetune) remaps rows of every parameter whose name contains
``type_embedding`` when the element set changes, so models keep their per-type parameters here
and nowhere else (name the attribute ``type_embedding``).
"""

from typing import Optional

import torch


class TypeEmbedding(torch.nn.Module):
    """(N,) int64 atom types -> (N, dim) learned vectors; weight shape (n_types, dim)."""

    def __init__(self, n_types: int, dim: int, generator: Optional[torch.Generator] = None):
        super().__init__()
        if n_types < 1:
            raise ValueError(f"a model needs at least one atom type, got n_types={n_types}")
        self.n_types = n_types
        self.dim = dim
        self.weight = torch.nn.Parameter(torch.randn(n_types, dim, generator=generator))

    def forward(self, atom_type: torch.Tensor) -> torch.Tensor:
        return self.weight[atom_type]
