"""Shared pieces of the decorrelation tests: a slow reference measure, equivariant test features,
a Lennard-Jones data set and a tiny equivariant model that exposes the edge-feature interface."""

import math
from typing import Dict, List

import numpy as np
import torch

from gnnff import keys
from gnnff.models.wrapper import ForceModel


# ---- slow reference: plain Python loops over edges and channel pairs, no torch algebra ------
def reference_layer_correlation(
    x, blocks, reduction="mean_square", norm_eps=1e-8, variance_eps=1e-6, tiny=None
):
    """x: list of rows (E lists of floats); blocks: [(mul, l)] in e3nn mul_ir layout."""
    rows = [list(map(float, r)) for r in x]
    inv = []
    for row in rows:
        out, col = [], 0
        for mul, l in blocks:
            for _ in range(mul):
                comps = row[col : col + 2 * l + 1]
                col += 2 * l + 1
                out.append(comps[0] if l == 0 else math.sqrt(sum(c * c for c in comps) + norm_eps))
        inv.append(out)
    n, c = len(inv), len(inv[0])
    mean = [sum(inv[e][a] for e in range(n)) / n for a in range(c)]
    cov = [
        [sum((inv[e][a] - mean[a]) * (inv[e][b] - mean[b]) for e in range(n)) / n for b in range(c)]
        for a in range(c)
    ]
    var_mean = sum(cov[a][a] for a in range(c)) / c
    floor = variance_eps * var_mean + math.sqrt(tiny)
    corr = [
        [cov[a][b] / math.sqrt((cov[a][a] + floor) * (cov[b][b] + floor)) for b in range(c)]
        for a in range(c)
    ]
    off = [corr[a][b] for a in range(c) for b in range(c) if a != b]
    if reduction == "mean_square":
        return sum(v * v for v in off) / len(off)
    if reduction == "mean_abs":
        return sum(abs(v) for v in off) / len(off)
    if reduction == "max_square":
        return max(v * v for v in off)
    raise ValueError(reduction)


# ---- equivariant edge features built with e3nn (independent of any gnnff model) ------------
def equivariant_edge_features(pos, edge_index, irreps_spec, seed=0):
    """(E, dim) features in e3nn layout for irreps_spec [(mul, l)]: for each edge i->j the sum over
    i's neighbours k of w(r_ik) Y_l(r_ik) (many-body, equivariant), times a radial weight of r_ij."""
    from e3nn import o3

    gen = torch.Generator().manual_seed(seed)
    vec = pos[edge_index[1]] - pos[edge_index[0]]
    r = vec.norm(dim=-1, keepdim=True)
    parts = []
    for mul, l in irreps_spec:
        freq = torch.rand(mul, generator=gen, dtype=pos.dtype) * 3 + 0.5
        phase = torch.rand(mul, generator=gen, dtype=pos.dtype) * 3
        w = torch.cos(freq * r + phase) * torch.exp(-r)  # (E, mul)
        y = o3.spherical_harmonics(l, vec, normalize=True)  # (E, 2l+1)
        node = torch.zeros(pos.shape[0], mul, 2 * l + 1, dtype=pos.dtype)
        node = node.index_add(0, edge_index[0], w.unsqueeze(-1) * y.unsqueeze(1))
        w2 = torch.sin(freq * r + 2 * phase)  # (E, mul) invariant edge weight
        parts.append((node[edge_index[0]] * w2.unsqueeze(-1)).reshape(vec.shape[0], -1))
    return torch.cat(parts, dim=1)


def irreps_string(spec):
    return "+".join(f"{mul}x{l}{'e' if l % 2 == 0 else 'o'}" for mul, l in spec)


# ---- a Lennard-Jones data set (labels from ASE, an independent code) -----------------------
def lennard_jones_structures(n_structures: int, seed: int, r_max: float = 4.0):
    """Rattled, strained 8-atom fcc cells with LJ energies/forces (SinglePointCalculator), eV, Å."""
    import ase.build
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(n_structures):
        atoms = ase.build.bulk("Ar", "fcc", a=3.2 * rng.uniform(0.97, 1.05), cubic=True).repeat(
            (2, 1, 1)
        )
        atoms.positions += rng.normal(scale=0.12, size=atoms.positions.shape)
        atoms.calc = LennardJones(sigma=2.0, epsilon=1.0, rc=r_max, smooth=True)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        structures.append(atoms)
    return structures


def lennard_jones_dataset(
    n_structures: int, seed: int, r_max: float = 4.0, dtype=torch.float64
) -> List[Dict[str, torch.Tensor]]:
    from gnnff.data.graph import atoms_to_graph

    graphs = []
    for atoms in lennard_jones_structures(n_structures, seed, r_max):
        g = atoms_to_graph(atoms, ["Ar"], r_max, dtype=dtype)
        g[keys.FORCES] = torch.as_tensor(atoms.get_forces(), dtype=dtype)
        g[keys.TOTAL_ENERGY] = torch.as_tensor([atoms.get_potential_energy()], dtype=dtype)
        graphs.append(g)
    return graphs


