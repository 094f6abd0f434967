/* ----------------------------------------------------------------------
   pair_style cgtorch MODEL.pt [device auto|cpu|cuda]
   pair_coeff * * NAME_1 ... NAME_ntypes

   Evaluates an ase_cg many-body CG potential (TorchScript, see pair_cgtorch.h for the contract)
   layer by layer, the way LAMMPS runs EAM: each rank computes the messages of the pairs in its
   half neighbour list (newton on: every pair on exactly one rank), sends the sums on ghost beads
   back to their owners (reverse communication), updates the features of its local beads and
   sends them to their ghost copies (forward communication) before the next layer.  So every
   rank computes only its own beads' pairs and the ghost shell is one cutoff plus skin, whatever
   the number of layers.  Results are the same for any number of MPI ranks.

   Forces and the virial come from the gradient of the local energies with respect to the pair
   vectors, g = dE/d(r_j - r_i):  f_i += g,  f_j -= g,  W += -(r_j - r_i) (x) g.  Autograd runs
   backwards through the same layers; the adjoint of each communication is the opposite one
   (feature gradients on ghosts go back to their owners, message gradients out to the ghosts).

   Units: the model works in eV and Angstrom, LAMMPS in "units real" (kcal/mol, Angstrom);
   energies and forces are converted with CGTORCH_EV_TO_KCAL_PER_MOL, which the Python build
   (lammps_interface.plugin) takes from ASE so tables, plugin and ASE calculator agree exactly.
------------------------------------------------------------------------- */

#include "pair_cgtorch.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "json.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
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
constexpr int kMetadataVersion = 2;
constexpr int kCentroidNotAvailable = 2;    // Pair::centroidstressflag value CENTROID_NOTAVAIL
}    // namespace

PairCGTorch::PairCGTorch(LAMMPS *lmp) :
    Pair(lmp), device_(torch::kCPU), dtype_(torch::kFloat64), cutoff_(0.0), n_interactions_(0),
    feature_width_(0), message_width_(0), comm_width_(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;
  centroidstressflag = kCentroidNotAvailable;
  // TorchScript's tensor-expression fuser cannot compile these graphs for CUDA (a run on an
  // H200 stopped with "Global alloc not supported yet": the neighbour count changes every
  // step); the plain profiling executor runs them. On the CPU this fuser is off anyway.
  torch::jit::setTensorExprFuserEnabled(false);
}

PairCGTorch::~PairCGTorch()
{
  if (copymode) return;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairCGTorch::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
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
    device_ = torch::cuda::is_available() ? local_cuda_device() : torch::Device(torch::kCPU);
  } else if (device_name == "cpu") {
    device_ = torch::Device(torch::kCPU);
  } else if (device_name == "cuda") {
    if (!torch::cuda::is_available())
      error->all(FLERR, "pair_style cgtorch device cuda: torch sees no CUDA device; use 'device cpu'");
    device_ = local_cuda_device();
  } else {
    error->all(FLERR, "pair_style cgtorch device '{}' is unknown: use auto, cpu or cuda", device_name);
  }
  load_model(arg[0]);
}

/* the ranks on one node share its GPUs round-robin by node-local rank */

torch::Device PairCGTorch::local_cuda_device()
{
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
  int local_rank = 0;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);
  const int n_devices = static_cast<int>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % n_devices));
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
  check_model_methods();
  comm_forward = comm_reverse = std::max(feature_width_, message_width_);

  if (comm->me == 0) {
    std::string names;
    for (const auto &name : bead_type_names_) names += " " + name;
    utils::logmesg(lmp, "cgtorch: model {} (bead types:{}; cutoff {} Angstrom; {} interaction "
                   "layers of {} features; {} on {}, {} LibTorch threads per rank)\n", path, names,
                   cutoff_, n_interactions_, feature_width_,
                   dtype_ == torch::kFloat64 ? "float64" : "float32", device_.str(),
                   torch::get_num_threads());
  }
}

/* ----------------------------------------------------------------------
   the contract's four methods exist and give consistent shapes on one bead with no pairs;
   this also fixes the widths F and M of the communicated rows
------------------------------------------------------------------------- */

