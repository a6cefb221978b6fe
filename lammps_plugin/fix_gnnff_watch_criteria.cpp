// fix gnnff/watch: the criteria. Each returns its value (reduced over all ranks, so every rank
// gets the same number) and fills `detail` with the verdict text when it fails. Definitions:
// python/gnnff/stability (close_contacts.py, bonds.py, thermo_criteria.py, sanity.py).
#include "fix_gnnff_watch.h"

#include "atom.h"
#include "comm.h"
#include "compute.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "pair.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace LAMMPS_NS;

static constexpr int MAX_LISTED_ATOMS = 10;    // atom IDs named in a non-finite verdict
// values this close (relative) count as a tie, broken by the smallest atom ID / bond index:
// symmetric structures (perfect lattices) give pairs whose distances differ only by round-off,
// and that round-off depends on the number of ranks
static constexpr double TIE = 1e-10;

// min over pairs of d_ij / d_ref(type_i, type_j), capped at 1 (CloseContacts.single_frame)
double FixGNNFFWatch::close_contacts(std::string &detail)
{
  neighbor->build_one(list_);
  double **x = atom->x;
  int *type = atom->type, *mask = atom->mask;
  tagint *tag = atom->tag;
  const int nt1 = atom->ntypes + 1;
  // pass 1: the smallest ratio; pass 2 (failing checks only): the pair with the smallest
  // atom IDs among those tied with it
  auto for_each_pair = [&](auto &&visit) {
    for (int ii = 0; ii < list_->inum; ii++) {
      int i = list_->ilist[ii];
      int *jlist = list_->firstneigh[i];
      for (int jj = 0; jj < list_->numneigh[i]; jj++) {
        int j = jlist[jj] & NEIGHMASK;
        if (!(mask[i] & groupbit) && !(mask[j] & groupbit)) continue;
        double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
        double d = std::sqrt(dx * dx + dy * dy + dz * dz);
        visit(i, j, d, d / dref_type_[type[i] * nt1 + type[j]]);
      }
    }
  };
  double best = 1.0;
  for_each_pair([&](int, int, double, double ratio) {
    best = std::min(best, ratio);
  });
  double global;
  MPI_Allreduce(&best, &global, 1, MPI_DOUBLE, MPI_MIN, world);
  if (global >= close_fraction_) return global;
  tagint mine[2] = {MAXTAGINT, MAXTAGINT};
  double best_d = 0.0;
  for_each_pair([&](int i, int j, double d, double ratio) {
    if (ratio > global * (1.0 + TIE)) return;
    tagint a = std::min(tag[i], tag[j]), b = std::max(tag[i], tag[j]);
    if (a < mine[0] || (a == mine[0] && b < mine[1])) {
      mine[0] = a;
      mine[1] = b;
      best_d = d;
    }
  });
  tagint ab[2];
  MPI_Allreduce(&mine[0], &ab[0], 1, MPI_LMP_TAGINT, MPI_MIN, world);
  if (mine[0] != ab[0]) mine[1] = MAXTAGINT;
  MPI_Allreduce(&mine[1], &ab[1], 1, MPI_LMP_TAGINT, MPI_MIN, world);
  double d_mine = (mine[0] == ab[0] && mine[1] == ab[1]) ? best_d : 0.0, d;
  MPI_Allreduce(&d_mine, &d, 1, MPI_DOUBLE, MPI_MAX, world);
  detail = fmt::format("atoms {} and {} at {:.4f} Å = {:.4f} x d_ref ({:.4f} Å) < {}", ab[0], ab[1],
                       d, global, d / global, close_fraction_);
  return global;
}

