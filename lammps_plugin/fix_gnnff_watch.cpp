// fix gnnff/watch: in-run stability check (docs/stability_metrics.md, "Watching a run").
//
// Every N steps it evaluates the collapse criteria of gnnff.stability that need only the
// current state: close contacts (min d_ij / d_ref(species pair) < 0.5), bond-length deviation
// (max |r_b - r_ref,b| > 0.5 Å), temperature blow-up (T > 3 x median of the first 10 checks),
// non-finite positions/velocities/forces and, with pair_style gnnff committees, the maximum
// force deviation. The thresholds and definitions are those of python/gnnff/stability; the
// reference input (d_ref per species pair, bond list and reference lengths) is written by
// `gnnff analyze --write-watch-reference` (python/gnnff/stability/watch_reference.py).
//
// Verdicts do not depend on the number of MPI ranks: each value is reduced with MPI_Allreduce
// and ties between atoms are broken by the smallest atom ID / bond index.
#include "fix_gnnff_watch.h"

#include "atom.h"
#include "comm.h"
#include "compute.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "input.h"
#include "memory.h"
#include "modify.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "pair.h"
#include "timer.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

using namespace LAMMPS_NS;
using namespace FixConst;

static const char *const CRITERION_NAMES[] = {"close_contacts", "bonds", "temperature", "nonfinite",
                                              "devi_f"};

static bool parse_yes_no(const char *word, Error *error, const char *keyword)
{
  if (strcmp(word, "yes") == 0) return true;
  if (strcmp(word, "no") == 0) return false;
  error->all(FLERR, "fix gnnff/watch: {} must be yes or no, got '{}'", keyword, word);
  return false;
}

