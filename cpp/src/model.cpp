#include "gnnff/model.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "gnnff/keys.h"
#include "gnnff/ops.h"

namespace gnnff {

namespace {

  // TorchScript's profiling executor specialises a model's graph to the input shapes it has
  // seen, for its fusers (torch's default strategy: 2 static, then 10 dynamic specialisations).
  // On the CPU no fuser runs, yet the specialised graphs cost time and their autodiff differs
  // from eager autograd in the last bits; the unspecialised graph is 1.1-1.4x faster per call
  // (docs/benchmarks.md, "TorchScript executor on the CPU") and gives eager autograd's forces
  // bit for bit. Process-wide, as torch's setting is; GNNFF_TORCHSCRIPT_SPECIALIZE=1 keeps
  // torch's default (for A/B measurements). GPUs keep torch's default: its fusers run there.
  void use_unspecialised_graphs_on_cpu()
  {
    static std::once_flag once;
    std::call_once(once, [] {
      const char *keep = std::getenv("GNNFF_TORCHSCRIPT_SPECIALIZE");
      if (keep != nullptr && std::string(keep) == "1") return;
      torch::jit::FusionStrategy none = {{torch::jit::FusionBehavior::STATIC, 0},
                                         {torch::jit::FusionBehavior::DYNAMIC, 0}};
      torch::jit::setFusionStrategy(none);
    });
  }

  std::string join(const std::vector<std::string> &items)
  {
    std::string out;
    for (const auto &s : items) out += (out.empty() ? "" : " ") + s;
    return out;
  }

  double parse_length(const std::string &text, const char *key, const std::string &path)
  {
    try {
      size_t used = 0;
      double value = std::stod(text, &used);
      if (used == text.size() && std::isfinite(value) && value > 0) return value;
    } catch (const std::exception &) {
    }
    throw Error("model file '" + path + "' has an invalid " + key + " value '" + text +
                "' (expected a positive length in Å); re-export it with `gnnff export`");
  }

  Metadata parse_metadata(const std::unordered_map<std::string, std::string> &extra,
                          const std::string &path)
  {
    std::vector<std::string> missing;
    for (const char *key : contract::REQUIRED_KEYS)
      if (extra.at(key).empty()) missing.emplace_back(key);
    if (!missing.empty())
      throw Error("'" + path + "' is a TorchScript file without gnnff metadata (missing " +
                  join(missing) + "); export the model with `gnnff export CHECKPOINT -o model.pt`");
    Metadata m;
    m.contract_version = extra.at(contract::META_CONTRACT_VERSION);
    if (m.contract_version != contract::CONTRACT_VERSION)
      throw Error("'" + path + "' follows model contract version " + m.contract_version +
                  ", this gnnff reads version " + contract::CONTRACT_VERSION +
                  "; re-export the model with this gnnff");
    m.r_max = parse_length(extra.at(contract::META_R_MAX), contract::META_R_MAX, path);
    m.interaction_range = parse_length(extra.at(contract::META_INTERACTION_RANGE),
                                       contract::META_INTERACTION_RANGE, path);
    if (m.interaction_range < m.r_max)
      throw Error("'" + path + "' declares an interaction range shorter than r_max; re-export it");
    std::istringstream names(extra.at(contract::META_TYPE_NAMES));
    for (std::string n; names >> n;) m.type_names.push_back(n);
    if (m.type_names.empty())
      throw Error("'" + path +
                  "' lists no element names (gnnff/type_names is blank); re-export it "
                  "with `gnnff export` from a model built with type_names");
    std::unordered_set<std::string> seen;
    for (const auto &n : m.type_names)
      if (!seen.insert(n).second)
        throw Error("'" + path + "' lists element '" + n + "' twice in gnnff/type_names (" +
                    join(m.type_names) +
                    "); each atom type index needs its own name, re-export "
                    "the model with unique type_names");
    m.dtype = extra.at(contract::META_DTYPE);
    if (m.dtype != "float32" && m.dtype != "float64")
      throw Error("'" + path + "' has dtype '" + m.dtype +
                  "'; gnnff models are float32 or float64, re-export it");
    m.units = extra.at(contract::META_UNITS);
    if (m.units != contract::UNITS)
      throw Error("'" + path + "' uses units '" + m.units +
                  "'; gnnff models use LAMMPS units metal, re-export it");
    m.model_name = extra.at(contract::META_MODEL_NAME);
    m.lineage = extra.at(contract::META_LINEAGE);
    // optional layer-wise extension: both keys, or neither
    const std::string &layerwise = extra.at(contract::META_LAYERWISE);
    if (!layerwise.empty()) {
      if (layerwise != contract::LAYERWISE_VERSION)
        throw Error("'" + path + "' has layer-wise extension version " + layerwise +
                    ", this gnnff reads version " + contract::LAYERWISE_VERSION +
                    "; re-export it with this gnnff");
      std::istringstream dims(extra.at(contract::META_LAYER_FEATURE_DIMS));
      for (int64_t d; dims >> d;) m.layer_feature_dims.push_back(d);
      if (m.layer_feature_dims.size() < 2)
        throw Error("'" + path + "' has an unreadable " + contract::META_LAYER_FEATURE_DIMS +
                    "; re-export it with `gnnff export`");
    }
    return m;
  }