def collate(graphs: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Minimal batching (the trainer's collate lives in gnnff.data; this keeps the test standalone)."""
    out = {
        k: []
        for k in (
            keys.POSITIONS,
            keys.ATOM_TYPE,
            keys.EDGE_INDEX,
            keys.EDGE_SHIFT,
            keys.FORCES,
            keys.TOTAL_ENERGY,
            keys.BATCH,
        )
    }
    offset = 0
    for gi, g in enumerate(graphs):
        n = g[keys.POSITIONS].shape[0]
        for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_SHIFT, keys.FORCES, keys.TOTAL_ENERGY):
            out[k].append(g[k])
        out[keys.EDGE_INDEX].append(g[keys.EDGE_INDEX] + offset)
        out[keys.BATCH].append(torch.full((n,), gi, dtype=torch.long))
        offset += n
    batch = {k: torch.cat(v, dim=1 if k == keys.EDGE_INDEX else 0) for k, v in out.items()}
    batch[keys.NUM_GRAPHS] = torch.tensor([len(graphs)])
    return batch


# ---- a tiny equivariant energy model exposing scalar AND vector edge features ---------------
class TinyEquivariantEnergy(torch.nn.Module):
    """Layer 0: "{w}x0e" radial MLP features; layer 1: "{w}x0e+{v}x1o" with vector channels
    c_k(r) * (sum_k' of neighbour unit vectors) - enough to exercise the l>0 path end to end."""

    def __init__(self, n_types: int, r_max: float, width: int = 8, vectors: int = 4):
        super().__init__()
        self.r_max = r_max
        self.type_embedding = torch.nn.Embedding(n_types, 4)
        self.radial = torch.nn.Linear(6 + 4, width)
        self.mix = torch.nn.Linear(width + vectors, width)
        self.vec_weights = torch.nn.Linear(width, vectors)
        self.out = torch.nn.Linear(width, 1)
        self.edge_feature_irreps: List[str] = [f"{width}x0e", f"{width}x0e+{vectors}x1o"]
        self.record_edge_features: bool = False

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        vec = data[keys.EDGE_VECTORS]
        centre = data[keys.EDGE_INDEX][0]
        types = data[keys.ATOM_TYPE]
        n_atoms = types.shape[0]
        r = vec.norm(dim=-1, keepdim=True)
        fc = (0.5 * (torch.cos(math.pi * r / self.r_max) + 1.0)) * (r < self.r_max).to(r.dtype)
        k = torch.arange(1, 7, dtype=r.dtype, device=r.device)
        basis = torch.sin(k * math.pi * r / self.r_max) / r * fc
        h0 = torch.nn.functional.silu(
            self.radial(
                torch.cat([basis, self.type_embedding.weight.to(r.dtype)[types[centre]]], -1)
            )
        )
        c = self.vec_weights(h0) * fc  # (E, v)
        node_vec = torch.zeros(n_atoms, c.shape[1], 3, dtype=r.dtype, device=r.device)
        node_vec = node_vec.index_add(0, centre, c.unsqueeze(-1) * (vec / r).unsqueeze(1))
        v_edge = node_vec[centre]  # (E, v, 3) equivariant
        h1 = torch.nn.functional.silu(self.mix(torch.cat([h0, (v_edge * v_edge).sum(-1)], -1)))
        if self.record_edge_features:
            data[keys.edge_feature_key(0)] = h0
            data[keys.edge_feature_key(1)] = torch.cat(
                [h1, v_edge[..., [1, 2, 0]].reshape(r.shape[0], -1)], -1
            )
        edge_energy = 0.5 * fc.squeeze(-1) * self.out(h1).squeeze(-1)
        data[keys.ATOMIC_ENERGY_RAW] = torch.zeros(
            n_atoms, dtype=r.dtype, device=r.device
        ).index_add(0, centre, edge_energy)
        return data


def tiny_model(r_max: float = 4.0, seed: int = 0, dtype=torch.float64) -> ForceModel:
    torch.manual_seed(seed)
    return ForceModel(TinyEquivariantEnergy(1, r_max), ["Ar"], r_max, r_max, "tiny_equivariant").to(
        dtype
    )


# ---- DDP worker (module level so that torch.multiprocessing.spawn can pickle it) -------------
def ddp_worker(rank: int, world_size: int, init_file: str, batches, out_dir: str):
    import os

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from gnnff.models import features
    from gnnff.training.loss_terms import build_loss_term

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        model = tiny_model(seed=0)
        ddp = DistributedDataParallel(model)
        features.set_recording(ddp, True)
        term = build_loss_term("decorrelation", **DDP_TERM_CONFIG)
        batch = dict(batches[rank])
        pred = ddp(dict(batch))
        loss_force = ((pred[keys.FORCES] - batch[keys.FORCES]) ** 2).mean()
        loss = loss_force + term(pred, batch, ddp)
        loss.backward()
        term.on_step(1, 0, {"forces": float(loss_force.detach())})
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        torch.save(
            {
                "grads": grads,
                "lambda": term.coefficient,
                "raw": float(term.batch_logs()["decorrelation_unweighted"]),
                "force": float(loss_force.detach()),
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


DDP_TERM_CONFIG = dict(
    schedule="adaptive",
    lambda_value=0.5,
    target_fraction=0.2,
    ema_decay=0.0,
    adaptation_rate=0.5,
    max_change=10.0,
)
