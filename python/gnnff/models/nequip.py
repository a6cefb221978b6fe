"""NequIP-style message-passing equivariant model (after Batzner et al., Nat. Commun. 2022).

Atoms carry equivariant features h_i (irreps: num_features x (l, p) for l <= l_max). Each of the
n_layers interaction blocks passes messages along edges ij (i = centre, j = neighbour):

    m_ij  = TP_uvu( Linear(h)_j , Y(r_ij) ; weights = MLP_R(Bessel(r) u(r)) * u(r) )
    a_i   = sum_j m_ij / sqrt(avg_num_neighbors)
    h_i  <- h_i + Gate( Linear(a_i) + SelfConnection(h_i (x) emb(t_i)) )     (residual if shapes match)

and the atomic energy is e_i = Linear(Linear(h_i) -> 1x0e). Information travels one cutoff per
block, so interaction_range = n_layers * r_max (LAMMPS needs that many ghost atoms).

Edge features exposed (gnnff/models/features.py): entry k is m_ij of block k, the per-edge
tensor-product message before aggregation (irreps = block k's TP output irreps).
"""

import math
from typing import Dict, List, Optional

import torch
from e3nn import o3

from gnnff import keys
from gnnff.models.base import EnergyModel
from gnnff.models.common import (
    PolynomialCutoff,
    RadialEmbedding,
    ScalarMLP,
    TypeEmbedding,
    allowed_irreps,
    scatter_sum,
    spherical_harmonics_irreps,
)
from gnnff.models.common.channel_layout import (
    common_mul,
    component_rows,
    component_rows_to_irreps,
    irrep_dims,
)
from gnnff.models.common.fused_tp import ShTensorProduct
from gnnff.models.common.gate import EquivariantGate
from gnnff.models.common.precision import ExactConstantsMixin
from gnnff.models.common.presets import resolve_preset
from gnnff.models.registry import register_model
from gnnff.models.wrapper import ForceModel

# type_embedding_dim stays small: the self-connection is a tensor product of h with the
# embedding, so its weights grow linearly with the embedding size (NequIP uses a one-hot).
PRESETS = {
    # tests and CPU demos: seconds per test on 2 cores
    "small": dict(
        l_max=1,
        n_layers=2,
        num_features=8,
        n_bessel=6,
        radial_hidden=16,
        type_embedding_dim=8,
        parity=False,
        polynomial_p=6,
        avg_num_neighbors=10.0,
    ),
    "medium": dict(
        l_max=2,
        n_layers=3,
        num_features=16,
        n_bessel=8,
        radial_hidden=32,
        type_embedding_dim=8,
        parity=True,
        polynomial_p=6,
        avg_num_neighbors=20.0,
    ),
    # close to the NequIP paper's default (5 interaction blocks, 32 features, l_max 2)
    "paper": dict(
        l_max=2,
        n_layers=5,
        num_features=32,
        n_bessel=8,
        radial_hidden=64,
        type_embedding_dim=8,
        parity=True,
        polynomial_p=6,
        avg_num_neighbors=30.0,
    ),
}


def _hidden_irreps(mul: int, l_max: int, parity: bool) -> o3.Irreps:
    return o3.Irreps([(mul, o3.Irrep(l, p)) for l, p in allowed_irreps(l_max, parity)])