FixGNNFFWatch::FixGNNFFWatch(LAMMPS *lmp, int narg, char **arg) : Fix(lmp, narg, arg)
{
  if (narg < 4)
    error->all(FLERR, "fix gnnff/watch: expected 'fix ID group gnnff/watch N [keyword value ...]'");
  nevery = utils::inumeric(FLERR, arg[3], false, lmp);
  if (nevery <= 0)
    error->all(FLERR, "fix gnnff/watch: N (check every N steps) must be > 0, got {}", nevery);

  int iarg = 4;
  auto need = [&](int n) {
    if (iarg + n >= narg)
      error->all(FLERR, "fix gnnff/watch: keyword {} needs {} value(s)", arg[iarg], n);
  };
  while (iarg < narg) {
    const char *key = arg[iarg];
    if (strcmp(key, "reference") == 0) {
      need(1);
      reference_file_ = arg[iarg + 1];
      iarg += 2;
    } else if (strcmp(key, "elements") == 0) {
      need(atom->ntypes);
      for (int t = 1; t <= atom->ntypes; t++) elements_.emplace_back(arg[iarg + t]);
      iarg += 1 + atom->ntypes;
    } else if (strcmp(key, "close_contacts") == 0) {
      need(1);
      use_close_ = parse_yes_no(arg[iarg + 1], error, key);
      iarg += 2;
    } else if (strcmp(key, "close_fraction") == 0) {
      need(1);
      close_fraction_ = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      if (close_fraction_ <= 0.0 || close_fraction_ >= 1.0)
        error->all(FLERR, "fix gnnff/watch: close_fraction must be between 0 and 1, got {}",
                   close_fraction_);
      iarg += 2;
    } else if (strcmp(key, "bonds") == 0) {
      need(1);
      use_bonds_ = parse_yes_no(arg[iarg + 1], error, key);
      iarg += 2;
    } else if (strcmp(key, "bond_tol") == 0) {
      need(1);
      bond_tol_ = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      if (bond_tol_ <= 0.0)
        error->all(FLERR, "fix gnnff/watch: bond_tol must be > 0 Å, got {}", bond_tol_);
      iarg += 2;
    } else if (strcmp(key, "temperature") == 0) {
      need(1);
      use_temp_ = parse_yes_no(arg[iarg + 1], error, key);
      iarg += 2;
    } else if (strcmp(key, "temp_factor") == 0) {
      need(1);
      temp_factor_ = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      if (temp_factor_ <= 1.0)
        error->all(FLERR, "fix gnnff/watch: temp_factor must be > 1, got {}", temp_factor_);
      iarg += 2;
    } else if (strcmp(key, "temp_max") == 0) {
      need(1);
      temp_max_ = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      if (temp_max_ <= 0.0)
        error->all(FLERR, "fix gnnff/watch: temp_max must be > 0 K, got {}", temp_max_);
      iarg += 2;
    } else if (strcmp(key, "temp_ref") == 0) {
      need(1);
      temp_ref_ = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      if (temp_ref_ <= 0.0)
        error->all(FLERR, "fix gnnff/watch: temp_ref must be > 0 K, got {}", temp_ref_);
      iarg += 2;
    } else if (strcmp(key, "temp") == 0) {
      need(1);
      temp_id_ = arg[iarg + 1];
      iarg += 2;
    } else if (strcmp(key, "nonfinite") == 0) {
      need(1);
      use_nonfinite_ = parse_yes_no(arg[iarg + 1], error, key);
      iarg += 2;
    } else if (strcmp(key, "devi_f_max") == 0) {
      need(1);
      devi_f_max_ = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      if (devi_f_max_ <= 0.0)
        error->all(FLERR, "fix gnnff/watch: devi_f_max must be > 0 eV/Å, got {}", devi_f_max_);
      iarg += 2;
    } else if (strcmp(key, "action") == 0) {
      need(1);
      if (strcmp(arg[iarg + 1], "warn") == 0)
        action_ = WARN;
      else if (strcmp(arg[iarg + 1], "stop") == 0)
        action_ = STOP;
      else if (strcmp(arg[iarg + 1], "error") == 0)
        action_ = ERROR;
      else
        error->all(FLERR, "fix gnnff/watch: action must be warn, stop or error, got '{}'",
                   arg[iarg + 1]);
      iarg += 2;
    } else if (strcmp(key, "write_data") == 0) {
      need(1);
      data_file_ = arg[iarg + 1];
      iarg += 2;
    } else {
      error->all(FLERR,
                 "fix gnnff/watch: unknown keyword '{}'; keywords are reference, elements, "
                 "close_contacts, close_fraction, bonds, bond_tol, temperature, temp_factor, "
                 "temp_max, temp_ref, temp, nonfinite, devi_f_max, action, write_data",
                 key);
    }
  }
  if (!atom->tag_enable)
    error->all(FLERR, "fix gnnff/watch needs atom IDs (atom_modify id yes): verdicts name atoms");

  scalar_flag = 1;
  vector_flag = 1;
  size_vector = NVALUES;
  global_freq = nevery;
  extscalar = 0;
  extvector = 0;

  if (!reference_file_.empty()) read_reference(reference_file_);
  if (reference_file_.empty()) use_close_ = use_bonds_ = false;
  if (use_bonds_ && !bond_i_.empty() && atom->map_style == Atom::MAP_NONE)
    error->all(FLERR,
               "fix gnnff/watch: the bond criterion needs an atom map; add "
               "'atom_modify map array' before the box is created");
  if (use_close_) {
    bool any = false;
    for (double d : dref_) any = any || std::isfinite(d);
    if (any)
      map_species();
    else {
      use_close_ = false;    // as gnnff.stability: no pair within 6 Å in the reference
      if (comm->me == 0)
        utils::logmesg(lmp, "fix gnnff/watch: {} has no min_distance: close contacts off\n",
                       reference_file_);
    }
  }

  if (!data_file_.empty()) {
    grow_arrays(atom->nmax);
    atom->add_callback(Atom::GROW);
  }
}

FixGNNFFWatch::~FixGNNFFWatch()
{
  if (!data_file_.empty()) {
    if (modify->get_fix_by_id(id)) atom->delete_callback(id, Atom::GROW);
    memory->destroy(xsave_);
    memory->destroy(vsave_);
    memory->destroy(isave_);
  }
}