// max over bonds of |r_b - r_ref,b| (BondLengthDeviation.single_frame); bond vectors are
// minimum images: the closest image among local and ghost atoms, else (partner farther than
// the ghost cutoff) the owner's position sent to everyone and domain->minimum_image
double FixGNNFFWatch::bond_deviation(std::string &detail)
{
  double **x = atom->x;
  int *mask = atom->mask;
  const int nlocal = atom->nlocal;
  const double far = comm->get_comm_cutoff();
  auto &measured = bond_measured_;    // (bond index, length) of this rank's bonds
  auto &pending = bond_pending_;      // bonds whose partner is not (reliably) on this rank
  measured.clear();    // members: capacity is kept, nothing is allocated at each check
  pending.clear();
  const long nbonds = (long) bond_i_.size();
  auto consider = [&](long b, double length) {
    measured.emplace_back(b, length);
  };
  for (long b = 0; b < nbonds; b++) {
    int i = atom->map(bond_i_[b]);
    if (i < 0 || i >= nlocal || !(mask[i] & groupbit)) continue;
    int j = atom->map(bond_j_[b]);
    if (j >= 0) j = domain->closest_image(i, j);
    double length = far;
    if (j >= 0) {
      double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      length = std::sqrt(dx * dx + dy * dy + dz * dz);
    }
    if (j < 0 || length >= far)
      pending.push_back((int) b);
    else
      consider(b, length);
  }

  // rare path: stretched bonds beyond the ghost shell
  int npend = (int) pending.size(), ntotal;
  MPI_Allreduce(&npend, &ntotal, 1, MPI_INT, MPI_SUM, world);
  if (ntotal > 0) {
    std::vector<int> counts(comm->nprocs), displs(comm->nprocs, 0), all(ntotal);
    MPI_Allgather(&npend, 1, MPI_INT, counts.data(), 1, MPI_INT, world);
    for (int p = 1; p < comm->nprocs; p++) displs[p] = displs[p - 1] + counts[p - 1];
    MPI_Allgatherv(pending.data(), npend, MPI_INT, all.data(), counts.data(), displs.data(),
                   MPI_INT, world);
    std::vector<double> pos(4 * ntotal, 0.0), sum(4 * ntotal);
    for (int k = 0; k < ntotal; k++) {
      int m = atom->map(bond_j_[all[k]]);
      if (m >= 0 && m < nlocal) {
        for (int c = 0; c < 3; c++) pos[4 * k + c] = x[m][c];
        pos[4 * k + 3] = 1.0;    // found
      }
    }
    MPI_Allreduce(pos.data(), sum.data(), 4 * ntotal, MPI_DOUBLE, MPI_SUM, world);
    for (int k = displs[comm->me]; k < displs[comm->me] + npend; k++) {
      if (sum[4 * k + 3] == 0.0) continue;    // partner lost: skipped, as in the analysis
      int i = atom->map(bond_i_[all[k]]);
      double del[3] = {sum[4 * k] - x[i][0], sum[4 * k + 1] - x[i][1], sum[4 * k + 2] - x[i][2]};
      domain->minimum_image(FLERR, del);
      consider(all[k], std::sqrt(del[0] * del[0] + del[1] * del[1] + del[2] * del[2]));
    }
  }

  // the largest deviation; on failure the smallest bond index among those tied with it
  double best = -1.0, global;
  for (auto &m : measured) best = std::max(best, std::fabs(m.second - bond_ref_[m.first]));
  MPI_Allreduce(&best, &global, 1, MPI_DOUBLE, MPI_MAX, world);
  if (global < 0.0) return 0.0;    // no bond measured (all partners lost)
  if (global > bond_tol_) {
    long mine = nbonds, b;
    double length = 0.0;
    for (auto &m : measured)
      if (std::fabs(m.second - bond_ref_[m.first]) >= global * (1.0 - TIE) && m.first < mine) {
        mine = m.first;
        length = m.second;
      }
    MPI_Allreduce(&mine, &b, 1, MPI_LONG, MPI_MIN, world);
    double length_mine = mine == b ? length : -1.0;
    MPI_Allreduce(&length_mine, &length, 1, MPI_DOUBLE, MPI_MAX, world);
    detail = fmt::format("bond {}-{} is {:.4f} Å, off by {:.4f} Å from {:.4f} Å > {} Å", bond_i_[b],
                         bond_j_[b], length, global, bond_ref_[b], bond_tol_);
  }
  return global;
}

// thermo temperature against T_max = temp_max, or temp_factor x T_ref where T_ref is temp_ref
// or the median of the first 10 checks (TemperatureBlowup: median of the first 10 thermo rows)
double FixGNNFFWatch::temperature(std::string &detail)
{
  double t = temperature_->invoked_scalar == update->ntimestep ? temperature_->scalar
                                                               : temperature_->compute_scalar();
  // T_ref samples: one per step (the setup check of a run may repeat the previous step)
  if ((int) temp_history_.size() < N_TEMP_REF && update->ntimestep != last_temp_step_)
    temp_history_.push_back(t);
  last_temp_step_ = update->ntimestep;
  double limit = temp_max_;
  std::string how;
  if (limit <= 0.0) {
    double ref = temp_ref_;
    if (ref <= 0.0) {
      std::vector<double> h(temp_history_);
      std::sort(h.begin(), h.end());
      size_t n = h.size();
      ref = n % 2 ? h[n / 2] : 0.5 * (h[n / 2 - 1] + h[n / 2]);    // numpy.median
      how = fmt::format(" = {} x median of the first {} checks", temp_factor_, n);
    } else {
      how = fmt::format(" = {} x temp_ref", temp_factor_);
    }
    limit = temp_factor_ * ref;
  }
  if (t > limit || !std::isfinite(t))
    detail =
        fmt::format("T = {:.2f} K > {:.2f} K{}, hottest atom {}", t, limit, how, hottest_atom());
  return t;
}

