/* ----------------------------------------------------------------------
   pair_style cgtorch MODEL.pt [device auto|cpu|cuda]
   pair_coeff * * NAME_1 ... NAME_ntypes

   Evaluates an ase_cg many-body CG potential (TorchScript, see pair_cgtorch.h for the contract)
   on every local and ghost bead, sums the energies of local beads only, and gets forces and the
   virial from autograd on the pair vectors:  with g = dE/d(r_j - r_i),
       f_i += g,  f_j -= g,  W += -(r_j - r_i) (x) g,
   which needs newton_pair on (forces on ghosts are sent back to their owners).  Results are
   identical for any number of MPI ranks as long as the ghost shell covers K * cutoff + skin for
   a model with K message-passing layers.

   Units: the model works in eV and Angstrom, LAMMPS in "units real" (kcal/mol, Angstrom);
   energies and forces are converted with CGTORCH_EV_TO_KCAL_PER_MOL, which the Python build
   (lammps_interface.plugin) takes from ASE so tables, plugin and ASE calculator agree exactly.
------------------------------------------------------------------------- */

#include "pair_cgtorch.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "json.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#ifndef CGTORCH_EV_TO_KCAL_PER_MOL
#error "compile with -DCGTORCH_EV_TO_KCAL_PER_MOL=<ase.units.eV / (ase.units.kcal / ase.units.mol)>"
#endif

using namespace LAMMPS_NS;

namespace {
constexpr double kEnergyToReal = CGTORCH_EV_TO_KCAL_PER_MOL;    // eV -> kcal/mol
constexpr const char *kMetadataFile = "cgtorch.json";
constexpr const char *kMetadataFormat = "ase_cg.cgtorch";
constexpr int kMetadataVersion = 1;
constexpr int kCentroidNotAvailable = 2;    // Pair::centroidstressflag value CENTROID_NOTAVAIL
}    // namespace

PairCGTorch::PairCGTorch(LAMMPS *lmp) :
    Pair(lmp), device_(torch::kCPU), dtype_(torch::kFloat64), cutoff_(0.0), n_interactions_(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  ghostneigh = 1;
  no_virial_fdotr_compute = 1;
  centroidstressflag = kCentroidNotAvailable;
}

PairCGTorch::~PairCGTorch()
{
  if (copymode) return;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairCGTorch::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  memory->create(cutghost, n, n, "pair:cutghost");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
  type_map_.assign(n, -1);
}

/* ---------------------------------------------------------------------- */

void PairCGTorch::settings(int narg, char **arg)
{
  if (narg != 1 && narg != 3)
    error->all(FLERR, "Illegal pair_style cgtorch command: expected 'pair_style cgtorch MODEL.pt "
                      "[device auto|cpu|cuda]'");
  std::string device_name = "auto";
  if (narg == 3) {
    if (strcmp(arg[1], "device") != 0)
      error->all(FLERR, "Illegal pair_style cgtorch keyword '{}': the only option is 'device'",
                 arg[1]);
    device_name = arg[2];
  }
  if (device_name == "auto") {
    device_ = torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  } else if (device_name == "cpu") {
    device_ = torch::Device(torch::kCPU);
  } else if (device_name == "cuda") {
    if (!torch::cuda::is_available())
      error->all(FLERR, "pair_style cgtorch device cuda: torch sees no CUDA device; use 'device cpu'");
    device_ = torch::Device(torch::kCUDA);
  } else {
    error->all(FLERR, "pair_style cgtorch device '{}' is unknown: use auto, cpu or cuda", device_name);
  }
  load_model(arg[0]);
}

