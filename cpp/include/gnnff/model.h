// LAMMPS-independent loader and evaluator of exported gnnff TorchScript models.
// Errors are thrown as gnnff::Error with a sentence naming the problem and the fix; callers
// (pair style, Python binding) turn them into their own error reporting.
#pragma once

namespace torch::inductor {
class AOTIModelPackageLoader;
}

#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace gnnff {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The message of any exception, without the C++ backtrace that c10::Error appends.
inline std::string message_of(const std::exception &err)
{
  if (auto c10err = dynamic_cast<const c10::Error *>(&err)) return c10err->what_without_backtrace();
  return err.what();
}

struct Metadata {
  std::string contract_version;
  double r_max = 0.0;                // Å, edge cutoff
  double interaction_range = 0.0;    // Å, >= r_max (n_layers * r_max for message passing)
  std::vector<std::string> type_names;
  std::string dtype;    // float32 | float64
  std::string units;    // metal
  std::string model_name;
  std::string lineage;    // JSON text
  // layer-wise extension (docs/model_contract.md): D_0 .. D_L, empty for a file without it
  std::vector<int64_t> layer_feature_dims;
};

// Views of the model outputs (tensors on the model's device, in the model's dtype). Model::evaluate
// checks these shapes, the dtype and the device on its first call and whenever N changes.
struct Output {
  torch::Tensor total_energy;     // (1,)
  torch::Tensor atomic_energy;    // (N,)
  torch::Tensor forces;           // (N,3)
  torch::Tensor virial;           // (1,3,3)
  torch::Tensor atom_virial;      // (N,3,3), undefined unless requested
  // true when forces and virials were summed here from the model's edge gradient dE/dr_ij:
  // then they are float64 on the CPU whatever the model's dtype (see Model::evaluate)
  bool summed_from_edge_gradient = false;
};

// "auto" -> cuda:<local_rank % n_gpus> when torch sees a GPU, else cpu; "cpu"; "cuda"; "cuda:N".
torch::Device resolve_device(const std::string &request, int node_local_rank);

class Model {
 public:
  // Load `path` on `device`, read and validate its metadata (throws gnnff::Error). A `.pt2`
  // file is an AOTInductor package (`gnnff export --format aoti`), anything else TorchScript.
  static Model load(const std::string &path, const torch::Device &device);

  // true for an AOTInductor package: module() is empty, evaluate() runs the compiled code
  bool is_aoti() const { return aoti_ != nullptr; }

  const Metadata &metadata() const { return meta_; }
  // the model answered a request for its edge gradient (see evaluate); false before the first
  // call with edge vectors
  bool sums_edge_gradient() const { return edge_gradient_ == 1; }
  torch::ScalarType dtype() const { return dtype_; }
  const torch::Device &device() const { return device_; }
  // the TorchScript module, for callers of its other methods (the layer-wise extension);
  // empty for an AOTInductor package
  torch::jit::script::Module &module() { return module_; }
  // index of an element name in type_names, or -1
  int type_index(const std::string &name) const;

  // pos (N,3) model dtype, atom_type (N,) int64, edge_index (2,E) int64, all on device();
  // edge_shift undefined or (E,3). Atoms [0,num_local) are local, the rest ghosts.
  //
  // edge_vectors, (E,3) model dtype, r_ij = pos[j] - pos[i] (+ shift), may be given by a caller
  // that has them anyway (pair_style gnnff's cutoff test). A TorchScript model on the CPU is
  // then asked for its edge gradient dE/dr_ij instead of forces and virials
  // (docs/model_contract.md, "Edge gradient"), and forces, virial and per-atom virials are
  // summed from it here, in float64: for a pair potential the model's own scatters were a
  // third of its call. A model that returns no edge gradient (exported before 2026-12-03,
  // or hand-written without it) is asked once and then called as without edge_vectors.
  Output evaluate(const torch::Tensor &pos, const torch::Tensor &atom_type,
                  const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                  const torch::Tensor &edge_shift = torch::Tensor(),
                  const torch::Tensor &edge_vectors = torch::Tensor());

 private:
  Model(torch::jit::script::Module module, Metadata meta, torch::Device device);
  static Model load_aoti(const std::string &path, const torch::Device &device);
  // one call of the TorchScript module or of the AOTInductor package, outputs not yet checked
  Output run_script(const torch::Tensor &pos, const torch::Tensor &atom_type,
                    const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                    const torch::Tensor &edge_shift, const torch::Tensor &edge_vectors);
  // forces, virial (and per-atom virials) of out from edge gradient g and vectors r, float64
  void sum_edge_gradient(Output &out, const torch::Tensor &g, const torch::Tensor &r,
                         const torch::Tensor &edge_index, int64_t num_nodes, bool want_atom_virial);
  Output run_aoti(const torch::Tensor &pos, const torch::Tensor &atom_type,
                  const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                  const torch::Tensor &edge_shift);
  // throws gnnff::Error naming the first output whose shape, dtype or device breaks the contract
  void check_outputs(const Output &out, int64_t num_nodes, bool want_atom_virial) const;
  // the same for the edge gradient, (E,3) model dtype on device()
  void check_edge_gradient(const torch::Tensor &g, int64_t num_edges) const;

  torch::jit::script::Module module_;
  // an AOTInductor package instead of module_ (shared: Model is moved around, the loader is not)
  std::shared_ptr<torch::inductor::AOTIModelPackageLoader> aoti_;
  Metadata meta_;
  torch::Device device_;
  torch::ScalarType dtype_;
  torch::Tensor num_local_;    // (1,) int64 on device, reused across calls
  torch::Tensor request_flag_;
  // whether the model returns an edge gradient when asked: -1 not yet asked, 0 no, 1 yes
  int edge_gradient_ = -1;
  // float64 buffers of the forces and per-atom virials summed from the edge gradient, kept
  // across calls (no page faults from fresh allocations every MD step)
  torch::Tensor forces_buf_, atom_virial_buf_;
  int64_t checked_nodes_ = -1;          // N of the last checked call; -1 before the first
  bool checked_atom_virial_ = false;    // atom_virial has been checked for checked_nodes_
};

}    // namespace gnnff
