/* ----------------------------------------------------------------------
   pair_style cgtorch: a many-body coarse-grained potential exported from ase_cg as a TorchScript
   module, evaluated with LibTorch.  Part of ase_cg (lammps_interface/src), built as the LAMMPS
   plugin cgtorchplugin.so.

   The module contract (written by lammps_interface.export, checked here):
     forward(bead_types   : int64 (n_all,)       model bead-type index of every local+ghost bead,
             pair_i       : int64 (n_pairs,)     first bead of each directed pair,
             pair_j       : int64 (n_pairs,)     second bead,
             pair_vectors : float (n_pairs, 3)   r_j - r_i in Angstrom,
             n_local      : int)                 the first n_local beads are owned by this rank
       -> float (n_all,)  per-bead energies in eV.
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
  void setup() override;

 private:
  void allocate();
  void load_model(const std::string &path);

  torch::jit::Module model_;
  torch::Device device_;
  torch::ScalarType dtype_;
  std::string model_path_;
  std::vector<std::string> bead_type_names_;
  double cutoff_;           // Angstrom (LAMMPS real units use Angstrom too)
  int n_interactions_;      // message-passing layers K: ghost shell K * cutoff
  std::vector<int64_t> type_map_;    // LAMMPS type (1..ntypes) -> model bead-type index
};

}    // namespace LAMMPS_NS

#endif