// ID of the group atom with the largest kinetic energy (smallest ID on ties): where the
// energy of a blow-up went
tagint FixGNNFFWatch::hottest_atom()
{
  double **v = atom->v;
  double *rmass = atom->rmass, *mass = atom->mass;
  int *type = atom->type, *mask = atom->mask;
  tagint *tag = atom->tag;
  double best = -1.0;
  tagint best_id = MAXTAGINT;
  for (int i = 0; i < atom->nlocal; i++) {
    if (!(mask[i] & groupbit)) continue;
    double m = rmass ? rmass[i] : mass[type[i]];
    double ke = m * (v[i][0] * v[i][0] + v[i][1] * v[i][1] + v[i][2] * v[i][2]);
    best = std::max(best, ke);
  }
  double global;
  MPI_Allreduce(&best, &global, 1, MPI_DOUBLE, MPI_MAX, world);
  for (int i = 0; i < atom->nlocal; i++) {
    if (!(mask[i] & groupbit)) continue;
    double m = rmass ? rmass[i] : mass[type[i]];
    double ke = m * (v[i][0] * v[i][0] + v[i][1] * v[i][1] + v[i][2] * v[i][2]);
    if (ke >= global * (1.0 - TIE) && tag[i] < best_id) best_id = tag[i];
  }
  tagint mine = best_id, id;
  MPI_Allreduce(&mine, &id, 1, MPI_LMP_TAGINT, MPI_MIN, world);
  return id;
}

// atoms of the group with nan/inf in x, v or f; the verdict lists the smallest IDs
double FixGNNFFWatch::nonfinite(std::string &detail)
{
  double **x = atom->x, **v = atom->v, **f = atom->f;
  int *mask = atom->mask;
  tagint *tag = atom->tag;
  std::vector<tagint> bad;
  for (int i = 0; i < atom->nlocal; i++) {
    if (!(mask[i] & groupbit)) continue;
    bool ok = true;
    for (int c = 0; c < 3; c++)
      ok = ok && std::isfinite(x[i][c]) && std::isfinite(v[i][c]) && std::isfinite(f[i][c]);
    if (!ok) bad.push_back(tag[i]);
  }
  bigint nbad_local = (bigint) bad.size(), nbad;
  MPI_Allreduce(&nbad_local, &nbad, 1, MPI_LMP_BIGINT, MPI_SUM, world);
  if (nbad == 0) return 0.0;
  std::sort(bad.begin(), bad.end());
  bad.resize(MAX_LISTED_ATOMS, MAXTAGINT);
  std::vector<tagint> all(MAX_LISTED_ATOMS * comm->nprocs);
  MPI_Allgather(bad.data(), MAX_LISTED_ATOMS, MPI_LMP_TAGINT, all.data(), MAX_LISTED_ATOMS,
                MPI_LMP_TAGINT, world);
  std::sort(all.begin(), all.end());
  std::vector<std::string> ids;
  for (int k = 0; k < MAX_LISTED_ATOMS && all[k] != MAXTAGINT; k++)
    ids.push_back(std::to_string(all[k]));
  detail = fmt::format("{} atoms with nan/inf position, velocity or force: atoms {}{}", nbad,
                       utils::join_words(ids, " "), nbad > MAX_LISTED_ATOMS ? " ..." : "");
  return (double) nbad;
}

// committee force deviation of pair_style gnnff (DeePMD's max_devi_f)
double FixGNNFFWatch::devi_f(std::string &detail)
{
  int dim = -1;
  auto *maxp = (double *) committee_->extract("gnnff_devi_f_max", dim);
  if (!maxp)
    error->all(FLERR, "fix gnnff/watch: pair_style gnnff stopped reporting gnnff_devi_f_max");
  double value = *maxp;
  if (value > devi_f_max_ || !std::isfinite(value)) {
    auto *per_atom = (double *) committee_->extract("gnnff_devi_f", dim);
    tagint mine = MAXTAGINT, atom_id = MAXTAGINT;
    if (per_atom)
      for (int i = 0; i < atom->nlocal; i++)
        if (per_atom[i] >= value * (1.0 - TIE) && atom->tag[i] < mine) mine = atom->tag[i];
    MPI_Allreduce(&mine, &atom_id, 1, MPI_LMP_TAGINT, MPI_MIN, world);
    detail = fmt::format("max_devi_f = {:.4g} eV/Å > {} eV/Å{}", value, devi_f_max_,
                         atom_id != MAXTAGINT ? fmt::format(" at atom {}", atom_id) : "");
  }
  return value;
}
