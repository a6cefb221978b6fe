// gnnff._core: the C++ model loader/evaluator on numpy arrays, so tests can compare the C++
// path (the one the LAMMPS plugin uses) with the Python ForceModel. No torch Python bindings.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "gnnff/keys.h"
#include "gnnff/model.h"

namespace py = pybind11;

namespace {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

py::array_t<double> to_numpy(const torch::Tensor &t)
{
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  std::vector<py::ssize_t> shape(c.sizes().begin(), c.sizes().end());
  py::array_t<double> out(shape);
  std::memcpy(out.mutable_data(), c.data_ptr<double>(), sizeof(double) * c.numel());
  return out;
}

torch::Tensor from_numpy(const py::array &a, torch::ScalarType type)
{
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  // clone: the numpy buffer must not be aliased beyond this call
  return torch::from_blob(const_cast<void *>(a.data()), shape, type).clone();
}

class PyModel {
 public:
  PyModel(const std::string &path, const std::string &device) :
      model_(gnnff::Model::load(path, gnnff::resolve_device(device, 0)))
  {
  }

  py::dict metadata() const
  {
    const auto &m = model_.metadata();
    py::dict d;
    d["contract_version"] = m.contract_version;
    d["r_max"] = m.r_max;
    d["interaction_range"] = m.interaction_range;
    d["type_names"] = m.type_names;
    d["dtype"] = m.dtype;
    d["units"] = m.units;
    d["model_name"] = m.model_name;
    d["lineage"] = m.lineage;
    return d;
  }

  py::dict evaluate(F64 pos, I64 atom_type, I64 edge_index, py::object edge_shift,
                    int64_t num_local, bool atom_virial, py::object edge_vectors)
  {
    if (pos.ndim() != 2 || pos.shape(1) != 3) throw gnnff::Error("pos must have shape (N, 3)");
    if (edge_index.ndim() != 2 || edge_index.shape(0) != 2)
      throw gnnff::Error("edge_index must have shape (2, E)");
    const auto dev = model_.device();
    const auto dtype = model_.dtype();
    torch::Tensor shift;
    if (!edge_shift.is_none())
      shift = from_numpy(F64::ensure(edge_shift), torch::kFloat64).to(dev, dtype);
    // edge vectors as pair_style gnnff passes them: forces and virials are then summed in C++
    // from the model's edge gradient (gnnff::Model::evaluate)
    torch::Tensor vectors;
    if (!edge_vectors.is_none())
      vectors = from_numpy(F64::ensure(edge_vectors), torch::kFloat64).to(dev, dtype);
    torch::Tensor pos_t = from_numpy(pos, torch::kFloat64).to(dev, dtype);
    torch::Tensor type_t = from_numpy(atom_type, torch::kInt64).to(dev);
    torch::Tensor edge_t = from_numpy(edge_index, torch::kInt64).to(dev);
    gnnff::Output out;
    {
      // torch's autograd engine refuses to run while the GIL is held
      py::gil_scoped_release no_gil;
      out = model_.evaluate(pos_t, type_t, edge_t, num_local, atom_virial, shift, vectors);
    }
    py::dict d;
    d[gnnff::keys::TOTAL_ENERGY] = to_numpy(out.total_energy);
    d[gnnff::keys::ATOMIC_ENERGY] = to_numpy(out.atomic_energy);
    d[gnnff::keys::FORCES] = to_numpy(out.forces);
    d[gnnff::keys::VIRIAL] = to_numpy(out.virial);
    if (atom_virial) d[gnnff::keys::ATOM_VIRIAL] = to_numpy(out.atom_virial);
    return d;
  }

 private:
  gnnff::Model model_;
};

}    // namespace

PYBIND11_MODULE(_core, m)
{
  m.doc() = "C++ loader/evaluator of exported gnnff models (the code path of pair_style gnnff)";
  py::register_exception<gnnff::Error>(m, "ModelError", PyExc_ValueError);
  py::class_<PyModel>(m, "Model")
      .def(py::init<const std::string &, const std::string &>(), py::arg("path"),
           py::arg("device") = "cpu")
      .def_property_readonly("metadata", &PyModel::metadata)
      .def("evaluate", &PyModel::evaluate, py::arg("pos"), py::arg("atom_type"),
           py::arg("edge_index"), py::arg("edge_shift") = py::none(), py::arg("num_local"),
           py::arg("atom_virial") = false, py::arg("edge_vectors") = py::none());
}
