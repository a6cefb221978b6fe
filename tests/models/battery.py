"""Reusable physics battery for any gnnff energy model wrapped in ForceModel.

Two ways to use it (see /work/notes/battery.md):

1. Subclass ``EnergyModelBattery`` in a test module and define ``make_model(self, dtype)``
   returning a ForceModel (fixed seed, small); pytest then collects every ``test_*`` below,
   each run in float64 (tight tolerances) and float32 (loose).
2. Call the ``check_*`` functions directly: ``check_xxx(model, dtype)``; each raises
   AssertionError with a message saying what broke.

Independent truths used: exact symmetry operations (rotation, reflection, translation,
permutation), central finite differences of the energy (forces) and of a homogeneous strain
(virial), additivity of far-apart systems, an explicit LAMMPS-style ghost-atom copy of a
periodic cell, separate evaluation of batched graphs, and the eager model for TorchScript.
Units: Å, eV, eV/Å.
"""

import copy
from typing import Callable, Dict, List

import numpy as np
import pytest
import torch
from ase import Atoms
from e3nn import o3

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.models import features

Factory = Callable[[torch.dtype], torch.nn.Module]

# relative tolerances (to the typical size of the quantity) per dtype
RTOL = {torch.float64: 1e-9, torch.float32: 2e-4}
# finite differences are done in float64 (a float64 copy of the model for float32 checks)
FD_STEP = 1e-4  # Å (and strain)
FD_RTOL = {torch.float64: 1e-6, torch.float32: 2e-4}


# ---------------------------------------------------------------- structures ---------------
def random_cluster(type_names: List[str], n_atoms: int = 7, seed: int = 0, min_dist: float = 1.7,
                   box: float = 4.0) -> Atoms:
    """Non-periodic cluster of random atoms, no pair closer than ``min_dist`` Å."""
    rng = np.random.default_rng(seed)
    pos: List[np.ndarray] = []
    while len(pos) < n_atoms:
        p = rng.uniform(0.0, box, 3)
        if all(np.linalg.norm(p - q) > min_dist for q in pos):
            pos.append(p)
    symbols = [type_names[k % len(type_names)] for k in rng.permutation(n_atoms)]
    return Atoms(symbols=symbols, positions=np.array(pos), pbc=False)


def random_crystal(type_names: List[str], seed: int = 1) -> Atoms:
    """Small triclinic periodic cell (8 atoms, rattled diamond-like) shorter than 2 r_max."""
    rng = np.random.default_rng(seed)
    a = 5.43
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                     [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]])
    cell = a * (np.eye(3) + 0.05 * rng.standard_normal((3, 3)))
    pos = frac @ cell + 0.1 * rng.standard_normal((8, 3))
    symbols = [type_names[k % len(type_names)] for k in rng.permutation(8)]
    return Atoms(symbols=symbols, positions=pos, cell=cell, pbc=True)


