// pair_style gnnff: the per-step work. compute() builds the graph (GNNFFGraph, from LAMMPS's
// full neighbour list with ghosts), calls the model, and writes energy, forces and virials back.
//
// The model sees local and ghost atoms as graph nodes and every pair closer than r_max as a
// directed edge. It returns forces on local AND ghost atoms; with newton pair on LAMMPS
// reverse-communicates the ghost forces (and per-atom virials), which is what makes
// message-passing models correct across MPI ranks.
#include "pair_gnnff.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "neigh_list.h"
#include "update.h"
#include "utils.h"

#include "gnnff/model.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

using namespace LAMMPS_NS;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0)
{ return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }

// LAMMPS's 6-component virial (xx yy zz xy xz yz) from a 3x3 row-major tensor, added to v.
// The model's virial is symmetric up to rounding; the off-diagonal pairs are averaged.
inline void add_voigt(const double *w, double *v)
{
  v[0] += w[0];
  v[1] += w[4];
  v[2] += w[8];
  v[3] += 0.5 * (w[1] + w[3]);
  v[4] += 0.5 * (w[2] + w[6]);
  v[5] += 0.5 * (w[5] + w[7]);
}

}    // namespace

// GNNFF_TIMING=1: where the time of the last run went (rank 0), logged at the end of each run
void PairGNNFF::report_timing()
{
  if (timing_ && ncalls_ > 0 && comm->me == 0)
    utils::logmesg(lmp,
                   "gnnff timing: rank 0 made {} model calls: {:.6f} s in the TorchScript call "
                   "({:.3f} ms/call), {:.6f} s building inputs and writing outputs ({:.3f} "
                   "ms/call), {:.1f} edges/call; of the inputs, {:.3f} ms/call building edges on "
                   "{} threads\n",
                   ncalls_, model_seconds_, 1e3 * model_seconds_ / ncalls_, glue_seconds_,
                   1e3 * glue_seconds_ / ncalls_, edges_total_ / ncalls_,
                   1e3 * build_seconds_ / ncalls_, at::get_num_threads());
  ncalls_ = 0;
  model_seconds_ = glue_seconds_ = edges_total_ = build_seconds_ = 0.0;
}

void PairGNNFF::finish()
{ report_timing(); }

void PairGNNFF::check_finite(const double *forces, int natoms, double energy)
{
  // IDs of atoms with non-finite forces; ghosts repeat the IDs of their owners, so dedupe
  std::vector<tagint> bad;
  int nbad = 0;
  for (int g = 0; g < natoms; g++) {
    const double *fg = forces + 3 * g;
    if (std::isfinite(fg[0]) && std::isfinite(fg[1]) && std::isfinite(fg[2])) continue;
    nbad++;
    const tagint id = atom->tag[graph_.atom_of(g)];
    if (bad.size() < 5 && std::find(bad.begin(), bad.end(), id) == bad.end()) bad.push_back(id);
  }
  if (nbad == 0 && std::isfinite(energy)) return;
  std::string ids;
  for (tagint id : bad) ids += " " + std::to_string(static_cast<long long>(id));
  error->one(FLERR,
             "pair_style gnnff: the model returned non-finite {} at step {} (atom IDs:{}{}); "
             "atoms are probably overlapping or outside the model's training domain: check the "
             "structure, lower the timestep, or use a more stable model",
             nbad ? "forces" : "energy", update->ntimestep, nbad ? ids : " unknown",
             bad.size() == 5 ? " ..." : "");
}

