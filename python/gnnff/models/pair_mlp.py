"""pair_mlp: a small, strictly local, invariant energy model (the fast model for tests and demos).

For every directed edge i->j with r = |r_ij| < r_max:

    b_k(r)  = sqrt(2/r_max) sin(k pi r / r_max) / r,   k = 1..num_basis     (Bessel basis)
    f_c(r)  = polynomial envelope (DimeNet, p = cutoff_p), 1 at r=0, 0 with p derivatives at r_max
    h_0     = [b(r) f_c(r), e[t_i], e[t_j]]                e = type_embedding (per-type rows)
    h_l     = SiLU(W_l h_{l-1})                             l = 1..num_layers (edge features)
    eps_ij  = f_c(r) w . h_L                                edge energy
    E_i     = 1/2 sum_j eps_ij  (+ angular term below)

Optional angular invariants (``angular=True``), in the spirit of moment-tensor descriptors:
with c_ij = f_c(r) U h_L (num_channels radial weights) and unit vector u_ij,

    A0_i = sum_j c_ij,  A1_i = sum_j c_ij u_ij,  A2_i = sum_j c_ij (u_ij u_ij^T - I/3)
    E_i += MLP([A0_i, |A1_i|^2, |A2_i|_F^2, e[t_i]])  - MLP([0, 0, 0, e[t_i]])

|A1|^2 = sum_jk c_ij c_ik cos(theta_jik) and |A2|^2 = sum_jk c_ij c_ik (cos^2 - 1/3): three-body
invariants at the cost of a pair model. The subtraction makes an isolated atom's raw energy zero,
so that the per-type shift fitted by the trainer is the isolated-atom reference. Everything is
multiplied by f_c, so energies and forces are smooth at r_max. interaction_range = r_max.

Edge-feature interface: the hidden edge activations h_1..h_L, each ``"{hidden}x0e"``.
Units: Å in, eV out (before the per-type scale/shift applied by ForceModel).
"""

from typing import Dict, List, Optional

import torch

from gnnff import keys, ops
from gnnff.models.base import EnergyModel, seeded_generator
from gnnff.models.common.init import embedding, linear
from gnnff.models.common.radial import BesselBasis, PolynomialCutoff
from gnnff.models.registry import register_model
from gnnff.models.wrapper import ForceModel


