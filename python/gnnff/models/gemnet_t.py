"""GemNet-T: the triplet variant of GemNet (Gasteiger, Becker, Günnemann, NeurIPS 2021).

Energy model in the gnnff contract: reads EDGE_VECTORS, ATOM_TYPE, EDGE_INDEX and writes
ATOMIC_ENERGY_RAW; ForceModel adds per-type scale/shift and gets forces and virial by autograd
(the "energy, forces by gradient" mode of the research; direct forces are not implemented).

    rbf_ac     = Bessel(d_ac) * envelope(d_ac)                                  (E, num_radial)
    sph_cab    = Y_l^0(angle between r_ac and r_ab), l < num_spherical         (T, L)
    h_a        = type_embedding[t_a]                                             atoms
    m_ac       = Dense([h_a, h_c, rbf_ac])                                       edges
    E_a        = Out_0(h, m) + sum_k Out_k(h, m after interaction block k)
    interaction block k: triplet message (sum over b of sph * m_ab, bilinear with rbf(d_ac)),
      merged with the reverse edge's message, residual layers, atom update
      h_a += MLP(sum_c m_ac * W rbf_ac), edge re-embedding m_ac += Dense([h_a, h_c, m_ac]).

Triplets and reverse edges are built from edge_index inside the model (models/gemnet/graph_ops),
so the model runs on any gnnff graph, LAMMPS graphs with ghosts included.

Receptive field: block k lets an edge see one hop around each end through the triplet message,
and the atom update followed by the edge re-embedding adds one more hop: after n blocks an atom's
energy depends on atoms up to (2n + 1) edges away. interaction_range = (2 n + 1) r_max, the
ghost-shell width LAMMPS needs for exact local energies (tested in tests/models/test_gemnet_t.py).

Edge-feature interface: m after each interaction block, "{emb_size_edge}x0e" per block.
"""

import math
from typing import Dict, List, Optional

import torch

from gnnff import keys
from gnnff.models.base import EnergyModel, seeded_generator
from gnnff.models.common.type_embedding import TypeEmbedding
from gnnff.models.gemnet.basis import EnvelopedBessel, LegendreBasis
from gnnff.models.gemnet.graph_ops import gather_rows, reverse_edges, triplet_partners
from gnnff.models.gemnet.layers import (
    Dense,
    EdgeEmbedding,
    InteractionBlock,
    OutputBlock,
    he_orthogonal_,
)
from gnnff.models.registry import register_model
from gnnff.models.wrapper import ForceModel

MODEL_NAME = "gemnet_t"

# "md17": the MD17 configuration of the GemNet reference implementation (GemNet-T model_kwargs:
# 4 blocks, cutoff 5 Å, atom/edge 128, triplet 64, rbf/cbf 16, bilinear 64, 7 spherical x 6
# radial, 1 residual before / 1 after skip, 1 concat, 2 atom residuals, envelope p = 5).
# "paper" is another name for "md17"; "medium": about a fifth of its parameters;
# "small": ~12 k parameters for CPU tests and demos (the default, like the other models).
PRESETS: Dict[str, Dict[str, float]] = {
    "md17": dict(
        r_max=5.0,
        num_blocks=4,
        emb_size_atom=128,
        emb_size_edge=128,
        emb_size_trip=64,
        emb_size_rbf=16,
        emb_size_cbf=16,
        emb_size_bil_trip=64,
        num_spherical=7,
        num_radial=6,
        num_before_skip=1,
        num_after_skip=1,
        num_concat=1,
        num_atom=2,
        envelope_exponent=5,
        avg_num_neighbors=16.0,
    ),
    "medium": dict(
        r_max=5.0,
        num_blocks=3,
        emb_size_atom=64,
        emb_size_edge=64,
        emb_size_trip=32,
        emb_size_rbf=8,
        emb_size_cbf=8,
        emb_size_bil_trip=32,
        num_spherical=7,
        num_radial=6,
        num_before_skip=1,
        num_after_skip=1,
        num_concat=1,
        num_atom=2,
        envelope_exponent=5,
        avg_num_neighbors=16.0,
    ),
    "small": dict(
        r_max=4.0,
        num_blocks=2,
        emb_size_atom=16,
        emb_size_edge=16,
        emb_size_trip=8,
        emb_size_rbf=4,
        emb_size_cbf=4,
        emb_size_bil_trip=8,
        num_spherical=3,
        num_radial=4,
        num_before_skip=1,
        num_after_skip=1,
        num_concat=1,
        num_atom=1,
        envelope_exponent=5,
        avg_num_neighbors=8.0,
    ),
}
PRESETS["paper"] = PRESETS["md17"]