void PairCGTorch::load_model(const std::string &path)
{
  model_path_ = path;
  if (!std::ifstream(path).good())
    error->all(FLERR, "pair_style cgtorch: model file '{}' does not exist or cannot be read; "
               "write it with lammps_interface.export (ase-cg export-lammps)", path);

  torch::jit::ExtraFilesMap extra_files{{kMetadataFile, ""}};
  try {
    model_ = torch::jit::load(path, device_, extra_files);
  } catch (const std::exception &e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    error->all(FLERR, "pair_style cgtorch: '{}' is not a TorchScript model file ({}); write it "
               "with lammps_interface.export (ase-cg export-lammps)", path, what);
  }
  model_.eval();

  const std::string &text = extra_files[kMetadataFile];
  if (text.empty())
    error->all(FLERR, "pair_style cgtorch: model file '{}' has no '{}' metadata: it was not "
               "written by lammps_interface.export", path, kMetadataFile);
  json meta = json::parse(text, nullptr, false);
  if (meta.is_discarded() || !meta.is_object())
    error->all(FLERR, "pair_style cgtorch: the '{}' metadata in '{}' is not a JSON object",
               kMetadataFile, path);

  try {
    if (meta.value("format", std::string()) != kMetadataFormat)
      error->all(FLERR, "pair_style cgtorch: '{}' metadata format is not '{}'", path,
                 kMetadataFormat);
    const int version = meta.at("version").get<int>();
    if (version != kMetadataVersion)
      error->all(FLERR, "pair_style cgtorch: '{}' has metadata version {}, this plugin reads "
                 "version {}; re-export the model with this ase_cg", path, version,
                 kMetadataVersion);
    bead_type_names_ = meta.at("bead_type_names").get<std::vector<std::string>>();
    cutoff_ = meta.at("cutoff").get<double>();
    n_interactions_ = meta.at("n_interactions").get<int>();
    const std::string dtype = meta.at("dtype").get<std::string>();
    const std::string energy_unit = meta.at("units").at("energy").get<std::string>();
    const std::string length_unit = meta.at("units").at("length").get<std::string>();
    if (dtype == "float64") {
      dtype_ = torch::kFloat64;
    } else if (dtype == "float32") {
      dtype_ = torch::kFloat32;
    } else {
      error->all(FLERR, "pair_style cgtorch: '{}' has dtype '{}'; expected float32 or float64",
                 path, dtype);
    }
    if (energy_unit != "eV" || length_unit != "Angstrom")
      error->all(FLERR, "pair_style cgtorch: '{}' works in {} and {}; the plugin expects eV and "
                 "Angstrom", path, energy_unit, length_unit);
  } catch (const json::exception &e) {
    error->all(FLERR, "pair_style cgtorch: bad '{}' metadata in '{}': {}", kMetadataFile, path,
               e.what());
  }
  if (!(cutoff_ > 0.0) || !std::isfinite(cutoff_))
    error->all(FLERR, "pair_style cgtorch: '{}' has cutoff {} Angstrom; it must be positive",
               path, cutoff_);
  if (n_interactions_ < 1)
    error->all(FLERR, "pair_style cgtorch: '{}' has {} interaction layers; it must be >= 1", path,
               n_interactions_);
  if (bead_type_names_.empty())
    error->all(FLERR, "pair_style cgtorch: '{}' lists no bead types", path);

  if (comm->me == 0) {
    std::string names;
    for (const auto &name : bead_type_names_) names += " " + name;
    utils::logmesg(lmp, "cgtorch: model {} (bead types:{}; cutoff {} Angstrom; {} interaction "
                   "layers; {} on {})\n", path, names, cutoff_, n_interactions_,
                   dtype_ == torch::kFloat64 ? "float64" : "float32",
                   device_.is_cuda() ? "cuda" : "cpu");
  }
}

/* ----------------------------------------------------------------------
   pair_coeff * * NAME_1 ... NAME_ntypes : LAMMPS type t is the model bead type NAME_t
------------------------------------------------------------------------- */

