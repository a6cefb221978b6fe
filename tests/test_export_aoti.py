"""`gnnff export --format aoti`: the AOTInductor package carries the TorchScript file's metadata
and gives its numbers (float64, 1e-10 relative) through the ASE calculator and the LAMMPS-style
call (ghost atoms, no edge shifts).

One AOTInductor compilation of this small pair_mlp took up to 7 minutes (fixture with training,
first run, load average ~7) on the shared 2-core test machine, 1 minute when inductor's on-disk
cache (/tmp/torchinductor_<user>) already held its kernels; so the package is built once per
session (module fixture) and those tests are marked slow. The refusal test needs no compilation."""

import json
import os

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from gnnff import contract, keys
from gnnff.calculator import GnnffCalculator
from gnnff.cli import main
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model, load_exported
from gnnff.export_aoti import export_aoti, load_aoti
from gnnff.models.base import EnergyModel
from gnnff.models.registry import build_model
from gnnff.models.wrapper import ForceModel
from gnnff.training.config import resolve_config
from gnnff.training.trainer import Trainer

TYPES = ["Cu", "Al"]
R_MAX = 4.5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(TorchScript path, AOTI path) of one trained float64 pair_mlp, exported by the CLI."""
    folder = tmp_path_factory.mktemp("aoti")
    frames = []
    for k in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.numbers[k % 4] = 13
        atoms.rattle(0.1, seed=k)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    ase.io.write(folder / "d.extxyz", frames)
    model = {"name": "pair_mlp", "type_names": TYPES, "r_max": R_MAX, "hidden": 8}
    config = resolve_config(
        {
            "model": {**model, "num_layers": 1, "num_channels": 4},
            "data": {"train": str(folder / "d.extxyz"), "val_fraction": 0.25},
            "training": {"max_epochs": 1, "batch_size": 2, "dtype": "float64"},
            "output": {"dir": str(folder / "run")},
        }
    )
    config["training"]["progress_bar"] = False
    Trainer(config).run()
    checkpoint = str(folder / "run" / "best.pt")
    script, package = str(folder / "model.pt"), str(folder / "model.pt2")
    assert main(["export", checkpoint, "-o", script]) == 0
    assert main(["export", checkpoint, "-o", package, "--format", "aoti"]) == 0
    return script, package


def _relative(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _structures():
    rng = np.random.default_rng(1)
    out = []
    for repeat in ((1, 1, 1), (2, 2, 1)):  # 4 and 16 atoms: N and E differ from the trace's
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
        atoms.numbers[rng.integers(len(atoms), size=2)] = 13
        atoms.rattle(0.1, seed=2)
        out.append(atoms)
    cluster = out[1].copy()
    cluster.pbc = False
    out.append(cluster)
    return out


@pytest.mark.slow
def test_package_metadata_equals_torchscript(exported):
    script, package = exported
    _, meta_script = load_exported(script)
    _, meta_package = load_aoti(package)
    assert meta_package == meta_script
    assert meta_package["dtype"] == "float64" and meta_package["type_names"] == TYPES


@pytest.mark.slow
def test_calculator_equals_torchscript(exported):
    script, package = exported
    for atoms in _structures():
        results = []
        for path in (script, package):
            atoms.calc = GnnffCalculator(path)
            props = ["energy", "energies", "forces"] + (["stress"] if atoms.pbc.all() else [])
            results.append({p: np.asarray(atoms.calc.get_property(p, atoms)) for p in props})
        for prop, ref in results[0].items():
            error = np.abs(results[1][prop] - ref).max() / max(np.abs(ref).max(), 1e-300)
            assert error < 1e-10, (len(atoms), prop, error)


@pytest.mark.slow
def test_lammps_style_call_equals_torchscript(exported):
    """Ghost atoms (num_local < N), no edge shift, atom virial requested: as pair_style calls."""
    script, package = exported
    scripted, _ = load_exported(script)
    compiled, _ = load_aoti(package)
    atoms = _structures()[2]
    graph = atoms_to_graph(atoms, TYPES, R_MAX, dtype=torch.float64)
    inputs = {k: graph[k] for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX)}
    inputs[keys.NUM_LOCAL] = torch.tensor([len(atoms) - 5])
    inputs[keys.REQUEST_ATOM_VIRIAL] = torch.ones(1, dtype=torch.long)
    ref, got = scripted(dict(inputs)), compiled(dict(inputs))
    assert float(ref[keys.ATOMIC_ENERGY][-5:].abs().max()) == 0.0  # ghosts carry no energy
    for key in contract.AOTI_OUTPUTS.split():
        assert got[key].shape == ref[key].shape and got[key].dtype == torch.float64, key
        assert _relative(got[key], ref[key].detach()) < 1e-10, key


@pytest.mark.slow
def test_gnnff_eval_reads_the_package(exported, tmp_path):
    """`gnnff eval` on a package (one structure per call) gives the TorchScript file's errors."""
    data = os.path.join(os.path.dirname(exported[0]), "d.extxyz")
    reports = []
    for k, path in enumerate(exported):
        out = str(tmp_path / f"eval{k}.json")
        assert main(["eval", path, data, "--json", out]) == 0
        with open(out) as f:
            reports.append(json.load(f))
    metrics = [k for k in reports[0] if k.endswith("_mae") or k.endswith("_rmse")]
    assert {"energy_mae", "forces_mae"} <= set(metrics)
    for key in metrics:
        assert abs(reports[1][key] - reports[0][key]) <= 1e-10 * abs(reports[0][key]), key