class GemNetTEnergy(EnergyModel):
    HEAD_MODULES = (
        "type_embedding",
        "out_block_0",
        "out_blocks",
    )  # fine-tuning: full learning rate

    def __init__(
        self,
        n_types: int,
        r_max: float,
        num_blocks: int,
        emb_size_atom: int,
        emb_size_edge: int,
        emb_size_trip: int,
        emb_size_rbf: int,
        emb_size_cbf: int,
        emb_size_bil_trip: int,
        num_spherical: int,
        num_radial: int,
        num_before_skip: int,
        num_after_skip: int,
        num_concat: int,
        num_atom: int,
        envelope_exponent: int,
        avg_num_neighbors: float,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"GemNet-T needs num_blocks >= 1, got {num_blocks}")
        neighbor_scale = 1.0 / math.sqrt(avg_num_neighbors)
        self.num_blocks = num_blocks
        self.radial_basis = EnvelopedBessel(r_max, num_radial, envelope_exponent)
        self.sph_basis = LegendreBasis(num_spherical)
        # radial half of the circular basis, one projection per l (GemNet's efficient down-projection)
        self.cbf_down = torch.nn.Parameter(
            he_orthogonal_(torch.empty(num_spherical, num_radial, emb_size_cbf), generator)
        )
        self.mlp_rbf3 = Dense(num_radial, emb_size_rbf, False, generator)
        self.mlp_rbf_h = Dense(num_radial, emb_size_rbf, False, generator)
        self.mlp_rbf_out = Dense(num_radial, emb_size_rbf, False, generator)
        self.type_embedding = TypeEmbedding(n_types, emb_size_atom, generator)
        with torch.no_grad():  # GemNet's atom embedding init: U(-sqrt 3, sqrt 3), unit variance
            self.type_embedding.weight.uniform_(
                -math.sqrt(3.0), math.sqrt(3.0), generator=generator
            )
        self.edge_embedding = EdgeEmbedding(emb_size_atom, num_radial, emb_size_edge, generator)
        self.out_block_0 = OutputBlock(
            emb_size_atom, emb_size_edge, emb_size_rbf, num_atom, neighbor_scale, generator
        )
        self.int_blocks = torch.nn.ModuleList(
            [
                InteractionBlock(
                    emb_size_atom,
                    emb_size_edge,
                    emb_size_trip,
                    emb_size_rbf,
                    emb_size_cbf,
                    emb_size_bil_trip,
                    num_before_skip,
                    num_after_skip,
                    num_concat,
                    num_atom,
                    neighbor_scale,
                    generator,
                )
                for _ in range(num_blocks)
            ]
        )
        self.out_blocks = torch.nn.ModuleList(
            [
                OutputBlock(
                    emb_size_atom, emb_size_edge, emb_size_rbf, num_atom, neighbor_scale, generator
                )
                for _ in range(num_blocks)
            ]
        )
        self.declare_edge_features([f"{emb_size_edge}x0e"] * num_blocks)

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        vec = data[keys.EDGE_VECTORS]
        types = data[keys.ATOM_TYPE]
        edge_index = data[keys.EDGE_INDEX]
        centre = edge_index[0]
        neighbour = edge_index[1]
        num_atoms = types.shape[0]

        length = torch.linalg.norm(vec, dim=-1)
        rbf = self.radial_basis(length)  # (E, R)
        partner, valid = triplet_partners(centre, num_atoms)  # (E, K)
        id_swap = reverse_edges(edge_index, vec, num_atoms)
        unit = vec / length.unsqueeze(-1)
        cos_angle = (unit.unsqueeze(1) * gather_rows(unit, partner)).sum(-1)  # (E, K)
        sph = self.sph_basis(cos_angle) * valid.unsqueeze(-1).to(
            vec.dtype
        )  # (E, K, L), 0 off-triplet
        sph = sph.transpose(1, 2)  # (E, L, K)
        # one (E, R) x (R, cbf * L) product, so that cbf_radial (E, cbf, L) is contiguous: the
        # permuted (L, E, cbf) product had batch items that are neither contiguous nor transposed
        # in the force's double backward, where torch's CPU bmm then copies every item
        num_l, num_r, num_cbf = self.cbf_down.shape
        cbf_weight = self.cbf_down.to(vec.dtype).permute(1, 2, 0).reshape(num_r, num_cbf * num_l)
        cbf_radial = torch.mm(rbf, cbf_weight).view(-1, num_cbf, num_l)  # (E, cbf, L)
        rbf3 = self.mlp_rbf3(rbf)
        rbf_h = self.mlp_rbf_h(rbf)
        rbf_out = self.mlp_rbf_out(rbf)

        h = self.type_embedding(types).to(vec.dtype)
        m = self.edge_embedding(h, rbf, centre, neighbour)
        energy = self.out_block_0(m, rbf_out, centre, num_atoms)
        for k, (block, out_block) in enumerate(zip(self.int_blocks, self.out_blocks)):
            hm = block(h, m, rbf3, cbf_radial, sph, rbf_h, partner, id_swap, centre, neighbour)
            h = hm[0]
            m = hm[1]
            if self.record_edge_features:
                data[self.edge_feature_keys[k]] = m
            energy = energy + out_block(m, rbf_out, centre, num_atoms)
        data[keys.ATOMIC_ENERGY_RAW] = energy
        return data