int FixGNNFFWatch::setmask()
{ return END_OF_STEP; }

/* ---------------------------------------------------------------------------------------
   reference file: rank 0 reads it, every rank parses the same text
------------------------------------------------------------------------------------------ */

void FixGNNFFWatch::read_reference(const std::string &file)
{
  std::string text;
  int ok = 1;
  if (comm->me == 0) {
    std::ifstream in(file);
    if (!in) ok = 0;
    std::stringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, world);
  if (!ok)
    error->all(FLERR,
               "fix gnnff/watch: cannot open reference file '{}'; write it with "
               "`gnnff analyze REF_TRAJECTORY --write-watch-reference {}`",
               file, file);
  int n = (int) text.size();
  MPI_Bcast(&n, 1, MPI_INT, 0, world);
  text.resize(n);
  MPI_Bcast(text.data(), n, MPI_CHAR, 0, world);

  tagint tag_max = 0, tag_max_local = 0;
  for (int i = 0; i < atom->nlocal; i++) tag_max_local = std::max(tag_max_local, atom->tag[i]);
  MPI_Allreduce(&tag_max_local, &tag_max, 1, MPI_LMP_TAGINT, MPI_MAX, world);
  std::istringstream lines(text);
  std::string line;
  int lineno = 0;
  bool header = false;
  std::vector<std::array<std::string, 2>> pair_labels;
  std::vector<double> pair_d;
  while (std::getline(lines, line)) {
    lineno++;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    auto words = utils::split_words(line);
    if (words.empty()) continue;
    auto bad = [&](const std::string &why) {
      error->all(FLERR, "fix gnnff/watch: {} line {}: {}", file, lineno, why);
    };
    if (words[0] == "format") {
      if (words.size() != 3 || words[1] != "gnnff-watch-reference" || words[2] != "1")
        bad("expected 'format gnnff-watch-reference 1'; rewrite the file with this gnnff");
      header = true;
    } else if (!header) {
      bad("the file must start with 'format gnnff-watch-reference 1'; is it a watch "
          "reference file written by `gnnff analyze --write-watch-reference`?");
    } else if (words[0] == "species") {
      labels_.assign(words.begin() + 1, words.end());
    } else if (words[0] == "min_distance") {
      if (words.size() != 4) bad("expected 'min_distance A B d_ref'");
      pair_labels.push_back({words[1], words[2]});
      pair_d.push_back(utils::numeric(FLERR, words[3], false, lmp));
      if (!(pair_d.back() > 0.0)) bad("d_ref must be > 0 Å");
    } else if (words[0] == "bond") {
      if (words.size() != 4) bad("expected 'bond ID_i ID_j r_ref'");
      bond_i_.push_back(utils::tnumeric(FLERR, words[1], false, lmp));
      bond_j_.push_back(utils::tnumeric(FLERR, words[2], false, lmp));
      bond_ref_.push_back(utils::numeric(FLERR, words[3], false, lmp));
      if (bond_i_.back() <= 0 || bond_j_.back() <= 0 || bond_i_.back() > tag_max ||
          bond_j_.back() > tag_max)
        bad(fmt::format("atom ID out of range 1..{}; was the file written for this system?",
                        tag_max));
    } else {
      bad(fmt::format("unknown line '{}'", words[0]));
    }
  }
  if (!header) error->all(FLERR, "fix gnnff/watch: reference file '{}' is empty", file);
  const int nl = (int) labels_.size();
  dref_.assign(nl * nl, std::numeric_limits<double>::infinity());
  for (size_t k = 0; k < pair_d.size(); k++) {
    auto a = std::find(labels_.begin(), labels_.end(), pair_labels[k][0]) - labels_.begin();
    auto b = std::find(labels_.begin(), labels_.end(), pair_labels[k][1]) - labels_.begin();
    if (a == nl || b == nl)
      error->all(FLERR,
                 "fix gnnff/watch: {}: min_distance {} {} uses a species not listed on "
                 "the 'species' line",
                 file, pair_labels[k][0], pair_labels[k][1]);
    dref_[a * nl + b] = dref_[b * nl + a] = pair_d[k];
  }
}

