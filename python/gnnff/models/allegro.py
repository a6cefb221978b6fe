"""Allegro-style strictly local equivariant model (after Musaelian et al., Nat. Commun. 2023).

Every quantity lives on a directed edge ij (i = centre). There is no message passing between
atoms: the energy of atom i depends only on atoms within r_max of i, so LAMMPS needs one ghost
shell of r_max and the model scales over MPI (interaction_range = r_max).

Per edge, with r = |r_ij|, Y = spherical harmonics of r_ij / r (l <= l_max), u(r) the envelope:
    x_0   = MLP_2body([emb(t_i), emb(t_j), Bessel(r) u(r)]) * u(r)        scalar latent
    V_0   = w_0(x_0) * Y                                                  (channels x Y irreps)
layer k = 0 .. n_layers-1:
    Gamma_i = sum_{m in N(i)} w_k(x_m) * Y_m / sqrt(avg_num_neighbors)    environment of centre i
              w_k(x_m) = W_k x_m + b_k u(r_im): every share vanishes at r_max (env_bias
              "cutoff"; "constant", W_k x_m + b_k, is the non-smooth form of old checkpoints)
    T       = V_k (x) Gamma_i                                             channel-wise ('uuu') TP
    x_{k+1} = (x_k + MLP_k([x_k, scalars(T)]) * u(r)) / sqrt(2)           latent update
              (scalar_track "dense": x_{k+1} = MLP_k([x_0, ..., x_k, scalars(T)]) * u(r),
              variance-preserving MLP initialisation)
    V_{k+1} = Linear_k(T)                                                 (not built after last)
    E_ij    = MLP_out(x_n) * u(r);   e_i = sum_j E_ij / avg_num_neighbors
              (scalar_track "dense": MLP_out([x_0, ..., x_n]), as nequip-allegro 0.8)

Edge features exposed (gnnff/models/features.py): entry k < n_layers is [x_k, V_k] (the scalar
latent and the equivariant features entering layer k, k = 0 being the two-body embedding);
entry n_layers is x_n, the latent read out into edge energies.
"""

import math
from typing import Dict, List, Optional

import torch
from e3nn import o3

from gnnff import keys, ops
from gnnff.models.base import CHANNEL_MAJOR_SUFFIX, EnergyModel
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
    ChannelLinear,
    irrep_dims,
)
from gnnff.models.common.fused_tp import ChannelwiseTensorProduct
from gnnff.models.common.precision import ExactConstantsMixin
from gnnff.models.common.presets import resolve_preset
from gnnff.models.registry import register_model
from gnnff.models.wrapper import ForceModel

PRESETS = {
    # tests and CPU demos: seconds per test on 2 cores
    "small": dict(
        l_max=1,
        n_layers=1,
        num_channels=4,
        latent_dim=16,
        n_bessel=6,
        mlp_hidden=16,
        type_embedding_dim=8,
        parity=False,
        polynomial_p=6,
        avg_num_neighbors=10.0,
        scalar_track="residual",
        env_bias="cutoff",
    ),
    "medium": dict(
        l_max=2,
        n_layers=2,
        num_channels=16,
        latent_dim=64,
        n_bessel=8,
        mlp_hidden=64,
        type_embedding_dim=16,
        parity=True,
        polynomial_p=6,
        avg_num_neighbors=20.0,
        scalar_track="residual",
        env_bias="cutoff",
    ),
    # close to the Allegro paper's small-molecule / materials settings (2 layers, l_max 2)
    "paper": dict(
        l_max=2,
        n_layers=2,
        num_channels=32,
        latent_dim=256,
        n_bessel=8,
        mlp_hidden=128,
        type_embedding_dim=32,
        parity=True,
        polynomial_p=6,
        avg_num_neighbors=30.0,
        scalar_track="residual",
        env_bias="cutoff",
    ),
}


def _channelwise_tp(
    irreps_in: o3.Irreps, irreps_env: o3.Irreps, targets, mul: int
) -> o3.TensorProduct:
    """'uuu' tensor product (channel c of V with channel c of Gamma) into the ``targets`` irreps."""
    out_list = [(mul, o3.Irrep(l, p)) for l, p in targets]
    irreps_out = o3.Irreps(out_list)
    instructions = []
    for i1, (_, ir1) in enumerate(irreps_in):
        for i2, (_, ir2) in enumerate(irreps_env):
            for i_out, (_, ir_out) in enumerate(irreps_out):
                if ir_out in ir1 * ir2:
                    instructions.append((i1, i2, i_out, "uuu", True))
    used = sorted({ins[2] for ins in instructions})
    # keep only outputs some path reaches; renumber instructions accordingly
    remap = {old: new for new, old in enumerate(used)}
    irreps_out = o3.Irreps([out_list[k] for k in used])
    instructions = [(a, b, remap[c], m, t) for a, b, c, m, t in instructions]
    return o3.TensorProduct(irreps_in, irreps_env, irreps_out, instructions)


