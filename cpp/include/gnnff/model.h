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
  torch::ScalarType dtype() const { return dtype_; }
  const torch::Device &device() const { return device_; }
  // the TorchScript module, for callers of its other methods (the layer-wise extension);
  // empty for an AOTInductor package
  torch::jit::script::Module &module() { return module_; }
  // index of an element name in type_names, or -1
  int type_index(const std::string &name) const;

  // pos (N,3) model dtype, atom_type (N,) int64, edge_index (2,E) int64, all on device();
  // edge_shift undefined or (E,3). Atoms [0,num_local) are local, the rest ghosts.
  Output evaluate(const torch::Tensor &pos, const torch::Tensor &atom_type,
                  const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                  const torch::Tensor &edge_shift = torch::Tensor());

 private:
  Model(torch::jit::script::Module module, Metadata meta, torch::Device device);
  static Model load_aoti(const std::string &path, const torch::Device &device);
  // one call of the TorchScript module or of the AOTInductor package, outputs not yet checked
  Output run_script(const torch::Tensor &pos, const torch::Tensor &atom_type,
                    const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                    const torch::Tensor &edge_shift);
  Output run_aoti(const torch::Tensor &pos, const torch::Tensor &atom_type,
                  const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                  const torch::Tensor &edge_shift);
  // throws gnnff::Error naming the first output whose shape, dtype or device breaks the contract
  void check_outputs(const Output &out, int64_t num_nodes, bool want_atom_virial) const;

  torch::jit::script::Module module_;
  // an AOTInductor package instead of module_ (shared: Model is moved around, the loader is not)
  std::shared_ptr<torch::inductor::AOTIModelPackageLoader> aoti_;
  Metadata meta_;
  torch::Device device_;
  torch::ScalarType dtype_;
  torch::Tensor num_local_;    // (1,) int64 on device, reused across calls
  torch::Tensor request_flag_;
  int64_t checked_nodes_ = -1;          // N of the last checked call; -1 before the first
  bool checked_atom_virial_ = false;    // atom_virial has been checked for checked_nodes_
};

}    // namespace gnnff