@pytest.mark.slow
def test_package_refuses_a_batch_of_several_structures(exported):
    compiled, _ = load_aoti(exported[1])
    graph = atoms_to_graph(_structures()[0], TYPES, R_MAX, dtype=torch.float64)
    graph[keys.BATCH] = torch.zeros(4, dtype=torch.long)
    graph[keys.NUM_GRAPHS] = torch.tensor([2])
    with pytest.raises(ValueError, match="one structure per call"):
        compiled(graph)


class _DataDependentEnergy(EnergyModel):
    """An energy with Python control flow on input values: it cannot be traced into one graph, so the AOTI export must refuse it with a clear error (TorchScript still works)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.ones(1, dtype=torch.float64))
        self.declare_edge_features([])

    def forward(self, data):
        r = data[keys.EDGE_VECTORS].norm(dim=1)
        energy = torch.zeros(data[keys.POSITIONS].shape[0], dtype=r.dtype)
        if bool(r.min() < 3.0):  # Python control flow on a value
            energy = energy + self.w
        data[keys.ATOMIC_ENERGY_RAW] = energy
        return data


def test_export_refuses_untraceable_model_and_wrong_suffix(tmp_path):
    model = ForceModel(_DataDependentEnergy(), ["Ar"], 4.0, 4.0, "data_dependent")
    with pytest.raises(ValueError, match="cannot be exported with AOTInductor.*TorchScript"):
        export_aoti(model, str(tmp_path / "m.pt2"))
    assert not (tmp_path / "m.pt2").exists()
    with pytest.raises(ValueError, match="is a .pt2 file"):
        export_aoti(model, str(tmp_path / "m.pt"))


@pytest.mark.slow
def test_one_type_lennard_jones_exports_and_equals_torchscript(tmp_path):
    """A one-type model failed in AOTInductor's CPU code generator when compiled with more than
    one thread (a scatter of the total energy into a one-element buffer; the suite runs with one
    thread, users export with all cores); the package must compile and give the TorchScript
    file's numbers on a periodic fcc argon cell, ghosts and atom virial as pair_style calls it."""
    model = build_model(
        "lennard_jones", type_names=["Ar"], epsilon=0.0104, sigma=3.4, cutoff=6.0, dtype="float64"
    )
    script, package = str(tmp_path / "lj.pt"), str(tmp_path / "lj.pt2")
    export_model(model, script)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        export_aoti(model, package)
    finally:
        torch.set_num_threads(threads)
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.1, seed=3)
    graph = atoms_to_graph(atoms, ["Ar"], 6.0, dtype=torch.float64)
    inputs = {k: graph[k] for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX)}
    inputs[keys.EDGE_SHIFT] = graph[keys.EDGE_SHIFT]
    inputs[keys.NUM_LOCAL] = torch.tensor([len(atoms) - 3])
    inputs[keys.REQUEST_ATOM_VIRIAL] = torch.ones(1, dtype=torch.long)
    ref = load_exported(script)[0](dict(inputs))
    got = load_aoti(package)[0](dict(inputs))
    assert float(ref[keys.TOTAL_ENERGY].abs()) > 0.1  # 32 atoms of bound argon
    for key in contract.AOTI_OUTPUTS.split():
        assert _relative(got[key], ref[key].detach()) < 1e-10, key
