"""Layers of GemNet-T (Gasteiger et al. 2021), written for the gnnff edge convention.

Edge e = (a, c): centre a collects the message of neighbour c ("c -> a" in the paper).
All dense layers have no bias (as in GemNet), so a zero input stays zero: an isolated atom has a
raw energy of exactly zero and the per-type shift is its reference energy.
Sums over neighbours and products with the radial basis pass through ScaleFactor: GemNet's
variance-preserving "scaling factors", fitted on the first training batch (initial values
1/sqrt(avg_num_neighbors) for sums, 1 for products); buffers, so fine-tuning copies them.
"""

import math
from typing import List, Optional

import torch

from gnnff.models.common.init import linear
from gnnff.models.common.scatter import scatter_sum
from gnnff.models.gemnet.graph_ops import gather_rows, gather_rows_or_zero


def he_orthogonal_(
    weight: torch.Tensor, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """GemNet's "HeOrthogonal" init: orthogonal rows, standardised, variance 1/fan_in."""
    with torch.no_grad():
        torch.nn.init.orthogonal_(weight, generator=generator)
        fan_in = weight.shape[-1]
        if fan_in > 1:
            mean = weight.mean(dim=-1, keepdim=True)
            var = weight.var(dim=-1, keepdim=True)
            weight.copy_((weight - mean) / torch.sqrt(var + 1e-6))
        weight.mul_(1.0 / math.sqrt(fan_in))
    return weight


class ScaleFactor(torch.nn.Module):
    """x * scale, with scale fitted once so that std(x * scale) = std(ref) (GemNet's scaling factors).

    GemNet fits these factors on data before training. Here each factor fits itself on the first
    forward pass in training mode (the first training batch), in forward order, so later factors
    see already-scaled inputs; ``fitted`` is a buffer, so checkpoints, fine-tuned and exported
    models keep the fitted values and never refit. Until then ``scale`` holds its initial value.
    """

    def __init__(self, initial: float):
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(initial)))
        self.register_buffer("fitted", torch.tensor(False))

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.fitted) and x.numel() > 1 and ref.numel() > 1:
            with torch.no_grad():
                x_std = x.detach().std()
                ref_std = ref.detach().std()
                if bool(x_std > 0) and bool(torch.isfinite(ref_std / x_std)):
                    self.scale.fill_((ref_std / x_std).item())
                    self.fitted.fill_(True)
        return x * self.scale.to(x.dtype)


class Dense(torch.nn.Module):
    """Linear map without bias, optionally followed by scaled SiLU (silu(x) / 0.6, GemNet)."""

    def __init__(
        self, n_in: int, n_out: int, activation: bool, generator: Optional[torch.Generator] = None
    ):
        super().__init__()
        # Linear's own init is drawn first and then overwritten: kept so that a seed gives the
        # weights it gave before initial weights came from a generator
        self.linear = linear(n_in, n_out, False, generator)
        he_orthogonal_(self.linear.weight, generator)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        if self.activation:
            x = torch.nn.functional.silu(x) * (1.0 / 0.6)
        return x