class PairMLPEnergy(EnergyModel):
    HEAD_MODULES = ("type_embedding", "edge_energy", "atom_mlp")
    # gnnff's compiled moment sums on CPU tensors (a TorchScript constant: the other branch is
    # dropped when the model is scripted)
    use_kernel: torch.jit.Final[bool]

    def __init__(
        self,
        n_types: int,
        r_max: float,
        num_basis: int = 8,
        hidden: int = 32,
        num_layers: int = 2,
        embed_dim: int = 8,
        angular: bool = True,
        num_channels: int = 8,
        cutoff_p: int = 6,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"pair_mlp needs num_layers >= 1, got {num_layers}")
        # fixed wavenumbers k pi / r_max (1/Å) in float64: the arithmetic pair_mlp always had
        self.basis = BesselBasis(r_max, num_basis, trainable=False)
        self.cutoff = PolynomialCutoff(r_max, cutoff_p)
        # weights drawn from ``generator`` in this order (the order seeds have always meant)
        self.type_embedding = embedding(n_types, embed_dim, generator)
        layers = []
        width = num_basis + 2 * embed_dim
        for _ in range(num_layers):
            layers.append(linear(width, hidden, True, generator))
            width = hidden
        self.edge_layers = torch.nn.ModuleList(layers)
        self.edge_energy = linear(hidden, 1, False, generator)
        self.angular = bool(angular)
        self.num_channels = int(num_channels) if angular else 0
        self.channel_weights = linear(hidden, max(self.num_channels, 1), False, generator)
        self.atom_mlp = torch.nn.Sequential(
            linear(3 * max(self.num_channels, 1) + embed_dim, hidden, True, generator),
            torch.nn.SiLU(),
            linear(hidden, 1, True, generator),
        )
        self.declare_edge_features([f"{hidden}x0e" for _ in range(num_layers)])
        self.use_kernel = ops.kernels_enabled()
        # the moments' 13 columns share one weight per channel (block 0 of 1; see _angular_energy)
        self.register_buffer("moment_block", torch.zeros(13, dtype=torch.long), persistent=False)

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        vec = data[keys.EDGE_VECTORS]
        types = data[keys.ATOM_TYPE]
        edge_index = data[keys.EDGE_INDEX]
        centre = edge_index[0]
        num_atoms = types.shape[0]
        r = torch.linalg.norm(vec, dim=-1)
        fc = self.cutoff(r)
        emb = self.type_embedding.weight.to(vec.dtype)
        h = torch.cat(
            [self.basis(r) * fc.unsqueeze(-1), emb[types[centre]], emb[types[edge_index[1]]]],
            dim=-1,
        )
        for i, layer in enumerate(self.edge_layers):
            h = torch.nn.functional.silu(layer(h))
            if self.record_edge_features:
                data[self.edge_feature_keys[i]] = h
        if self.angular:
            # both heads in one matrix product: (E, 32) x (32, 1 + C) instead of two thin ones,
            # whose backward products ((E, 1) x (1, 32) above all) run far below the CPU's speed
            heads = torch.nn.functional.linear(
                h, torch.cat([self.edge_energy.weight, self.channel_weights.weight])
            )
            energy_head, channel_head = heads.split([1, self.num_channels], dim=1)
        else:  # channel_head unused below; TorchScript needs it bound on both branches
            energy_head, channel_head = self.edge_energy(h), h
        edge_energy = 0.5 * fc * energy_head.squeeze(-1)
        atomic = torch.zeros(num_atoms, dtype=vec.dtype, device=vec.device).index_add(
            0, centre, edge_energy
        )
        if self.angular:
            c = fc.unsqueeze(-1) * channel_head  # (E, C)
            atomic = atomic + self._angular_energy(vec, r, c, centre, emb[types])
        data[keys.ATOMIC_ENERGY_RAW] = atomic
        return data

    def _angular_energy(self, vec, r, c, centre, centre_emb):
        num_atoms = centre_emb.shape[0]
        u = vec / r.unsqueeze(-1)
        eye = torch.eye(3, dtype=vec.dtype, device=vec.device)
        uu = u.unsqueeze(-1) * u.unsqueeze(-2) - eye / 3.0  # (E, 3, 3), traceless
        n_c = c.shape[1]
        if self.use_kernel and vec.device.type == "cpu":
            # all three moments in one pass over the edges (cpp/src/ops/edge_moments.cpp): the
            # form below materialises (E, C, 3) and (E, C, 9) products and gathers their
            # gradients back per edge
            q = torch.cat([torch.ones_like(r).unsqueeze(-1), u, uu.reshape(-1, 9)], dim=-1)
            m = torch.ops.gnnff.outer_index_add(
                c.unsqueeze(-1), q, self.moment_block, centre, num_atoms
            )  # (N, C, 13)
            # split, not slices: a slice's backward zero-fills a full-size gradient per slice
            a0, a1, a2 = m.split([1, 3, 9], dim=-1)
            a1 = (a1 * a1).sum(-1)
            a2 = (a2 * a2).sum(-1)
            desc = torch.cat([a0.squeeze(-1), a1, a2, centre_emb], dim=-1)
        else:
            desc = self._moment_invariants(c, u, uu, centre, centre_emb)
        isolated = torch.cat(
            [torch.zeros(num_atoms, 3 * n_c, dtype=vec.dtype, device=vec.device), centre_emb],
            dim=-1,
        )
        return (self.atom_mlp(desc) - self.atom_mlp(isolated)).squeeze(-1)

    def _moment_invariants(self, c, u, uu, centre, centre_emb):
        """[A0, |A1|^2, |A2|_F^2, e[t_i]] per atom in plain torch (the reference form)."""
        num_atoms, n_c = centre_emb.shape[0], c.shape[1]
        a0 = torch.zeros(num_atoms, n_c, dtype=c.dtype, device=c.device).index_add(0, centre, c)
        a1 = torch.zeros(num_atoms, n_c, 3, dtype=c.dtype, device=c.device)
        a1 = a1.index_add(0, centre, c.unsqueeze(-1) * u.unsqueeze(1))
        a2 = torch.zeros(num_atoms, n_c, 9, dtype=c.dtype, device=c.device)
        a2 = a2.index_add(0, centre, c.unsqueeze(-1) * uu.reshape(-1, 1, 9))
        return torch.cat([a0, (a1 * a1).sum(-1), (a2 * a2).sum(-1), centre_emb], dim=-1)


@register_model("pair_mlp")
def pair_mlp(
    type_names: List[str],
    r_max: float = 4.0,
    num_basis: int = 8,
    hidden: int = 32,
    num_layers: int = 2,
    embed_dim: int = 8,
    angular: bool = True,
    num_channels: int = 8,
    cutoff_p: int = 6,
    seed: int = 0,
) -> ForceModel:
    """Build pair_mlp (float32 weights; the trainer casts to the configured dtype).

    ``seed`` makes the initial weights reproducible independently of the global RNG.
    """
    if not r_max > 0:
        raise ValueError(f"r_max must be positive (Å), got {r_max}")
    energy = PairMLPEnergy(
        len(type_names),
        r_max,
        num_basis,
        hidden,
        num_layers,
        embed_dim,
        angular,
        num_channels,
        cutoff_p,
        generator=seeded_generator(seed),
    )
    return ForceModel(
        energy, list(type_names), r_max=r_max, interaction_range=r_max, model_name="pair_mlp"
    )
