// pair_style gnnff: set-up (settings, pair_coeff, checks, cutoffs). The per-step work is in
// pair_gnnff_compute.cpp. See docs/pair_style.md.
#include "pair_gnnff.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include "gnnff/model.h"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

using namespace LAMMPS_NS;

namespace {

// `memory keep` (the default): glibc's malloc keeps freed blocks for reuse instead of handing
// them back to the kernel. By default glibc serves every block above its mmap threshold (at
// most 32 MB) with a fresh mmap and unmaps it on free, and trims the heap top above 128 kB, so
// torch's per-step tensors of that size come back as freshly zeroed pages (page faults) on every
// step. Process-wide and done once; left alone when the user set glibc's own variables. Returns
// what was done, for the log.
std::string keep_freed_memory()
{
#if defined(__GLIBC__)
  static std::string done;
  if (!done.empty()) return done;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") ||
      std::getenv("MALLOC_TOP_PAD_") || std::getenv("GLIBC_TUNABLES")) {
    done = "left to the user's MALLOC_*/GLIBC_TUNABLES settings";
  } else {
    const bool ok =
        mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
    done = ok ? "glibc malloc keeps freed memory for reuse (mmap threshold 1 GiB, no trim)"
              : "glibc refused mallopt; freed memory may still go back to the OS";
  }
  return done;
#else
  return "not glibc: the allocator's own policy applies";
#endif
}

}    // namespace

PairGNNFF::PairGNNFF(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  ghostneigh = 1;
  // the virial comes from the model, not from sum r.f over owned+ghost atoms
  no_virial_fdotr_compute = 1;
  // the per-atom virial is split half/half over edges; a centroid stress is not implemented,
  // so compute centroid/stress/atom stops with an error instead of reporting wrong numbers
  centroidstressflag = CENTROID_NOTAVAIL;
  timing_ = std::getenv("GNNFF_TIMING") != nullptr;
}