def convolution_tp(
    irreps_in: o3.Irreps, sh_irreps: o3.Irreps, irreps_gate_in: o3.Irreps
) -> o3.TensorProduct:
    """The e3nn 'uvu' product h_j (x) Y(r_ij) with per-edge weights, one path per output irrep
    (sorted), every output the gate can take. InteractionBlock runs its fused copy
    (fused_tp.ShTensorProduct); this e3nn object is the reference that tests compare it with."""
    mid, instructions = [], []
    for i1, (mul, ir1) in enumerate(irreps_in):
        for i2, (_, ir2) in enumerate(sh_irreps):
            for ir_out in ir1 * ir2:
                if ir_out in irreps_gate_in:
                    instructions.append((i1, i2, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    irreps_mid, perm, _ = o3.Irreps(mid).sort()
    instructions = [(a, b, perm[c], m, t) for a, b, c, m, t in instructions]
    return o3.TensorProduct(
        irreps_in, sh_irreps, irreps_mid, instructions, shared_weights=False, internal_weights=False
    )


class InteractionBlock(torch.nn.Module):
    """One NequIP convolution + gated nonlinearity (see module doc)."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_hidden: o3.Irreps,
        sh_irreps: o3.Irreps,
        emb_irreps: o3.Irreps,
        n_bessel: int,
        radial_hidden: int,
        inv_sqrt_nn: float,
    ):
        super().__init__()
        # gate: scalars act through SiLU (even) / tanh (odd); l > 0 are multiplied by gates
        # only irreps that the convolution (irreps_in x Y) or the self-connection (irreps_in)
        # can produce: any other would stay identically zero
        reachable = {ir for _, a in irreps_in for _, b in sh_irreps for ir in a * b}
        reachable |= {ir for _, ir in irreps_in}
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0 and ir in reachable])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0 and ir in reachable])
        self.gate = EquivariantGate(scalars, gated)
        irreps_gate_in = self.gate.irreps_in
        self.linear_in = o3.Linear(irreps_in, irreps_in)
        # the e3nn product defines paths and normalisation; the fused copy computes it with the
        # harmonics contracted first (fused_tp.py), on channel-layout features
        tp = convolution_tp(irreps_in, sh_irreps, irreps_gate_in)
        irreps_mid = tp.irreps_out
        self.tp = ShTensorProduct(tp)
        self.mul = common_mul(irreps_in, "NequIP features")
        self.in_dims: List[int] = irrep_dims(irreps_in)
        self.message_dims: List[int] = irrep_dims(irreps_mid)
        self.radial = ScalarMLP(
            [n_bessel, radial_hidden, radial_hidden, tp.weight_numel], bias=False
        )
        self.linear_out = o3.Linear(irreps_mid, irreps_gate_in)
        self.self_connection = o3.FullyConnectedTensorProduct(irreps_in, emb_irreps, irreps_gate_in)
        self.irreps_in = irreps_in
        self.irreps_out = self.gate.irreps_out
        self.irreps_message = irreps_mid
        self.residual = irreps_in == self.irreps_out
        self.inv_sqrt_nn = inv_sqrt_nn

    def message(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        radial: torch.Tensor,
        u: torch.Tensor,
        neighbour: torch.Tensor,
    ) -> torch.Tensor:
        """Per-edge messages (E, D_message, mul) (channel_layout.component_rows layout)."""
        x, weights = self._operands(h, radial, u)
        return self.tp(x.index_select(0, neighbour), sh, weights)

    def _operands(self, h: torch.Tensor, radial: torch.Tensor, u: torch.Tensor):
        """The product's features (N, D, mul), laid out on the atoms (N rows) before any gather
        onto the edges (E rows), and its per-edge path weights (E, weight_numel)."""
        x = component_rows(self.linear_in(h), self.mul, self.in_dims)
        return x, self.radial.scaled(radial, u)

    def aggregate(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        radial: torch.Tensor,
        u: torch.Tensor,
        neighbour: torch.Tensor,
        centre: torch.Tensor,
    ) -> torch.Tensor:
        """The messages summed onto their centres (N, D_message, mul), without the per-edge
        messages when the product runs as gnnff's operator (fused_tp.ShTensorProduct.summed)."""
        x, weights = self._operands(h, radial, u)
        return self.tp.summed(x, neighbour, centre, h.shape[0], sh, weights)

    def update(
        self, h: torch.Tensor, message: torch.Tensor, centre: torch.Tensor, emb: torch.Tensor
    ) -> torch.Tensor:
        return self.update_summed(h, scatter_sum(message, centre, h.shape[0]), emb)

    def update_summed(
        self, h: torch.Tensor, summed: torch.Tensor, emb: torch.Tensor
    ) -> torch.Tensor:
        """update() from the messages already summed onto the atoms (aggregate())."""
        aggregated = component_rows_to_irreps(summed * self.inv_sqrt_nn, self.message_dims)
        new = self.gate(self.linear_out(aggregated) + self.self_connection(h, emb))
        if self.residual:
            return h + new
        return new


class NequIPEnergy(ExactConstantsMixin, EnergyModel):
    """The energy model: edge vectors and types -> keys.ATOMIC_ENERGY_RAW (see module doc)."""

    HEAD_MODULES = (
        "type_embedding",
        "readout_hidden",
        "readout",
    )  # fine-tuning: trained at the full learning rate

    def __init__(
        self,
        n_types: int,
        r_max: float,
        l_max: int,
        n_layers: int,
        num_features: int,
        n_bessel: int,
        radial_hidden: int,
        type_embedding_dim: int,
        parity: bool,
        polynomial_p: int,
        avg_num_neighbors: float,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"NequIP needs n_layers >= 1, got {n_layers}")
        self.type_embedding = TypeEmbedding(n_types, type_embedding_dim)
        emb_irreps = o3.Irreps(f"{type_embedding_dim}x0e")
        self.radial = RadialEmbedding(r_max, n_bessel, polynomial_p)
        self.cutoff = PolynomialCutoff(r_max, polynomial_p)
        sh_irreps = spherical_harmonics_irreps(l_max)
        self.sh = o3.SphericalHarmonics(sh_irreps, normalize=True, normalization="component")
        irreps = o3.Irreps(f"{num_features}x0e")
        self.embed_nodes = o3.Linear(emb_irreps, irreps)
        hidden = _hidden_irreps(num_features, l_max, parity)
        blocks = []
        for _ in range(n_layers):
            block = InteractionBlock(
                irreps,
                hidden,
                sh_irreps,
                emb_irreps,
                n_bessel,
                radial_hidden,
                1.0 / math.sqrt(avg_num_neighbors),
            )
            blocks.append(block)
            irreps = block.irreps_out
        self.blocks = torch.nn.ModuleList(blocks)
        self.readout_hidden = o3.Linear(irreps, o3.Irreps(f"{max(num_features // 2, 1)}x0e"))
        self.readout = o3.Linear(self.readout_hidden.irreps_out, o3.Irreps("1x0e"))
        # recorded as computed, (E, D, mul) "component_rows": no layout change per step
        self.declare_edge_features(
            [str(b.irreps_message) for b in blocks], ["component_rows"] * len(blocks)
        )
        self.keep_constants_exact()

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        edge_vectors = data[keys.EDGE_VECTORS]
        edge_index = data[keys.EDGE_INDEX]
        centre = edge_index[0]
        neighbour = edge_index[1]
        r = torch.linalg.norm(edge_vectors, dim=-1)
        u = self.cutoff(r).unsqueeze(-1)
        radial = self.radial(r)
        sh = self.sh(edge_vectors)
        emb = self.type_embedding(data[keys.ATOM_TYPE])
        h = self.embed_nodes(emb)
        for k, block in enumerate(self.blocks):
            if self.record_edge_features:  # the decorrelation loss reads the per-edge messages
                message = block.message(h, sh, radial, u, neighbour)
                data[self.edge_feature_keys[k]] = message
                h = block.update(h, message, centre, emb)
            else:
                h = block.update_summed(
                    h, block.aggregate(h, sh, radial, u, neighbour, centre), emb
                )
        data[keys.ATOMIC_ENERGY_RAW] = self.readout(self.readout_hidden(h)).squeeze(-1)
        return data


@register_model("nequip")
def nequip(
    type_names: List[str],
    r_max: float,
    preset: str = "small",
    l_max: Optional[int] = None,
    n_layers: Optional[int] = None,
    num_features: Optional[int] = None,
    n_bessel: Optional[int] = None,
    radial_hidden: Optional[int] = None,
    type_embedding_dim: Optional[int] = None,
    parity: Optional[bool] = None,
    polynomial_p: Optional[int] = None,
    avg_num_neighbors: Optional[float] = None,
) -> ForceModel:
    """NequIP ForceModel; options left as None take the value of ``preset`` (small|medium|paper)."""
    opts = resolve_preset(
        "nequip",
        PRESETS,
        preset,
        dict(
            l_max=l_max,
            n_layers=n_layers,
            num_features=num_features,
            n_bessel=n_bessel,
            radial_hidden=radial_hidden,
            type_embedding_dim=type_embedding_dim,
            parity=parity,
            polynomial_p=polynomial_p,
            avg_num_neighbors=avg_num_neighbors,
        ),
    )
    energy = NequIPEnergy(len(type_names), float(r_max), **opts)
    return ForceModel(
        energy,
        list(type_names),
        r_max=float(r_max),
        interaction_range=opts["n_layers"] * float(r_max),
        model_name="nequip",
    )
