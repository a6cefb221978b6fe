"""Channel layout for equivariant features whose irreps all share one multiplicity.

e3nn stores ``mul x irrep`` blocks one after the other: ``[mul*d_0 | mul*d_1 | ...]``, each block
``(mul, d_k)`` flattened. When every block has the same ``mul`` (Allegro's edge features, NequIP's
atom features), the same numbers fit one tensor ``(batch, mul, D)`` with ``D = sum_k d_k`` (the channel layout:
channel u of every irrep in one row), or ``(mul, D, batch)`` (channel-major: the batch of edges
innermost, which is what CPU vector units and GEMMs want for Allegro's per-edge products). The
fused tensor products (``fused_tp.py``) work in these layouts, so a whole product is a few large
matrix products instead of one small kernel per irrep pair.

``ChannelLinear`` is e3nn's ``o3.Linear(irreps, irreps)`` (channel mixing within each irrep) in
channel-major layout, with the same parameter names and shapes (old checkpoints load unchanged).
"""

from typing import List

import torch
from e3nn import o3


def common_mul(irreps: o3.Irreps, what: str) -> int:
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1:
        raise ValueError(f"{what} must have one multiplicity for every irrep, got {irreps}")
    return muls.pop()


def irrep_dims(irreps: o3.Irreps) -> List[int]:
    return [ir.dim for _, ir in irreps]


def to_channel_layout(x: torch.Tensor, mul: int, dims: List[int]) -> torch.Tensor:
    """e3nn layout (B, mul*D) -> channel layout (B, mul, D)."""
    if len(dims) == 1:
        return x.reshape(x.shape[0], mul, dims[0])
    parts: List[torch.Tensor] = []
    start = 0
    for d in dims:
        parts.append(x[:, start : start + mul * d].reshape(x.shape[0], mul, d))
        start += mul * d
    return torch.cat(parts, dim=2)


def to_irreps_layout(x: torch.Tensor, dims: List[int]) -> torch.Tensor:
    """Channel layout (B, mul, D) -> e3nn layout (B, mul*D)."""
    n, mul = x.shape[0], x.shape[1]
    if len(dims) == 1:
        return x.reshape(n, mul * dims[0])
    parts: List[torch.Tensor] = []
    start = 0
    for d in dims:
        parts.append(x[:, :, start : start + d].reshape(n, mul * d))
        start += d
    return torch.cat(parts, dim=1)


def component_rows(x: torch.Tensor, mul: int, dims: List[int]) -> torch.Tensor:
    """e3nn layout (B, mul*D) -> (B, D, mul): channels innermost (NequIP's per-edge product)."""
    return to_channel_layout(x, mul, dims).transpose(1, 2).contiguous()


def component_rows_to_irreps(x: torch.Tensor, dims: List[int]) -> torch.Tensor:
    """(B, D, mul) -> e3nn layout (B, mul*D)."""
    return to_irreps_layout(x.transpose(1, 2), dims)


def channel_major(x: torch.Tensor, mul: int, dims: List[int]) -> torch.Tensor:
    """e3nn layout (B, mul*D) -> channel-major layout (mul, D, B): the batch (edges) innermost, so
    that elementwise products over edges vectorise and per-channel contractions are GEMMs."""
    return to_channel_layout(x, mul, dims).permute(1, 2, 0)


def channel_major_to_irreps(x: torch.Tensor, dims: List[int]) -> torch.Tensor:
    """Channel-major layout (mul, D, B) -> e3nn layout (B, mul*D)."""
    return to_irreps_layout(x.permute(2, 0, 1), dims)


class ChannelLinear(torch.nn.Module):
    """``o3.Linear(irreps, irreps)`` on channel-major tensors (mul, D, B):
    out[v, k, :] = sum_u W_l(k)[u, v] x[u, k, :]."""

    def __init__(self, linear: o3.Linear):
        super().__init__()
        irreps = linear.irreps_in
        if linear.irreps_out != irreps or len({ir for _, ir in irreps}) != len(irreps):
            raise ValueError(
                f"ChannelLinear needs irreps_in == irreps_out with distinct irreps, got {irreps}"
            )
        self.mul = common_mul(irreps, "ChannelLinear irreps")
        if any(ins.i_in != ins.i_out for ins in linear.instructions) or len(
            linear.instructions
        ) != len(irreps):
            raise ValueError("ChannelLinear supports only the one-path-per-irrep e3nn Linear")
        self.weight = torch.nn.Parameter(linear.weight.detach().clone())
        self.bias = torch.nn.Parameter(
            linear.bias.detach().clone()
        )  # empty: e3nn adds no bias here
        self.register_buffer("output_mask", linear.output_mask.clone())
        # weight block and e3nn's 1/sqrt(fan_in) of every component k
        block_of_component: List[int] = []
        scale_of_component: List[float] = []
        for k, ins in enumerate(linear.instructions):
            block_of_component += [k] * irreps[ins.i_out].ir.dim
            scale_of_component += [float(ins.path_weight)] * irreps[ins.i_out].ir.dim
        self.register_buffer(
            "block_of_component", torch.tensor(block_of_component), persistent=False
        )
        self._scales = scale_of_component
        self.register_buffer(
            "scale", torch.tensor(scale_of_component).view(-1, 1, 1), persistent=False
        )

    def _apply(self, fn, recurse=True):
        # rebuilt from the Python floats: .double() must not widen a float32-rounded 1/sqrt(mul)
        result = super()._apply(fn, recurse)
        buf = self.scale
        self.scale = (
            torch.tensor(self._scales, dtype=torch.float64).view(-1, 1, 1).to(buf.device, buf.dtype)
        )
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one batched GEMM over components k: (D, v, u) @ (D, u, E); no slices (whose backward
        # would zero-fill a full-size gradient per irrep block)
        w = self.weight.view(-1, self.mul, self.mul).index_select(0, self.block_of_component)
        out = torch.bmm((w * self.scale).transpose(1, 2), x.transpose(0, 1))
        return out.transpose(0, 1)