PairGNNFF::~PairGNNFF()
{
  // a /kk-style copy (copymode set) shares this object's arrays and must not free them
  if (copymode) return;
  report_timing();
  if (devi_fp_) fclose(devi_fp_);
  memory->destroy(member_f_);
  memory->destroy(devi_f_);
  delete[] pvector;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairGNNFF::allocate()
{
  allocated = 1;
  const int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  memory->create(cutghost, n + 1, n + 1, "pair:cutghost");
  for (int i = 0; i <= n; i++)
    for (int j = 0; j <= n; j++) setflag[i][j] = 0;
}

/* pair_style gnnff [device auto|cpu|cuda|cuda:N] [comm layer|shell] [memory keep|release]
                    [committee m2.pt ...] [model_devi FILE N] */
void PairGNNFF::settings(int narg, char **arg)
{
  auto usage = [&](const char *what) {
    error->all(FLERR,
               "Illegal pair_style gnnff argument {}; use `pair_style gnnff` or `pair_style "
               "gnnff [device auto|cpu|cuda|cuda:N] [comm layer|shell] [memory keep|release] "
               "[committee model2.pt ...] [model_devi FILE N]`",
               what);
  };
  committee_files_.clear();
  comm_request_ = CommRequest::Default;
  devi_path_.clear();
  devi_every_ = 1;
  bool keep_memory = true;
  int iarg = 0;
  while (iarg < narg) {
    if (strcmp(arg[iarg], "comm") == 0 && iarg + 1 < narg) {
      // comm layer|shell: per-layer feature exchange or the whole ghost shell (layerwise.cpp)
      if (strcmp(arg[iarg + 1], "layer") == 0)
        comm_request_ = CommRequest::Layer;
      else if (strcmp(arg[iarg + 1], "shell") == 0)
        comm_request_ = CommRequest::Shell;
      else
        usage(fmt::format("'comm {}' (use comm layer or comm shell)", arg[iarg + 1]).c_str());
      iarg += 2;
    } else if (strcmp(arg[iarg], "memory") == 0 && iarg + 1 < narg) {
      // memory keep|release: keep freed memory in the process (mallopt, once) or leave glibc's
      // defaults
      if (strcmp(arg[iarg + 1], "keep") == 0)
        keep_memory = true;
      else if (strcmp(arg[iarg + 1], "release") == 0)
        keep_memory = false;
      else
        usage(
            fmt::format("'memory {}' (use memory keep or memory release)", arg[iarg + 1]).c_str());
      iarg += 2;
    } else if (strcmp(arg[iarg], "device") == 0 && iarg + 1 < narg) {
      device_request_ = arg[iarg + 1];
      iarg += 2;
    } else if (strcmp(arg[iarg], "committee") == 0) {
      iarg++;
      while (iarg < narg && strcmp(arg[iarg], "device") != 0 &&
             strcmp(arg[iarg], "model_devi") != 0 && strcmp(arg[iarg], "memory") != 0)
        committee_files_.emplace_back(arg[iarg++]);
      if (committee_files_.empty()) usage("'committee' without model files");
    } else if (strcmp(arg[iarg], "model_devi") == 0 && iarg + 2 < narg) {
      devi_path_ = arg[iarg + 1];
      devi_every_ = utils::inumeric(FLERR, arg[iarg + 2], false, lmp);
      if (devi_every_ < 1) usage("'model_devi FILE N' with N < 1");
      iarg += 3;
    } else {
      usage(fmt::format("'{}'", arg[iarg]).c_str());
    }
  }
  if (!devi_path_.empty() && committee_files_.empty())
    usage("'model_devi' without 'committee model2.pt ...'");
  if (keep_memory) {
    const std::string what = keep_freed_memory();
    if (comm->me == 0) utils::logmesg(lmp, "gnnff: memory keep: {}\n", what);
  }
  // `compute pair gnnff` exposes the six global deviations (max/min/avg virial, force)
  if (!committee_files_.empty() && !pvector) {
    nextra = 6;
    pvector = new double[nextra]();
  }
}

int PairGNNFF::node_local_rank()
{
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
  int rank = 0;
  MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  return rank;
}

std::unique_ptr<gnnff::Model> PairGNNFF::load_model(const std::string &path)
{
  // every rank loads its own copy; a file that only some ranks can read (node-local disks)
  // must stop the run with that rank's message instead of hanging in error->all
  std::unique_ptr<gnnff::Model> model;
  std::string failure;
  try {
    const torch::Device device = gnnff::resolve_device(device_request_, node_local_rank());
    model = std::make_unique<gnnff::Model>(gnnff::Model::load(path, device));
  } catch (const std::exception &err) {
    failure = gnnff::message_of(err);
  }
  int failed_here = failure.empty() ? 0 : 1, failed_ranks = 0;
  MPI_Allreduce(&failed_here, &failed_ranks, 1, MPI_INT, MPI_SUM, world);
  if (failed_ranks == comm->nprocs)
    error->all(FLERR, "pair_style gnnff cannot use model: {}", failure);
  if (failed_here) error->one(FLERR, "pair_style gnnff cannot use model: {}", failure);
  if (failed_ranks > 0) MPI_Barrier(world);    // the failing rank aborts the run
  return model;
}

/* pair_coeff * * model.pt El1 El2 ... (one name per LAMMPS type, NULL for other styles) */
void PairGNNFF::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg < 3 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR,
               "pair_coeff for pair_style gnnff must be `pair_coeff * * model.pt El1 ... El{}` "
               "(one element name per atom type)",
               ntypes);
  const int nnames = narg - 3;
  if (nnames != ntypes)
    error->all(FLERR,
               "pair_coeff for pair_style gnnff got {} element names for {} atom types; give "
               "exactly one name per atom type: `pair_coeff * * {} El1 ... El{}` (NULL for types "
               "handled by another style in pair_style hybrid)",
               nnames, ntypes, arg[2], ntypes);

  model_ = load_model(arg[2]);
  const torch::Device device = model_->device();
  const auto &meta = model_->metadata();
  r_max_ = meta.r_max;
  interaction_range_ = meta.interaction_range;
  if (!committee_files_.empty()) load_committee(arg[2]);

  std::string known;
  for (const auto &n : meta.type_names) known += " " + n;
  type_map_.assign(ntypes + 1, -1);
  has_null_ = false;
  for (int t = 1; t <= ntypes; t++) {
    const std::string name = arg[2 + t];
    if (name == "NULL") {
      has_null_ = true;
      continue;
    }
    const int index = model_->type_index(name);
    if (index < 0)
      error->all(FLERR,
                 "element '{}' (atom type {}) is not known to model {}; its elements are:{}. "
                 "Map every atom type to one of them (or NULL in pair_style hybrid)",
                 name, t, arg[2], known);
    type_map_[t] = index;
  }
  int count = 0;
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) {
      setflag[i][j] = (type_map_[i] >= 0 && type_map_[j] >= 0) ? 1 : 0;
      count += setflag[i][j];
    }
  if (count == 0) error->all(FLERR, "pair_coeff for pair_style gnnff maps every type to NULL");

  if (comm->me == 0)
    utils::logmesg(lmp,
                   "gnnff: model {} ({}, {}, elements:{}, r_max {} A, interaction range {} A) "
                   "on device {}\n",
                   arg[2], meta.model_name, meta.dtype, known, r_max_, interaction_range_,
                   device.str());
}

