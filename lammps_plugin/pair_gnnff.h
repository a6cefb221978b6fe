// pair_style gnnff: runs an exported gnnff TorchScript model (see docs/pair_style.md).
//
// compute() is three steps with protected seams, so that a /kk-style or GPU subclass can reuse
// or replace one of them (as pair_allegro's preprocess()/call() split allows):
//   graph_.build()  LAMMPS atoms + neighbour list -> model inputs (GNNFFGraph owns the buffers)
//   call_model()    one model on the graph -> host float64 outputs (energy summed in float64)
//   write_back()    forces, energies and virials into LAMMPS's arrays (3x3 -> Voigt once)
#pragma once

#include "pair.h"
#include "pair_gnnff_graph.h"

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
  void *extract(const char *, int &) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;

 protected:
  // One model's outputs for this step, on the host in float64 (views of step buffers).
  struct HostOutput {
    double energy = 0.0;            // eV, sum of the local atoms' energies, summed in float64
    torch::Tensor forces;           // (N,3) eV/Å, local and ghost nodes
    torch::Tensor atomic_energy;    // (N,) eV, only when per-atom energies are tallied
    double virial[9] = {0.0};       // eV, 3x3 row-major, LAMMPS sign, summed in float64
    torch::Tensor atom_virial;      // (N,3,3) eV, only when per-atom virials are tallied
  };

  void allocate();
  int node_local_rank();
  // load one model file on every rank on the requested device (collective; stops the run with
  // the failing rank's message)
  std::unique_ptr<gnnff::Model> load_model(const std::string &path);
  // evaluate `model` on graph_ (built for this step); throws gnnff::Error / c10::Error
  HostOutput call_model(gnnff::Model &model, bool want_energy_atom, bool want_virial,
                        bool want_atom_virial);
  void write_back(const HostOutput &out);
  void check_finite(const double *forces, int natoms, double energy);
  void report_timing();

  std::unique_ptr<gnnff::Model> model_;
  std::string device_request_ = "auto";
  std::vector<int> type_map_;    // LAMMPS type (1..ntypes) -> model type index, -1 for NULL
  bool has_null_ = false;
  double r_max_ = 0.0;
  double interaction_range_ = 0.0;
  double cutghost_set_by_us_ = -1.0;

  GNNFFGraph graph_;

  // Committee (`pair_style gnnff committee m2.pt ...`, pair_gnnff_committee.cpp): more models
  // evaluated on the same graph; model_ drives the dynamics. Deviation as DeePMD-kit defines it.
  void load_committee(const std::string &driver_file);
  bool committee_step() const;
  // evaluate the committee this step; `driver` = model_'s outputs (virial required)
  void compute_deviation(const HostOutput &driver);
  void write_model_devi();
  std::vector<std::string> committee_files_;
  std::vector<std::unique_ptr<gnnff::Model>> committee_;
  std::string devi_path_;    // model_devi FILE ('' = no file)
  int devi_every_ = 1;       // committee evaluated (and FILE written) every N steps
  FILE *devi_fp_ = nullptr;
  double **member_f_ = nullptr;    // [nmax][3 * members]: each member's forces, for reverse comm
  int member_f_nmax_ = 0;
  double *devi_f_ = nullptr;    // [nmax] per-atom force deviation (eV/A), local atoms
  int devi_f_nmax_ = 0;
  double devi_global_[6] = {0, 0, 0, 0, 0, 0};    // max/min/avg virial (eV/atom), max/min/avg force
  double devi_step_ = -1.0;                       // step of the last committee evaluation

  // Layer-wise evaluation (`pair_style gnnff comm layer`, pair_gnnff_layerwise.cpp): ghosts one
  // r_max deep, node features forward-communicated after every layer, their gradients
  // reverse-communicated in the backward pass (docs/pair_style.md, issue 15).
  enum class CommRequest { Default, Layer, Shell };
  CommRequest comm_request_ = CommRequest::Default;
  bool layerwise_ = false;    // decided in init_style
  void init_layerwise();      // decides layerwise_, sets comm sizes, logs the path
  void compute_layerwise(int eflag, int vflag);
  HostOutput call_model_layerwise(bool want_energy_atom, bool want_virial, bool want_atom_virial);
  // owners' rows `local` (nlocal, D) -> (N, D) over all graph nodes, ghosts filled by forward comm
  torch::Tensor exchange_features(const torch::Tensor &local, const torch::Tensor &like);
  // dE/dh over all nodes (N, D) -> (nlocal, D), each ghost's row added to its owner's (reverse comm)
  torch::Tensor exchange_feature_grads(const torch::Tensor &all, int64_t nlocal);
  int pack_feature_grads(int n, int first, double *buf);
  void unpack_feature_grads(int n, int *list, double *buf);
  std::vector<double> exchange_buf_;      // [atom index * width + c], grows with nmax
  int exchange_width_ = 0;                // > 0 while a feature exchange is under way
  bool skip_reverse_exchange_ = false;    // GNNFF_TEST_SKIP_REVERSE_EXCHANGE: test control only

  // GNNFF_TIMING=1 logs where the time went at the end of each run (rank 0)
  bool timing_ = false;
  long ncalls_ = 0;
  double model_seconds_ = 0.0;
  double glue_seconds_ = 0.0;
  double edges_total_ = 0.0;
  double build_seconds_ = 0.0;    // the edge build alone (GNNFFGraph::build), part of glue
};

}    // namespace LAMMPS_NS
