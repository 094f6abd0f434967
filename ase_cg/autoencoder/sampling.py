"""Per-frame samples of molecules and the intermolecular bead pairs their CG forces need."""

from __future__ import annotations

import numpy as np
import torch

from ase_cg.autoencoder.data import TrainingData


class MoleculeSampler:
    """Per frame, a sample of molecules and the bead pairs their CG forces need.

    Bead positions are mass-weighted means of a molecule's atoms, so a bead lies within
    ``reach`` (the largest atom distance from its molecule's centre of mass) of that centre:
    two beads can be closer than the pair cutoff only when their molecules' centres are
    closer than ``cutoff + 2 reach``.  Only those molecules are encoded besides the sample.

    Parameters
    ----------
    data : TrainingData
    cutoff : float, Å
    budget : int or None
        Molecules sampled per frame (all types together); None: all.
    """

    def __init__(self, data: TrainingData, cutoff: float, budget: int | None):
        masses = [t.template.get_masses() for t in data.types]
        self.coms = [
            np.einsum("j,fmjc->fmc", m / m.sum(), p)
            for m, p in zip(masses, data.positions, strict=True)
        ]
        self.reach = max(
            float(np.linalg.norm(p - c[:, :, None], axis=-1).max())
            for p, c in zip(data.positions, self.coms, strict=True)
        )
        self.range = cutoff + 2.0 * self.reach
        self.cells = data.cells if data.pbc.any() else None
        self.pbc = data.pbc
        self.counts = [c.shape[1] for c in self.coms]
        self.n_beads = [t.n_beads for t in data.types]
        self.type_offsets = np.cumsum([0, *self.counts])
        total = sum(self.counts)
        if budget is None or budget >= total:
            self.sizes = list(self.counts)
        else:
            self.sizes = [min(n, max(1, round(budget * n / total))) for n in self.counts]

    def sample(self, frame: int, generator: torch.Generator | None):
        """``(centres, neighbours, pairs)`` of one frame.

        ``centres``/``neighbours``: per type, molecule indices; ``pairs``: (i, j, slot_i,
        slot_j) int64 tensors over the beads of the centres then the neighbours (each pair
        once, at least one bead of a centre).  ``generator=None`` draws a fixed sample per
        frame (validation).
        """
        rng = None if generator is not None else np.random.default_rng(frame)
        centres = []
        for n, size in zip(self.counts, self.sizes, strict=True):
            if size >= n:
                centres.append(np.arange(n))
            elif rng is None:
                centres.append(np.sort(torch.randperm(n, generator=generator)[:size].numpy()))
            else:
                centres.append(np.sort(rng.choice(n, size, replace=False)))
        com = np.concatenate([c[frame] for c in self.coms])  # (n_mol_total, 3)
        starts = self.type_offsets[:-1]
        chosen = np.concatenate([c + o for c, o in zip(centres, starts, strict=True)])
        near = self._near(com[chosen], com, frame)  # (n_chosen, n_mol_total)
        is_centre = np.zeros(len(com), dtype=bool)
        is_centre[chosen] = True
        wanted = near.any(0) & ~is_centre
        neighbours = [
            np.flatnonzero(wanted[a:b]) for a, b in zip(starts, self.type_offsets[1:], strict=True)
        ]
        # the sub-system: centres of every type, then neighbours of every type
        members = [c + o for c, o in zip(centres, starts, strict=True)]
        members += [c + o for c, o in zip(neighbours, starts, strict=True)]
        kind = np.concatenate(
            [np.full(len(m), k % len(self.counts)) for k, m in enumerate(members)]
        )
        order = np.concatenate(members)
        n_beads = np.asarray(self.n_beads)[kind]
        start = np.concatenate([[0], np.cumsum(n_beads)[:-1]])
        position = np.full(len(com), -1)
        position[order] = np.arange(len(order))
        a, b = np.nonzero(near)  # centre row a (position a in order), molecule b
        b = position[b]
        keep = (b >= 0) & (a != b) & ((b >= len(chosen)) | (a < b))
        a, b = a[keep], b[keep]
        most = max(self.n_beads)
        bead_a = np.arange(most)[None, :, None]
        bead_b = np.arange(most)[None, None, :]
        valid = (bead_a < n_beads[a][:, None, None]) & (bead_b < n_beads[b][:, None, None])
        shape = (len(a), most, most)
        i = np.broadcast_to(start[a][:, None, None] + bead_a, shape)[valid]
        j = np.broadcast_to(start[b][:, None, None] + bead_b, shape)[valid]
        offsets = np.cumsum([0, *self.n_beads[:-1]])
        slot_i = np.broadcast_to(offsets[kind[a]][:, None, None] + bead_a, shape)[valid]
        slot_j = np.broadcast_to(offsets[kind[b]][:, None, None] + bead_b, shape)[valid]
        pairs = tuple(torch.as_tensor(x, dtype=torch.int64) for x in (i, j, slot_i, slot_j))
        return centres, neighbours, pairs

    def _near(self, points: np.ndarray, com: np.ndarray, frame: int) -> np.ndarray:
        delta = com[None, :, :] - points[:, None, :]
        if self.cells is not None:
            cell = self.cells[frame]
            fractional = delta @ np.linalg.inv(cell)
            fractional[..., self.pbc] -= np.rint(fractional[..., self.pbc])
            delta = fractional @ cell
        return np.einsum("abc,abc->ab", delta, delta) < self.range**2