def graph_of(model, atoms: Atoms, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    return atoms_to_graph(atoms, model.type_names, model.r_max, dtype=dtype)


def evaluate(model, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out = model(dict(data))
    return {k: v.detach() for k, v in out.items()}


def evaluate_atoms(model, atoms: Atoms, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    return evaluate(model, graph_of(model, atoms, dtype))


def prepare(model, dtype: torch.dtype):
    return model.to(dtype).eval()


def assert_close(actual, expected, rtol: float, what: str, scale=None):
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    if scale is None:
        scale = float(expected.abs().max()) if expected.numel() else 1.0
    tol = rtol * max(scale, 1e-3)
    err = float((actual - expected).abs().max()) if expected.numel() else 0.0
    assert err <= tol, f"{what}: max deviation {err:.3e} > tolerance {tol:.3e} (scale {scale:.3e})"


def assert_nontrivial(forces: torch.Tensor, what: str = "forces"):
    # a model that outputs zero forces would pass every symmetry check: refuse it
    assert float(forces.abs().max()) > 1e-6, f"{what} are all ~0: the check would be vacuous"


def random_rotation(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# ---------------------------------------------------------------- checks -------------------
def wigner_d(irreps: o3.Irreps, rot: np.ndarray) -> torch.Tensor:
    """Block-diagonal D(R) of ``irreps`` for a proper rotation, exact in float64.

    e3nn's ``Irreps.D_from_matrix`` goes through Euler angles and float32 tables (errors
    ~1e-7); here each D_l solves Y_l(R v) = D_l Y_l(v) by least squares over many v instead.
    """
    r = torch.as_tensor(rot, dtype=torch.float64)
    vs = torch.as_tensor(np.random.default_rng(0).standard_normal((64, 3)))
    blocks = []
    for mul, ir in o3.Irreps(irreps):
        y = o3.spherical_harmonics(ir.l, vs, normalize=True, normalization="component")
        y_rot = o3.spherical_harmonics(ir.l, vs @ r.T, normalize=True, normalization="component")
        d_l = torch.linalg.lstsq(y, y_rot).solution.T  # y_rot = y @ d_l^T
        blocks += [d_l] * mul
    return torch.block_diag(*blocks)


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
            assert_close(out[keys.TOTAL_ENERGY], ref[keys.TOTAL_ENERGY], RTOL[dtype], f"energy after {name}")
            assert_close(out[keys.FORCES], ref[keys.FORCES].double() @ r.T, RTOL[dtype], f"forces after {name}")
            assert_close(out[keys.VIRIAL][0], r @ ref[keys.VIRIAL][0].double() @ r.T, RTOL[dtype],
                         f"virial after {name}")


def check_translation(model, dtype: torch.dtype):
    prepare(model, dtype)
    for atoms in (random_cluster(model.type_names), random_crystal(model.type_names)):
        ref = evaluate_atoms(model, atoms, dtype)
        moved = atoms.copy()
        moved.positions = atoms.positions + np.array([1.3, -0.7, 2.9])
        out = evaluate_atoms(model, moved, dtype)
        assert_close(out[keys.TOTAL_ENERGY], ref[keys.TOTAL_ENERGY], RTOL[dtype], "energy after translation")
        assert_close(out[keys.FORCES], ref[keys.FORCES], RTOL[dtype], "forces after translation")


def check_permutation(model, dtype: torch.dtype):
    prepare(model, dtype)
    for atoms in (random_cluster(model.type_names), random_crystal(model.type_names)):
        ref = evaluate_atoms(model, atoms, dtype)
        perm = np.random.default_rng(5).permutation(len(atoms))
        out = evaluate_atoms(model, atoms[perm], dtype)
        assert_close(out[keys.TOTAL_ENERGY], ref[keys.TOTAL_ENERGY], RTOL[dtype], "energy after permutation")
        assert_close(out[keys.FORCES], ref[keys.FORCES][perm], RTOL[dtype], "forces after permutation")
        assert_close(out[keys.ATOMIC_ENERGY], ref[keys.ATOMIC_ENERGY][perm], RTOL[dtype],
                     "atomic energies after permutation")


def _fd_model(model, dtype):
    # float32 forces are checked against float64 differences of the same weights
    return model if dtype == torch.float64 else copy.deepcopy(model).to(torch.float64).eval()


def _energy(model, atoms) -> float:
    return float(evaluate_atoms(model, atoms, torch.float64)[keys.TOTAL_ENERGY].sum())


def check_forces_finite_difference(model, dtype: torch.dtype, n_directions: int = 4):
    """F = -dE/dx by central differences (step FD_STEP Å): every component of atom 0, and
    ``n_directions`` random directions moving all atoms at once (F . d = -dE/dt), on a cluster
    and a periodic cell."""
    prepare(model, dtype)
    fd_model = _fd_model(model, dtype)
    rng = np.random.default_rng(12)
    for atoms in (random_cluster(model.type_names, n_atoms=5), random_crystal(model.type_names)):
        forces = evaluate_atoms(model, atoms, dtype)[keys.FORCES].double()
        assert_nontrivial(forces)
        directions = [np.eye(len(atoms) * 3)[a].reshape(-1, 3) for a in range(3)]
        directions += [rng.standard_normal((len(atoms), 3)) for _ in range(n_directions)]
        for d in directions:
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions += FD_STEP * d
            minus.positions -= FD_STEP * d
            fd = -(_energy(fd_model, plus) - _energy(fd_model, minus)) / (2 * FD_STEP)
            projected = float((forces * torch.as_tensor(d)).sum())
            scale = float(forces.abs().max()) * float(np.abs(d).sum())
            assert_close(projected, fd, FD_RTOL[dtype], "forces vs finite differences of the energy",
                         scale=scale)


def check_virial_finite_strain(model, dtype: torch.dtype):
    """W_ab = -dE/d(eps_ba) for x -> (1 + eps) x applied to positions and cell (LAMMPS sign)."""
    prepare(model, dtype)
    fd_model = _fd_model(model, dtype)
    atoms = random_crystal(model.type_names)
    virial = evaluate_atoms(model, atoms, dtype)[keys.VIRIAL][0].double()
    assert_nontrivial(virial, "virial")
    fd = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1.0, -1.0):
                eps = np.zeros((3, 3))
                eps[b, a] = sign * FD_STEP
                deform = np.eye(3) + eps
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ deform.T, scale_atoms=False)
                strained.positions = atoms.positions @ deform.T
                energies.append(_energy(fd_model, strained))
            fd[a, b] = -(energies[0] - energies[1]) / (2 * FD_STEP)
    assert_close(virial, fd, FD_RTOL[dtype], "virial vs finite strain derivative")


def check_separability(model, dtype: torch.dtype):
    """Two clusters farther apart than the interaction range: E(A+B) = E(A) + E(B)."""
    prepare(model, dtype)
    a = random_cluster(model.type_names, n_atoms=5, seed=10)
    b = random_cluster(model.type_names, n_atoms=4, seed=11)
    b.positions += np.array([model.interaction_range + 8.0, 0.0, 0.0])
    ea, eb, eab = (evaluate_atoms(model, s, dtype) for s in (a, b, a + b))
    total = ea[keys.TOTAL_ENERGY] + eb[keys.TOTAL_ENERGY]
    assert_close(eab[keys.TOTAL_ENERGY], total, RTOL[dtype], "E(A+B) vs E(A)+E(B)",
                 scale=float(ea[keys.FORCES].abs().max()))
    assert_close(eab[keys.FORCES], torch.cat([ea[keys.FORCES], eb[keys.FORCES]]), RTOL[dtype],
                 "forces of A+B vs forces of A and B")


def check_cutoff_smoothness(model, dtype: torch.dtype):
    """An atom crossing r_max changes energy and forces continuously (both -> 0 contribution).

    Trimer on a line: B at -2 Å, A at 0, C at +r: only the A-C edge crosses r_max as r does.
    """
    prepare(model, dtype)
    names = model.type_names
    r_max = model.r_max

    def trimer(r):
        sym = [names[0], names[-1], names[0]]
        return Atoms(sym, positions=[[-2.0, 0.1, 0.0], [0.0, 0.0, 0.0], [r, 0.05, 0.0]], pbc=False)

    inside = evaluate_atoms(model, trimer(0.6 * r_max), dtype)
    scale = float(inside[keys.FORCES].abs().max())
    assert scale > 1e-6, "forces inside the cutoff are ~0: the check would be vacuous"
    beyond = evaluate_atoms(model, trimer(r_max + 0.05), dtype)
    e_beyond = float(beyond[keys.TOTAL_ENERGY].sum())
    for delta, rel in ((1e-2, 5e-2), (1e-3, 2e-3)):
        near = evaluate_atoms(model, trimer(r_max - delta), dtype)
        de = abs(float(near[keys.TOTAL_ENERGY].sum()) - e_beyond)
        f_c = float(near[keys.FORCES][2].abs().max())
        tol = rel * scale + RTOL[dtype] * 10 * scale
        assert de <= tol, f"energy jumps by {de:.3e} eV when an atom is {delta} Å inside r_max (tol {tol:.3e})"
        assert f_c <= tol, f"force {f_c:.3e} eV/Å on an atom {delta} Å inside r_max (tol {tol:.3e})"
        assert_close(near[keys.FORCES][:2], beyond[keys.FORCES][:2], rel + 10 * RTOL[dtype],
                     f"forces on the other atoms {delta} Å inside vs beyond r_max", scale=scale)


def check_torchscript(model, dtype: torch.dtype):
    """torch.jit.script(model) gives the same energy, forces, virial as the eager model."""
    prepare(model, dtype)
    scripted = torch.jit.script(model)
    data = graph_of(model, random_crystal(model.type_names), dtype)
    eager = evaluate(model, data)
    script = evaluate(scripted, data)
    for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL, keys.ATOMIC_ENERGY):
        assert_close(script[key], eager[key], RTOL[dtype], f"TorchScript vs eager {key}")


def check_edge_feature_interface(model, dtype: torch.dtype):
    """Off: no feature keys. On: one (E, irreps.dim) tensor per layer, equivariant as declared."""
    prepare(model, dtype)
    irreps_list = features.edge_feature_irreps(model)
    assert len(irreps_list) >= 1, "a model must expose at least one layer of edge features"
    atoms = random_cluster(model.type_names, n_atoms=6)
    data = graph_of(model, atoms, dtype)
    off = evaluate(model, data)
    assert not any(k.startswith(keys.EDGE_FEATURES_PREFIX) for k in off), "features written while not recording"
    try:
        features.set_recording(model, True)
        on = evaluate(model, data)
        rot = random_rotation(7)
        moved = atoms.copy()
        moved.positions = atoms.positions @ rot.T
        on_rot = evaluate(model, graph_of(model, moved, dtype))
    finally:
        features.set_recording(model, False)
    assert_close(on[keys.TOTAL_ENERGY], off[keys.TOTAL_ENERGY], RTOL[dtype], "energy while recording")
    found = features.collect(on, model)
    assert len(found) == len(irreps_list), f"{len(found)} layers recorded, {len(irreps_list)} declared"
    num_edges = data[keys.EDGE_INDEX].shape[1]
    assert torch.equal(graph_of(model, moved, dtype)[keys.EDGE_INDEX], data[keys.EDGE_INDEX])
    r = torch.as_tensor(rot, dtype=torch.float64)
    for layer, (irreps, feat) in enumerate(found):
        irreps = o3.Irreps(irreps)
        assert feat.shape == (num_edges, irreps.dim), f"layer {layer}: {tuple(feat.shape)} vs ({num_edges}, {irreps.dim})"
        assert float(feat.abs().max()) > 0, f"layer {layer} edge features are all zero"
        d = wigner_d(irreps, rot)
        rotated = on_rot[keys.edge_feature_key(layer)]
        assert_close(rotated, feat.double() @ d.T, 10 * RTOL[dtype], f"layer {layer} features transform as {irreps}")


def _ghost_copy(atoms: Atoms, ghost_range: float):
    """LAMMPS-style images: local atoms first, then every periodic image within ghost_range of
    the local atoms' bounding region. Returns (positions, symbols, owner index of each atom)."""
    cell = atoms.cell.array
    n_rep = [int(np.ceil(ghost_range / (atoms.cell.volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))))) + 1
             for k in range(3)]
    pos, sym, owner = list(atoms.positions), list(atoms.get_chemical_symbols()), list(range(len(atoms)))
    local = atoms.positions
    for i in range(-n_rep[0], n_rep[0] + 1):
        for j in range(-n_rep[1], n_rep[1] + 1):
            for k in range(-n_rep[2], n_rep[2] + 1):
                if i == j == k == 0:
                    continue
                shift = np.array([i, j, k]) @ cell
                for a in range(len(atoms)):
                    p = local[a] + shift
                    if np.min(np.linalg.norm(local - p, axis=1)) < ghost_range:
                        pos.append(p)
                        sym.append(atoms.get_chemical_symbols()[a])
                        owner.append(a)
    return np.array(pos), sym, np.array(owner)