class AllegroLayer(torch.nn.Module):
    def __init__(
        self,
        irreps_v: o3.Irreps,
        sh_irreps: o3.Irreps,
        latent_dim: int,
        mul: int,
        mlp_hidden: int,
        targets,
        last: bool,
        n_latents_in: int = 1,
        mlp_init: str = "torch",
    ):
        super().__init__()
        self.mul = mul
        self.n_sh = len(sh_irreps)
        self.env_weights = torch.nn.Linear(latent_dim, mul * self.n_sh)
        env_irreps = o3.Irreps([(mul, ir) for _, ir in sh_irreps])
        # the e3nn product defines the paths, normalisation and initial weights; the fused copy
        # computes it on channel-layout features (same parameter names: checkpoints load)
        self.tp = ChannelwiseTensorProduct(
            _channelwise_tp(irreps_v, env_irreps, [(0, 1)] if last else targets, mul)
        )
        self.v_dims: List[int] = irrep_dims(irreps_v)  # component dims of V entering this layer
        self.n_scalars = (
            self.tp.irreps_out[0].mul if self.tp.irreps_out[0].ir == o3.Irrep("0e") else 0
        )
        if self.n_scalars == 0:
            raise ValueError(
                "the Allegro tensor product produced no scalars; raise l_max or channels"
            )
        self.latent_mlp = ScalarMLP(
            [latent_dim * n_latents_in + self.n_scalars, mlp_hidden, latent_dim], init=mlp_init
        )
        if last:
            self.irreps_v_out = o3.Irreps("")
            self.linear = torch.nn.Identity()
        else:
            # only irreps the product can reach (an unreachable one would be identically zero)
            self.irreps_v_out = self.tp.irreps_out
            self.linear = ChannelLinear(o3.Linear(self.tp.irreps_out, self.irreps_v_out))


def weighted_sh(
    w: torch.Tensor, sh_t: torch.Tensor, sh_block: torch.Tensor, mul: int
) -> torch.Tensor:
    """Channel weights w (E, mul * n_l) times Y -> 'mul x Y' in channel-major layout (mul, D, E)
    (channel_layout.py); sh_t = Y transposed (D, E), sh_block[k] = the l-block of component k."""
    return w.t().reshape(mul, -1, w.shape[0]).index_select(1, sh_block) * sh_t


