"""Symmetry checks: rotation and reflection, translation, permutation (exact operations, our own
float64 Wigner matrices), e3nn's ``equivariance_error`` as a second implementation, and the
declared edge features transforming as their irreps."""

import numpy as np
import torch
from e3nn import o3
from e3nn.util.test import equivariance_error

from gnnff import keys
from gnnff.models import features
from gnnff.testing.helpers import (
    RTOL,
    assert_close,
    assert_nontrivial,
    evaluate,
    evaluate_atoms,
    graph_of,
    prepare,
    random_cluster,
    random_crystal,
    random_rotation,
    wigner_d,
)


def check_rotation_reflection(model, dtype: torch.dtype):
    """E invariant, F rotate, virial W -> R W R^T, for a proper rotation and a reflection."""
    prepare(model, dtype)
    for atoms in (random_cluster(model.type_names), random_crystal(model.type_names)):
        ref = evaluate_atoms(model, atoms, dtype)
        assert_nontrivial(ref[keys.FORCES])
        for name, rot in (("rotation", random_rotation(3)), ("reflection", -random_rotation(4))):
            moved = atoms.copy()
            moved.positions = atoms.positions @ rot.T
            if atoms.pbc.any():
                moved.cell = atoms.cell.array @ rot.T
            out = evaluate_atoms(model, moved, dtype)
            r = torch.as_tensor(rot)
            assert_close(
                out[keys.TOTAL_ENERGY], ref[keys.TOTAL_ENERGY], RTOL[dtype], f"energy after {name}"
            )
            assert_close(
                out[keys.FORCES],
                ref[keys.FORCES].double() @ r.T,
                RTOL[dtype],
                f"forces after {name}",
            )
            assert_close(
                out[keys.VIRIAL][0],
                r @ ref[keys.VIRIAL][0].double() @ r.T,
                RTOL[dtype],
                f"virial after {name}",
            )


def check_translation(model, dtype: torch.dtype):
    prepare(model, dtype)
    for atoms in (random_cluster(model.type_names), random_crystal(model.type_names)):
        ref = evaluate_atoms(model, atoms, dtype)
        moved = atoms.copy()
        moved.positions = atoms.positions + np.array([1.3, -0.7, 2.9])
        out = evaluate_atoms(model, moved, dtype)
        assert_close(
            out[keys.TOTAL_ENERGY], ref[keys.TOTAL_ENERGY], RTOL[dtype], "energy after translation"
        )
        assert_close(out[keys.FORCES], ref[keys.FORCES], RTOL[dtype], "forces after translation")


def check_permutation(model, dtype: torch.dtype):
    prepare(model, dtype)
    for atoms in (random_cluster(model.type_names), random_crystal(model.type_names)):
        ref = evaluate_atoms(model, atoms, dtype)
        perm = np.random.default_rng(5).permutation(len(atoms))
        out = evaluate_atoms(model, atoms[perm], dtype)
        assert_close(
            out[keys.TOTAL_ENERGY], ref[keys.TOTAL_ENERGY], RTOL[dtype], "energy after permutation"
        )
        assert_close(
            out[keys.FORCES], ref[keys.FORCES][perm], RTOL[dtype], "forces after permutation"
        )
        assert_close(
            out[keys.ATOMIC_ENERGY],
            ref[keys.ATOMIC_ENERGY][perm],
            RTOL[dtype],
            "atomic energies after permutation",
        )


