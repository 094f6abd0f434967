#!/usr/bin/env bash
# Regenerates ethane_gmx.tpr and ethane_gmx.trr: 64 OPLS-AA ethane molecules (512 atoms) in
# GROMACS, C-H bonds constrained with LINCS, positions, velocities and forces every 50 steps.
# Needs GROMACS (Debian: apt-get install gromacs; made with GROMACS 2022.5). Run from any
# folder: the files are written next to this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export GMX_MAXBACKUP=-1 OMP_NUM_THREADS=1

# one ethane molecule (nm), atoms C1 H11 H12 H13 C2 H21 H22 H23, in a 0.45 nm cell
cat > ethane.gro <<'GRO'
ethane
8
    1ETH     C1    1   0.225   0.225   0.299
    1ETH    H11    2   0.225   0.327   0.341
    1ETH    H12    3   0.137   0.174   0.341
    1ETH    H13    4   0.313   0.174   0.341
    1ETH     C2    5   0.225   0.225   0.151
    1ETH    H21    6   0.225   0.123   0.109
    1ETH    H22    7   0.137   0.276   0.109
    1ETH    H23    8   0.313   0.276   0.109
   0.45000   0.45000   0.45000
GRO

cat > ethane.itp <<'ITP'
[ moleculetype ]
; name  nrexcl
ETH     3

[ atoms ]
;  nr  type      resnr residue atom cgnr charge  mass
    1  opls_135  1     ETH     C1   1    -0.180  12.011
    2  opls_140  1     ETH     H11  1     0.060   1.008
    3  opls_140  1     ETH     H12  1     0.060   1.008
    4  opls_140  1     ETH     H13  1     0.060   1.008
    5  opls_135  1     ETH     C2   2    -0.180  12.011
    6  opls_140  1     ETH     H21  2     0.060   1.008
    7  opls_140  1     ETH     H22  2     0.060   1.008
    8  opls_140  1     ETH     H23  2     0.060   1.008

[ bonds ]
1 2 1
1 3 1
1 4 1
1 5 1
5 6 1
5 7 1
5 8 1

[ pairs ]
2 6 1
2 7 1
2 8 1
3 6 1
3 7 1
3 8 1
4 6 1
4 7 1
4 8 1

[ angles ]
2 1 3 1
2 1 4 1
3 1 4 1
2 1 5 1
3 1 5 1
4 1 5 1
1 5 6 1
1 5 7 1
1 5 8 1
6 5 7 1
6 5 8 1
7 5 8 1

[ dihedrals ]
2 1 5 6 3
2 1 5 7 3
2 1 5 8 3
3 1 5 6 3
3 1 5 7 3
3 1 5 8 3
4 1 5 6 3
4 1 5 7 3
4 1 5 8 3
ITP

cat > topol.top <<'TOP'
#include "oplsaa.ff/forcefield.itp"
#include "ethane.itp"

[ system ]
liquid ethane

[ molecules ]
ETH 64
TOP

common="cutoff-scheme = Verlet
coulombtype = PME
rcoulomb = 0.8
rvdw = 0.8
DispCorr = EnerPres
pbc = xyz
constraints = h-bonds
constraint-algorithm = lincs
lincs-order = 6
lincs-iter = 2"

cat > em.mdp <<MDP
integrator = steep
nsteps = 500
$common
MDP

cat > eq.mdp <<MDP
integrator = md
dt = 0.002
nsteps = 5000
tcoupl = v-rescale
tc-grps = System
tau-t = 0.1
ref-t = 180
gen-vel = yes
gen-temp = 180
gen-seed = 2019
$common
MDP

cat > md.mdp <<MDP
integrator = md
dt = 0.002
nsteps = 750
tcoupl = v-rescale
tc-grps = System
tau-t = 0.5
ref-t = 180
continuation = yes
nstxout = 50
nstvout = 50
nstfout = 50
nstenergy = 50
nstlog = 750
$common
MDP

# 4 x 4 x 4 randomly rotated molecules in a 1.8 nm box (0.55 g/cm3, liquid ethane at 180 K)
gmx genconf -f ethane.gro -o box.gro -nbox 4 4 4 -rot -seed 7 >/dev/null 2>&1
gmx grompp -f em.mdp -c box.gro -p topol.top -o em.tpr -maxwarn 1 >/dev/null 2>&1
gmx mdrun -nt 1 -deffnm em >/dev/null 2>&1
gmx grompp -f eq.mdp -c em.gro -p topol.top -o eq.tpr >/dev/null 2>&1
gmx mdrun -nt 1 -deffnm eq >/dev/null 2>&1
gmx grompp -f md.mdp -c eq.gro -t eq.cpt -p topol.top -o md.tpr >/dev/null 2>&1
gmx mdrun -nt 1 -deffnm md >/dev/null 2>&1
cp md.tpr "$here/ethane_gmx.tpr"
cp md.trr "$here/ethane_gmx.trr"
echo "wrote $here/ethane_gmx.tpr and $here/ethane_gmx.trr"
