// pair_style gnnff: committee model deviation (`pair_style gnnff committee m2.pt m3.pt ...`).
//
// The pair_coeff model drives the dynamics; the committee's other models are evaluated on the
// same graph every N steps. Each member's forces on local and ghost atoms are reverse-
// communicated like LAMMPS's own forces, so every atom's deviation uses its full force on any
// number of ranks. Definitions of DeePMD-kit's model deviation (docs/pair_style.md):
//   per atom   e_f,i = sqrt( <|F_i - <F_i>|^2> )        (<> = mean over the M members)
//   global     max, min and mean of e_f,i over the atoms of the model's types
//   virial     per component std over members of W/n_atoms; max, min, sqrt(mean of squares)
#include "pair_gnnff.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "memory.h"
#include "update.h"
#include "utils.h"

#include "gnnff/model.h"

#include <cmath>
#include <cstring>
#include <limits>

using namespace LAMMPS_NS;

enum { V_MAX, V_MIN, V_AVG, F_MAX, F_MIN, F_AVG };

void PairGNNFF::load_committee(const std::string &driver_file)
{
  committee_.clear();
  const auto &driver = model_->metadata();
  for (const auto &file : committee_files_) {
    auto member = load_model(file);
    const auto &meta = member->metadata();
    if (meta.type_names != driver.type_names) {
      std::string a, b;
      for (const auto &n : driver.type_names) a += " " + n;
      for (const auto &n : meta.type_names) b += " " + n;
      error->all(FLERR,
                 "pair_style gnnff committee: model {} has elements{} but the pair_coeff model "
                 "{} has{}; committee members must share type_names (same names, same order)",
                 file, b, driver_file, a);
    }
    if (meta.r_max != driver.r_max)
      error->all(FLERR,
                 "pair_style gnnff committee: model {} has r_max {} A but the pair_coeff model {} "
                 "has {} A; committee members are evaluated on one graph and must share r_max",
                 file, meta.r_max, driver_file, driver.r_max);
    // ghosts must reach the longest interaction range of the committee
    interaction_range_ = std::max(interaction_range_, meta.interaction_range);
    committee_.push_back(std::move(member));
  }
  comm_reverse = 3 * (1 + (int) committee_.size());
}

bool PairGNNFF::committee_step() const
{ return !committee_.empty() && update->ntimestep % devi_every_ == 0; }

int PairGNNFF::pack_reverse_comm(int n, int first, double *buf)
{
  if (exchange_width_ > 0) return pack_feature_grads(n, first, buf);    // comm layer
  int m = 0;
  for (int i = first; i < first + n; i++)
    for (int k = 0; k < comm_reverse; k++) buf[m++] = member_f_[i][k];
  return m;
}

void PairGNNFF::unpack_reverse_comm(int n, int *list, double *buf)
{
  if (exchange_width_ > 0) return unpack_feature_grads(n, list, buf);    // comm layer
  int m = 0;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < comm_reverse; k++) member_f_[list[i]][k] += buf[m++];
}

