// pair_style gnnff: the per-step work. Builds the model input from LAMMPS's full neighbour list
// with ghosts, calls the model, and writes energy, forces and virials back.
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

#include "gnnff/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

using namespace LAMMPS_NS;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0)
{
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}    // namespace

// GNNFF_TIMING=1: where the time of the last run went (rank 0), printed at the end of each run
void PairGNNFF::report_timing()
{
  if (timing_ && ncalls_ > 0 && comm->me == 0) {
    std::fprintf(stdout,
                 "gnnff timing: rank 0 made %ld model calls: %.6f s in the TorchScript call "
                 "(%.3f ms/call), %.6f s building inputs and writing outputs (%.3f ms/call), "
                 "%.1f edges/call\n",
                 ncalls_, model_seconds_, 1e3 * model_seconds_ / ncalls_, glue_seconds_,
                 1e3 * glue_seconds_ / ncalls_, edges_total_ / ncalls_);
    std::fflush(stdout);
  }
  ncalls_ = 0;
  model_seconds_ = glue_seconds_ = edges_total_ = 0.0;
}

void PairGNNFF::finish()
{
  report_timing();
}

void PairGNNFF::check_finite(const double *forces, int natoms, double energy)
{
  // IDs of atoms with non-finite forces; ghosts repeat the IDs of their owners, so dedupe
  std::vector<tagint> bad;
  int nbad = 0;
  for (int g = 0; g < natoms; g++) {
    const double *fg = forces + 3 * g;
    if (std::isfinite(fg[0]) && std::isfinite(fg[1]) && std::isfinite(fg[2])) continue;
    nbad++;
    const tagint id = atom->tag[atom_of_graph_.empty() ? g : atom_of_graph_[g]];
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

void PairGNNFF::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  const auto t_start = std::chrono::steady_clock::now();

  double **x = atom->x;
  double **f = atom->f;
  const int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;

  // graph nodes: all atoms of mapped types, locals first (LAMMPS stores locals first)
  int ngraph = nall, nlocal_graph = nlocal;
  atom_of_graph_.clear();
  if (has_null_) {
    if ((int) graph_of_atom_.size() < nall) graph_of_atom_.resize(nall);
    ngraph = 0;
    for (int i = 0; i < nall; i++) {
      if (i == nlocal) nlocal_graph = ngraph;
      if (type_map_[type[i]] >= 0) {
        graph_of_atom_[i] = ngraph++;
        atom_of_graph_.push_back(i);
      } else {
        graph_of_atom_[i] = -1;
      }
    }
    if (nall == nlocal) nlocal_graph = ngraph;
  }
  // a rank without local atoms contributes no energy, hence no forces
  if (nlocal_graph == 0) return;
  auto atom_index = [&](int g) { return has_null_ ? atom_of_graph_[g] : g; };

  // edges: every (i, j) of the full+ghost list closer than r_max (the list includes the skin).
  // A strictly local model (interaction range == r_max) gives E_i from the edges centred on
  // i, so only local centres are needed (3-4x fewer edges); message passing needs the edges
  // of ghost atoms too, so that ghost features entering local energies are complete.
  const double rsq_max = r_max_ * r_max_;
  centre_.clear();
  neighbour_.clear();
  const bool message_passing = interaction_range_ > r_max_;
  const int ncentres = message_passing ? list->inum + list->gnum : list->inum;
  for (int ii = 0; ii < ncentres; ii++) {
    const int i = list->ilist[ii];
    const int gi = has_null_ ? graph_of_atom_[i] : i;
    if (gi < 0) continue;
    const int *jlist = list->firstneigh[i];
    const int jnum = list->numneigh[i];
    for (int jj = 0; jj < jnum; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const int gj = has_null_ ? graph_of_atom_[j] : j;
      if (gj < 0) continue;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz < rsq_max) {
        centre_.push_back(gi);
        neighbour_.push_back(gj);
      }
    }
  }
  const int64_t nedges = (int64_t) centre_.size();
  if ((int64_t) edge_buf_.size() < 2 * nedges) edge_buf_.resize(2 * nedges);
  std::memcpy(edge_buf_.data(), centre_.data(), sizeof(int64_t) * nedges);
  std::memcpy(edge_buf_.data() + nedges, neighbour_.data(), sizeof(int64_t) * nedges);

  if ((int) type_buf_.size() < ngraph) type_buf_.resize(ngraph);
  for (int g = 0; g < ngraph; g++) type_buf_[g] = type_map_[type[atom_index(g)]];

  gnnff::Output out;
  torch::Tensor forces, atomic_energy, atom_virial, model_virial;
  double model_dt = 0.0;
  double energy = 0.0;
  try {
    const torch::Device device = model_->device();
    const bool f64 = model_->dtype() == torch::kFloat64;
    torch::Tensor pos;
    if (f64 && !has_null_ && device.is_cpu()) {
      // zero copy: atom->x is one contiguous nmax x 3 block; the model only reads it
      pos = torch::from_blob(&x[0][0], {ngraph, 3}, torch::kFloat64);
    } else if (f64) {
      if ((int) pos64_.size() < 3 * ngraph) pos64_.resize(3 * ngraph);
      for (int g = 0; g < ngraph; g++)
        for (int k = 0; k < 3; k++) pos64_[3 * g + k] = x[atom_index(g)][k];
      pos = torch::from_blob(pos64_.data(), {ngraph, 3}, torch::kFloat64).to(device);
    } else {
      if ((int) pos32_.size() < 3 * ngraph) pos32_.resize(3 * ngraph);
      for (int g = 0; g < ngraph; g++)
        for (int k = 0; k < 3; k++) pos32_[3 * g + k] = (float) x[atom_index(g)][k];
      pos = torch::from_blob(pos32_.data(), {ngraph, 3}, torch::kFloat32).to(device);
    }
    auto atom_type = torch::from_blob(type_buf_.data(), {ngraph}, torch::kInt64).to(device);
    auto edge_index = torch::from_blob(edge_buf_.data(), {2, nedges}, torch::kInt64).to(device);

    const auto t_model = std::chrono::steady_clock::now();
    out = model_->evaluate(pos, atom_type, edge_index, nlocal_graph, vflag_atom != 0);
    // .to() is a no-op for float64 CPU outputs; otherwise one copy to host doubles
    forces = out.forces.to(torch::kCPU, torch::kFloat64).contiguous();
    energy = out.total_energy.to(torch::kCPU, torch::kFloat64).sum().item<double>();
    if (eflag_atom) atomic_energy = out.atomic_energy.to(torch::kCPU, torch::kFloat64).contiguous();
    if (vflag_global) model_virial = out.virial.to(torch::kCPU, torch::kFloat64).contiguous();
    if (vflag_atom) atom_virial = out.atom_virial.to(torch::kCPU, torch::kFloat64).contiguous();
    model_dt = seconds_since(t_model);
    model_seconds_ += model_dt;
  } catch (const std::exception &err) {
    error->one(FLERR, "pair_style gnnff: evaluating the model failed at step {}: {}",
               update->ntimestep, gnnff::message_of(err));
  }
  ncalls_++;
  edges_total_ += (double) nedges;

  const double *fg = forces.data_ptr<double>();
  check_finite(fg, ngraph, energy);
  for (int g = 0; g < ngraph; g++) {
    double *fi = f[atom_index(g)];
    fi[0] += fg[3 * g];
    fi[1] += fg[3 * g + 1];
    fi[2] += fg[3 * g + 2];
  }
  if (eflag_global) eng_vdwl += energy;
  if (eflag_atom) {
    const double *e = atomic_energy.data_ptr<double>();
    for (int g = 0; g < nlocal_graph; g++) eatom[atom_index(g)] += e[g];
  }
  if (vflag_global) {
    const double *w = model_virial.data_ptr<double>();    // (1,3,3) row-major
    virial[0] += w[0];
    virial[1] += w[4];
    virial[2] += w[8];
    virial[3] += 0.5 * (w[1] + w[3]);
    virial[4] += 0.5 * (w[2] + w[6]);
    virial[5] += 0.5 * (w[5] + w[7]);
  }
  if (vflag_atom) {
    const double *w = atom_virial.data_ptr<double>();
    for (int g = 0; g < ngraph; g++) {
      const double *wg = w + 9 * g;
      double *v = vatom[atom_index(g)];
      v[0] += wg[0];
      v[1] += wg[4];
      v[2] += wg[8];
      v[3] += 0.5 * (wg[1] + wg[3]);
      v[4] += 0.5 * (wg[2] + wg[6]);
      v[5] += 0.5 * (wg[5] + wg[7]);
    }
  }
  glue_seconds_ += seconds_since(t_start) - model_dt;
}
