"""ForceModel physics and the export contract, with the analytic models as truth.

Checks: forces are -dE/dx (finite differences), the virial is -dE/d(strain) (finite strain),
per-atom virials sum to the virial, LAMMPS-style ghost atoms (NUM_LOCAL, zero edge shifts,
image positions) reproduce the periodic result, batched == unbatched, metadata validation, and
export_model / load_exported round trips with clear errors for bad files.

Sign convention (LAMMPS): W = sum_edges r_ij (x) F_j. For the homogeneous deformation
x -> (1 + eps) x of positions and cell, dE/deps_ab = -W_ba.
"""

import os

import ase.build
import numpy as np
import pytest
import torch
import vesin
from test_analytic import potentials_dir, rattled

from gnnff import contract, keys
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model, load_exported
from gnnff.models.registry import build_model


def _models():
    sw = os.path.join(potentials_dir(), "Si.sw")
    return {
        "lennard_jones": build_model(
            "lennard_jones",
            type_names=["Si", "C"],
            epsilon=0.05,
            sigma=[[2.1, 1.9], [1.9, 1.7]],
            cutoff=4.0,
            shift=True,
        ),
        "stillinger_weber": build_model("stillinger_weber", potential_file=sw),
        "toy_message_passing": build_model(
            "toy_message_passing", type_names=["Si", "C"], r_max=3.0
        ),
    }


MODEL_NAMES = ["lennard_jones", "stillinger_weber", "toy_message_passing"]


def _structure(name, seed=11):
    if name == "stillinger_weber":
        return rattled(ase.build.bulk("Si", "diamond", a=5.43, cubic=True), seed, amplitude=0.15)
    return rattled(ase.build.bulk("SiC", "zincblende", a=4.36, cubic=True), seed, amplitude=0.15)


def _evaluate(model, atoms, atom_virial=False):
    graph = atoms_to_graph(atoms, model.type_names, model.r_max)
    if atom_virial:
        graph[keys.REQUEST_ATOM_VIRIAL] = torch.ones(1)
    return model(graph)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_virial_is_minus_strain_derivative_and_atom_virials_sum_to_it(name):
    model, atoms = _models()[name], _structure(name)
    out = _evaluate(model, atoms, atom_virial=True)
    virial = out[keys.VIRIAL][0].detach().numpy()
    h = 1e-6
    fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strained = atoms.copy()
                deformation = np.eye(3)
                deformation[a, b] += sign * h
                strained.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
                energies.append(_evaluate(model, strained)[keys.TOTAL_ENERGY].item())
            fd[b, a] = -(energies[0] - energies[1]) / (2 * h)
    assert np.abs(virial).max() > 0.1
    np.testing.assert_allclose(virial, fd, rtol=0, atol=1e-6)
    np.testing.assert_allclose(virial, virial.T, rtol=0, atol=1e-12)
    atom_sum = out[keys.ATOM_VIRIAL].sum(0).detach().numpy()
    np.testing.assert_allclose(atom_sum, virial, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        out[keys.ATOMIC_ENERGY].sum().item(), out[keys.TOTAL_ENERGY].item(), rtol=1e-14
    )


@pytest.mark.parametrize("name", ["lennard_jones", "stillinger_weber"])
def test_forces_are_minus_energy_gradient(name):
    model, atoms = _models()[name], _structure(name)
    forces = _evaluate(model, atoms)[keys.FORCES].detach().numpy()
    h = 1e-5
    for i in (0, 3):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            fd = -(
                _evaluate(model, plus)[keys.TOTAL_ENERGY].item()
                - _evaluate(model, minus)[keys.TOTAL_ENERGY].item()
            ) / (2 * h)
            assert abs(forces[i, a] - fd) < 1e-7, (i, a, forces[i, a], fd)


