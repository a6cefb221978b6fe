// fix gnnff/watch: the last passing state. Per-atom copies of x, v and image flags migrate with
// the atoms (grow/copy/pack/unpack like fix store/atom); on failure they are swapped in for a
// `write_data ... noinit` and swapped back.
#include "fix_gnnff_watch.h"

#include "atom.h"
#include "domain.h"
#include "input.h"
#include "memory.h"
#include "update.h"

#include <string>
#include <utility>

using namespace LAMMPS_NS;

/* ---------------------------------------------------------------------------------------
   last passing state: per-atom copies that migrate with the atoms, written with write_data
------------------------------------------------------------------------------------------ */

void FixGNNFFWatch::save_state()
{
  double **x = atom->x, **v = atom->v;
  imageint *image = atom->image;
  for (int i = 0; i < atom->nlocal; i++) {
    for (int c = 0; c < 3; c++) {
      xsave_[i][c] = x[i][c];
      vsave_[i][c] = v[i][c];
    }
    isave_[i] = image[i];
  }
  for (int c = 0; c < 3; c++) {
    saved_boxlo_[c] = domain->boxlo[c];
    saved_boxhi_[c] = domain->boxhi[c];
  }
  saved_tilt_[0] = domain->xy;
  saved_tilt_[1] = domain->xz;
  saved_tilt_[2] = domain->yz;
  saved_step_ = update->ntimestep;
  have_saved_ = true;
}

// swap the saved state in, run `write_data FILE noinit` (no re-init inside the run loop),
// swap the current state back; the header's timestep is the saved step
void FixGNNFFWatch::write_last_passing_state()
{
  auto swap_all = [&]() {
    double **x = atom->x, **v = atom->v;
    imageint *image = atom->image;
    for (int i = 0; i < atom->nlocal; i++) {
      for (int c = 0; c < 3; c++) {
        std::swap(xsave_[i][c], x[i][c]);
        std::swap(vsave_[i][c], v[i][c]);
      }
      std::swap(isave_[i], image[i]);
    }
    for (int c = 0; c < 3; c++) {
      std::swap(saved_boxlo_[c], domain->boxlo[c]);
      std::swap(saved_boxhi_[c], domain->boxhi[c]);
    }
    std::swap(saved_tilt_[0], domain->xy);
    std::swap(saved_tilt_[1], domain->xz);
    std::swap(saved_tilt_[2], domain->yz);
    std::swap(saved_step_, update->ntimestep);
  };
  swap_all();
  input->one(fmt::format("write_data {} noinit", data_file_));
  swap_all();
}

void FixGNNFFWatch::grow_arrays(int nmax)
{
  memory->grow(xsave_, nmax, 3, "gnnff/watch:xsave");
  memory->grow(vsave_, nmax, 3, "gnnff/watch:vsave");
  memory->grow(isave_, nmax, "gnnff/watch:isave");
}

void FixGNNFFWatch::copy_arrays(int i, int j, int)
{
  for (int c = 0; c < 3; c++) {
    xsave_[j][c] = xsave_[i][c];
    vsave_[j][c] = vsave_[i][c];
  }
  isave_[j] = isave_[i];
}

int FixGNNFFWatch::pack_exchange(int i, double *buf)
{
  for (int c = 0; c < 3; c++) {
    buf[c] = xsave_[i][c];
    buf[3 + c] = vsave_[i][c];
  }
  buf[6] = ubuf(isave_[i]).d;    // bit-exact image flags, also for 64-bit imageint
  return 7;
}

int FixGNNFFWatch::unpack_exchange(int i, double *buf)
{
  for (int c = 0; c < 3; c++) {
    xsave_[i][c] = buf[c];
    vsave_[i][c] = buf[3 + c];
  }
  isave_[i] = (imageint) ubuf(buf[6]).i;
  return 7;
}

double FixGNNFFWatch::memory_usage()
{ return data_file_.empty() ? 0.0 : (double) atom->nmax * (6 * sizeof(double) + sizeof(imageint)); }
