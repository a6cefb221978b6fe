"""The C++ loader refuses model files that break the contract, naming the problem and the fix.

Hand-written TorchScript modules stand in for third-party model files: each is right except for
one thing (an output's shape, dtype, a buffer's dtype, the type names), which the loader or the
first evaluation must name. Truth: the shapes of docs/model_contract.md, with N = local + ghost
atoms and G = 1 graph.
"""

from typing import Dict

import numpy as np
import pytest
import torch

from gnnff import contract

N_ATOMS, N_LOCAL = 5, 3  # atoms 3 and 4 are ghosts: local-only outputs have the wrong length


class OneWrongOutput(torch.nn.Module):
    """E_i = |x_i|^2 (F = -2x, W = 0 is not physical but the shapes are what is tested)."""

    def __init__(self, mode: str, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.mode = mode
        self.register_buffer("scale", torch.ones(1, dtype=dtype))

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        pos = data["pos"]
        nl = int(data["num_local"][0])
        e = self.scale * (pos * pos).sum(1)
        e = torch.cat([e[:nl], torch.zeros_like(e[nl:])])
        f = -2.0 * self.scale * pos
        out = {
            "total_energy": e.sum().reshape(1),
            "atomic_energy": e,
            "forces": f,
            "virial": torch.zeros(1, 3, 3, dtype=pos.dtype),
        }
        if self.mode == "forces_n2":
            out["forces"] = f[:, :2]
        elif self.mode == "forces_3n":
            out["forces"] = f.t().contiguous()
        elif self.mode == "forces_local_only":
            out["forces"] = f[:nl]
        elif self.mode == "energy_local_only":
            out["atomic_energy"] = e[:nl]
        elif self.mode == "virial_3x3":
            out["virial"] = torch.zeros(3, 3, dtype=pos.dtype)
        elif self.mode == "energy_0d":
            out["total_energy"] = e.sum()
        elif self.mode == "forces_float32":
            out["forces"] = f.float()
        return out


def save(module, path, type_names=("Si",), dtype="float64"):
    extra = contract.make_metadata(
        r_max=3.0, interaction_range=3.0, type_names=["Si"], dtype=dtype, model_name="hand_written"
    )
    extra[contract.META_TYPE_NAMES] = " ".join(type_names)  # make_metadata refuses bad names
    torch.jit.save(torch.jit.script(module), str(path), _extra_files=extra)
    return str(path)


def evaluate(model, n_atoms=N_ATOMS, n_local=N_LOCAL):
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 4, (n_atoms, 3))
    edges = np.array([[i, j] for i in range(n_atoms) for j in range(n_atoms) if i != j]).T
    return model.evaluate(
        pos=pos, atom_type=np.zeros(n_atoms, dtype=np.int64), edge_index=edges, num_local=n_local
    )


WRONG = [
    ("forces_n2", r"'forces' has shape \(5, 2\), expected \(5, 3\) = \(N, 3\)"),
    ("forces_3n", r"'forces' has shape \(3, 5\), expected \(5, 3\)"),
    ("forces_local_only", r"'forces' has shape \(3, 3\), expected \(5, 3\) .*local and ghost"),
    ("energy_local_only", r"'atomic_energy' has shape \(3,\), expected \(5,\)"),
    ("virial_3x3", r"'virial' has shape \(3, 3\), expected \(1, 3, 3\) = \(G, 3, 3\)"),
    ("energy_0d", r"'total_energy' has shape \(\), expected \(1,\)"),
    ("forces_float32", r"'forces' has dtype Float, expected the model's declared dtype float64"),
]


@pytest.mark.parametrize("mode,message", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_output_is_refused_with_shapes(core, tmp_path, mode, message):
    model = core.Model(save(OneWrongOutput(mode), tmp_path / f"{mode}.pt"))
    with pytest.raises(ValueError, match=message + ".*model contract.*re-export"):
        evaluate(model)


def test_right_outputs_pass_and_have_contract_values(core, tmp_path):
    got = evaluate(core.Model(save(OneWrongOutput("none"), tmp_path / "ok.pt")))
    assert got["forces"].shape == (N_ATOMS, 3) and got["virial"].shape == (1, 3, 3)
    np.testing.assert_allclose(got["total_energy"], got["atomic_energy"][:N_LOCAL].sum())


def test_outputs_are_checked_again_when_the_atom_count_changes(core, tmp_path):
    # local-only forces are right while every atom is local, wrong once there are ghosts
    model = core.Model(save(OneWrongOutput("forces_local_only"), tmp_path / "local.pt"))
    evaluate(model, n_atoms=4, n_local=4)
    with pytest.raises(ValueError, match=r"'forces' has shape \(4, 3\), expected \(6, 3\)"):
        evaluate(model, n_atoms=6, n_local=4)


@pytest.mark.parametrize(
    "declared,actual", [("float64", torch.float32), ("float32", torch.float64)]
)
def test_buffer_dtype_must_match_metadata(core, tmp_path, declared, actual):
    module = OneWrongOutput("none", dtype=torch.float64 if declared == "float64" else torch.float32)
    module.linear = torch.nn.Linear(2, 2).to(module.scale.dtype)  # parameters of the right dtype
    module.register_buffer("offset", torch.zeros(3, dtype=actual))  # one buffer of the wrong one
    path = save(module, tmp_path / "mixed.pt", dtype=declared)
    with pytest.raises(
        ValueError,
        match=rf"declares dtype {declared} but its buffer 'offset' is "
        rf"{'Float' if actual == torch.float32 else 'Double'}",
    ):
        core.Model(path)


@pytest.mark.parametrize(
    "names,message",
    [
        ((" ",), r"lists no element names"),
        (("Si", "O", "Si"), r"lists element 'Si' twice in gnnff/type_names \(Si O Si\)"),
    ],
)
def test_type_names_must_be_non_empty_and_unique(core, tmp_path, names, message):
    path = save(OneWrongOutput("none"), tmp_path / "names.pt", type_names=names)
    with pytest.raises(ValueError, match=message + ".*re-export"):
        core.Model(path)
    # the Python reader refuses the same file
    from gnnff.export import load_exported

    with pytest.raises(ValueError, match="type_names"):
        load_exported(path)


def test_training_checkpoint_is_named_as_such(core, tmp_path):
    from gnnff.training.checkpoint import save_checkpoint

    path = str(tmp_path / "best.pt")
    save_checkpoint(
        {
            "model_config": {"name": "allegro"},
            "type_names": ["Si"],
            "dtype": "float64",
            "model_state": {"w": torch.zeros(2)},
        },
        path,
    )
    with pytest.raises(
        ValueError,
        match=r"best\.pt' is a gnnff training checkpoint, not an "
        r"exported model; export it with `gnnff export .*best\.pt "
        r"-o model\.pt`",
    ):
        core.Model(path)
    other = str(tmp_path / "weights.pt")
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"written by torch\.save .*not exported as TorchScript"):
        core.Model(other)
