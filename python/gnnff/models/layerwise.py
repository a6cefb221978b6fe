"""Layer-wise evaluation of a message-passing model: the stages a domain-decomposed run executes
one at a time, with a feature exchange between ranks after each (docs/model_contract.md,
*Layer-wise extension*).

A NequIP model with L interaction blocks is cut into

    embed(t)                                 -> h0      (N, D_0)    every atom, types only
    layer(k, h_k, r, edge_index, t, n_local) -> h_{k+1} (n_local, D_{k+1})   k = 0 .. L-1
    atomic_energy(h_L, t)                    -> E_i     (n_local,)  eV, per-type scale/shift applied

``layer`` needs h_k on every neighbour of a local atom, so a rank holds ghost atoms one r_max
deep and, between layers, receives its ghosts' h_k from their owners (forward exchange). The
gradient runs back stage by stage: dE/dh_k of a ghost belongs to its owner and is added there
(reverse exchange) before layer k-1's backward. Edge vectors r_ij = x_j - x_i are the only
geometric input; dE/dr_ij summed over layers gives forces and virial exactly as ForceModel does.
h0 depends on types only, so the chain stops at layer 0.

``LayerwiseForceModel`` is a ForceModel (its ``forward`` is the usual whole-graph evaluation)
with these stages as TorchScript-exported methods, so one exported file serves both
``comm shell`` and ``comm layer``. The stages read the NequIP energy model's own submodules;
nequip.py is not changed.
"""

from typing import Dict, List, Tuple

import torch

from gnnff import contract
from gnnff.models.nequip import NequIPEnergy
from gnnff.models.wrapper import ForceModel

LAYERWISE_MODELS = ("nequip",)  # model_name values that have a layer-wise form


class LayerwiseForceModel(ForceModel):
    """ForceModel of a NequIP energy model, plus the layer-wise stages (see module doc)."""

    def __init__(self, model: ForceModel):
        energy_model = model.energy_model
        if not isinstance(energy_model, NequIPEnergy):
            raise ValueError(
                f"layer-wise evaluation exists for {list(LAYERWISE_MODELS)} models, not "
                f"{model.model_name!r} ({type(energy_model).__name__}); export it without "
                "layer-wise support and run it with `pair_style gnnff comm shell`"
            )
        super().__init__(
            energy_model, model.type_names, model.r_max, model.interaction_range, model.model_name
        )
        self.per_type_energy_shift = model.per_type_energy_shift.clone()
        self.per_type_energy_scale = model.per_type_energy_scale.clone()
        self.train(model.training)
        dims: List[int] = [int(energy_model.embed_nodes.irreps_out.dim)]
        dims += [int(block.irreps_out.dim) for block in energy_model.blocks]
        self.layer_feature_dims: List[int] = dims

    @torch.jit.export
    def layerwise_num_layers(self) -> int:
        return len(self.layer_feature_dims) - 1

    @torch.jit.export
    def layerwise_feature_dims(self) -> List[int]:
        """D_0 .. D_L: width of the node features entering layer k (last: entering the readout)."""
        return self.layer_feature_dims

    @torch.jit.export
    def layerwise_embed(self, atom_type: torch.Tensor) -> torch.Tensor:
        """h0 (N, D_0) from the atom types alone (no exchange needed: ghosts know their types)."""
        em = self.energy_model
        return em.embed_nodes(em.type_embedding(atom_type))

    @torch.jit.export
    def layerwise_layer(
        self,
        k: int,
        h: torch.Tensor,
        edge_vectors: torch.Tensor,
        edge_index: torch.Tensor,
        atom_type: torch.Tensor,
        num_local: int,
    ) -> torch.Tensor:
        """h_{k+1} of the local atoms (num_local, D_{k+1}).

        h (N, D_k) covers local and ghost atoms; every edge i->j has a local centre
        i < num_local and r_ij = edge_vectors (Å); atom_type (N,).
        """
        em = self.energy_model
        centre = edge_index[0]
        neighbour = edge_index[1]
        r = torch.linalg.norm(edge_vectors, dim=-1)
        u = em.cutoff(r).unsqueeze(-1)
        radial = em.radial(r)
        sh = em.sh(edge_vectors)
        emb_local = em.type_embedding(atom_type[:num_local])
        out = h[:num_local]
        found = False
        for i, block in enumerate(em.blocks):  # TorchScript: no ModuleList[k] with a variable k
            if i == k:
                message = block.message(h, sh, radial, u, neighbour)
                # the update of local atoms only: their messages come from local centres
                out = block.update(h[:num_local], message, centre, emb_local)
                found = True
        if not found:
            raise ValueError("layerwise_layer: layer index out of range")
        return out

    @torch.jit.export
    def layerwise_atomic_energy(self, h: torch.Tensor, atom_type: torch.Tensor) -> torch.Tensor:
        """E_i (eV) of the atoms whose final features are h (n, D_L); atom_type (n,)."""
        em = self.energy_model
        raw = em.readout(em.readout_hidden(h)).squeeze(-1)
        return self.per_type_energy_scale[atom_type].to(
            raw.dtype
        ) * raw + self.per_type_energy_shift[atom_type].to(raw.dtype)


def supports_layerwise(model: torch.nn.Module) -> bool:
    """True for a ForceModel whose energy model has a layer-wise form (NequIP)."""
    return isinstance(getattr(model, "energy_model", None), NequIPEnergy)


def layerwise_form(model: torch.nn.Module) -> Tuple[torch.nn.Module, Dict[str, str]]:
    """(module to script, extra metadata) for export: a LayerwiseForceModel and the optional
    layer-wise keys when the model has a layer-wise form, else the model itself and {}."""
    if not supports_layerwise(model):
        return model, {}
    layerwise = LayerwiseForceModel(model)
    return layerwise, contract.layerwise_metadata(layerwise.layer_feature_dims)
