// compute ID group gnnff/devi/atom: the per-atom committee force deviation of pair_style gnnff
// (eV/A, DeePMD-kit's definition), for dumps and per-atom variables. See docs/pair_style.md.
#pragma once

#include "compute.h"

namespace LAMMPS_NS {

class ComputeGNNFFDeviAtom : public Compute {
 public:
  ComputeGNNFFDeviAtom(class LAMMPS *, int, char **);
  ~ComputeGNNFFDeviAtom() override;
  void init() override;
  void compute_peratom() override;
  double memory_usage() override;

 private:
  class Pair *pair_ = nullptr;
  int nmax_ = 0;
  double *devi_ = nullptr;
};

}    // namespace LAMMPS_NS