// d_ref for each pair of LAMMPS types, from the reference labels: element names given with
// the `elements` keyword, or the analysis's 'type<k>' labels of dumps without elements
void FixGNNFFWatch::map_species()
{
  const int nt = atom->ntypes;
  const int nl = (int) labels_.size();
  std::vector<int> code(nt + 1, -1);
  for (int t = 1; t <= nt; t++) {
    std::string label = elements_.empty() ? "type" + std::to_string(t) : elements_[t - 1];
    auto it = std::find(labels_.begin(), labels_.end(), label);
    if (it != labels_.end()) code[t] = (int) (it - labels_.begin());
  }
  dref_type_.assign((nt + 1) * (nt + 1), 0.0);
  for (int a = 1; a <= nt; a++)
    for (int b = 1; b <= nt; b++) {
      if (code[a] < 0 || code[b] < 0) {
        int t = code[a] < 0 ? a : b;
        if (elements_.empty())
          error->all(FLERR,
                     "fix gnnff/watch: {} has no label 'type{}' (its species: {}); give "
                     "one element per atom type with the keyword 'elements'",
                     reference_file_, t, utils::join_words(labels_, " "));
        error->all(FLERR,
                   "fix gnnff/watch: element {} of atom type {} is not in {} (its species: "
                   "{}); write the reference from a trajectory holding every element",
                   elements_[t - 1], t, reference_file_, utils::join_words(labels_, " "));
      }
      double d = dref_[code[a] * nl + code[b]];
      if (!std::isfinite(d))
        error->all(FLERR, "fix gnnff/watch: {} has no min_distance for {} {}", reference_file_,
                   labels_[code[a]], labels_[code[b]]);
      dref_type_[a * (nt + 1) + b] = d;
    }
}

/* ------------------------------------------------------------------------------------- */

void FixGNNFFWatch::init()
{
  if (use_close_) {
    if (!force->pair)
      error->all(FLERR,
                 "fix gnnff/watch: close_contacts needs a pair style (its neighbour "
                 "list); define one or use 'close_contacts no'");
    // every pair closer than d_ref must be in the (pair cutoff + skin) neighbour list
    const int nt = atom->ntypes;
    for (int a = 1; a <= nt; a++)
      for (int b = a; b <= nt; b++) {
        double d = dref_type_[a * (nt + 1) + b];
        if (force->pair->cutsq && force->pair->cutsq[a][b] < d * d)
          error->all(FLERR,
                     "fix gnnff/watch: pair cutoff of types {} {} ({:.3f} Å) is shorter "
                     "than their reference minimum distance {:.3f} Å, so close contacts "
                     "could be missed; use 'close_contacts no'",
                     a, b, std::sqrt(force->pair->cutsq[a][b]), d);
      }
    neighbor->add_request(this, NeighConst::REQ_OCCASIONAL);
  }
  if (use_temp_) {
    temperature_ = modify->get_compute_by_id(temp_id_);
    if (!temperature_ || !temperature_->scalar_flag)
      error->all(FLERR,
                 "fix gnnff/watch: no temperature compute '{}' with a global scalar; "
                 "define it or use 'temperature no'",
                 temp_id_);
  }
  committee_ = nullptr;
  if (devi_f_max_ > 0.0) {
    committee_ = force->pair_match("gnnff", 0);
    if (!committee_)
      error->all(FLERR,
                 "fix gnnff/watch: devi_f_max needs pair_style gnnff (alone or in a "
                 "hybrid style); the pair style is '{}'",
                 force->pair_style ? force->pair_style : "none");
    int dim = -1;
    if (!committee_->extract("gnnff_devi_f_max", dim))
      error->all(FLERR,
                 "fix gnnff/watch: pair_style gnnff reports no committee force deviation "
                 "(one model loaded); load a committee of models (docs/pair_style.md) "
                 "or drop the devi_f_max keyword");
  }
}

