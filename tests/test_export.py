"""`gnnff export`: the TorchScript file equals the eager model and carries the contract metadata."""

import json

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from gnnff import contract, keys
from gnnff.cli import main
from gnnff.data.graph import atoms_to_graph
from gnnff.export import load_exported
from gnnff.model_io import load_model
from gnnff.training.config import resolve_config
from gnnff.training.trainer import Trainer

TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


def _train(tmp_path, dtype):
    frames = []
    for k in range(8):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.numbers[k % 4] = 13
        atoms.rattle(0.1, seed=k)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    ase.io.write(tmp_path / "d.extxyz", frames)
    config = resolve_config(
        {
            "model": {"name": "pair_mlp", "type_names": ["Cu", "Al"], "r_max": 4.5, "hidden": 16},
            "data": {"train": str(tmp_path / "d.extxyz"), "val_fraction": 0.25},
            "training": {
                "max_epochs": 1,
                "batch_size": 2,
                "dtype": dtype,
                "device": "cpu",
                "progress_bar": False,
            },
            "output": {"dir": str(tmp_path / "run")},
        }
    )
    Trainer(config).run()
    return str(tmp_path / "run" / "best.pt")


def _random_structures(rng, n=7, min_distance=2.0):
    """A random periodic cell and a random cluster, atoms no closer than min_distance (Å)."""
    out = []
    for periodic in (True, False):
        cell = np.diag(rng.uniform(5.0, 6.0, size=3)) + rng.uniform(-0.3, 0.3, size=(3, 3))
        atoms = Atoms(numbers=rng.choice([29, 13], size=n), cell=cell, pbc=periodic)
        while True:
            atoms.set_scaled_positions(rng.uniform(size=(n, 3)))
            distances = atoms.get_all_distances(mic=periodic)
            if distances[np.triu_indices(n, 1)].min() > min_distance:
                break
        out.append(atoms)
    return out


def _relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exported_equals_eager(tmp_path, dtype):
    checkpoint = _train(tmp_path, dtype)
    out_file = str(tmp_path / "model.pt")
    assert main(["export", checkpoint, "-o", out_file]) == 0
    scripted, meta = load_exported(out_file)
    eager = load_model(checkpoint)
    assert meta["dtype"] == dtype and meta["type_names"] == ["Cu", "Al"] and meta["r_max"] == 4.5
    assert (
        meta["interaction_range"] == 4.5
        and meta["model_name"] == "pair_mlp"
        and meta["units"] == "metal"
    )
    eager64 = load_model(checkpoint).double()
    rng = np.random.default_rng(0)
    for _ in range(3):
        for atoms in _random_structures(rng):
            graph = atoms_to_graph(atoms, ["Cu", "Al"], 4.5, dtype=getattr(torch, dtype))
            ref, got = eager(dict(graph)), scripted(dict(graph))
            for key in (keys.TOTAL_ENERGY, keys.ATOMIC_ENERGY, keys.FORCES, keys.VIRIAL):
                assert got[key].dtype == getattr(torch, dtype)
            for key in (keys.TOTAL_ENERGY, keys.ATOMIC_ENERGY):
                assert _relative_error(got[key].detach(), ref[key].detach()) < TOLERANCE[dtype], key
            # Forces and virial are sums of per-edge gradients that nearly cancel; in float32 the
            # scripted and eager kernels differ by a few ulps per edge, which the cancellation can
            # amplify past 1e-6 of |F| (measured 0.7e-6 .. 7e-6). Required: within 1e-6 relative, or
            # within twice the eager model's own float32 rounding (eager float32 vs float64).
            graph64 = atoms_to_graph(atoms, ["Cu", "Al"], 4.5, dtype=torch.float64)
            exact = eager64(dict(graph64))
            for key in (keys.FORCES, keys.VIRIAL):
                error = float((got[key] - ref[key]).detach().norm() / ref[key].detach().norm())
                if dtype == "float64":
                    assert error < TOLERANCE[dtype], key
                else:
                    rounding = float(
                        (ref[key].detach().double() - exact[key].detach()).norm()
                        / exact[key].detach().norm()
                    )
                    assert error < max(TOLERANCE[dtype], 2.0 * rounding), (key, error, rounding)


def test_export_lineage_names_checkpoint_and_data(tmp_path):
    checkpoint = _train(tmp_path, "float64")
    out_file = str(tmp_path / "model.pt")
    main(["export", checkpoint, "-o", out_file])
    extra = {k: "" for k in contract.REQUIRED_KEYS}
    torch.jit.load(out_file, _extra_files=extra)
    raw = extra[contract.META_LINEAGE]
    lineage = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    assert lineage["checkpoint"]["path"].endswith("best.pt") and lineage["weights"] == "ema"
    assert lineage["data"]["files"]["train"][0]["path"].endswith("d.extxyz")
    assert len(lineage["data"]["files"]["train"][0]["sha256"]) == 64
    assert lineage["model_name"] == "pair_mlp"


def test_export_refuses_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"junk")
    assert main(["export", str(tmp_path / "x.pt"), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ")
        and "not a readable gnnff checkpoint" in err
        and "Traceback" not in err
    )
    with pytest.raises(
        ValueError, match="not a readable gnnff checkpoint"
    ):  # --debug: the exception itself
        main(["export", str(tmp_path / "x.pt"), "-o", str(tmp_path / "m.pt"), "--debug"])


def test_loaded_on_the_cpu_the_model_runs_unspecialised(tmp_path):
    """load_exported on the CPU runs TorchScript unspecialised, as pair_style gnnff does: a
    float32 allegro's forces equal eager autograd's bit for bit on every call, also beyond the
    12 input shapes torch's default strategy specialises for (there they differ in the last
    bits); the setting is torch's own, process-wide."""
    from gnnff.export import export_model
    from gnnff.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("allegro", type_names=["Si"], preset="small", r_max=4.0).float()
    path = str(tmp_path / "allegro32.pt")
    export_model(model, path)
    model.eval()
    default = torch.jit.set_fusion_strategy([("STATIC", 2), ("DYNAMIC", 10)])  # torch's own
    try:
        module, _ = load_exported(path)
        rng = np.random.default_rng(0)
        for call in range(16):
            atoms = bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
            atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
            graph = atoms_to_graph(atoms, ["Si"], 4.0, dtype=torch.float32)
            inputs = {k: graph[k] for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX)}
            inputs[keys.EDGE_SHIFT] = graph[keys.EDGE_SHIFT]
            want = model(dict(inputs))[keys.FORCES].detach()
            got = module(dict(inputs))[keys.FORCES].detach()
            assert torch.equal(got, want), f"call {call}: {float((got - want).abs().max())}"
    finally:
        torch.jit.set_fusion_strategy(default)