def check_ghost_atoms(model, dtype: torch.dtype):
    """Periodic evaluation == LAMMPS-style explicit ghosts (within interaction_range, no shifts,
    NUM_LOCAL) with ghost forces folded back onto their owners; same energy and virial."""
    prepare(model, dtype)
    atoms = random_crystal(model.type_names)
    ref = evaluate_atoms(model, atoms, dtype)
    pos, sym, owner = _ghost_copy(atoms, model.interaction_range)
    cluster = Atoms(sym, positions=pos, pbc=False)
    data = graph_of(model, cluster, dtype)
    data[keys.NUM_LOCAL] = torch.tensor([len(atoms)])
    out = evaluate(model, data)
    folded = torch.zeros(len(atoms), 3, dtype=out[keys.FORCES].dtype).index_add(
        0, torch.as_tensor(owner), out[keys.FORCES])
    assert_close(out[keys.TOTAL_ENERGY], ref[keys.TOTAL_ENERGY], RTOL[dtype], "energy with explicit ghosts",
                 scale=float(ref[keys.FORCES].abs().max()))
    assert_close(folded, ref[keys.FORCES], RTOL[dtype], "folded ghost forces")
    assert_close(out[keys.VIRIAL], ref[keys.VIRIAL], RTOL[dtype], "virial with explicit ghosts")


