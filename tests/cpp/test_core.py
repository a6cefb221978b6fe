"""The C++ model library (gnnff._core, the code path of pair_style gnnff) against Python.

The same exported file is evaluated by the Python ForceModel and by C++ on a random periodic
structure built by gnnff.data.graph.atoms_to_graph; float64 must agree to 1e-12 relative.
"""

import ase
import numpy as np
import pytest
import torch

from gnnff import contract, keys
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model
from gnnff.models.registry import build_model


def random_structure(seed, symbols, n_atoms=24, box=7.5):
    rng = np.random.default_rng(seed)
    cell = np.diag([box, box * 1.1, box * 0.95]) + 0.3 * rng.standard_normal((3, 3))
    # a jittered grid: random but no overlapping atoms
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_atoms]
    frac = (grid + 0.5 + 0.15 * rng.standard_normal(grid.shape)) / 3.0
    return ase.Atoms(
        symbols=[symbols[k % len(symbols)] for k in range(n_atoms)],
        scaled_positions=frac,
        cell=cell,
        pbc=True,
    )


def load_python(path):
    """The exported module and its metadata, read by torch (independent of the C++ loader)."""
    extra = {k: "" for k in contract.REQUIRED_KEYS}
    module = torch.jit.load(path, _extra_files=extra)
    # torch 2.13 returns extra files as bytes (export.load_exported needs the same decode)
    extra = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
    return module, contract.parse_metadata(extra, path)


MODELS = [
    ("lennard_jones", dict(type_names=["Ar", "Kr"], sigma=[[2.2, 2.4], [2.4, 2.6]], cutoff=4.0)),
    ("toy_message_passing", dict(type_names=["Si", "O"], r_max=3.2)),
]


@pytest.mark.parametrize("name,kwargs", MODELS, ids=[m[0] for m in MODELS])
@pytest.mark.parametrize("num_local", [None, 10])
def test_cpp_equals_python_float64(core, tmp_path, name, kwargs, num_local):
    path = str(tmp_path / "model.pt")
    export_model(build_model(name, dtype="float64", **kwargs), path)
    module, meta = load_python(path)
    graph = atoms_to_graph(
        random_structure(1, meta["type_names"]), meta["type_names"], meta["r_max"]
    )
    assert graph[keys.EDGE_INDEX].shape[1] > 100  # a real neighbour list, not an empty graph

    data = {k: graph[k] for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX, keys.EDGE_SHIFT)}
    n = graph[keys.POSITIONS].shape[0]
    data[keys.NUM_LOCAL] = torch.tensor([n if num_local is None else num_local])
    data[keys.REQUEST_ATOM_VIRIAL] = torch.ones(1)
    expected = module(dict(data))

    model = core.Model(path, "cpu")
    got = model.evaluate(
        pos=graph[keys.POSITIONS].numpy(),
        atom_type=graph[keys.ATOM_TYPE].numpy(),
        edge_index=graph[keys.EDGE_INDEX].numpy(),
        edge_shift=graph[keys.EDGE_SHIFT].numpy(),
        num_local=int(data[keys.NUM_LOCAL]),
        atom_virial=True,
    )
    for key in (keys.TOTAL_ENERGY, keys.ATOMIC_ENERGY, keys.FORCES, keys.VIRIAL, keys.ATOM_VIRIAL):
        want = expected[key].detach().numpy()
        assert got[key].shape == want.shape
        scale = np.abs(want).max()
        assert scale > 0
        np.testing.assert_allclose(got[key], want, rtol=1e-12, atol=1e-12 * scale, err_msg=key)


def test_float32_model_runs_in_float32(core, tmp_path):
    path = str(tmp_path / "model32.pt")
    export_model(
        build_model("lennard_jones", type_names=["Ar"], sigma=2.3, cutoff=4.0, dtype="float32"),
        path,
    )
    module, meta = load_python(path)
    assert meta["dtype"] == "float32"
    graph = atoms_to_graph(random_structure(2, ["Ar"]), ["Ar"], 4.0, dtype=torch.float32)
    expected = module(
        {
            keys.POSITIONS: graph[keys.POSITIONS],
            keys.ATOM_TYPE: graph[keys.ATOM_TYPE],
            keys.EDGE_INDEX: graph[keys.EDGE_INDEX],
            keys.EDGE_SHIFT: graph[keys.EDGE_SHIFT],
        }
    )
    got = core.Model(path).evaluate(
        graph[keys.POSITIONS].double().numpy(),
        graph[keys.ATOM_TYPE].numpy(),
        graph[keys.EDGE_INDEX].numpy(),
        graph[keys.EDGE_SHIFT].double().numpy(),
        num_local=graph[keys.POSITIONS].shape[0],
    )
    # identical float32 arithmetic on both sides
    np.testing.assert_array_equal(got[keys.FORCES], expected[keys.FORCES].double().numpy())


def test_metadata_is_read(core, tmp_path):
    path = str(tmp_path / "mp.pt")
    written = export_model(
        build_model("toy_message_passing", type_names=["Si", "O"], r_max=2.5), path
    )
    meta = core.Model(path).metadata
    assert meta["type_names"] == ["Si", "O"]
    assert meta["r_max"] == 2.5 and meta["interaction_range"] == 5.0
    assert meta["dtype"] == "float64" and meta["units"] == contract.UNITS
    assert meta["lineage"] == written[contract.META_LINEAGE]


def test_errors_name_problem_and_fix(core, tmp_path):
    with pytest.raises(ValueError, match="does not exist.*gnnff export"):
        core.Model(str(tmp_path / "missing.pt"))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError, match="not a readable TorchScript file.*re-export"):
        core.Model(str(corrupt))
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(plain))
    with pytest.raises(ValueError, match="without gnnff metadata.*gnnff export"):
        core.Model(str(plain))
    with pytest.raises(ValueError, match="not valid; use auto, cpu, cuda"):
        core.Model(str(plain), "gpu0")


def rattled_silicon_graphs(count, seed=0):
    """Graphs of ``count`` rattled 64-atom diamond-Si cells: a different edge count each, as
    MD steps give."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    for _ in range(count):
        atoms = bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
        atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
        yield atoms_to_graph(atoms, ["Si"], 4.0, dtype=torch.float32)


def test_cpu_runs_the_unspecialised_graph(core, tmp_path):
    """On the CPU the loader runs TorchScript unspecialised (cpp/src/model.cpp): a float32
    allegro's forces equal eager autograd's bit for bit on every call, also beyond the 12 input
    shapes torch's default strategy specialises for (its specialised autodiff differs from
    eager in the last bits, up to ~3e-5 of the largest force here)."""
    torch.manual_seed(0)
    model = build_model("allegro", type_names=["Si"], preset="small", r_max=4.0).float()
    path = str(tmp_path / "allegro32.pt")
    export_model(model, path)
    model.eval()
    cpp = core.Model(path, "cpu")
    for call, graph in enumerate(rattled_silicon_graphs(16)):
        inputs = {k: graph[k] for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX)}
        inputs[keys.EDGE_SHIFT] = graph[keys.EDGE_SHIFT]
        eager = model(dict(inputs))[keys.FORCES].detach().double().numpy()
        got = cpp.evaluate(
            graph[keys.POSITIONS].double().numpy(),
            graph[keys.ATOM_TYPE].numpy(),
            graph[keys.EDGE_INDEX].numpy(),
            graph[keys.EDGE_SHIFT].double().numpy(),
            num_local=graph[keys.POSITIONS].shape[0],
        )
        np.testing.assert_array_equal(got[keys.FORCES], eager, err_msg=f"call {call}")
