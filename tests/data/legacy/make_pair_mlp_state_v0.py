"""How pair_mlp_state_v0.pt was made (kept for the record; do not re-run to "update" it).

Written by gnnff at commit 9d310ec, before pair_mlp moved onto gnnff.models.common's Bessel basis
and cutoff, so that tests/models/test_pair_mlp.py can prove that the state_dict of a pair_mlp
saved then still loads and gives the same numbers:

    PYTHONPATH=python python tests/data/legacy/make_pair_mlp_state_v0.py tests/data/legacy

The file holds: the builder options, the model's state_dict as built (float32 weights, the float64
Bessel-frequency buffer), two graphs (a periodic Cu/Al cell and a cluster: positions Å, types,
edges, shifts) and, per graph and per dtype (float64, float32), the total energy (eV), forces
(eV/Å) and virial (eV) that model gave.
"""

import os
import sys

import numpy as np
import torch
from ase import Atoms

OPTIONS = dict(
    type_names=["Cu", "Al"],
    r_max=4.0,
    num_basis=5,
    hidden=8,
    num_layers=2,
    embed_dim=4,
    angular=True,
    num_channels=3,
    cutoff_p=6,
    seed=7,
)


def structures():
    rng = np.random.default_rng(2024)
    cell = 3.8 * np.eye(3) + 0.1 * rng.standard_normal((3, 3))
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    crystal = Atoms(
        "CuAlCuCu", positions=frac @ cell + 0.1 * rng.standard_normal((4, 3)), cell=cell, pbc=True
    )
    cluster = Atoms(
        "AlCuCuAlCu",
        positions=[[0, 0, 0], [2.3, 0.2, 0.1], [0.3, 2.4, -0.2], [2.0, 2.2, 1.6], [-1.1, 1.0, 2.0]],
        pbc=False,
    )
    return {"crystal": crystal, "cluster": cluster}


def main(out_dir: str) -> None:
    from gnnff import keys
    from gnnff.data.graph import atoms_to_graph
    from gnnff.models.registry import build_model

    model = build_model("pair_mlp", **OPTIONS)
    with torch.no_grad():  # non-trivial energy scale/shift so that they are covered too
        model.per_type_energy_scale.copy_(torch.tensor([1.3, 0.8]))
        model.per_type_energy_shift.copy_(torch.tensor([-3.5, -2.25]))
    record = {
        "options": OPTIONS,
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
        "graphs": {},
        "results": {},
    }
    for name, atoms in structures().items():
        graph = atoms_to_graph(atoms, OPTIONS["type_names"], OPTIONS["r_max"], dtype=torch.float64)
        record["graphs"][name] = {k: v.clone() for k, v in graph.items()}
        for dtype in (torch.float64, torch.float32):
            fresh = build_model("pair_mlp", **OPTIONS)
            fresh.load_state_dict(record["state_dict"])
            fresh = fresh.to(dtype).eval()
            data = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in graph.items()}
            out = fresh(data)
            record["results"][f"{name}/{str(dtype)[6:]}"] = {
                key: out[key].detach().clone()
                for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL)
            }
    torch.save(record, os.path.join(out_dir, "pair_mlp_state_v0.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
