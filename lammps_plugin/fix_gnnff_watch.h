// fix gnnff/watch: the collapse criteria of gnnff.stability evaluated during the run, every N
// steps, with warn / stop (like fix halt) / error on failure (see docs/stability_metrics.md).
#pragma once

#include "fix.h"

#include <string>
#include <utility>
#include <vector>

namespace LAMMPS_NS {

class FixGNNFFWatch : public Fix {
 public:
  FixGNNFFWatch(class LAMMPS *, int, char **);
  ~FixGNNFFWatch() override;
  int setmask() override;
  void init() override;
  void init_list(int, class NeighList *) override;
  void setup(int) override;
  void end_of_step() override;
  double compute_scalar() override;
  double compute_vector(int) override;
  double memory_usage() override;

  // per-atom copy of the last passing state; it migrates with the atoms
  void grow_arrays(int) override;
  void copy_arrays(int, int, int) override;
  int pack_exchange(int, double *) override;
  int unpack_exchange(int, double *) override;

  // outputs f_ID[1..6]
  enum { MIN_RATIO = 0, BOND_DEVIATION, TEMPERATURE, NONFINITE, DEVI_F, STATUS, NVALUES };
  // bits of the status value; order = order of the criteria in the verdict line
  enum { FAIL_CLOSE = 1, FAIL_BONDS = 2, FAIL_TEMP = 4, FAIL_NONFINITE = 8, FAIL_DEVI = 16 };

 private:
  void read_reference(const std::string &file);
  void map_species();
  void check();
  double close_contacts(std::string &detail);
  double bond_deviation(std::string &detail);
  double temperature(std::string &detail);
  tagint hottest_atom();
  double nonfinite(std::string &detail);
  double devi_f(std::string &detail);
  void save_state();
  void write_last_passing_state();

  enum { WARN, STOP, ERROR };
  int action_ = STOP;
  bool use_close_ = true, use_bonds_ = true, use_temp_ = true, use_nonfinite_ = true;
  double close_fraction_ = 0.5;            // gnnff.stability CloseContacts default
  double bond_tol_ = 0.5;                  // Å, MDsim / gnnff.stability BondLengthDeviation default
  double temp_factor_ = 3.0;               // gnnff.stability TemperatureBlowup default
  double temp_max_ = 0.0;                  // K, absolute limit when > 0
  double temp_ref_ = 0.0;                  // K, given T_ref when > 0 (else median of first checks)
  static constexpr int N_TEMP_REF = 10;    // TemperatureBlowup n_ref
  double devi_f_max_ = 0.0;                // eV/Å, committee criterion when > 0
  std::string reference_file_, data_file_, temp_id_ = "thermo_temp";
  std::vector<std::string> elements_;    // element of LAMMPS type 1..ntypes (keyword elements)

  // reference file contents (identical on all ranks)
  std::vector<std::string> labels_;
  std::vector<double> dref_;    // labels x labels reference minimum distances
  std::vector<tagint> bond_i_, bond_j_;
  std::vector<double> bond_ref_;
  std::vector<double> dref_type_;                         // (ntypes+1)^2, per LAMMPS type pair
  std::vector<std::pair<long, double>> bond_measured_;    // scratch of bond_deviation()
  std::vector<int> bond_pending_;

  class NeighList *list_ = nullptr;
  class Compute *temperature_ = nullptr;
  class Pair *committee_ = nullptr;
  std::vector<double> temp_history_;
  bigint last_temp_step_ = -1;

  double values_[NVALUES] = {1.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  bigint last_check_ = -1;
  int reported_ = 0;    // criteria already reported with action warn

  // last passing state (only with write_data)
  double **xsave_ = nullptr, **vsave_ = nullptr;
  imageint *isave_ = nullptr;
  bool have_saved_ = false;
  bigint saved_step_ = -1;
  double saved_boxlo_[3], saved_boxhi_[3], saved_tilt_[3];
};

}    // namespace LAMMPS_NS