  // Why a file that torch::jit::load refused is not a model, when it is a torch.save archive
  // (pickled Python objects: a training checkpoint, or weights saved by hand); "" otherwise.
  std::string torch_save_explanation(const std::string &path)
  {
    try {
      caffe2::serialize::PyTorchStreamReader reader(path);
      if (!reader.hasRecord("data.pkl") || reader.hasRecord("constants.pkl")) return "";
      auto record = reader.getRecord("data.pkl");
      const char *bytes = static_cast<const char *>(std::get<0>(record).get());
      const std::string pickle(bytes, std::get<1>(record));
      if (pickle.find("model_state") != std::string::npos &&
          pickle.find("model_config") != std::string::npos)
        return "'" + path + "' is a gnnff training checkpoint, not an exported model; export it " +
            "with `gnnff export " + path + " -o model.pt` and give model.pt to pair_coeff";
      return "'" + path + "' was written by torch.save (pickled Python objects), not exported as " +
          "TorchScript; export the model with `gnnff export CHECKPOINT -o model.pt`";
    } catch (const std::exception &) {
      return "";    // not a zip archive at all: the caller's generic message applies
    }
  }

}    // namespace

torch::Device resolve_device(const std::string &request, int node_local_rank)
{
  if (request == "cpu") return torch::Device(torch::kCPU);
  const bool have_gpu = torch::cuda::is_available();
  if (request == "auto" || request == "cuda") {
    if (!have_gpu) {
      if (request == "auto") return torch::Device(torch::kCPU);
      throw Error("device cuda was requested but torch sees no GPU (CPU-only torch build or no "
                  "visible device); use `device cpu` or `device auto`");
    }
    const int n = static_cast<int>(torch::cuda::device_count());
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(node_local_rank % n));
  }
  if (request.rfind("cuda:", 0) == 0) {
    int index = -1;
    try {
      index = std::stoi(request.substr(5));
    } catch (const std::exception &) {
    }
    if (index < 0)
      throw Error("device '" + request + "' is not valid; use auto, cpu, cuda or cuda:N");
    if (!have_gpu || index >= static_cast<int>(torch::cuda::device_count()))
      throw Error("device '" + request + "' is not visible to torch; use `device auto` or a " +
                  "smaller index");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("device '" + request + "' is not valid; use auto, cpu, cuda or cuda:N");
}

Model::Model(torch::jit::script::Module module, Metadata meta, torch::Device device) :
    module_(std::move(module)), meta_(std::move(meta)), device_(device)
{
  dtype_ = meta_.dtype == "float64" ? torch::kFloat64 : torch::kFloat32;
  auto int_opts = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  num_local_ = torch::zeros({1}, int_opts);
  request_flag_ = torch::ones({1}, int_opts);
}

Model Model::load(const std::string &path, const torch::Device &device)
{
  if (!std::ifstream(path).good())
    throw Error("model file '" + path + "' does not exist or cannot be read; give the path of " +
                "a model exported with `gnnff export`");
  const std::string suffix = ".pt2";
  if (path.size() > suffix.size() &&
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
    return load_aoti(path, device);
  std::unordered_map<std::string, std::string> extra;
  for (const char *key : contract::REQUIRED_KEYS) extra[key] = "";
  extra[contract::META_LAYERWISE] = "";
  extra[contract::META_LAYER_FEATURE_DIMS] = "";
  torch::jit::script::Module module;
  // exported models may call gnnff's own operators (gnnff::trilinear); referring to the library
  // that registers them keeps the linker from dropping it, so they exist before the file loads
  (void) ops_version();
  try {
    module = torch::jit::load(path, device, extra);
  } catch (const std::exception &err) {
    const std::string explanation = torch_save_explanation(path);
    if (!explanation.empty()) throw Error(explanation);
    const std::string what = message_of(err);
    // a file exported by a newer gnnff may call an operator this build's library lacks
    if (what.find("gnnff::") != std::string::npos)
      throw Error("'" + path + "' calls a gnnff operator that this build of gnnff lacks (" + what +
                  "): the file was exported by a newer gnnff; rebuild the plugin from that "
                  "gnnff, or re-export the model with GNNFF_KERNELS=0 for a file that needs "
                  "only torch");
    throw Error("'" + path + "' is not a readable TorchScript file (" + what +
                "); re-export it with `gnnff export`");
  }
  Metadata meta = parse_metadata(extra, path);
  module.eval();
  if (device.is_cpu()) use_unspecialised_graphs_on_cpu();
  // Every floating parameter and buffer must have the declared dtype: the inputs are made in
  // that dtype, and a float32 buffer in a "float64" model silently computes in float32.
  const auto declared = meta.dtype == "float64" ? torch::kFloat64 : torch::kFloat32;
  auto check_dtype = [&](const std::string &name, const torch::Tensor &t, const char *what) {
    if (t.is_floating_point() && t.scalar_type() != declared)
      throw Error("'" + path + "' declares dtype " + meta.dtype + " but its " + what + " '" + name +
                  "' is " + std::string(c10::toString(t.scalar_type())) +
                  "; convert the whole model to one dtype (model.to(torch." + meta.dtype +
                  ")) and re-export it with `gnnff export`");
  };
  for (const auto &p : module.named_parameters()) check_dtype(p.name, p.value, "parameter");
  for (const auto &b : module.named_buffers()) check_dtype(b.name, b.value, "buffer");
  return Model(std::move(module), std::move(meta), device);
}

// An AOTInductor package (python/gnnff/export_aoti.py): the same metadata in the package's
// metadata map, and one positional function (contract::META_AOTI_INPUTS -> ..._OUTPUTS).
Model Model::load_aoti(const std::string &path, const torch::Device &device)
{
  if (!device.is_cpu())
    throw Error("'" + path + "' is an AOTInductor package compiled for the CPU; use `device cpu` " +
                "with it, or the TorchScript file (gnnff export without --format aoti) on a GPU");
  std::shared_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  std::unordered_map<std::string, std::string> extra;
  try {
    loader = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path);
    extra = loader->get_metadata();
  } catch (const std::exception &err) {
    throw Error("'" + path + "' is not a loadable AOTInductor package (" + message_of(err) +
                "); re-export it with `gnnff export CKPT -o model.pt2 --format aoti` using the " +
                "torch this gnnff was built with");
  }
  for (const char *key : contract::REQUIRED_KEYS) extra.emplace(key, "");
  for (const char *key : {contract::META_LAYERWISE, contract::META_LAYER_FEATURE_DIMS,
                          contract::META_AOTI_INPUTS, contract::META_AOTI_OUTPUTS})
    extra.emplace(key, "");
  Metadata meta = parse_metadata(extra, path);
  const std::string inputs = std::string(keys::POSITIONS) + " " + keys::ATOM_TYPE + " " +
      keys::EDGE_INDEX + " " + keys::EDGE_SHIFT + " " + keys::NUM_LOCAL;
  const std::string outputs = std::string(keys::TOTAL_ENERGY) + " " + keys::ATOMIC_ENERGY + " " +
      keys::FORCES + " " + keys::VIRIAL + " " + keys::ATOM_VIRIAL;
  if (extra.at(contract::META_AOTI_INPUTS) != inputs ||
      extra.at(contract::META_AOTI_OUTPUTS) != outputs)
    throw Error("'" + path + "' has the calling convention '" +
                extra.at(contract::META_AOTI_INPUTS) + "' -> '" +
                extra.at(contract::META_AOTI_OUTPUTS) + "', this gnnff calls packages with '" +
                inputs + "' -> '" + outputs + "'; re-export it with `gnnff export --format aoti`");
  Model model(torch::jit::script::Module(), std::move(meta), device);
  model.aoti_ = std::move(loader);
  return model;
}

int Model::type_index(const std::string &name) const
{
  for (size_t t = 0; t < meta_.type_names.size(); ++t)
    if (meta_.type_names[t] == name) return static_cast<int>(t);
  return -1;
}

Output Model::evaluate(const torch::Tensor &pos, const torch::Tensor &atom_type,
                       const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                       const torch::Tensor &edge_shift, const torch::Tensor &edge_vectors)
{
  Output out = aoti_ ? run_aoti(pos, atom_type, edge_index, num_local, want_atom_virial, edge_shift)
                     : run_script(pos, atom_type, edge_index, num_local, want_atom_virial,
                                  edge_shift, edge_vectors);
  const int64_t n = pos.size(0);
  if (n != checked_nodes_ || (want_atom_virial && !checked_atom_virial_)) {
    check_outputs(out, n, want_atom_virial);
    if (n != checked_nodes_) checked_atom_virial_ = false;
    checked_nodes_ = n;
    checked_atom_virial_ = checked_atom_virial_ || want_atom_virial;
  }
  return out;
}

Output Model::run_aoti(const torch::Tensor &pos, const torch::Tensor &atom_type,
                       const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                       const torch::Tensor &edge_shift)
{
  num_local_.fill_(num_local);
  // the package always takes edge shifts; LAMMPS passes none (ghosts carry image positions)
  const torch::Tensor shift =
      edge_shift.defined() ? edge_shift : torch::zeros({edge_index.size(1), 3}, pos.options());
  std::vector<torch::Tensor> values =
      aoti_->run({pos.contiguous(), atom_type.contiguous(), edge_index.contiguous(),
                  shift.contiguous(), num_local_});
  if (values.size() != 5)
    throw Error("the AOTInductor package returned " + std::to_string(values.size()) +
                " outputs, expected 5; re-export it with `gnnff export --format aoti`");
  Output out;
  out.total_energy = values[0];
  out.atomic_energy = values[1];
  out.forces = values[2];
  out.virial = values[3];
  if (want_atom_virial) out.atom_virial = values[4];
  return out;
}

Output Model::run_script(const torch::Tensor &pos, const torch::Tensor &atom_type,
                         const torch::Tensor &edge_index, int64_t num_local, bool want_atom_virial,
                         const torch::Tensor &edge_shift, const torch::Tensor &edge_vectors)
{
  c10::Dict<std::string, torch::Tensor> input;
  input.insert(keys::POSITIONS, pos);
  input.insert(keys::ATOM_TYPE, atom_type);
  input.insert(keys::EDGE_INDEX, edge_index);
  if (edge_shift.defined()) input.insert(keys::EDGE_SHIFT, edge_shift);
  num_local_.fill_(num_local);
  input.insert(keys::NUM_LOCAL, num_local_);
  // a model without the edge gradient ignores both keys below and answers this one
  if (want_atom_virial) input.insert(keys::REQUEST_ATOM_VIRIAL, request_flag_);
  // on a GPU the (E,3) gradient would have to come to the host: forces stay the model's there
  const bool ask_edge_gradient = edge_vectors.defined() && edge_gradient_ != 0 && device_.is_cpu();
  if (ask_edge_gradient) {
    input.insert(keys::EDGE_VECTORS, edge_vectors);
    input.insert(keys::REQUEST_EDGE_GRADIENT, request_flag_);
  }

  auto result = module_.forward({input}).toGenericDict();
  auto get = [&](const char *key, bool required) -> torch::Tensor {
    auto it = result.find(key);
    if (it == result.end()) {
      if (required)
        throw Error(std::string("the model returned no '") + key +
                    "' output; it does not follow the gnnff model contract, re-export it");
      return torch::Tensor();
    }
    return it->value().toTensor();
  };
  Output out;
  out.total_energy = get(keys::TOTAL_ENERGY, true);
  out.atomic_energy = get(keys::ATOMIC_ENERGY, true);
  if (ask_edge_gradient) {
    const torch::Tensor g = get(keys::EDGE_GRADIENT, false);
    edge_gradient_ = g.defined() ? 1 : 0;
    if (g.defined()) {
      check_edge_gradient(g, edge_index.size(1));
      sum_edge_gradient(out, g, edge_vectors, edge_index, pos.size(0), want_atom_virial);
      return out;
    }
  }
  out.forces = get(keys::FORCES, true);
  out.virial = get(keys::VIRIAL, true);
  if (want_atom_virial) out.atom_virial = get(keys::ATOM_VIRIAL, true);
  return out;
}

namespace {