void PairCGTorch::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "Incorrect args for pair_coeff cgtorch: expected 'pair_coeff * * NAME_1 ... "
               "NAME_{}' with one model bead-type name per LAMMPS atom type", ntypes);

  std::string known;
  for (const auto &name : bead_type_names_) known += " " + name;
  for (int t = 1; t <= ntypes; t++) {
    const std::string name = arg[1 + t];
    int64_t index = -1;
    for (size_t k = 0; k < bead_type_names_.size(); k++)
      if (bead_type_names_[k] == name) index = static_cast<int64_t>(k);
    if (index < 0)
      error->all(FLERR, "pair_coeff cgtorch: bead type '{}' (LAMMPS type {}) is not in model '{}', "
                 "which has bead types:{}", name, t, model_path_, known);
    type_map_[t] = index;
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

void PairCGTorch::init_style()
{
  if (strcmp(update->unit_style, "real") != 0)
    error->all(FLERR, "pair_style cgtorch needs 'units real' (kcal/mol, Angstrom), not 'units {}'",
               update->unit_style);
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style cgtorch needs 'newton on' (forces on ghost beads are sent back "
               "to their owners)");
  if (comm->mode != Comm::SINGLE)
    error->all(FLERR, "pair_style cgtorch needs 'comm_modify mode single'");
  neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
}

double PairCGTorch::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set for pair_style cgtorch");
  cutghost[i][j] = cutghost[j][i] = cutoff_;
  return cutoff_;
}

/* ----------------------------------------------------------------------
   a message-passing model with K layers sees K * cutoff from every local bead; beads move up to
   skin/2 between neighbour-list builds, so the ghost shell must be K * cutoff + skin
------------------------------------------------------------------------- */

void PairCGTorch::setup()
{
  const double needed = n_interactions_ * cutoff_ + neighbor->skin;
  const double ghost = std::max(comm->cutghostuser, neighbor->cutneighmax);
  if (ghost < needed)
    error->all(FLERR, "pair_style cgtorch: model '{}' has {} interaction layers of cutoff {} "
               "Angstrom, so the ghost shell must be at least {} * {} + skin {} = {} Angstrom, "
               "but the communication cutoff is {} Angstrom; add 'comm_modify cutoff {}' to the "
               "input", model_path_, n_interactions_, cutoff_, n_interactions_, cutoff_,
               neighbor->skin, needed, ghost, needed);
}

/* ---------------------------------------------------------------------- */