class AllegroEnergy(ExactConstantsMixin, EnergyModel):
    """The energy model: edge vectors and types -> keys.ATOMIC_ENERGY_RAW (see module doc)."""

    HEAD_MODULES = ("type_embedding", "readout")  # fine-tuning: trained at the full learning rate
    # gnnff's compiled environment sums on CPU tensors (a TorchScript constant: the other branch
    # is dropped when the model is scripted)
    use_kernel: torch.jit.Final[bool]

    def __init__(
        self,
        n_types: int,
        r_max: float,
        l_max: int,
        n_layers: int,
        num_channels: int,
        latent_dim: int,
        n_bessel: int,
        mlp_hidden: int,
        type_embedding_dim: int,
        parity: bool,
        polynomial_p: int,
        avg_num_neighbors: float,
        scalar_track: str = "residual",
        env_bias: str = "cutoff",
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"Allegro needs n_layers >= 1, got {n_layers}")
        if scalar_track not in ("residual", "dense"):
            raise ValueError(
                f"allegro scalar_track must be 'residual' or 'dense', got {scalar_track!r}"
            )
        if env_bias not in ("cutoff", "constant"):
            raise ValueError(f"allegro env_bias must be 'cutoff' or 'constant', got {env_bias!r}")
        if env_bias == "constant" and scalar_track == "dense":
            raise ValueError(
                "allegro env_bias 'constant' (the legacy, non-smooth form) exists only for the "
                "residual scalar track's old checkpoints; use env_bias: cutoff with scalar_track: dense"
            )
        # "cutoff": the environment weights' bias enters times u(r), so a neighbour's share of
        # Gamma_i vanishes at r_max; "constant" (checkpoints of version 1) puts a step into the
        # energy each time a neighbour crosses r_max (about 10 meV on a trained model; docs/models.md)
        self.env_bias_cutoff = env_bias == "cutoff"
        # dense: every latent MLP and the readout read all earlier latents and the MLPs start
        # variance-preserving (docs/models.md)
        self.dense = scalar_track == "dense"
        mlp_init = "variance_preserving" if self.dense else "torch"
        self.type_embedding = TypeEmbedding(n_types, type_embedding_dim)
        self.radial = RadialEmbedding(r_max, n_bessel, polynomial_p)
        self.cutoff = PolynomialCutoff(r_max, polynomial_p)
        self.sh_irreps = spherical_harmonics_irreps(l_max)
        self.sh = o3.SphericalHarmonics(self.sh_irreps, normalize=True, normalization="component")
        self.two_body = ScalarMLP(
            [2 * type_embedding_dim + n_bessel, mlp_hidden, latent_dim], init=mlp_init
        )
        self.initial_weights = torch.nn.Linear(latent_dim, num_channels * len(self.sh_irreps))
        self.mul = num_channels
        self.n_sh = len(self.sh_irreps)
        sh_block = [k for k, (_, ir) in enumerate(self.sh_irreps) for _ in range(ir.dim)]
        self.register_buffer("sh_block", torch.tensor(sh_block), persistent=False)
        # the initial features as a channel-wise product (w_c,l(k) x Y_k, weight 1) for the
        # compiled kernel: component k of the output reads block sh_block[k] of w and Y_k
        self.register_buffer("sh_component", torch.arange(len(sh_block)), persistent=False)
        self.register_buffer(
            "sh_unit_weight", torch.ones(num_channels, len(sh_block)), persistent=False
        )
        self.inv_sqrt_nn = 1.0 / math.sqrt(avg_num_neighbors)
        self.inv_nn = 1.0 / avg_num_neighbors
        self.use_kernel = ops.kernels_enabled()
        targets = allowed_irreps(l_max, parity)
        irreps_v = o3.Irreps([(num_channels, ir) for _, ir in self.sh_irreps])
        layers = []
        feature_irreps: List[str] = []
        for k in range(n_layers):
            feature_irreps.append(str(o3.Irreps(f"{latent_dim}x0e") + irreps_v))
            layer = AllegroLayer(
                irreps_v,
                self.sh_irreps,
                latent_dim,
                num_channels,
                mlp_hidden,
                targets,
                last=(k == n_layers - 1),
                n_latents_in=k + 1 if self.dense else 1,
                mlp_init=mlp_init,
            )
            layers.append(layer)
            irreps_v = layer.irreps_v_out
        feature_irreps.append(f"{latent_dim}x0e")
        self.layers = torch.nn.ModuleList(layers)
        n_read = n_layers + 1 if self.dense else 1
        self.readout = ScalarMLP([latent_dim * n_read, mlp_hidden, 1], init=mlp_init)
        # recorded as the model holds them: x (E, latent) and V channel-major (mul, D, E)
        self.declare_edge_features(feature_irreps, ["scalars+channel_major"] * n_layers + ["e3nn"])
        self.edge_feature_v_keys = [k + CHANNEL_MAJOR_SUFFIX for k in self.edge_feature_keys]
        self.keep_constants_exact()

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        edge_vectors = data[keys.EDGE_VECTORS]
        edge_index = data[keys.EDGE_INDEX]
        atom_type = data[keys.ATOM_TYPE]
        num_atoms = atom_type.shape[0]
        centre = edge_index[0]
        r = torch.linalg.norm(edge_vectors, dim=-1)
        u = self.cutoff(r).unsqueeze(-1)
        sh = self.sh(edge_vectors)
        emb = self.type_embedding(atom_type)
        x = self.two_body(torch.cat([emb[centre], emb[edge_index[1]], self.radial(r)], dim=-1)) * u
        # equivariant features in channel-major layout (mul, D, E): edges innermost (channel_layout.py)
        sh_t = sh.t().contiguous()
        if self.use_kernel and sh.device.type == "cpu":
            # w made transposed (mul * L, E) by the GEMM itself, then w x Y in one pass in the
            # (mul, D, E) layout (and its derivatives, any order, by the same kernel): the torch
            # form below copies w's transpose, expands it to every component and reduces twice
            lin = self.initial_weights
            w_t = torch.addmm(lin.bias.unsqueeze(1), lin.weight, x.t())
            n_edges = sh_t.shape[1]
            v = torch.ops.gnnff.trilinear(
                w_t.view(self.mul, self.n_sh, n_edges),
                sh_t.expand(self.mul, sh_t.shape[0], n_edges),
                self.sh_unit_weight,
                self.sh_block,
                self.sh_component,
                self.sh_component,
                sh_t.shape[0],
            )
        else:
            v = weighted_sh(self.initial_weights(x), sh_t, self.sh_block, self.mul)
        latents: List[torch.Tensor] = [x]
        for k, layer in enumerate(self.layers):
            if self.record_edge_features:  # no copy: the measure reads these layouts
                data[self.edge_feature_keys[k]] = x
                data[self.edge_feature_v_keys[k]] = v
            if self.env_bias_cutoff:
                # the Linear's bias enters times u(r): a plain bias would not vanish at r_max
                # and would put a step into the environment when a neighbour crosses it
                lin = layer.env_weights
                w_env = torch.nn.functional.linear(x, lin.weight) + lin.bias * u
            else:
                w_env = layer.env_weights(x)
            # environment of each centre atom (mul * D, N), then back onto the edges (mul, D, E)
            if self.use_kernel and sh.device.type == "cpu":
                # weights times Y summed onto the centres in one pass over the edges
                # (cpp/src/ops/edge_moments.cpp), without the (mul, D, E) product, its expanded
                # weights and their gradients that the form below materialises
                w_lm = w_env.view(w_env.shape[0], self.mul, self.n_sh)
                env = torch.ops.gnnff.outer_index_add(w_lm, sh, self.sh_block, centre, num_atoms)
                env = env.view(num_atoms, -1).t().contiguous() * self.inv_sqrt_nn
            else:
                ws = weighted_sh(w_env, sh_t, self.sh_block, self.mul)
                env = torch.zeros(
                    ws.shape[0] * ws.shape[1], num_atoms, dtype=ws.dtype, device=ws.device
                )
                env = env.index_add(1, centre, ws.view(env.shape[0], -1)) * self.inv_sqrt_nn
            # each edge reads its centre's column: the compiled product inside its pass (and its
            # gradient summed onto the atoms), without a (mul * D, E) copy of the environment
            t = layer.tp(v, env.view(self.mul, -1, num_atoms), centre)
            scalars = t[:, 0, :].t()  # the mul x 0e block comes first (checked in AllegroLayer)
            if self.dense:
                x = layer.latent_mlp(torch.cat(latents + [scalars], dim=-1)) * u
                latents.append(x)
            else:
                x = (x + layer.latent_mlp(torch.cat([x, scalars], dim=-1)) * u) * 0.7071067811865476
            v = layer.linear(t)
        if self.record_edge_features:
            data[self.edge_feature_keys[-1]] = x
        edge_energy = self.readout(torch.cat(latents, dim=-1) if self.dense else x) * u
        data[keys.ATOMIC_ENERGY_RAW] = (
            scatter_sum(edge_energy.squeeze(-1), centre, num_atoms) * self.inv_nn
        )
        return data