  // F_i += g_ij, F_j -= g_ij; W = -sum r_ij (x) g_ij; per atom, half of each edge's term to i
  // and half to j. In the order of ForceModel's index_adds (all centres, then all neighbours),
  // so that a float64 model's forces and per-atom virials are the bits it would return itself.
  template <typename T>
  void sum_edges(const T *g, const T *r, const int64_t *centre, const int64_t *neighbour,
                 int64_t num_edges, double *forces, double *virial, double *atom_virial)
  {
    // one pass for the centres' forces and the virial (the gradient is read once per step)
    double w[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t e = 0; e < num_edges; e++) {
      double *f = forces + 3 * centre[e];
      const T *re = r + 3 * e, *ge = g + 3 * e;
      f[0] += ge[0];
      f[1] += ge[1];
      f[2] += ge[2];
      for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) w[3 * a + b] += (double) re[a] * (double) ge[b];
    }
    for (int64_t e = 0; e < num_edges; e++) {
      double *f = forces + 3 * neighbour[e];
      const T *ge = g + 3 * e;
      f[0] -= ge[0];
      f[1] -= ge[1];
      f[2] -= ge[2];
    }
    for (int k = 0; k < 9; k++) virial[k] = -w[k];
    if (!atom_virial) return;
    for (const int64_t *node : {centre, neighbour}) {
      for (int64_t e = 0; e < num_edges; e++) {
        const T *re = r + 3 * e, *ge = g + 3 * e;
        double *wa = atom_virial + 9 * node[e];
        for (int a = 0; a < 3; a++) {
          const double half_r = -0.5 * (double) re[a];
          for (int b = 0; b < 3; b++) wa[3 * a + b] += half_r * (double) ge[b];
        }
      }
    }
  }