void PairCGTorch::check_model_methods()
{
  for (const char *name : {"embed", "aggregate", "update", "energies"})
    if (!model_.find_method(name))
      error->all(FLERR, "pair_style cgtorch: model '{}' has no method '{}' (metadata version {} "
                 "modules have embed, aggregate, update and energies); re-export the model with "
                 "this ase_cg", model_path_, name, kMetadataVersion);
  if (!model_.hasattr("cutoff") || !model_.attr("cutoff").isDouble())
    error->all(FLERR, "pair_style cgtorch: model '{}' has no float attribute 'cutoff' (Angstrom)",
               model_path_);
  const double module_cutoff = model_.attr("cutoff").toDouble();
  if (std::fabs(module_cutoff - cutoff_) > 1e-12 * cutoff_)
    error->all(FLERR, "pair_style cgtorch: cutoff mismatch in '{}': its metadata says {} Angstrom, "
               "the module computes with {} Angstrom; re-export the model", model_path_, cutoff_,
               module_cutoff);
  const auto on_device = torch::TensorOptions().device(device_);
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor types = torch::zeros({1}, on_device.dtype(torch::kInt64));
    const torch::Tensor no_pairs = torch::zeros({0}, on_device.dtype(torch::kInt64));
    const torch::Tensor no_vectors = torch::zeros({0, 3}, on_device.dtype(dtype_));
    const torch::Tensor x = model_.run_method("embed", types).toTensor();
    const torch::Tensor aggregated =
        model_.run_method("aggregate", 0, x, types, no_pairs, no_pairs, no_vectors).toTensor();
    const torch::Tensor updated = model_.run_method("update", 0, x, aggregated, types).toTensor();
    const torch::Tensor energies = model_.run_method("energies", updated, types).toTensor();
    if (x.dim() != 2 || x.size(0) != 1 || x.size(1) < 1 || aggregated.dim() != 2 ||
        aggregated.size(0) != 1 || aggregated.size(1) < 1 || !updated.sizes().equals(x.sizes()) ||
        energies.dim() != 1 || energies.size(0) != 1) {
      std::ostringstream shapes;
      shapes << "embed " << x.sizes() << ", aggregate " << aggregated.sizes() << ", update "
             << updated.sizes() << ", energies " << energies.sizes();
      error->all(FLERR, "pair_style cgtorch: model '{}' gives shapes {} for one bead; expected "
                 "[1, F], [1, M], [1, F] and [1]", model_path_, shapes.str());
    }
    feature_width_ = static_cast<int>(x.size(1));
    message_width_ = static_cast<int>(aggregated.size(1));
  } catch (const c10::Error &e) {
    error->all(FLERR, "pair_style cgtorch: model '{}' fails on one bead: {}", model_path_,
               e.what_without_backtrace());
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
    error->all(FLERR, "pair_style cgtorch needs 'newton on' (each pair is computed on one rank "
               "and the sums on ghost beads are sent back to their owners)");
  neighbor->add_request(this);
}

double PairCGTorch::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set for pair_style cgtorch");
  return cutoff_;
}

/* ----------------------------------------------------------------------
   communication of per-bead rows (comm_rows_, comm_width_ doubles per bead)
------------------------------------------------------------------------- */

int PairCGTorch::pack_forward_comm(int n, int *list, double *buf, int, int *)
{
  int m = 0;
  for (int k = 0; k < n; k++) {
    const double *row = comm_rows_.data() + static_cast<size_t>(list[k]) * comm_width_;
    for (int c = 0; c < comm_width_; c++) buf[m++] = row[c];
  }
  return m;
}

void PairCGTorch::unpack_forward_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; i++) {
    double *row = comm_rows_.data() + static_cast<size_t>(i) * comm_width_;
    for (int c = 0; c < comm_width_; c++) row[c] = buf[m++];
  }
}

int PairCGTorch::pack_reverse_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; i++) {
    const double *row = comm_rows_.data() + static_cast<size_t>(i) * comm_width_;
    for (int c = 0; c < comm_width_; c++) buf[m++] = row[c];
  }
  return m;
}

void PairCGTorch::unpack_reverse_comm(int n, int *list, double *buf)
{
  int m = 0;
  for (int k = 0; k < n; k++) {
    double *row = comm_rows_.data() + static_cast<size_t>(list[k]) * comm_width_;
    for (int c = 0; c < comm_width_; c++) row[c] += buf[m++];
  }
}

/* rows (nlocal + nghost, w) -> (nlocal, w): each local row plus the rows of all its ghost copies */