void PairGNNFF::init_style()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR,
               "pair_style gnnff requires units metal (eV, Angstrom, ps), the units of gnnff "
               "models, but units are {}; put `units metal` before the box is defined",
               update->unit_style);
  if (force->newton_pair == 0)
    error->all(FLERR,
               "pair_style gnnff requires newton pair on, because forces on ghost atoms must be "
               "sent back to their owners; use `newton on` (the default)");
  if (atom->tag_enable == 0)
    error->all(FLERR, "pair_style gnnff requires atom IDs; use `atom_modify id yes`");
  if (!allocated || !model_)
    error->all(FLERR, "pair_style gnnff needs `pair_coeff * * model.pt El1 ...`");

  // comm layer: ghosts one r_max deep and a feature exchange per layer (layerwise.cpp)
  init_layerwise();
  neighbor->add_request(
      this, layerwise_ ? NeighConst::REQ_FULL : NeighConst::REQ_FULL | NeighConst::REQ_GHOST);

  // Message passing: a local atom feels atoms up to interaction_range away, so ghosts must
  // reach that far (plus the skin, as ghosts are only refreshed on re-neighbouring).
  const double needed = (layerwise_ ? r_max_ : interaction_range_) + neighbor->skin;
  if (layerwise_ && cutghost_set_by_us_ > 0.0 && comm->cutghostuser == cutghost_set_by_us_) {
    comm->cutghostuser = 0.0;    // a `comm shell` run before widened it; not needed now
    cutghost_set_by_us_ = -1.0;
  }
  const double from_pair = r_max_ + neighbor->skin;
  if (needed > from_pair) {
    const bool user_set = comm->cutghostuser > 0.0 && comm->cutghostuser != cutghost_set_by_us_;
    if (user_set && comm->cutghostuser < needed)
      error->all(FLERR,
                 "pair_style gnnff: the communication cutoff {} A is shorter than the model's "
                 "interaction range {} A plus the neighbor skin {} A; use `comm_modify cutoff "
                 "{}` or larger (or remove comm_modify cutoff and gnnff sets it)",
                 comm->cutghostuser, interaction_range_, neighbor->skin, needed);
    if (!user_set && comm->cutghostuser < needed) {
      comm->cutghostuser = needed;
      cutghost_set_by_us_ = needed;
      if (comm->me == 0)
        utils::logmesg(lmp,
                       "gnnff: communication cutoff set to {} A (interaction range {} A + skin "
                       "{} A) for this message-passing model\n",
                       needed, interaction_range_, neighbor->skin);
    }
  }
  if (comm->me == 0 && interaction_range_ > r_max_)
    utils::logmesg(lmp, "gnnff: comm {}: ghost cutoff {} A ({} + skin {} A){}\n",
                   layerwise_ ? "layer" : "shell", needed,
                   layerwise_ ? "r_max" : "interaction range", neighbor->skin,
                   layerwise_ ? ", node features exchanged between ranks after every layer"
                              : ", every rank recomputes its ghosts' features");
  else if (comm->me == 0 && comm_request_ != CommRequest::Default)
    utils::logmesg(lmp, "gnnff: comm option ignored: the model is strictly local\n");
}

double PairGNNFF::init_one(int i, int j)
{
  if (setflag[i][j] == 0)
    error->all(FLERR,
               "pair_style gnnff: atom types {} and {} have no model (NULL in pair_coeff); use "
               "pair_style hybrid to give NULL types another style",
               i, j);
  // ghost atoms need their own neighbours within r_max for message passing (REQ_GHOST)
  cutghost[i][j] = cutghost[j][i] = r_max_;
  return r_max_;
}
