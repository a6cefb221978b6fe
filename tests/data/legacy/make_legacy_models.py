"""How the files in this folder were made (kept for the record; do not re-run to "update" them).

They were written by gnnff at commit 9d310ec, before model loading moved out of gnnff.training,
so that tests/test_legacy_models.py can prove that later versions still load checkpoints and
exported models made by earlier ones:

    PYTHONPATH=python python tests/data/legacy/make_legacy_models.py tests/data/legacy

- pair_mlp_checkpoint.pt: a training checkpoint (1 epoch, EMA kept, float64) of a tiny pair_mlp
  on 8 EMT-labelled Cu/Al cells;
- pair_mlp_exported.pt: the same checkpoint through `gnnff export` (EMA weights);
- reference.json: one Cu/Al structure and the energy (eV), forces (eV/Å) and stress (eV/Å^3)
  that gnnff's ASE calculator of that commit gave for both files.
"""

import json
import os
import sys
import tempfile

import ase.io
import numpy as np


def main(out_dir: str) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "training"))
    from training_helpers import emt_structures

    from gnnff.calculator import GnnffCalculator
    from gnnff.export import export_model
    from gnnff.training.checkpoint import export_lineage, load_checkpoint, model_from_checkpoint
    from gnnff.training.config import resolve_config
    from gnnff.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "cu_al.extxyz")
        ase.io.write(data, emt_structures(8, seed=5))
        config = resolve_config({
            "model": {"name": "pair_mlp", "type_names": ["Cu", "Al"], "r_max": 4.0, "hidden": 8, "num_basis": 4,
                      "embed_dim": 4, "num_channels": 2},
            "data": {"train": data, "val_fraction": 0.25},
            "loss": {"energy": {"weight": 1.0}, "forces": {"weight": 10.0}, "stress": {"weight": 1.0}},
            "training": {"max_epochs": 1, "batch_size": 4, "dtype": "float64", "device": "cpu",
                         "progress_bar": False, "ema_decay": 0.5},
            "output": {"dir": os.path.join(tmp, "run")},
        })  # fmt: skip
        Trainer(config).run()
        checkpoint = os.path.join(out_dir, "pair_mlp_checkpoint.pt")
        os.replace(os.path.join(tmp, "run", "last.pt"), checkpoint)
    state = load_checkpoint(checkpoint)
    exported = os.path.join(out_dir, "pair_mlp_exported.pt")
    export_model(
        model_from_checkpoint(state),
        exported,
        lineage=export_lineage(state, "pair_mlp_checkpoint.pt"),
    )

    atoms = emt_structures(2, seed=11)[1]  # the odd cells hold an Al atom
    atoms.calc = None
    reference = {
        "numbers": atoms.numbers.tolist(),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist(),
        "pbc": atoms.pbc.tolist(),
        "results": {},
    }
    for name, path in (("checkpoint", checkpoint), ("exported", exported)):
        atoms.calc = GnnffCalculator(path)
        reference["results"][name] = {
            "energy": atoms.get_potential_energy(),
            "forces": atoms.get_forces().tolist(),
            "stress": atoms.get_stress().tolist(),
        }
    assert np.allclose(
        reference["results"]["checkpoint"]["forces"], reference["results"]["exported"]["forces"]
    )
    with open(os.path.join(out_dir, "reference.json"), "w") as handle:
        json.dump(reference, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