torch::Tensor PairCGTorch::sum_ghost_rows(const torch::Tensor &rows)
{
  const int nlocal = atom->nlocal;
  comm_width_ = static_cast<int>(rows.size(1));
  const torch::Tensor host = rows.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  comm_rows_.assign(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
  comm->reverse_comm(this, comm_width_);
  return torch::from_blob(comm_rows_.data(), {nlocal, comm_width_}, torch::kFloat64)
      .to(device_, rows.scalar_type(), false, true);
}

/* local rows (nlocal, w) -> (nlocal + nghost, w): every ghost gets its owner's row */

torch::Tensor PairCGTorch::fill_ghost_rows(const torch::Tensor &local_rows)
{
  const int nall = atom->nlocal + atom->nghost;
  comm_width_ = static_cast<int>(local_rows.size(1));
  const torch::Tensor host = local_rows.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  comm_rows_.assign(static_cast<size_t>(nall) * comm_width_, 0.0);
  std::copy(host.data_ptr<double>(), host.data_ptr<double>() + host.numel(), comm_rows_.begin());
  comm->forward_comm(this, comm_width_);
  return torch::from_blob(comm_rows_.data(), {nall, comm_width_}, torch::kFloat64)
      .to(device_, local_rows.scalar_type(), false, true);
}

namespace {
/* d(output)/d(inputs) contracted with grad_output; zeros where an input does not matter */
std::vector<torch::Tensor> gradients(const torch::Tensor &output,
                                     const std::vector<torch::Tensor> &inputs,
                                     const torch::Tensor &grad_output)
{
  std::vector<torch::Tensor> result(inputs.size());
  if (output.requires_grad())
    result = torch::autograd::grad({output}, inputs, {grad_output}, false, false, true);
  for (size_t k = 0; k < inputs.size(); k++)
    if (!result[k].defined()) result[k] = torch::zeros_like(inputs[k]);
  return result;
}
}    // namespace

/* ---------------------------------------------------------------------- */

void PairCGTorch::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  double **x = atom->x;
  double **f = atom->f;
  const int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int inum = list->inum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  std::vector<int64_t> bead_types(nall);
  for (int i = 0; i < nall; i++) bead_types[i] = type_map_[type[i]];

  // the half list holds each pair within the cutoff once, on one rank (newton on)
  const double cutsq_model = cutoff_ * cutoff_;
  std::vector<int64_t> pair_i, pair_j;
  std::vector<double> vectors;
  for (int ii = 0; ii < inum; ii++) {
    const int i = ilist[ii];
    const int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;    // the many-body term sees every pair: no special
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
  const torch::Tensor t_types = torch::from_blob(bead_types.data(), {nall}, as_int64).to(device_);
  const torch::Tensor t_types_local = t_types.narrow(0, 0, nlocal);
  const torch::Tensor t_i = torch::from_blob(pair_i.data(), {n_pairs}, as_int64).to(device_);
  const torch::Tensor t_j = torch::from_blob(pair_j.data(), {n_pairs}, as_int64).to(device_);
  const torch::Tensor t_vectors = torch::from_blob(vectors.data(), {n_pairs, 3}, as_float64)
                                      .to(device_, dtype_, false, true)
                                      .requires_grad_(true);

  const int n_layers = n_interactions_;
  torch::Tensor energies, gradient;
  try {
    // forward: features[l] over local + ghost beads; each layer's two halves keep their graphs
    std::vector<torch::Tensor> features(n_layers + 1), aggregated(n_layers), summed(n_layers),
        updated(n_layers);
    features[0] = model_.run_method("embed", t_types).toTensor().detach();
    for (int layer = 0; layer < n_layers; layer++) {
      aggregated[layer] = model_
                              .run_method("aggregate", layer, features[layer], t_types, t_i, t_j,
                                          t_vectors)
                              .toTensor();
      if (aggregated[layer].dim() != 2 || aggregated[layer].size(0) != nall ||
          aggregated[layer].size(1) != message_width_)
        error->one(FLERR, "pair_style cgtorch: model '{}' layer {} aggregate returned {} values "
                   "for {} beads; expected [{}, {}]", model_path_, layer,
                   aggregated[layer].numel(), nall, nall, message_width_);
      summed[layer] = sum_ghost_rows(aggregated[layer]).requires_grad_(true);
      updated[layer] = model_
                           .run_method("update", layer, features[layer].narrow(0, 0, nlocal),
                                       summed[layer], t_types_local)
                           .toTensor();
      features[layer + 1] = fill_ghost_rows(updated[layer]).requires_grad_(true);
    }
    energies = model_.run_method("energies", features[n_layers].narrow(0, 0, nlocal),
                                 t_types_local)
                   .toTensor();
    if (energies.dim() != 1 || energies.size(0) != nlocal) {
      std::ostringstream shape;
      shape << energies.sizes();
      error->one(FLERR, "pair_style cgtorch: model '{}' returned energies of shape {}; expected "
                 "[{}] per-bead energies", model_path_, shape.str(), nlocal);
    }

    // backward through the layers: d(sum of local energies)/d(local features), then per layer
    // the update's and the aggregate's gradients, with the communications reversed
    gradient = torch::zeros_like(t_vectors);
    torch::Tensor grad_local = gradients(energies.sum(), {features[n_layers]},
                                         torch::ones({}, energies.options()))[0]
                                   .narrow(0, 0, nlocal);
    for (int layer = n_layers - 1; layer >= 0; layer--) {
      std::vector<torch::Tensor> update_inputs{summed[layer]};
      std::vector<torch::Tensor> aggregate_inputs{t_vectors};
      if (layer > 0) {
        update_inputs.push_back(features[layer]);
        aggregate_inputs.push_back(features[layer]);
      }
      const auto from_update = gradients(updated[layer], update_inputs, grad_local);
      const torch::Tensor grad_aggregated = fill_ghost_rows(from_update[0]);
      const auto from_aggregate = gradients(aggregated[layer], aggregate_inputs, grad_aggregated);
      gradient = gradient + from_aggregate[0];
      if (layer > 0) grad_local = sum_ghost_rows(from_update[1] + from_aggregate[1]);
    }
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
    const torch::Tensor e_host = energies.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const double *e = e_host.data_ptr<double>();
    double sum = 0.0;
    for (int i = 0; i < nlocal; i++) sum += e[i];
    if (eflag_global) eng_vdwl += kEnergyToReal * sum;
    if (eflag_atom)
      for (int i = 0; i < nlocal; i++) eatom[i] += kEnergyToReal * e[i];
  }
}