PairGNNFF::HostOutput PairGNNFF::call_model(gnnff::Model &model, bool want_energy_atom,
                                            bool want_virial, bool want_atom_virial)
{
  const auto &in = graph_.inputs(atom->x, model.dtype(), model.device());
  const int64_t nlocal = graph_.num_local_nodes();
  // A float32 model's own sums over thousands of atoms round differently with the number of
  // ranks (0.75 eV on 4096 Si atoms between 1 and 2 ranks, issue 12). The energy is therefore
  // always the float64 sum of the per-atom energies, and a float32 model's virial the float64
  // sum of its per-atom virials (which costs the per-atom virial's two index_adds).
  // (Forces and virials that gnnff::Model sums from the model's edge gradient are float64
  // sums already: no per-atom virials needed for that.)
  const bool f32_sums = model.dtype() != torch::kFloat64 && !model.sums_edge_gradient();
  const bool need_atom_virial = want_atom_virial || (want_virial && f32_sums);
  gnnff::Output out = model.evaluate(in.pos, in.atom_type, in.edge_index, nlocal, need_atom_virial,
                                     torch::Tensor(), in.edge_vectors);

  HostOutput host;
  // .to() is a no-op for float64 CPU outputs; otherwise one copy to host doubles
  host.forces = out.forces.to(torch::kCPU, torch::kFloat64).contiguous();
  host.energy = out.atomic_energy.narrow(0, 0, nlocal).to(torch::kFloat64).sum().item<double>();
  if (want_energy_atom)
    host.atomic_energy = out.atomic_energy.to(torch::kCPU, torch::kFloat64).contiguous();
  if (need_atom_virial)
    host.atom_virial = out.atom_virial.to(torch::kCPU, torch::kFloat64).contiguous();
  if (want_virial) {
    const bool from_atoms = model.dtype() != torch::kFloat64 && !out.summed_from_edge_gradient;
    torch::Tensor w = from_atoms ? host.atom_virial.sum(0)
                                 : out.virial.to(torch::kCPU, torch::kFloat64);
    w = w.reshape({9}).contiguous();
    std::copy(w.data_ptr<double>(), w.data_ptr<double>() + 9, host.virial);
  }
  if (!want_atom_virial) host.atom_virial = torch::Tensor();
  return host;
}

void PairGNNFF::write_back(const HostOutput &out)
{
  double **f = atom->f;
  const int nnodes = graph_.num_nodes();
  const double *fg = out.forces.data_ptr<double>();
  for (int g = 0; g < nnodes; g++) {
    double *fi = f[graph_.atom_of(g)];
    fi[0] += fg[3 * g];
    fi[1] += fg[3 * g + 1];
    fi[2] += fg[3 * g + 2];
  }
  if (eflag_global) eng_vdwl += out.energy;
  if (eflag_atom) {
    const double *e = out.atomic_energy.data_ptr<double>();
    for (int g = 0; g < graph_.num_local_nodes(); g++) eatom[graph_.atom_of(g)] += e[g];
  }
  if (vflag_global) add_voigt(out.virial, virial);
  if (vflag_atom) {
    const double *w = out.atom_virial.data_ptr<double>();
    for (int g = 0; g < nnodes; g++) add_voigt(w + 9 * g, vatom[graph_.atom_of(g)]);
  }
}

void PairGNNFF::compute(int eflag, int vflag)
{
  if (layerwise_) return compute_layerwise(eflag, vflag);    // comm layer (layerwise.cpp)
  ev_init(eflag, vflag);
  const auto t_start = std::chrono::steady_clock::now();

  // A strictly local model (interaction range == r_max) gives E_i from the edges centred on
  // i, so only local centres are needed (3-4x fewer edges); message passing needs the edges
  // of ghost atoms too, so that ghost features entering local energies are complete.
  const bool message_passing = interaction_range_ > r_max_;
  graph_.build(atom, list, type_map_, has_null_, r_max_, message_passing);
  const double build_dt = seconds_since(t_start);
  // the committee's deviation needs the driving model's global virial too
  const bool committee = committee_step();

  // a rank without local atoms contributes no energy, hence no forces; it still takes part
  // in the committee's collective reverse communication and reductions
  HostOutput out;
  if (graph_.num_local_nodes() > 0) {
    double model_dt = 0.0;
    try {
      const auto t_model = std::chrono::steady_clock::now();
      out = call_model(*model_, eflag_atom != 0, vflag_global != 0 || committee, vflag_atom != 0);
      model_dt = seconds_since(t_model);
    } catch (const std::exception &err) {
      error->one(FLERR, "pair_style gnnff: evaluating the model failed at step {}: {}",
                 update->ntimestep, gnnff::message_of(err));
    }
    model_seconds_ += model_dt;
    ncalls_++;
    edges_total_ += (double) graph_.num_edges();
    build_seconds_ += build_dt;

    check_finite(out.forces.data_ptr<double>(), graph_.num_nodes(), out.energy);
    write_back(out);
    glue_seconds_ += seconds_since(t_start) - model_dt;
  }
  if (committee) compute_deviation(out);
}