  // a float64 (n) view of buf with its first n elements zero; buf grows with 25 % headroom
  torch::Tensor zeroed(torch::Tensor &buf, int64_t n)
  {
    if (!buf.defined() || buf.numel() < n)
      buf = torch::empty({n + n / 4 + 16}, torch::TensorOptions().dtype(torch::kFloat64));
    torch::Tensor view = buf.narrow(0, 0, n);
    view.zero_();
    return view;
  }

}    // namespace

void Model::sum_edge_gradient(Output &out, const torch::Tensor &g, const torch::Tensor &r,
                              const torch::Tensor &edge_index, int64_t num_nodes,
                              bool want_atom_virial)
{
  const torch::Tensor gc = g.contiguous(), rc = r.contiguous(), ec = edge_index.contiguous();
  const int64_t num_edges = ec.size(1);
  const int64_t *centre = ec.data_ptr<int64_t>();
  const int64_t *neighbour = centre + num_edges;
  torch::Tensor forces = zeroed(forces_buf_, 3 * num_nodes);
  torch::Tensor virial = torch::empty({1, 3, 3}, torch::TensorOptions().dtype(torch::kFloat64));
  torch::Tensor atom_virial;
  if (want_atom_virial) atom_virial = zeroed(atom_virial_buf_, 9 * num_nodes);
  double *wa = want_atom_virial ? atom_virial.data_ptr<double>() : nullptr;
  if (gc.scalar_type() == torch::kFloat64)
    sum_edges(gc.data_ptr<double>(), rc.data_ptr<double>(), centre, neighbour, num_edges,
              forces.data_ptr<double>(), virial.data_ptr<double>(), wa);
  else
    sum_edges(gc.data_ptr<float>(), rc.data_ptr<float>(), centre, neighbour, num_edges,
              forces.data_ptr<double>(), virial.data_ptr<double>(), wa);
  out.forces = forces.view({num_nodes, 3});
  out.virial = virial;
  if (want_atom_virial) out.atom_virial = atom_virial.view({num_nodes, 3, 3});
  out.summed_from_edge_gradient = true;
}

