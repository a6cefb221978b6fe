// pair_style gnnff: runs an exported gnnff TorchScript model (see docs/pair_style.md).
#pragma once

#include "pair.h"

#include <memory>
#include <string>
#include <vector>

namespace gnnff {
class Model;
}

namespace LAMMPS_NS {

class PairGNNFF : public Pair {
 public:
  PairGNNFF(class LAMMPS *);
  ~PairGNNFF() override;
  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void finish() override;

 private:
  void allocate();
  int node_local_rank();
  void check_finite(const double *forces, int natoms, double energy);
  void report_timing();

  std::unique_ptr<gnnff::Model> model_;
  std::string device_request_ = "auto";
  std::vector<int> type_map_;  // LAMMPS type (1..ntypes) -> model type index, -1 for NULL
  bool has_null_ = false;
  double r_max_ = 0.0;
  double interaction_range_ = 0.0;
  double cutghost_set_by_us_ = -1.0;

  // buffers kept across steps: vectors only grow, so steady-state MD allocates nothing here
  std::vector<int> graph_of_atom_;  // LAMMPS index -> graph index, -1 if not in the graph
  std::vector<int> atom_of_graph_;  // graph index -> LAMMPS index
  std::vector<double> pos64_;
  std::vector<float> pos32_;
  std::vector<int64_t> type_buf_;
  std::vector<int64_t> centre_, neighbour_, edge_buf_;

  // GNNFF_TIMING=1 prints where the time went when the pair style is deleted
  bool timing_ = false;
  long ncalls_ = 0;
  double model_seconds_ = 0.0;
  double glue_seconds_ = 0.0;
  double edges_total_ = 0.0;
};

}  // namespace LAMMPS_NS
