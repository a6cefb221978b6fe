"""How equivariant_state_v0.pt was made (kept for the record; do not re-run to "update" it).

Written by gnnff at commit 8ca2d71, while allegro and nequip still ran e3nn's generic
TensorProduct and Linear, so that tests/models/test_fused_tp.py can prove that a state_dict saved
then still loads into the fused tensor-product models and gives the same numbers:

    git archive 8ca2d71 python | tar -x -C /tmp/head_src   # the e3nn-TensorProduct version
    PYTHONPATH=/tmp/head_src/python python tests/data/legacy/make_equivariant_state_v0.py tests/data/legacy

The file holds, per model (allegro, nequip; 2 layers, l_max 2, both parities, types Si/C): the
builder options, the state_dict (float32; built with torch.manual_seed(0), then every energy-model
parameter except the Bessel frequencies redrawn as 0.6 N(0, 1)), and per graph (a
periodic triclinic Si/C cell and a cluster) and dtype (float64, float32) the total energy (eV),
forces (eV/Å) and virial (eV) that model gave, plus the two graphs.
"""

import os
import sys

import numpy as np
import torch
from ase import Atoms

MODELS = {
    "allegro": dict(
        type_names=["Si", "C"],
        r_max=3.5,
        preset="small",
        n_layers=2,
        l_max=2,
        parity=True,
        num_channels=3,
    ),
    "nequip": dict(
        type_names=["Si", "C"],
        r_max=3.5,
        preset="small",
        n_layers=2,
        l_max=2,
        parity=True,
        num_features=4,
    ),
}


def structures():
    rng = np.random.default_rng(2026)
    cell = 4.2 * np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.25, 0.25, 0.25]])
    crystal = Atoms(
        "SiCSiSiC", positions=frac @ cell + 0.1 * rng.standard_normal((5, 3)), cell=cell, pbc=True
    )
    cluster = Atoms(
        "CSiSiCSi",
        positions=[[0, 0, 0], [1.8, 0.2, 0.1], [0.3, 1.9, -0.2], [1.6, 1.7, 1.4], [-1.1, 1.0, 1.5]],
        pbc=False,
    )
    return {"crystal": crystal, "cluster": cluster}


def main(out_dir: str) -> None:
    from gnnff import keys
    from gnnff.data.graph import atoms_to_graph
    from gnnff.models.registry import build_model

    record = {"graphs": {}, "models": {}}
    for name, atoms in structures().items():
        record["graphs"][name] = {
            k: v.clone()
            for k, v in atoms_to_graph(atoms, ["Si", "C"], 3.5, dtype=torch.float64).items()
        }
    for model_name, options in MODELS.items():
        torch.manual_seed(0)
        model = build_model(model_name, **options)
        with torch.no_grad():
            # weights of order one instead of the small initial ones, so that every tensor-product
            # path changes the energy visibly (at initialisation Allegro's moves it by ~1e-6)
            generator = torch.Generator().manual_seed(1)
            for pname, param in model.energy_model.named_parameters():
                if not pname.endswith("frequencies"):
                    param.copy_(0.6 * torch.randn(param.shape, generator=generator))
            # non-trivial energy scale/shift so that they are covered too
            model.per_type_energy_scale.copy_(torch.tensor([1.3, 0.8]))
            model.per_type_energy_shift.copy_(torch.tensor([-3.5, -2.25]))
        entry = {
            "options": options,
            "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
            "results": {},
        }
        for name, graph in record["graphs"].items():
            for dtype in (torch.float64, torch.float32):
                fresh = build_model(model_name, **options)
                fresh.load_state_dict(entry["state_dict"])
                fresh = fresh.to(dtype).eval()
                data = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in graph.items()}
                out = fresh(data)
                entry["results"][f"{name}/{str(dtype)[6:]}"] = {
                    key: out[key].detach().clone()
                    for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL)
                }
        record["models"][model_name] = entry
    torch.save(record, os.path.join(out_dir, "equivariant_state_v0.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