namespace {

  std::string shape_text(c10::IntArrayRef sizes)
  {
    std::string out = "(";
    for (size_t k = 0; k < sizes.size(); ++k) out += (k ? ", " : "") + std::to_string(sizes[k]);
    return out + (sizes.size() == 1 ? ",)" : ")");
  }

}    // namespace

void Model::check_outputs(const Output &out, int64_t num_nodes, bool want_atom_virial) const
{
  // expected shapes for one graph (no BATCH input): G = 1, N = local + ghost atoms
  struct Expected {
    const char *key;
    const torch::Tensor *tensor;
    std::vector<int64_t> shape;
    const char *symbolic;
  };
  const int64_t n = num_nodes;
  std::vector<Expected> expected = {
      {keys::TOTAL_ENERGY, &out.total_energy, {1}, "(G,) with G = 1 graph"},
      {keys::ATOMIC_ENERGY, &out.atomic_energy, {n}, "(N,) over local and ghost atoms"},
  };
  // forces and virials summed here from the edge gradient (checked in check_edge_gradient)
  // are float64 by construction
  if (!out.summed_from_edge_gradient) {
    expected.push_back({keys::FORCES, &out.forces, {n, 3}, "(N, 3) over local and ghost atoms"});
    expected.push_back({keys::VIRIAL, &out.virial, {1, 3, 3}, "(G, 3, 3) with G = 1 graph"});
  }
  if (want_atom_virial && !out.summed_from_edge_gradient)
    expected.push_back(
        {keys::ATOM_VIRIAL, &out.atom_virial, {n, 3, 3}, "(N, 3, 3) over local and ghost atoms"});
  for (const auto &e : expected) {
    const torch::Tensor &t = *e.tensor;
    const std::string what = std::string("the model's output '") + e.key + "'";
    const std::string fix = "; the model does not follow the gnnff model contract "
                            "(docs/model_contract.md), fix and re-export it";
    if (t.sizes() != c10::IntArrayRef(e.shape))
      throw Error(what + " has shape " + shape_text(t.sizes()) + ", expected " +
                  shape_text(e.shape) + " = " + e.symbolic + ", N = " + std::to_string(n) + fix);
    if (t.scalar_type() != dtype_)
      throw Error(what + " has dtype " + std::string(c10::toString(t.scalar_type())) +
                  ", expected the model's declared dtype " + meta_.dtype + fix);
    if (t.device() != device_)
      throw Error(what + " is on device " + t.device().str() + ", expected " + device_.str() +
                  " where the model and its inputs are" + fix);
  }
}

void Model::check_edge_gradient(const torch::Tensor &g, int64_t num_edges) const
{
  const std::string what = std::string("the model's output '") + keys::EDGE_GRADIENT + "'";
  const std::string fix = "; the model does not follow the gnnff model contract "
                          "(docs/model_contract.md, \"Edge gradient\"), fix and re-export it";
  const std::vector<int64_t> shape = {num_edges, 3};
  if (g.sizes() != c10::IntArrayRef(shape))
    throw Error(what + " has shape " + shape_text(g.sizes()) + ", expected " + shape_text(shape) +
                " = (E, 3), one row per edge" + fix);
  if (g.scalar_type() != dtype_)
    throw Error(what + " has dtype " + std::string(c10::toString(g.scalar_type())) +
                ", expected the model's declared dtype " + meta_.dtype + fix);
  if (g.device() != device_)
    throw Error(what + " is on device " + g.device().str() + ", expected " + device_.str() + fix);
}

}    // namespace gnnff
