"""ForceModel: the one wrapper that turns an energy model into energy, forces and virial.

Every gnnff model is an *energy model* that maps edge vectors and atom types to per-atom
energies. ForceModel computes edge vectors, applies per-type energy scale and shift, sums the
energy of local atoms, and differentiates it with respect to the edge vectors. Forces and the
virial then follow from one gradient, for periodic and non-periodic systems, and for LAMMPS
ghost atoms, with no strain trick:

    g_ij = dE/dr_ij,   r_ij = x_j - x_i + shift_ij
    F_i += g_ij,  F_j -= g_ij                       (F = -dE/dx)
    W   = -sum_ij r_ij (x) g_ij                     (LAMMPS sign, eV)
    S   = -W / V                                    (ASE sign, eV/Å^3; only for inputs with a
                                                     cell periodic in x, y and z, NaN otherwise)

The output holds the model's outputs (and what the energy model recorded, e.g. edge features),
never the inputs: a label passed in under an output's key (a data set's "stress") cannot come
back looking like a prediction.

Units: LAMMPS ``metal`` (Å, eV, eV/Å).
"""

from typing import Dict, List, Optional

import torch

from gnnff import keys


def stress_from_virial(
    virial: torch.Tensor, cell: torch.Tensor, pbc: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """(G, 3, 3) stress = -virial / volume (eV/Å^3, ASE sign); NaN for a graph whose cell is not
    periodic in x, y and z (no volume: stress is undefined there). The one place this is written."""
    cell = cell.to(virial.dtype).reshape(-1, 3, 3)
    volume = torch.linalg.det(cell).abs()
    periodic = volume > 0
    if pbc is not None:
        periodic = periodic & pbc.reshape(-1, 3).all(dim=1)
    # divide by 1 where there is no volume, so that no inf/NaN reaches a gradient
    safe = torch.where(periodic, volume, torch.ones_like(volume))
    stress = -virial / safe.view(-1, 1, 1)
    return torch.where(periodic.view(-1, 1, 1), stress, torch.full_like(stress, float("nan")))


class ForceModel(torch.nn.Module):
    """Wrap an energy model (writes keys.ATOMIC_ENERGY_RAW) into the gnnff model contract."""

    __jit_unused_properties__ = ["dtype"]

    def __init__(
        self,
        energy_model: torch.nn.Module,
        type_names: List[str],
        r_max: float,
        interaction_range: float,
        model_name: str,
    ):
        super().__init__()
        if interaction_range < r_max:
            raise ValueError(
                f"interaction_range {interaction_range} Å is shorter than r_max {r_max} Å"
            )
        self.energy_model = energy_model
        self.type_names: List[str] = list(type_names)
        self.r_max = float(r_max)
        self.interaction_range = float(interaction_range)
        self.model_name = model_name
        n_types = len(self.type_names)
        # created in the energy model's dtype, and cast with it by every .to(): these buffers
        # state the model's dtype (see the dtype property), with or without parameters
        dtype = torch.get_default_dtype()
        for tensor in [*energy_model.parameters(), *energy_model.buffers()]:
            if tensor.is_floating_point():
                dtype = tensor.dtype
                break
        # E_i = scale[t_i] * e_i + shift[t_i]; fitted from training data (eV per atom)
        self.register_buffer("per_type_energy_shift", torch.zeros(n_types, dtype=dtype))
        self.register_buffer("per_type_energy_scale", torch.ones(n_types, dtype=dtype))

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the model computes in. ForceModel's own buffers are cast by every
        ``model.to(dtype)``, so they state it, also for models without parameters (analytic)."""
        return self.per_type_energy_shift.dtype

    @torch.jit.unused
    def set_energy_reference(self, shift: torch.Tensor, scale: Optional[torch.Tensor] = None):
        """Set per-type energy shift (eV/atom) and scale (eV), e.g. fitted on a training split."""
        n_types = len(self.type_names)
        shift = torch.as_tensor(shift, dtype=self.per_type_energy_shift.dtype)
        if shift.shape != (n_types,):
            raise ValueError(
                f"energy shift needs one value per type ({n_types}), got {shift.shape}"
            )
        self.per_type_energy_shift.copy_(shift)
        if scale is not None:
            scale = torch.as_tensor(scale, dtype=self.per_type_energy_scale.dtype)
            if scale.shape != (n_types,):
                raise ValueError(
                    f"energy scale needs one value per type ({n_types}), got {scale.shape}"
                )
            self.per_type_energy_scale.copy_(scale)

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        pos = data[keys.POSITIONS]
        atom_type = data[keys.ATOM_TYPE]
        edge_index = data[keys.EDGE_INDEX]
        num_atoms = pos.shape[0]
        input_keys: List[str] = list(data.keys())
        centre = edge_index[0]
        neighbour = edge_index[1]

        # The edge vectors are the autograd leaf: forces and virial come from one gradient.
        if keys.EDGE_VECTORS in data:
            # given by the caller (pair_style gnnff computed them for its cutoff test): no
            # second gather of positions per edge
            edge_vectors = data[keys.EDGE_VECTORS]
        else:
            # index_select: a plain row gather, 2-3x faster on CPU than advanced indexing
            edge_vectors = pos.index_select(0, neighbour) - pos.index_select(0, centre)
            if keys.EDGE_SHIFT in data:
                edge_vectors = edge_vectors + data[keys.EDGE_SHIFT]
        edge_vectors = edge_vectors.detach().requires_grad_(True)
        data[keys.EDGE_VECTORS] = edge_vectors

        data = self.energy_model(data)
        raw = data[keys.ATOMIC_ENERGY_RAW]
        atomic_energy = self.per_type_energy_scale[atom_type].to(
            raw.dtype
        ) * raw + self.per_type_energy_shift[atom_type].to(raw.dtype)
        if keys.NUM_LOCAL in data:
            # ghost atoms (LAMMPS) carry no energy: they belong to another rank or image
            # a tensor comparison, not .item(): torch.export (AOTI) traces it without a guard
            is_local = torch.arange(num_atoms, device=pos.device) < data[keys.NUM_LOCAL].reshape(1)
            atomic_energy = torch.where(is_local, atomic_energy, torch.zeros_like(atomic_energy))

        if keys.BATCH in data:
            num_graphs = int(data[keys.NUM_GRAPHS].item())
            total_energy = torch.zeros(num_graphs, dtype=raw.dtype, device=pos.device)
            total_energy = total_energy.index_add(0, data[keys.BATCH], atomic_energy)
        else:
            # one graph: a plain reduction (AOTInductor's CPU code generator fails on a scatter
            # into a one-element buffer, e.g. for a one-type Lennard-Jones model)
            num_graphs = 1
            total_energy = atomic_energy.sum(0, keepdim=True)

        grads = torch.autograd.grad(
            [total_energy.sum()],
            [edge_vectors],
            create_graph=self.training,
            allow_unused=True,
        )
        edge_grad = grads[0]
        if edge_grad is None:  # no edges, or an energy that ignores geometry
            edge_grad = torch.zeros_like(edge_vectors)

        out: Dict[str, torch.Tensor] = {}
        for k, v in data.items():  # what the energy model added (edge features), no inputs
            if k != keys.EDGE_VECTORS and k not in input_keys:
                out[k] = v
        out[keys.ATOMIC_ENERGY] = atomic_energy
        out[keys.TOTAL_ENERGY] = total_energy
        if keys.REQUEST_EDGE_GRADIENT in data:
            # the caller sums forces and virials from dE/dr_ij itself (pair_style gnnff does,
            # in float64 and in the loop that writes LAMMPS's arrays): no scatters here
            out[keys.EDGE_GRADIENT] = edge_grad
            return out

        forces = torch.zeros_like(pos, dtype=edge_grad.dtype)
        # a negated copy, not index_add's alpha=-1: on the CPU (torch 2.13) any alpha other than
        # 1 takes a row-by-row path, 9x slower on an (E,3) source (benchmarks/bench_index_add.py);
        # -g is exact, so the sums are the same bits either way
        forces = forces.index_add(0, centre, edge_grad).index_add(0, neighbour, -edge_grad)
        # virial W = -sum_ij r_ij (x) g_ij, in the LAMMPS sign convention. One graph: one
        # (3,E) x (E,3) product (12x cheaper on CPU than E outer products and an index_add);
        # a batch sums the per-edge products per graph
        if keys.BATCH in data:
            edge_virial = -edge_vectors.unsqueeze(-1) * edge_grad.unsqueeze(-2)
            virial = torch.zeros(num_graphs, 3, 3, dtype=edge_grad.dtype, device=pos.device)
            virial = virial.index_add(0, data[keys.BATCH][centre], edge_virial)
        else:
            virial = -torch.mm(edge_vectors.transpose(0, 1), edge_grad).unsqueeze(0)

        out[keys.FORCES] = forces
        out[keys.VIRIAL] = virial
        if keys.CELL in data:
            pbc: Optional[torch.Tensor] = None
            if keys.PBC in data:
                pbc = data[keys.PBC]
            out[keys.STRESS] = stress_from_virial(virial, data[keys.CELL], pbc)
        if keys.REQUEST_ATOM_VIRIAL in data:
            half = -0.5 * edge_vectors.unsqueeze(-1) * edge_grad.unsqueeze(-2)
            atom_virial = torch.zeros(num_atoms, 3, 3, dtype=edge_grad.dtype, device=pos.device)
            out[keys.ATOM_VIRIAL] = atom_virial.index_add(0, centre, half).index_add(
                0, neighbour, half
            )
        return out
