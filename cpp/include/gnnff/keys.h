// Names of the fields and metadata of the gnnff model contract, mirrored from
// python/gnnff/keys.py and python/gnnff/contract.py. tests/cpp/test_keys_header.py parses this
// file and checks every value against the Python constants, so the two cannot drift apart.
// Once a model has been exported with a name, that name cannot change. See docs/model_contract.md.
#pragma once

namespace gnnff {
namespace keys {

  // ---- inputs (python: gnnff.keys) ----
  inline constexpr const char *POSITIONS = "pos";            // (N,3) float, Å
  inline constexpr const char *ATOM_TYPE = "atom_type";      // (N,) int64
  inline constexpr const char *EDGE_INDEX = "edge_index";    // (2,E) int64, centre, neighbour
  inline constexpr const char *EDGE_SHIFT = "edge_shift";    // (E,3) float, Å
  inline constexpr const char *NUM_LOCAL = "num_local";      // (1,) int64
  inline constexpr const char *BATCH = "batch";              // (N,) int64
  inline constexpr const char *NUM_GRAPHS = "num_graphs";    // (1,) int64
  inline constexpr const char *REQUEST_ATOM_VIRIAL =
      "request_atom_virial";    // presence asks for ATOM_VIRIAL
  inline constexpr const char *REQUEST_EDGE_GRADIENT =
      "request_edge_gradient";    // presence asks for EDGE_GRADIENT instead of forces, virials

  // ---- per-structure data that readers provide (not model inputs) ----
  inline constexpr const char *CELL = "cell";
  inline constexpr const char *PBC = "pbc";
  inline constexpr const char *ATOMIC_NUMBERS = "atomic_numbers";

  // ---- intermediate ----
  inline constexpr const char *EDGE_VECTORS = "edge_vectors";    // (E,3) Å; also an optional input
  inline constexpr const char *ATOMIC_ENERGY_RAW = "atomic_energy_raw";

  // ---- outputs ----
  inline constexpr const char *TOTAL_ENERGY = "total_energy";      // (G,) eV, local atoms only
  inline constexpr const char *ATOMIC_ENERGY = "atomic_energy";    // (N,) eV, zero for ghosts
  inline constexpr const char *FORCES = "forces";              // (N,3) eV/Å, local and ghost atoms
  inline constexpr const char *VIRIAL = "virial";              // (G,3,3) eV, LAMMPS sign
  inline constexpr const char *ATOM_VIRIAL = "atom_virial";    // (N,3,3) eV
  inline constexpr const char *EDGE_GRADIENT = "edge_gradient";    // (E,3) eV/Å, dE/dr_ij
  inline constexpr const char *STRESS = "stress";                  // (G,3,3) eV/Å^3, ASE sign
  inline constexpr const char *HAS_STRESS = "has_stress";    // (G,) bool, stress label present

  // ---- training bookkeeping (Python only; mirrored so that every name has one home) ----
  inline constexpr const char *LOSS_NORM_GRAPHS = "loss_norm_graphs";
  inline constexpr const char *LOSS_NORM_ATOMS = "loss_norm_atoms";
  inline constexpr const char *LOSS_NORM_STRESS = "loss_norm_stress";

  // ---- edge-feature interface ----
  inline constexpr const char *EDGE_FEATURES_PREFIX = "edge_features_";    // + layer index

}    // namespace keys

namespace contract {

  // python: gnnff.contract
  inline constexpr const char *CONTRACT_VERSION = "1";
  inline constexpr const char *UNITS = "metal";

  // TorchScript extra-file names holding the metadata
  inline constexpr const char *META_CONTRACT_VERSION = "gnnff/contract_version";
  inline constexpr const char *META_R_MAX = "gnnff/r_max";
  inline constexpr const char *META_INTERACTION_RANGE = "gnnff/interaction_range";
  inline constexpr const char *META_TYPE_NAMES = "gnnff/type_names";
  inline constexpr const char *META_DTYPE = "gnnff/dtype";
  inline constexpr const char *META_UNITS = "gnnff/units";
  inline constexpr const char *META_MODEL_NAME = "gnnff/model_name";
  inline constexpr const char *META_LINEAGE = "gnnff/lineage";

  // optional: the layer-wise extension (per-layer feature exchange, `pair_style gnnff comm layer`)
  inline constexpr const char *LAYERWISE_VERSION = "1";
  inline constexpr const char *META_LAYERWISE = "gnnff/layerwise";
  inline constexpr const char *META_LAYER_FEATURE_DIMS =
      "gnnff/layer_feature_dims";    // D_0 .. D_L

  // optional: an AOTInductor package (.pt2) also states its positional calling convention
  inline constexpr const char *META_AOTI_INPUTS = "gnnff/aoti_inputs";
  inline constexpr const char *META_AOTI_OUTPUTS = "gnnff/aoti_outputs";

  inline constexpr const char *REQUIRED_KEYS[] = {
      META_CONTRACT_VERSION, META_R_MAX,   META_INTERACTION_RANGE,
      META_TYPE_NAMES,       META_DTYPE,   META_UNITS,
      META_MODEL_NAME,       META_LINEAGE,
  };

}    // namespace contract
}    // namespace gnnff