@register_model("allegro")
def allegro(
    type_names: List[str],
    r_max: float,
    preset: str = "small",
    l_max: Optional[int] = None,
    n_layers: Optional[int] = None,
    num_channels: Optional[int] = None,
    latent_dim: Optional[int] = None,
    n_bessel: Optional[int] = None,
    mlp_hidden: Optional[int] = None,
    type_embedding_dim: Optional[int] = None,
    parity: Optional[bool] = None,
    polynomial_p: Optional[int] = None,
    avg_num_neighbors: Optional[float] = None,
    scalar_track: Optional[str] = None,
    env_bias: Optional[str] = None,
) -> ForceModel:
    """Allegro ForceModel; options left as None take the value of ``preset`` (small|medium|paper).

    ``scalar_track``: "residual" (the presets') or "dense" (docs/models.md, "Allegro's dense
    scalar track"). ``env_bias``: "cutoff" (the presets': smooth at r_max) or "constant" (the
    form of checkpoints of version 1, which load with it; an energy step at r_max)."""
    opts = resolve_preset(
        "allegro",
        PRESETS,
        preset,
        dict(
            l_max=l_max,
            n_layers=n_layers,
            num_channels=num_channels,
            latent_dim=latent_dim,
            n_bessel=n_bessel,
            mlp_hidden=mlp_hidden,
            type_embedding_dim=type_embedding_dim,
            parity=parity,
            polynomial_p=polynomial_p,
            avg_num_neighbors=avg_num_neighbors,
            scalar_track=scalar_track,
            env_bias=env_bias,
        ),
    )
    energy = AllegroEnergy(len(type_names), float(r_max), **opts)
    return ForceModel(
        energy,
        list(type_names),
        r_max=float(r_max),
        interaction_range=float(r_max),
        model_name="allegro",
    )
