"""Helpers of the neural-network tests."""

from __future__ import annotations

import torch


def randomise(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    """Overwrite every parameter of ``module`` with Gaussian noise of std ``scale`` (seeded), so
    a comparison does not pass on an untrained network's zeros or symmetric weights."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_(scale * noise.to(parameter.dtype))