def lammps_style_graph(model, atoms):
    """Local atoms + explicit ghost images within interaction_range, edges with zero shift, as
    pair_style gnnff builds them; returns (graph, owner of every atom)."""
    n = len(atoms)
    reach = model.interaction_range
    images = np.array(
        [
            [i, j, k]
            for i in range(-3, 4)
            for j in range(-3, 4)
            for k in range(-3, 4)
            if (i, j, k) != (0, 0, 0)
        ]
    )
    positions, owners = [atoms.positions], [np.arange(n)]
    for shift in images @ atoms.cell.array:
        moved = atoms.positions + shift
        distance = np.linalg.norm(moved[:, None, :] - atoms.positions[None, :, :], axis=-1).min(1)
        near = distance < reach
        positions.append(moved[near])
        owners.append(np.arange(n)[near])
    positions, owners = np.concatenate(positions), np.concatenate(owners)
    i, j = vesin.NeighborList(cutoff=model.r_max, full_list=True).compute(
        points=positions, box=np.zeros((3, 3)), periodic=False, quantities="ij"
    )
    types = {name: t for t, name in enumerate(model.type_names)}
    atom_type = [types[s] for s in atoms.get_chemical_symbols()]
    graph = {
        keys.POSITIONS: torch.tensor(positions),
        keys.ATOM_TYPE: torch.tensor(atom_type)[torch.tensor(owners)],
        keys.EDGE_INDEX: torch.tensor(np.stack([i, j]).astype(np.int64)),
        keys.EDGE_SHIFT: torch.zeros(len(i), 3, dtype=torch.float64),
        keys.NUM_LOCAL: torch.tensor([n]),
        keys.REQUEST_ATOM_VIRIAL: torch.ones(1),
    }
    return graph, torch.tensor(owners)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_ghost_atoms_with_num_local_reproduce_the_periodic_result(name):
    model, atoms = _models()[name], _structure(name)
    periodic = _evaluate(model, atoms, atom_virial=True)
    graph, owners = lammps_style_graph(model, atoms)
    assert graph[keys.POSITIONS].shape[0] > 3 * len(atoms)
    ghosted = model(graph)
    n = len(atoms)
    np.testing.assert_allclose(
        ghosted[keys.TOTAL_ENERGY].item(), periodic[keys.TOTAL_ENERGY].item(), rtol=1e-12
    )
    assert ghosted[keys.ATOMIC_ENERGY][n:].abs().max().item() == 0.0
    torch.testing.assert_close(
        ghosted[keys.ATOMIC_ENERGY][:n], periodic[keys.ATOMIC_ENERGY], rtol=0, atol=1e-12
    )
    # LAMMPS adds ghost forces to their owners (reverse communication)
    folded = torch.zeros(n, 3, dtype=torch.float64).index_add(0, owners, ghosted[keys.FORCES])
    torch.testing.assert_close(folded, periodic[keys.FORCES], rtol=0, atol=1e-10)
    torch.testing.assert_close(ghosted[keys.VIRIAL], periodic[keys.VIRIAL], rtol=0, atol=1e-10)
    folded_virial = torch.zeros(n, 3, 3, dtype=torch.float64).index_add(
        0, owners, ghosted[keys.ATOM_VIRIAL]
    )
    torch.testing.assert_close(folded_virial, periodic[keys.ATOM_VIRIAL], rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batched_equals_unbatched(name):
    model = _models()[name]
    structures = [_structure(name, seed) for seed in (1, 2)]
    structures[1] = structures[1] * (1, 1, 2)
    singles = [_evaluate(model, a, atom_virial=True) for a in structures]
    graphs = [atoms_to_graph(a, model.type_names, model.r_max) for a in structures]
    offset = graphs[0][keys.POSITIONS].shape[0]
    batch = {
        keys.POSITIONS: torch.cat([g[keys.POSITIONS] for g in graphs]),
        keys.ATOM_TYPE: torch.cat([g[keys.ATOM_TYPE] for g in graphs]),
        keys.EDGE_INDEX: torch.cat(
            [graphs[0][keys.EDGE_INDEX], graphs[1][keys.EDGE_INDEX] + offset], 1
        ),
        keys.EDGE_SHIFT: torch.cat([g[keys.EDGE_SHIFT] for g in graphs]),
        keys.BATCH: torch.cat([torch.full((len(a),), k) for k, a in enumerate(structures)]),
        keys.NUM_GRAPHS: torch.tensor([2]),
        keys.REQUEST_ATOM_VIRIAL: torch.ones(1),
    }
    out = model(batch)
    for key in (keys.TOTAL_ENERGY, keys.VIRIAL):
        torch.testing.assert_close(
            out[key], torch.cat([s[key] for s in singles]), rtol=1e-13, atol=1e-12
        )
    for key in (keys.FORCES, keys.ATOM_VIRIAL, keys.ATOMIC_ENERGY):
        torch.testing.assert_close(
            out[key], torch.cat([s[key] for s in singles]), rtol=0, atol=1e-12
        )


GOOD = dict(
    r_max=4.0, interaction_range=8.0, type_names=["Si", "C"], dtype="float64", model_name="m"
)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(r_max=0.0), "r_max must be positive"),
        (dict(interaction_range=3.0), r"must be >= r_max"),
        (dict(type_names=[]), "type_names must be non-empty"),
        (dict(type_names=["Si C"]), "without spaces"),
        (dict(type_names=["Si", "Si"]), "must be unique"),
        (dict(dtype="float16"), "dtype must be one of"),
    ],
)
def test_make_metadata_rejects_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        contract.make_metadata(**{**GOOD, **change})


