// compute gnnff/devi/atom (see compute_gnnff_devi_atom.h): copies pair_style gnnff's per-atom
// force deviation, read through Pair::extract("gnnff_devi_f").
#include "compute_gnnff_devi_atom.h"

#include "atom.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "pair.h"
#include "update.h"

using namespace LAMMPS_NS;

ComputeGNNFFDeviAtom::ComputeGNNFFDeviAtom(LAMMPS *lmp, int narg, char **arg) :
    Compute(lmp, narg, arg)
{
  if (narg != 3)
    error->all(FLERR,
               "compute gnnff/devi/atom takes no arguments: `compute ID group gnnff/devi/atom`");
  peratom_flag = 1;
  size_peratom_cols = 0;
}

ComputeGNNFFDeviAtom::~ComputeGNNFFDeviAtom()
{ memory->destroy(devi_); }

void ComputeGNNFFDeviAtom::init()
{
  pair_ = force->pair_match("gnnff", 1, 0);
  int dim = 0;
  if (!pair_ || !pair_->extract("gnnff_devi_step", dim))
    error->all(FLERR,
               "compute gnnff/devi/atom needs pair_style gnnff with a committee: `pair_style "
               "gnnff committee model2.pt ...`");
}

void ComputeGNNFFDeviAtom::compute_peratom()
{
  invoked_peratom = update->ntimestep;
  if (atom->nmax > nmax_) {
    nmax_ = atom->nmax;
    memory->destroy(devi_);
    memory->create(devi_, nmax_, "gnnff/devi/atom:devi");
    vector_atom = devi_;
  }
  int dim = 0;
  const double step = *(double *) pair_->extract("gnnff_devi_step", dim);
  if (step != (double) update->ntimestep)
    error->all(FLERR,
               "compute gnnff/devi/atom is used at step {} but pair_style gnnff evaluated its "
               "committee last at step {}; use it on multiples of the N of `model_devi FILE N`",
               update->ntimestep, (bigint) step);
  const double *devi = (const double *) pair_->extract("gnnff_devi_f", dim);
  const int *mask = atom->mask;
  for (int i = 0; i < atom->nlocal; i++) devi_[i] = (mask[i] & groupbit) ? devi[i] : 0.0;
}

double ComputeGNNFFDeviAtom::memory_usage()
{ return (double) nmax_ * sizeof(double); }