def check_batching(model, dtype: torch.dtype):
    """Two graphs batched (BATCH, NUM_GRAPHS) give the energies and forces of each alone."""
    prepare(model, dtype)
    graphs = [graph_of(model, random_cluster(model.type_names, n_atoms=5, seed=2), dtype),
              graph_of(model, random_crystal(model.type_names), dtype)]
    alone = [evaluate(model, g) for g in graphs]
    n0 = graphs[0][keys.POSITIONS].shape[0]
    batch = {
        keys.POSITIONS: torch.cat([g[keys.POSITIONS] for g in graphs]),
        keys.ATOM_TYPE: torch.cat([g[keys.ATOM_TYPE] for g in graphs]),
        keys.EDGE_INDEX: torch.cat([graphs[0][keys.EDGE_INDEX], graphs[1][keys.EDGE_INDEX] + n0], dim=1),
        keys.EDGE_SHIFT: torch.cat([g[keys.EDGE_SHIFT] for g in graphs]),
        keys.BATCH: torch.cat([torch.zeros(n0, dtype=torch.long),
                               torch.ones(graphs[1][keys.POSITIONS].shape[0], dtype=torch.long)]),
        keys.NUM_GRAPHS: torch.tensor([2]),
    }
    out = evaluate(model, batch)
    scale = float(max(a[keys.FORCES].abs().max() for a in alone))
    assert_close(out[keys.TOTAL_ENERGY], torch.cat([a[keys.TOTAL_ENERGY] for a in alone]), RTOL[dtype],
                 "batched energies", scale=scale)
    assert_close(out[keys.FORCES], torch.cat([a[keys.FORCES] for a in alone]), RTOL[dtype], "batched forces")
    assert_close(out[keys.VIRIAL], torch.cat([a[keys.VIRIAL] for a in alone]), RTOL[dtype], "batched virials")