def check_e3nn_equivariance(model, dtype: torch.dtype, trials: int = 2):
    """A second implementation of the O(3) and translation checks: e3nn's ``equivariance_error``
    (random rotations drawn by e3nn, with and without inversion and a random translation) on
    positions -> (energy, forces) of a cluster, whose edges no such move changes.

    Positions and forces are given to e3nn as "cartesian_points", so they are moved with e3nn's
    exact 3x3 matrix (its Irreps("1o").D_from_matrix goes through Euler angles and is only ~1e-8
    accurate in float64); forces are checked without translation (they do not translate)."""
    prepare(model, dtype)
    data = graph_of(model, random_cluster(model.type_names), dtype)

    def energy(positions: torch.Tensor):
        return evaluate(model, dict(data, **{keys.POSITIONS: positions}))[keys.TOTAL_ENERGY]

    def forces(positions: torch.Tensor):
        return evaluate(model, dict(data, **{keys.POSITIONS: positions}))[keys.FORCES]

    scale = float(forces(data[keys.POSITIONS]).abs().max())  # energy in eV compared to |F| x 1 Å
    assert scale > 1e-6, "forces are all ~0: the check would be vacuous"
    tol = RTOL[dtype] * max(scale, 1e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(17)  # e3nn draws its transformations from the global RNG
        by_energy = equivariance_error(
            energy,
            [data[keys.POSITIONS]],
            irreps_in=["cartesian_points"],
            irreps_out=[o3.Irreps("0e")],
            ntrials=trials,
        )
        by_forces = equivariance_error(
            forces,
            [data[keys.POSITIONS]],
            irreps_in=["cartesian_points"],
            irreps_out=["cartesian_points"],
            ntrials=trials,
            do_translation=False,
        )
    for what, errors in (("energy", by_energy), ("forces", by_forces)):
        for (parity, translated), error in errors.items():
            error = float(error.max())
            assert error <= tol, (
                f"{what} not equivariant under e3nn's random O(3) element (inversion {bool(parity)}, "
                f"translation {translated}): error {error:.3e} > {tol:.3e}"
            )


def check_edge_feature_interface(model, dtype: torch.dtype, expect_features: bool = True):
    """Off: no feature keys. On: one (E, irreps.dim) tensor per layer, equivariant as declared.

    ``expect_features=False`` is for models without layers (analytic potentials): they must
    declare none and record none."""
    prepare(model, dtype)
    irreps_list = features.edge_feature_irreps(model)
    atoms = random_cluster(model.type_names, n_atoms=6)
    data = graph_of(model, atoms, dtype)
    if not expect_features:
        assert irreps_list == [], f"declares edge features {irreps_list} but the test expects none"
        try:
            features.set_recording(model, True)
            on = evaluate(model, data)
        finally:
            features.set_recording(model, False)
        assert not any(k.startswith(keys.EDGE_FEATURES_PREFIX) for k in on), (
            "records undeclared features"
        )
        return
    assert len(irreps_list) >= 1, "a model must expose at least one layer of edge features"
    off = evaluate(model, data)
    assert not any(k.startswith(keys.EDGE_FEATURES_PREFIX) for k in off), (
        "features written while not recording"
    )
    try:
        features.set_recording(model, True)
        on = evaluate(model, data)
        rot = random_rotation(7)
        moved = atoms.copy()
        moved.positions = atoms.positions @ rot.T
        on_rot = evaluate(model, graph_of(model, moved, dtype))
    finally:
        features.set_recording(model, False)
    assert_close(
        on[keys.TOTAL_ENERGY], off[keys.TOTAL_ENERGY], RTOL[dtype], "energy while recording"
    )
    found = features.collect(on, model)  # converted to the e3nn layout the irreps describe
    found_rot = features.collect(on_rot, model)
    assert len(found) == len(irreps_list), (
        f"{len(found)} layers recorded, {len(irreps_list)} declared"
    )
    num_edges = data[keys.EDGE_INDEX].shape[1]
    assert torch.equal(graph_of(model, moved, dtype)[keys.EDGE_INDEX], data[keys.EDGE_INDEX])
    for layer, (irreps, feat) in enumerate(found):
        irreps = o3.Irreps(irreps)
        assert feat.shape == (num_edges, irreps.dim), (
            f"layer {layer}: {tuple(feat.shape)} vs ({num_edges}, {irreps.dim})"
        )
        assert float(feat.abs().max()) > 0, f"layer {layer} edge features are all zero"
        d = wigner_d(irreps, rot)
        rotated = found_rot[layer][1]
        assert_close(
            rotated,
            feat.double() @ d.T,
            10 * RTOL[dtype],
            f"layer {layer} features transform as {irreps}",
        )
