"""Radial features of an edge: Gaussian basis of the distance times a smooth cutoff envelope.

Distances in Angstrom. Every radial quantity here is exactly zero at and beyond ``rcut`` and its
first two derivatives vanish there, so edges entering or leaving the cutoff sphere change the
network's output smoothly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["envelope", "GaussianBasis", "RadialMLP"]


def envelope(r: torch.Tensor, rcut: float) -> torch.Tensor:
    """Polynomial cutoff ``1 - 28 u^6 + 48 u^7 - 21 u^8`` (u = r / rcut), 0 for r >= rcut.

    C^2 at rcut (value, slope and curvature are zero there); ``(n_edges,)``.
    """
    u = (r / rcut).clamp(max=1.0)
    u6 = u ** 6
    return 1.0 - 28.0 * u6 + 48.0 * u6 * u - 21.0 * u6 * u * u


class GaussianBasis(nn.Module):
    """``n_radial`` Gaussians centred evenly on [0, rcut], width = spacing: ``(n_edges, n_radial)``."""

    def __init__(self, n_radial: int, rcut: float):
        super().__init__()
        self.rcut = float(rcut)
        centres = torch.linspace(0.0, self.rcut, int(n_radial), dtype=torch.float64)
        self.register_buffer("centres", centres, persistent=False)
        self.width = self.rcut / max(int(n_radial) - 1, 1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        d = (r[:, None] - self.centres.to(r.dtype)) / self.width
        return torch.exp(-0.5 * d * d)


class RadialMLP(nn.Module):
    """Invariant per-edge weights from the radial basis, multiplied by the envelope.

    ``forward(rbf (n_edges, n_radial), env (n_edges,)) -> (n_edges, n_out)``; zero at rcut.
    """

    def __init__(self, n_radial: int, hidden: int, n_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_radial, hidden), nn.SiLU(),
                                 nn.Linear(hidden, n_out))
        with torch.no_grad():  # unit-scale output at init whatever the fan-in
            self.net[2].weight.mul_(math.sqrt(3.0))

    def forward(self, rbf: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        return self.net(rbf) * env[:, None]