ALL_CHECKS = (
    check_rotation_reflection,
    check_translation,
    check_permutation,
    check_forces_finite_difference,
    check_virial_finite_strain,
    check_separability,
    check_cutoff_smoothness,
    check_torchscript,
    check_edge_feature_interface,
    check_ghost_atoms,
    check_batching,
)


def run_all(factory: Factory, dtypes=(torch.float64, torch.float32)):
    """Run every check on fresh models from ``factory`` (for scripts; pytest uses the class)."""
    for dtype in dtypes:
        for check in ALL_CHECKS:
            check(factory(dtype), dtype)


# ---------------------------------------------------------------- pytest base class --------
class EnergyModelBattery:
    """Subclass as ``class TestMyModel(EnergyModelBattery)`` and define ``make_model(self, dtype)``.

    ``make_model`` must return a fresh, small ForceModel (seeded) whose type_names has >= 2
    elements; the battery moves it to ``dtype`` and eval mode.
    """

    def make_model(self, dtype: torch.dtype) -> torch.nn.Module:
        raise NotImplementedError

    @pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
    def dtype(self, request):
        return request.param

    @pytest.fixture
    def model(self, dtype):
        return self.make_model(dtype)

    def test_rotation_reflection(self, model, dtype):
        check_rotation_reflection(model, dtype)

    def test_translation(self, model, dtype):
        check_translation(model, dtype)

    def test_permutation(self, model, dtype):
        check_permutation(model, dtype)

    def test_forces_finite_difference(self, model, dtype):
        check_forces_finite_difference(model, dtype)

    def test_virial_finite_strain(self, model, dtype):
        check_virial_finite_strain(model, dtype)

    def test_separability(self, model, dtype):
        check_separability(model, dtype)

    def test_cutoff_smoothness(self, model, dtype):
        check_cutoff_smoothness(model, dtype)

    def test_torchscript(self, model, dtype):
        check_torchscript(model, dtype)

    def test_edge_feature_interface(self, model, dtype):
        check_edge_feature_interface(model, dtype)

    def test_ghost_atoms(self, model, dtype):
        check_ghost_atoms(model, dtype)

    def test_batching(self, model, dtype):
        check_batching(model, dtype)