void PairCGTorch::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  double **x = atom->x;
  double **f = atom->f;
  const int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int nlisted = list->inum + list->gnum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  std::vector<int64_t> bead_types(nall);
  for (int i = 0; i < nall; i++) bead_types[i] = type_map_[type[i]];

  // Beads whose features can reach a local energy: within (K - 1) * cutoff of this rank's
  // subdomain, plus skin/2 since local beads may have left it since the last neighbour build.
  // Pairs between two beads outside that reach change no local energy and are skipped (both
  // directions together, so the list stays symmetric); triclinic boxes keep every pair.
  std::vector<char> reaches(nall, 1);
  if (!domain->triclinic) {
    const double reach = (n_interactions_ - 1) * cutoff_ + 0.5 * neighbor->skin;
    for (int i = nlocal; i < nall; i++) {
      double distsq = 0.0;
      for (int d = 0; d < 3; d++) {
        const double outside =
            std::max({0.0, domain->sublo[d] - x[i][d], x[i][d] - domain->subhi[d]});
        distsq += outside * outside;
      }
      reaches[i] = distsq <= reach * reach;
    }
  }

  // directed pairs (i -> j and j -> i) within the model cutoff, over local and ghost beads
  const double cutsq_model = cutoff_ * cutoff_;
  std::vector<int64_t> pair_i, pair_j;
  std::vector<double> vectors;
  for (int ii = 0; ii < nlisted; ii++) {
    const int i = ilist[ii];
    const int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;    // the many-body term sees every pair: no special
      if (!reaches[i] && !reaches[j]) continue;
      const double dx = x[j][0] - x[i][0];
      const double dy = x[j][1] - x[i][1];
      const double dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz < cutsq_model) {
        pair_i.push_back(i);
        pair_j.push_back(j);
        vectors.push_back(dx);
        vectors.push_back(dy);
        vectors.push_back(dz);
      }
    }
  }
  const int64_t n_pairs = static_cast<int64_t>(pair_i.size());

  const auto as_int64 = torch::TensorOptions().dtype(torch::kInt64);
  const auto as_float64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor t_types = torch::from_blob(bead_types.data(), {nall}, as_int64).to(device_);
  torch::Tensor t_i = torch::from_blob(pair_i.data(), {n_pairs}, as_int64).to(device_);
  torch::Tensor t_j = torch::from_blob(pair_j.data(), {n_pairs}, as_int64).to(device_);
  torch::Tensor t_vectors = torch::from_blob(vectors.data(), {n_pairs, 3}, as_float64)
                                .to(device_, dtype_, false, true)
                                .requires_grad_(true);

  torch::Tensor energies, gradient;
  try {
    std::vector<torch::jit::IValue> inputs{t_types, t_i, t_j, t_vectors,
                                           static_cast<int64_t>(nlocal)};
    energies = model_.forward(inputs).toTensor();
    if (energies.dim() != 1 || energies.size(0) != nall) {
      std::ostringstream shape;
      shape << energies.sizes();
      error->one(FLERR, "pair_style cgtorch: model '{}' returned energies of shape {}; expected "
                 "[{}] per-bead energies", model_path_, shape.str(), nall);
    }
    torch::Tensor energy_local = energies.narrow(0, 0, nlocal).sum();
    if (energy_local.requires_grad())
      gradient = torch::autograd::grad({energy_local}, {t_vectors}, {}, false, false, true)[0];
    if (!gradient.defined()) gradient = torch::zeros_like(t_vectors);
  } catch (const c10::Error &e) {
    error->one(FLERR, "pair_style cgtorch: model '{}' failed: {}", model_path_,
               e.what_without_backtrace());
  }

  const torch::Tensor g_host = gradient.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double *g = g_host.data_ptr<double>();
  for (int64_t p = 0; p < n_pairs; p++) {
    const int i = static_cast<int>(pair_i[p]);
    const int j = static_cast<int>(pair_j[p]);
    const double gx = kEnergyToReal * g[3 * p];
    const double gy = kEnergyToReal * g[3 * p + 1];
    const double gz = kEnergyToReal * g[3 * p + 2];
    f[i][0] += gx;
    f[i][1] += gy;
    f[i][2] += gz;
    f[j][0] -= gx;
    f[j][1] -= gy;
    f[j][2] -= gz;
    if (vflag_either) {
      const double dx = vectors[3 * p], dy = vectors[3 * p + 1], dz = vectors[3 * p + 2];
      const double v[6] = {-dx * gx, -dy * gy, -dz * gz, -dx * gy, -dx * gz, -dy * gz};
      if (vflag_global)
        for (int k = 0; k < 6; k++) virial[k] += v[k];
      if (vflag_atom)
        for (int k = 0; k < 6; k++) {
          vatom[i][k] += 0.5 * v[k];
          vatom[j][k] += 0.5 * v[k];
        }
    }
  }

  if (eflag_either && nlocal > 0) {
    const torch::Tensor e_host =
        energies.detach().narrow(0, 0, nlocal).to(torch::kCPU, torch::kFloat64).contiguous();
    const double *e = e_host.data_ptr<double>();
    double sum = 0.0;
    for (int i = 0; i < nlocal; i++) sum += e[i];
    if (eflag_global) eng_vdwl += kEnergyToReal * sum;
    if (eflag_atom)
      for (int i = 0; i < nlocal; i++) eatom[i] += kEnergyToReal * e[i];
  }
}