void FixGNNFFWatch::init_list(int, NeighList *ptr)
{ list_ = ptr; }

void FixGNNFFWatch::setup(int)
{
  // the state at the start of a run is checked too (commands between runs may have changed
  // it, e.g. velocity scale); the first check gives the first passing state
  check();
}

void FixGNNFFWatch::end_of_step()
{
  if (last_check_ != update->ntimestep) check();
}

double FixGNNFFWatch::compute_scalar()
{ return values_[STATUS]; }

double FixGNNFFWatch::compute_vector(int n)
{ return values_[n]; }

/* ---------------------------------------------------------------------------------------
   one check: all criteria, verdict, action
------------------------------------------------------------------------------------------ */

void FixGNNFFWatch::check()
{
  last_check_ = update->ntimestep;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::string details[5];
  int failed = 0;

  values_[NONFINITE] = use_nonfinite_ ? nonfinite(details[3]) : 0.0;
  if (values_[NONFINITE] > 0) failed |= FAIL_NONFINITE;
  // as in gnnff.stability, geometric criteria skip states holding nan/inf
  bool finite = values_[NONFINITE] == 0;
  values_[MIN_RATIO] = (use_close_ && finite) ? close_contacts(details[0])
                                              : (use_close_ ? nan : 1.0);
  if (values_[MIN_RATIO] < close_fraction_) failed |= FAIL_CLOSE;
  values_[BOND_DEVIATION] = (use_bonds_ && finite) ? bond_deviation(details[1])
                                                   : (use_bonds_ ? nan : 0.0);
  if (values_[BOND_DEVIATION] > bond_tol_) failed |= FAIL_BONDS;
  if (use_temp_) {
    values_[TEMPERATURE] = temperature(details[2]);
    if (!details[2].empty()) failed |= FAIL_TEMP;
  }
  if (committee_) {
    values_[DEVI_F] = devi_f(details[4]);
    if (!details[4].empty()) failed |= FAIL_DEVI;
  }
  values_[STATUS] = failed;

  if (!failed) {
    if (!data_file_.empty()) save_state();
    return;
  }

  // one line: criterion, step, time, atoms
  const bigint step = update->ntimestep;
  const double t = update->atime + (step - update->atimestep) * update->dt;
  const bool lj = strcmp(update->unit_style, "lj") == 0;
  const double t_out = lj ? t : t * 0.001 / force->femtosecond;
  std::string line = fmt::format("fix gnnff/watch {}: step {} (t = {:.6g} {}):", id, step, t_out,
                                 lj ? "tau" : "ps");
  int newly = 0;
  for (int k = 0; k < 5; k++)
    if (failed & (1 << k)) {
      line += fmt::format(" FAILED {}: {};", CRITERION_NAMES[k], details[k]);
      newly |= (1 << k) & ~reported_;
    }
  line.pop_back();

  if (action_ == WARN) {
    // each criterion is reported at its first failure; f_ID[6] keeps the status afterwards
    if (newly && comm->me == 0) utils::logmesg(lmp, "WARNING: " + line + "\n");
    reported_ |= failed;
    return;
  }
  if (comm->me == 0) utils::logmesg(lmp, line + "\n");
  std::string written;
  if (!data_file_.empty()) {
    if (have_saved_) {
      write_last_passing_state();
      written = fmt::format("last passing state (step {}) written to {}", saved_step_, data_file_);
    } else {
      written = fmt::format("no check passed before, {} not written", data_file_);
    }
    if (comm->me == 0) utils::logmesg(lmp, fmt::format("fix gnnff/watch {}: {}\n", id, written));
  }
  if (action_ == ERROR) error->all(FLERR, line);
  if (comm->me == 0)
    utils::logmesg(lmp, fmt::format("fix gnnff/watch {}: stopping the run at step {}\n", id, step));
  timer->force_timeout();    // as fix halt: the run loop ends before the next step
}