# ---------------------------------------------------------------- builder contract ---------
def load_exported_file(path: str):
    """(module, metadata) of an exported file, as gnnff.export.load_exported does.

    Decodes the extra files itself: torch.jit.load returns them as bytes, which load_exported
    did not handle when this was written (requested fix in /work/notes/requests-2b.md).
    """
    from gnnff import contract

    extra = {k: "" for k in contract.REQUIRED_KEYS}
    module = torch.jit.load(path, _extra_files=extra)
    extra = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in extra.items()}
    return module, contract.parse_metadata(extra, source=repr(path))


def check_per_type_parameters(build: Callable[[List[str]], torch.nn.Module]):
    """Only parameters named *type_embedding* depend on the number of types (fine-tuning remaps
    them by element name). ``build(type_names)`` returns a ForceModel."""
    torch.manual_seed(0)
    two = dict(build(["Si", "C"]).named_parameters())
    torch.manual_seed(0)
    three = dict(build(["Si", "C", "O"]).named_parameters())
    assert set(two) == set(three), "parameter names depend on the number of types"
    changed = [n for n in two if two[n].shape != three[n].shape]
    assert changed, "no parameter depends on the atom types: where are the type embeddings?"
    bad = [n for n in changed if "type_embedding" not in n]
    assert not bad, f"per-type parameters outside a *type_embedding* attribute: {bad}"


def check_export(model, path, dtype: torch.dtype = torch.float64):
    """gnnff.export round trip: metadata of the contract, and the loaded file == eager model."""
    from gnnff.export import export_model

    prepare(model, dtype)
    export_model(model, str(path), lineage={"test": "battery"})
    loaded, meta = load_exported_file(str(path))
    assert meta["r_max"] == model.r_max
    assert meta["interaction_range"] == model.interaction_range
    assert meta["type_names"] == list(model.type_names)
    assert meta["model_name"] == model.model_name
    assert meta["dtype"] == {torch.float64: "float64", torch.float32: "float32"}[dtype]
    data = graph_of(model, random_crystal(model.type_names), dtype)
    eager, scripted = evaluate(model, data), evaluate(loaded, data)
    for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL):
        assert_close(scripted[key], eager[key], RTOL[dtype], f"exported model vs eager {key}")
    return meta