void PairGNNFF::compute_deviation(const HostOutput &driver)
{
  const int members = 1 + (int) committee_.size();
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  if (atom->nmax > member_f_nmax_) {
    member_f_nmax_ = atom->nmax;
    memory->destroy(member_f_);
    memory->destroy(devi_f_);
    memory->create(member_f_, member_f_nmax_, 3 * members, "pair:gnnff_member_f");
    memory->create(devi_f_, member_f_nmax_, "pair:gnnff_devi_f");
  }
  if (nall > 0) std::memset(&member_f_[0][0], 0, sizeof(double) * nall * 3 * members);
  std::vector<double> virials(9 * members, 0.0);

  // each member's forces on this rank's graph nodes (a rank without local atoms has none)
  auto scatter = [&](int k, const HostOutput &out) {
    const double *fg = out.forces.data_ptr<double>();
    for (int g = 0; g < graph_.num_nodes(); g++)
      for (int d = 0; d < 3; d++) member_f_[graph_.atom_of(g)][3 * k + d] = fg[3 * g + d];
    for (int c = 0; c < 9; c++) virials[9 * k + c] = out.virial[c];
  };
  if (graph_.num_local_nodes() > 0) {
    scatter(0, driver);
    for (int k = 1; k < members; k++) {
      try {
        scatter(k, call_model(*committee_[k - 1], false, true, false));
      } catch (const std::exception &err) {
        error->one(FLERR, "pair_style gnnff: evaluating committee model {} failed at step {}: {}",
                   committee_files_[k - 1], update->ntimestep, gnnff::message_of(err));
      }
    }
  }
  // ghost contributions home, as LAMMPS does for atom->f (newton on)
  comm->reverse_comm(this);

  double fmax = 0.0, fmin = std::numeric_limits<double>::max(), fsum = 0.0, count = 0.0;
  for (int i = 0; i < nlocal; i++) {
    devi_f_[i] = 0.0;
    if (type_map_[atom->type[i]] < 0) continue;    // NULL type in pair_style hybrid
    double mean[3] = {0.0, 0.0, 0.0};
    for (int k = 0; k < members; k++)
      for (int d = 0; d < 3; d++) mean[d] += member_f_[i][3 * k + d] / members;
    double sq = 0.0;
    for (int k = 0; k < members; k++)
      for (int d = 0; d < 3; d++) {
        const double diff = member_f_[i][3 * k + d] - mean[d];
        sq += diff * diff;
      }
    devi_f_[i] = std::sqrt(sq / members);
    fmax = std::max(fmax, devi_f_[i]);
    fmin = std::min(fmin, devi_f_[i]);
    fsum += devi_f_[i];
    count += 1.0;
  }
  double sums[2] = {fsum, count}, all_sums[2];
  MPI_Allreduce(sums, all_sums, 2, MPI_DOUBLE, MPI_SUM, world);
  MPI_Allreduce(&fmax, &devi_global_[F_MAX], 1, MPI_DOUBLE, MPI_MAX, world);
  MPI_Allreduce(&fmin, &devi_global_[F_MIN], 1, MPI_DOUBLE, MPI_MIN, world);
  const double natoms = all_sums[1];
  devi_global_[F_AVG] = natoms > 0 ? all_sums[0] / natoms : 0.0;
  if (natoms == 0) devi_global_[F_MIN] = 0.0;

  std::vector<double> all_virials(9 * members);
  MPI_Allreduce(virials.data(), all_virials.data(), 9 * members, MPI_DOUBLE, MPI_SUM, world);
  double vmax = 0.0, vmin = std::numeric_limits<double>::max(), vsq = 0.0;
  for (int c = 0; c < 9; c++) {
    double mean = 0.0, var = 0.0;
    for (int k = 0; k < members; k++) mean += all_virials[9 * k + c] / members;
    for (int k = 0; k < members; k++) {
      const double diff = all_virials[9 * k + c] - mean;
      var += diff * diff / members;
    }
    const double std_c = natoms > 0 ? std::sqrt(var) / natoms : 0.0;
    vmax = std::max(vmax, std_c);
    vmin = std::min(vmin, std_c);
    vsq += std_c * std_c;
  }
  devi_global_[V_MAX] = vmax;
  devi_global_[V_MIN] = vmin;
  devi_global_[V_AVG] = std::sqrt(vsq / 9.0);
  devi_step_ = (double) update->ntimestep;
  // `compute pair gnnff` sums pvector over ranks: rank 0 holds the global values
  for (int k = 0; k < 6; k++) pvector[k] = comm->me == 0 ? devi_global_[k] : 0.0;
  write_model_devi();
}

// DeePMD-kit's model_devi.out layout, so existing active-learning scripts read it
void PairGNNFF::write_model_devi()
{
  if (devi_path_.empty() || comm->me != 0) return;
  if (!devi_fp_) {
    devi_fp_ = fopen(devi_path_.c_str(), "w");
    if (!devi_fp_)
      error->one(FLERR, "pair_style gnnff: cannot open model_devi file {}: {}", devi_path_,
                 utils::getsyserror());
    fmt::print(devi_fp_, "#{:>11}{:>19}{:>19}{:>19}{:>19}{:>19}{:>19}\n", "step", "max_devi_v",
               "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f", "avg_devi_f");
  }
  fmt::print(devi_fp_, "{:>12}", update->ntimestep);
  for (int k = 0; k < 6; k++) fmt::print(devi_fp_, " {:>18.10e}", devi_global_[k]);
  fmt::print(devi_fp_, "\n");
  fflush(devi_fp_);
}

/* names read by other styles (e.g. fix gnnff/watch); see docs/pair_style.md. Pointers may change
   when atoms are added: extract again at every use. */
void *PairGNNFF::extract(const char *name, int &dim)
{
  if (committee_.empty()) return nullptr;
  dim = 0;
  if (strcmp(name, "gnnff_devi_f_max") == 0) return &devi_global_[F_MAX];
  if (strcmp(name, "gnnff_devi_f_min") == 0) return &devi_global_[F_MIN];
  if (strcmp(name, "gnnff_devi_f_avg") == 0) return &devi_global_[F_AVG];
  if (strcmp(name, "gnnff_devi_v_max") == 0) return &devi_global_[V_MAX];
  if (strcmp(name, "gnnff_devi_v_min") == 0) return &devi_global_[V_MIN];
  if (strcmp(name, "gnnff_devi_v_avg") == 0) return &devi_global_[V_AVG];
  if (strcmp(name, "gnnff_devi_step") == 0) return &devi_step_;
  if (strcmp(name, "gnnff_devi_f") == 0) {
    dim = 1;
    return devi_f_;
  }
  return nullptr;
}