def test_metadata_round_trip_and_parse_errors():
    meta = contract.make_metadata(**GOOD)
    parsed = contract.parse_metadata(meta)
    assert parsed["r_max"] == 4.0 and parsed["interaction_range"] == 8.0
    assert (
        parsed["type_names"] == ["Si", "C"]
        and parsed["dtype"] == "float64"
        and parsed["units"] == "metal"
    )
    missing = {k: v for k, v in meta.items() if k != contract.META_R_MAX}
    with pytest.raises(ValueError, match=r"without gnnff metadata.*gnnff/r_max.*gnnff export"):
        contract.parse_metadata(missing, source="x.pt")
    with pytest.raises(ValueError, match="contract version 0.*re-export"):
        contract.parse_metadata({**meta, contract.META_CONTRACT_VERSION: "0"})


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_export_and_load_round_trip(tmp_path, name):
    model, atoms = _models()[name], _structure(name)
    if name == "toy_message_passing":
        from gnnff.models import features

        features.set_recording(model, True)  # export must switch recording off
    path = str(tmp_path / "model.pt")
    meta = export_model(model, path, lineage={"test": name})
    loaded, parsed = load_exported(path)
    assert parsed["model_name"] == name and parsed["dtype"] == "float64"
    assert parsed["r_max"] == model.r_max and parsed["interaction_range"] == model.interaction_range
    assert parsed["type_names"] == model.type_names and '"test"' in parsed["lineage"]
    assert meta[contract.META_DTYPE] == "float64"
    graph = atoms_to_graph(atoms, model.type_names, model.r_max)
    expected = model(dict(graph))
    got = loaded(dict(graph))
    assert keys.edge_feature_key(0) not in got
    for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL):
        torch.testing.assert_close(got[key], expected[key], rtol=1e-14, atol=1e-14)
    if name == "toy_message_passing":
        assert parsed["interaction_range"] == 2 * parsed["r_max"]


def test_load_exported_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist.*gnnff export"):
        load_exported(str(tmp_path / "nothing.pt"))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 this is not a model" * 10)
    with pytest.raises(ValueError, match="not a readable TorchScript file.*re-export"):
        load_exported(str(corrupt))
    truncated = tmp_path / "truncated.pt"
    export_model(_models()["lennard_jones"], str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable TorchScript file"):
        load_exported(str(truncated))
    bare = tmp_path / "bare.pt"
    torch.jit.save(torch.jit.script(_models()["lennard_jones"]), str(bare))
    with pytest.raises(ValueError, match="without gnnff metadata"):
        load_exported(str(bare))
