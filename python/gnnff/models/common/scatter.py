"""Sum edge values onto atoms (torch only, TorchScript-compatible)."""

import torch


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """out[a] = sum of src[e] over edges e with index[e] == a; out has dim_size rows."""
    shape = [dim_size] + list(src.shape[1:])
    out = torch.zeros(shape, dtype=src.dtype, device=src.device)
    return out.index_add(0, index, src)