def resolve_gemnet_config(preset: str, overrides: Dict[str, Optional[float]]) -> Dict[str, float]:
    """Preset values with explicit (non-None) options on top; clear error for unknown presets."""
    if preset not in PRESETS:
        raise ValueError(
            f"unknown GemNet-T preset {preset!r}; choose one of {sorted(PRESETS)} "
            "or give every size explicitly"
        )
    config = dict(PRESETS[preset])
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


@register_model(MODEL_NAME)
def gemnet_t(
    type_names: List[str],
    preset: str = "small",
    r_max: Optional[float] = None,
    num_blocks: Optional[int] = None,
    emb_size_atom: Optional[int] = None,
    emb_size_edge: Optional[int] = None,
    emb_size_trip: Optional[int] = None,
    emb_size_rbf: Optional[int] = None,
    emb_size_cbf: Optional[int] = None,
    emb_size_bil_trip: Optional[int] = None,
    num_spherical: Optional[int] = None,
    num_radial: Optional[int] = None,
    num_before_skip: Optional[int] = None,
    num_after_skip: Optional[int] = None,
    num_concat: Optional[int] = None,
    num_atom: Optional[int] = None,
    envelope_exponent: Optional[int] = None,
    avg_num_neighbors: Optional[float] = None,
    seed: int = 0,
) -> ForceModel:
    """Build GemNet-T from a preset ("md17" = "paper", "medium", "small" = CPU) plus explicit overrides.

    r_max in Å. ``seed`` makes the initial weights reproducible independently of the global RNG.
    """
    overrides = dict(locals())
    for name in ("type_names", "preset", "seed"):
        overrides.pop(name)
    config = resolve_gemnet_config(preset, overrides)
    r_cut = float(config.pop("r_max"))
    if not r_cut > 0:
        raise ValueError(f"r_max must be positive (Å), got {r_cut}")
    avg = float(config.pop("avg_num_neighbors"))
    if not avg > 0:
        raise ValueError(f"avg_num_neighbors must be positive, got {avg}")
    sizes = {k: int(v) for k, v in config.items()}
    energy = GemNetTEnergy(
        len(type_names), r_cut, avg_num_neighbors=avg, generator=seeded_generator(seed), **sizes
    )
    interaction_range = (2 * sizes["num_blocks"] + 1) * r_cut
    return ForceModel(
        energy,
        list(type_names),
        r_max=r_cut,
        interaction_range=interaction_range,
        model_name=MODEL_NAME,
    )
