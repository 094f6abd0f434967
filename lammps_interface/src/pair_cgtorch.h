/* ----------------------------------------------------------------------
   pair_style cgtorch: a many-body coarse-grained potential exported from ase_cg as a TorchScript
   module, evaluated with LibTorch.  Part of ase_cg (lammps_interface/src), built as the LAMMPS
   plugin cgtorchplugin.so.

   The module contract (written by lammps_interface.export, checked here), for a message-passing
   model with K layers, F features and M message channels per bead:
     embed(bead_types : int64 (n,))                        -> float (n, F)  initial features
     aggregate(layer : int, x : float (n, F), bead_types : int64 (n,),
               pair_i : int64 (p,), pair_j : int64 (p,),
               pair_vectors : float (p, 3) r_j - r_i, Angstrom)
                                                           -> float (n, M)  each pair's messages
                                                              summed into both of its beads
     update(layer : int, x : float (m, F), aggregated : float (m, M), bead_types : int64 (m,))
                                                           -> float (m, F)  new features
     energies(x : float (m, F), bead_types : int64 (m,))   -> float (m,)    per-bead energies, eV
   and a float attribute cutoff (Angstrom) equal to the metadata's.
   Its metadata travel in the TorchScript extra file "cgtorch.json".
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_CGTORCH_H
#define LMP_PAIR_CGTORCH_H

#include "pair.h"

#include <torch/script.h>

#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairCGTorch : public Pair {
 public:
  explicit PairCGTorch(class LAMMPS *);
  ~PairCGTorch() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;

  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;

 private:
  void allocate();
  torch::Device local_cuda_device();
  void load_model(const std::string &path);
  void check_model_methods();
  torch::Tensor sum_ghost_rows(const torch::Tensor &rows);
  torch::Tensor fill_ghost_rows(const torch::Tensor &local_rows);

  torch::jit::Module model_;
  torch::Device device_;
  torch::ScalarType dtype_;
  std::string model_path_;
  std::vector<std::string> bead_type_names_;
  double cutoff_;           // Angstrom (LAMMPS real units use Angstrom too)
  int n_interactions_;      // message-passing layers K
  int feature_width_;       // F: features per bead, sent to ghosts after every layer
  int message_width_;       // M: summed messages per bead, sent from ghosts to their owners
  std::vector<int64_t> type_map_;    // LAMMPS type (1..ntypes) -> model bead-type index
  std::vector<double> comm_rows_;    // (nlocal + nghost) x comm_width_ rows being communicated
  int comm_width_;
};

}    // namespace LAMMPS_NS

#endif