class ResidualLayer(torch.nn.Module):
    def __init__(self, size: int, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.dense_1 = Dense(size, size, True, generator)
        self.dense_2 = Dense(size, size, True, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (
            x + self.dense_2(self.dense_1(x))
        ) * 0.7071067811865476  # 1/sqrt(2): keeps the variance of a sum of two


class EdgeEmbedding(torch.nn.Module):
    """m_ac = Dense([h_a, h_c, x_ac]): edge features from both atoms and an edge input."""

    def __init__(
        self,
        emb_size_atom: int,
        edge_in: int,
        emb_size_edge: int,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        self.dense = Dense(2 * emb_size_atom + edge_in, emb_size_edge, True, generator)

    def forward(
        self, h: torch.Tensor, x: torch.Tensor, centre: torch.Tensor, neighbour: torch.Tensor
    ) -> torch.Tensor:
        return self.dense(torch.cat([gather_rows(h, centre), gather_rows(h, neighbour), x], dim=-1))


class AtomUpdate(torch.nn.Module):
    """h_a <- MLP(sum_c m_ac * W rbf(d_ac)): edges to atoms; the rbf factor vanishes at r_max."""

    def __init__(
        self,
        emb_size_atom: int,
        emb_size_edge: int,
        emb_size_rbf: int,
        num_atom: int,
        neighbor_scale: float,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        self.dense_rbf = Dense(emb_size_rbf, emb_size_edge, False, generator)
        self.first = Dense(emb_size_edge, emb_size_atom, True, generator)
        self.residuals = torch.nn.ModuleList(
            [ResidualLayer(emb_size_atom, generator) for _ in range(num_atom)]
        )
        self.scale_sum = ScaleFactor(neighbor_scale)

    def forward(
        self, m: torch.Tensor, rbf: torch.Tensor, centre: torch.Tensor, num_atoms: int
    ) -> torch.Tensor:
        x = self.scale_sum(scatter_sum(m * self.dense_rbf(rbf), centre, num_atoms), m)
        x = self.first(x)
        for layer in self.residuals:
            x = layer(x)
        return x


class OutputBlock(torch.nn.Module):
    """Per-atom energy contribution of one block: AtomUpdate-shaped MLP then a linear readout."""

    def __init__(
        self,
        emb_size_atom: int,
        emb_size_edge: int,
        emb_size_rbf: int,
        num_atom: int,
        neighbor_scale: float,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        self.atom_mlp = AtomUpdate(
            emb_size_atom, emb_size_edge, emb_size_rbf, num_atom, neighbor_scale, generator
        )
        self.out_energy = Dense(emb_size_atom, 1, False, generator)

    def forward(
        self, m: torch.Tensor, rbf: torch.Tensor, centre: torch.Tensor, num_atoms: int
    ) -> torch.Tensor:
        return self.out_energy(self.atom_mlp(m, rbf, centre, num_atoms)).squeeze(-1)


class TripletInteraction(torch.nn.Module):
    """Message of edge (a, c) from all edges (a, b), b != c, weighted by the circular basis.

    x_ab = Down(Dense(m_ab) * W rbf(d_ab))                              (E, emb_trip)
    z_ac,l = sum_b Y_l(angle cab) x_ab    (padded partners, one bmm)      (E, L, emb_trip)
    x_ac = Bilinear(sum_l R_l(d_ac) z_ac,l),  R = rbf(d_ac) @ W_cbf       (E, emb_bil)
    output = (Up_ca(x_ac) + Up_ac(x_ca)) / sqrt 2  (the reverse edge's message, GemNet's swap)
    """

    def __init__(
        self,
        emb_size_edge: int,
        emb_size_trip: int,
        emb_size_bil: int,
        emb_size_rbf: int,
        emb_size_cbf: int,
        neighbor_scale: float,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        self.dense_ba = Dense(emb_size_edge, emb_size_edge, True, generator)
        self.mlp_rbf = Dense(emb_size_rbf, emb_size_edge, False, generator)
        self.down_projection = Dense(emb_size_edge, emb_size_trip, True, generator)
        self.bilinear = Dense(emb_size_cbf * emb_size_trip, emb_size_bil, False, generator)
        self.up_projection_ca = Dense(emb_size_bil, emb_size_edge, True, generator)
        self.up_projection_ac = Dense(emb_size_bil, emb_size_edge, True, generator)
        self.scale_rbf = ScaleFactor(1.0)
        self.scale_sum = ScaleFactor(neighbor_scale)

    def forward(
        self,
        m: torch.Tensor,
        rbf3: torch.Tensor,
        cbf_radial: torch.Tensor,
        sph: torch.Tensor,
        partner: torch.Tensor,
        id_swap: torch.Tensor,
    ) -> torch.Tensor:
        num_edges = m.shape[0]
        x_ba = self.dense_ba(m)
        x_ba = self.down_projection(self.scale_rbf(x_ba * self.mlp_rbf(rbf3), x_ba))  # (E, trip)
        # sph (E, L, K) is zero for padding and e itself: the triplet sum is one batched product
        z = torch.bmm(sph, gather_rows(x_ba, partner))  # (E, L, K) @ (E, K, trip) -> (E, L, trip)
        x = torch.bmm(cbf_radial, z)  # (E, cbf, L) @ (E, L, trip) -> (E, cbf, trip)
        x = self.scale_sum(self.bilinear(x.reshape(num_edges, x.shape[1] * x.shape[2])), x_ba)
        x_ca = self.up_projection_ca(x)
        x_ac = gather_rows_or_zero(self.up_projection_ac(x), id_swap)
        return (x_ca + x_ac) * 0.7071067811865476  # 1/sqrt(2): keeps the variance of a sum of two


class InteractionBlock(torch.nn.Module):
    """One GemNet-T interaction: triplet message, edge residuals, atom update, edge re-embedding."""

    def __init__(
        self,
        emb_size_atom: int,
        emb_size_edge: int,
        emb_size_trip: int,
        emb_size_rbf: int,
        emb_size_cbf: int,
        emb_size_bil_trip: int,
        num_before_skip: int,
        num_after_skip: int,
        num_concat: int,
        num_atom: int,
        neighbor_scale: float,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        self.dense_ca = Dense(emb_size_edge, emb_size_edge, True, generator)
        self.trip_interaction = TripletInteraction(
            emb_size_edge,
            emb_size_trip,
            emb_size_bil_trip,
            emb_size_rbf,
            emb_size_cbf,
            neighbor_scale,
            generator,
        )
        self.layers_before_skip = torch.nn.ModuleList(
            [ResidualLayer(emb_size_edge, generator) for _ in range(num_before_skip)]
        )
        self.layers_after_skip = torch.nn.ModuleList(
            [ResidualLayer(emb_size_edge, generator) for _ in range(num_after_skip)]
        )
        self.atom_update = AtomUpdate(
            emb_size_atom, emb_size_edge, emb_size_rbf, num_atom, neighbor_scale, generator
        )
        self.concat_layer = EdgeEmbedding(emb_size_atom, emb_size_edge, emb_size_edge, generator)
        self.residual_m = torch.nn.ModuleList(
            [ResidualLayer(emb_size_edge, generator) for _ in range(num_concat)]
        )

    def forward(
        self,
        h: torch.Tensor,
        m: torch.Tensor,
        rbf3: torch.Tensor,
        cbf_radial: torch.Tensor,
        sph: torch.Tensor,
        rbf_h: torch.Tensor,
        partner: torch.Tensor,
        id_swap: torch.Tensor,
        centre: torch.Tensor,
        neighbour: torch.Tensor,
    ) -> List[torch.Tensor]:
        x = self.dense_ca(m) + self.trip_interaction(m, rbf3, cbf_radial, sph, partner, id_swap)
        x = x * 0.7071067811865476  # 1/sqrt(2): keeps the variance of a sum of two
        for layer in self.layers_before_skip:
            x = layer(x)
        m = (m + x) * 0.7071067811865476  # 1/sqrt(2): keeps the variance of a sum of two
        for layer in self.layers_after_skip:
            m = layer(m)
        h = (
            h + self.atom_update(m, rbf_h, centre, h.shape[0])
        ) * 0.7071067811865476  # 1/sqrt(2): keeps the variance of a sum of two
        m2 = self.concat_layer(h, m, centre, neighbour)
        for layer in self.residual_m:
            m2 = layer(m2)
        m = (m + m2) * 0.7071067811865476  # 1/sqrt(2): keeps the variance of a sum of two
        return [h, m]
