"""Forces and virials summed in C++ from a model's edge gradient (the path pair_style gnnff
takes on the CPU, docs/model_contract.md "Edge gradient") against the model's own forces.

The caller (gnnff._core here, the pair style in MD) passes the edge vectors and asks for
dE/dr_ij; gnnff::Model sums F_i += g_ij, F_j -= g_ij, W = -sum r_ij (x) g_ij and the per-atom
split in float64. Independent truths: the same file called without edge vectors (ForceModel's
own index_adds: float64 forces and per-atom virials are the same bits, in the same order), and
numpy's float64 sums of the edge gradient the module returns to Python (float32 models).
"""

import os
from typing import Dict

import numpy as np
import pytest
import torch
from test_core import load_python, random_structure

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model
from gnnff.models.registry import build_model

MODELS = [
    ("lennard_jones", dict(type_names=["Ar", "Kr"], sigma=[[2.2, 2.4], [2.4, 2.6]], cutoff=4.0)),
    ("toy_message_passing", dict(type_names=["Si", "O"], r_max=3.2)),
    ("pair_mlp", dict(type_names=["Si", "O"], r_max=3.2)),
]


def graph_and_vectors(meta, dtype, seed=1):
    graph = atoms_to_graph(
        random_structure(seed, meta["type_names"]), meta["type_names"], meta["r_max"], dtype=dtype
    )
    pos = graph[keys.POSITIONS].double().numpy()
    centre, neighbour = graph[keys.EDGE_INDEX].numpy()
    # r_ij = pos[j] - pos[i] + shift, in the order ForceModel computes it
    vectors = pos[neighbour] - pos[centre] + graph[keys.EDGE_SHIFT].double().numpy()
    return graph, vectors


def evaluate(model, graph, vectors=None, num_local=None):
    n = graph[keys.POSITIONS].shape[0]
    return model.evaluate(
        graph[keys.POSITIONS].double().numpy(),
        graph[keys.ATOM_TYPE].numpy(),
        graph[keys.EDGE_INDEX].numpy(),
        graph[keys.EDGE_SHIFT].double().numpy(),
        num_local=n if num_local is None else num_local,
        atom_virial=True,
        edge_vectors=vectors,
    )


@pytest.mark.parametrize("name,kwargs", MODELS, ids=[m[0] for m in MODELS])
@pytest.mark.parametrize("num_local", [None, 10])
def test_float64_sums_are_the_models_own_bits(core, tmp_path, name, kwargs, num_local):
    path = str(tmp_path / "model.pt")
    model = build_model(name, **kwargs)
    export_model(model.to(torch.float64), path)
    _, meta = load_python(path)
    graph, vectors = graph_and_vectors(meta, torch.float64)
    assert graph[keys.EDGE_INDEX].shape[1] > 100
    own = evaluate(core.Model(path), graph, num_local=num_local)
    summed = evaluate(core.Model(path), graph, vectors, num_local=num_local)
    for key in (keys.TOTAL_ENERGY, keys.ATOMIC_ENERGY, keys.FORCES, keys.ATOM_VIRIAL):
        np.testing.assert_array_equal(summed[key], own[key], err_msg=key)
    # the global virial: one BLAS product in the model, a loop in C++ (summation order differs)
    scale = np.abs(own[keys.VIRIAL]).max()
    assert scale > 0
    np.testing.assert_allclose(summed[keys.VIRIAL], own[keys.VIRIAL], rtol=0, atol=1e-13 * scale)


def test_float32_sums_are_float64_sums_of_the_edge_gradient(core, tmp_path):
    path = str(tmp_path / "model32.pt")
    torch.manual_seed(0)
    export_model(build_model("pair_mlp", type_names=["Si", "O"], r_max=3.2).float(), path)
    module, meta = load_python(path)
    graph, vectors = graph_and_vectors(meta, torch.float32)
    data = {k: graph[k] for k in (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX)}
    data[keys.EDGE_VECTORS] = torch.from_numpy(vectors).float()
    data[keys.REQUEST_EDGE_GRADIENT] = torch.ones(1)
    returned = module(dict(data))
    assert keys.FORCES not in returned  # asked for the gradient, the model skips its scatters
    g = returned[keys.EDGE_GRADIENT].double().numpy()
    r = data[keys.EDGE_VECTORS].double().numpy()
    centre, neighbour = graph[keys.EDGE_INDEX].numpy()
    forces = np.zeros((graph[keys.POSITIONS].shape[0], 3))
    np.add.at(forces, centre, g)
    np.add.at(forces, neighbour, -g)
    virial = -r.T @ g

    got = evaluate(core.Model(path), graph, vectors)
    scale = np.abs(forces).max()
    np.testing.assert_allclose(got[keys.FORCES], forces, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(
        got[keys.VIRIAL][0], virial, rtol=0, atol=1e-12 * np.abs(virial).max()
    )
    np.testing.assert_allclose(got[keys.ATOM_VIRIAL].sum(0), virial, atol=1e-12 * scale)
    # and the model's own float32 forces agree to float32 rounding
    own = evaluate(core.Model(path), graph)
    np.testing.assert_allclose(own[keys.FORCES], forces, rtol=0, atol=1e-5 * scale)


def test_model_without_edge_gradient_keeps_its_own_forces(core):
    """A file exported before the edge gradient existed (tests/data/legacy) ignores the request:
    the loader then uses the forces and virials the file returns."""
    path = os.path.join(os.path.dirname(__file__), "..", "data", "legacy", "pair_mlp_exported.pt")
    model = core.Model(path)
    meta = model.metadata
    graph, vectors = graph_and_vectors(
        meta, torch.float32 if meta["dtype"] == "float32" else torch.float64
    )
    own = evaluate(core.Model(path), graph)
    for _ in range(2):  # asked once, then called without the request
        got = evaluate(model, graph, vectors)
        for key in (keys.FORCES, keys.VIRIAL, keys.ATOM_VIRIAL):
            np.testing.assert_array_equal(got[key], own[key], err_msg=key)


class WrongEdgeGradient(torch.nn.Module):
    """Answers the request with one row too few."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        out = self.inner(data)
        if keys.EDGE_GRADIENT in out:
            out[keys.EDGE_GRADIENT] = out[keys.EDGE_GRADIENT][1:]
        return out


def test_wrong_edge_gradient_is_named(core, tmp_path):
    path = str(tmp_path / "bad.pt")
    model = build_model("lennard_jones", type_names=["Ar"], sigma=2.3, cutoff=4.0)
    written = export_model(model, path)
    module, meta = load_python(path)
    torch.jit.save(torch.jit.script(WrongEdgeGradient(module)), path, _extra_files=written)
    graph, vectors = graph_and_vectors(meta, torch.float64)
    with pytest.raises(ValueError, match=r"'edge_gradient' has shape .*expected .*\(E, 3\)"):
        evaluate(core.Model(path), graph, vectors)
