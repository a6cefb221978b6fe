"""Names of every field that flows through gnnff models, in one place.

These strings are part of the model contract: they appear inside exported TorchScript files and
are mirrored in ``cpp/include/gnnff/keys.h``. Once a model has been exported with a name, that
name cannot change. Shapes use N = atoms (local + ghost), E = directed edges, G = graphs.
"""

from typing import Final

# ---- inputs -------------------------------------------------------------------------------
POSITIONS: Final[str] = "pos"  # (N, 3) float | Cartesian positions, Å
ATOM_TYPE: Final[str] = "atom_type"  # (N,) int64 | index into the model's type_names
EDGE_INDEX: Final[str] = "edge_index"  # (2, E) int64 | row 0 centre i, row 1 neighbour j
EDGE_SHIFT: Final[str] = "edge_shift"  # (E, 3) float | Å; r_ij = pos[j] - pos[i] + shift
NUM_LOCAL: Final[str] = "num_local"  # (1,) int64 | atoms [0, num_local) are local, rest ghosts
BATCH: Final[str] = "batch"  # (N,) int64 | graph index of each atom (batched training)
NUM_GRAPHS: Final[str] = "num_graphs"  # (1,) int64 | number of graphs in the batch
REQUEST_ATOM_VIRIAL: Final[str] = "request_atom_virial"  # (1,) any | presence asks for ATOM_VIRIAL
# (1,) any | presence asks for EDGE_GRADIENT instead of FORCES, VIRIAL, ATOM_VIRIAL and STRESS
REQUEST_EDGE_GRADIENT: Final[str] = "request_edge_gradient"

# ---- per-structure data that readers provide (not model inputs) --------------------------
CELL: Final[str] = "cell"  # (G, 3, 3) float | lattice vectors as rows, Å
PBC: Final[str] = "pbc"  # (G, 3) bool | periodic directions
ATOMIC_NUMBERS: Final[str] = "atomic_numbers"  # (N,) int64 | chemical element Z

# ---- intermediate -------------------------------------------------------------------------
# (E, 3) float | r_ij, Å (autograd leaf); an optional input too: pair_style gnnff passes the
# vectors it computed for the cutoff test, so that the model need not gather positions again
EDGE_VECTORS: Final[str] = "edge_vectors"
ATOMIC_ENERGY_RAW: Final[str] = "atomic_energy_raw"  # (N,) float | before per-type scale/shift

# ---- outputs (also the reference labels in data sets) -------------------------------------
TOTAL_ENERGY: Final[str] = "total_energy"  # (G,) float | eV, sum over local atoms
ATOMIC_ENERGY: Final[str] = "atomic_energy"  # (N,) float | eV, zero for ghosts
FORCES: Final[str] = "forces"  # (N, 3) float | eV/Å, on local and ghost atoms
VIRIAL: Final[str] = "virial"  # (G, 3, 3) float | eV, W = sum_edges r_ij (x) F_j (LAMMPS sign)
ATOM_VIRIAL: Final[str] = "atom_virial"  # (N, 3, 3) float | eV, half of each edge to i and j
EDGE_GRADIENT: Final[str] = "edge_gradient"  # (E, 3) float | eV/Å, dE/dr_ij (when requested)
STRESS: Final[str] = "stress"  # (G, 3, 3) float | eV/Å^3, ASE sign: stress = -virial / volume
HAS_STRESS: Final[str] = "has_stress"  # (G,) bool | structure carries a stress label

# ---- training bookkeeping (set by the trainer, read by loss terms) ------------------------
LOSS_NORM_GRAPHS: Final[str] = "loss_norm_graphs"  # (1,) float64 | global denominators, so that
LOSS_NORM_ATOMS: Final[str] = "loss_norm_atoms"  # (1,) float64 | DDP over P processes equals
LOSS_NORM_STRESS: Final[str] = "loss_norm_stress"  # (1,) float64 | one process on the same batch

# ---- edge-feature interface (read by training-loss terms such as decorrelation) ----------
EDGE_FEATURES_PREFIX: Final[str] = "edge_features_"  # + layer index: (E, irreps.dim) float


def edge_feature_key(layer: int) -> str:
    """Key under which a model writes the edge features of ``layer`` when recording."""
    # a literal, not EDGE_FEATURES_PREFIX: TorchScript cannot read module globals here
    return "edge_features_" + str(layer)
