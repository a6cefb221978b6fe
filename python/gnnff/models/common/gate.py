"""Gated nonlinearity for equivariant features (Weiler et al. 2018, as in NequIP), scriptable.

Input layout (e3nn irreps): [scalars | gates (one 0e per gated irrep) | gated (l > 0)].
Even scalars go through SiLU, odd scalars through tanh (odd, so parity is kept), both scaled to
unit second moment like e3nn's ``normalize2mom``; each gated irrep (2l+1 components) is
multiplied by sigmoid(its gate). e3nn.nn.Gate does the same but does not compile with plain
``torch.jit.script`` (which ``gnnff export`` uses), hence this module.
"""

from typing import List

import torch
from e3nn import o3
from e3nn.math import normalize2mom


class EquivariantGate(torch.nn.Module):
    def __init__(self, irreps_scalars: o3.Irreps, irreps_gated: o3.Irreps):
        super().__init__()
        irreps_scalars = o3.Irreps(irreps_scalars)
        irreps_gated = o3.Irreps(irreps_gated)
        if any(ir.l != 0 for _, ir in irreps_scalars):
            raise ValueError(f"gate scalars must be l = 0, got {irreps_scalars}")
        if any(ir.l == 0 for _, ir in irreps_gated):
            raise ValueError(f"gated irreps must have l > 0, got {irreps_gated}")
        self.n_scalars = irreps_scalars.dim
        self.n_gates = irreps_gated.num_irreps
        irreps_gates = o3.Irreps(f"{self.n_gates}x0e") if self.n_gates else o3.Irreps("")
        self.irreps_in = irreps_scalars + irreps_gates + irreps_gated
        self.irreps_out = irreps_scalars + irreps_gated
        # [start, stop, is_odd] per scalar block
        self.scalar_blocks: List[List[int]] = []
        start = 0
        for mul, ir in irreps_scalars:
            self.scalar_blocks.append([start, start + mul, int(ir.p == -1)])
            start += mul
        # [mul, 2l+1] per gated block
        self.gated_blocks: List[List[int]] = [[mul, ir.dim] for mul, ir in irreps_gated]
        self.silu_scale = float(normalize2mom(torch.nn.functional.silu).cst)
        self.tanh_scale = float(normalize2mom(torch.tanh).cst)
        self.sigmoid_scale = float(normalize2mom(torch.sigmoid).cst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts: List[torch.Tensor] = []
        for block in self.scalar_blocks:
            s = x[:, block[0] : block[1]]
            if block[2] == 1:
                parts.append(self.tanh_scale * torch.tanh(s))
            else:
                parts.append(self.silu_scale * torch.nn.functional.silu(s))
        gates = self.sigmoid_scale * torch.sigmoid(
            x[:, self.n_scalars : self.n_scalars + self.n_gates]
        )
        offset = self.n_scalars + self.n_gates
        gate_offset = 0
        for block in self.gated_blocks:
            mul, dim = block[0], block[1]
            v = x[:, offset : offset + mul * dim].reshape(-1, mul, dim)
            g = gates[:, gate_offset : gate_offset + mul].unsqueeze(-1)
            parts.append((v * g).reshape(-1, mul * dim))
            offset += mul * dim
            gate_offset += mul
        return torch.cat(parts, dim=1)
