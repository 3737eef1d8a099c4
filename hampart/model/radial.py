"""Radial features of an edge: Gaussian basis of the distance times a smooth cutoff envelope.

Distances in Angstrom. Every radial quantity here is exactly zero at and beyond ``rcut`` and its
first two derivatives vanish there, so edges entering or leaving the cutoff sphere change the
network's output smoothly; the one exception asks for it (``edge_weights(geom, envelope=False)``,
the initial persistent edge feature, whose messages still carry the envelope).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["envelope", "GaussianBasis", "RadialMLP", "SpeciesRadialMLP", "make_radial"]


def envelope(r: torch.Tensor, rcut: float) -> torch.Tensor:
    """Polynomial cutoff ``1 - 28 u^6 + 48 u^7 - 21 u^8`` (u = r / rcut), 0 for r >= rcut.

    C^2 at rcut (value, slope and curvature are zero there); ``(n_edges,)``.
    """
    u = (r / rcut).clamp(max=1.0)
    u6 = u ** 6
    return 1.0 - 28.0 * u6 + 48.0 * u6 * u - 21.0 * u6 * u * u


def smooth_degree(r: torch.Tensor, receiver: torch.Tensor, n_atoms: int,
                  rcut: float) -> torch.Tensor:
    """``sum_j envelope(r_ij)`` per receiving atom ``(n_atoms,)``: the smooth neighbour count
    that the degree normalisation is the training atoms' mean of."""
    return r.new_zeros(n_atoms).index_add_(0, receiver, envelope(r, rcut))


class GaussianBasis(nn.Module):
    """``n_radial`` Gaussians centred evenly on [0, stop] (default stop = rcut), standard
    deviation = ``width`` times their spacing (default 1): ``(n_edges, n_radial)``. The paper's
    code uses 16 on [0, 13] A with twice the spacing; the envelope, not the basis, makes radial
    quantities vanish at rcut either way."""

    def __init__(self, n_radial: int, rcut: float, stop: float | None = None, width: float = 1.0):
        super().__init__()
        self.rcut = float(rcut)
        stop = self.rcut if stop is None else float(stop)
        centres = torch.linspace(0.0, stop, int(n_radial), dtype=torch.float64)
        self.register_buffer("centres", centres, persistent=False)
        self.width = float(width) * stop / max(int(n_radial) - 1, 1)

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

    def edge_weights(self, geom, envelope: bool = True) -> torch.Tensor:
        """``(n_edges, n_out)`` for an :class:`~hampart.model.layers.EdgeGeometry`; without
        the envelope when ``envelope`` is False."""
        return self(geom.rbf, geom.env) if envelope else self.net(geom.rbf)


class SpeciesRadialMLP(nn.Module):
    """Per-edge weights from the radial basis and both end atoms' species, as the paper's code:
    ``[rbf, embed_receiver(Z_i), embed_sender(Z_j)] -> Linear -> LayerNorm -> SiLU -> Linear``,
    times the envelope (zero at rcut). ``edge_weights(geom) -> (n_edges, n_out)``; the geometry
    carries the species index of every node (``geom.kind``)."""

    def __init__(self, n_species: int, n_radial: int, hidden: int, n_out: int):
        super().__init__()
        self.receiver_embed = nn.Embedding(int(n_species), int(n_radial))
        self.sender_embed = nn.Embedding(int(n_species), int(n_radial))
        self.net = nn.Sequential(nn.Linear(3 * int(n_radial), hidden), nn.LayerNorm(hidden),
                                 nn.SiLU(), nn.Linear(hidden, n_out))
        with torch.no_grad():  # unit-scale output at init, as RadialMLP
            self.net[3].weight.mul_(math.sqrt(3.0))

    def edge_weights(self, geom, envelope: bool = True) -> torch.Tensor:
        if geom.kind is None:
            raise ValueError("a species-aware radial needs EdgeGeometry.kind")
        inputs = torch.cat([geom.rbf, self.receiver_embed(geom.kind[geom.receiver]),
                            self.sender_embed(geom.kind[geom.sender])], dim=1)
        out = self.net(inputs)
        return out * geom.env[:, None] if envelope else out


def make_radial(n_radial: int, hidden: int, n_out: int, n_species: int = 0) -> nn.Module:
    """A :class:`SpeciesRadialMLP` when ``n_species`` > 0, else a :class:`RadialMLP`."""
    if n_species:
        return SpeciesRadialMLP(n_species, n_radial, hidden, n_out)
    return RadialMLP(n_radial, hidden, n_out)
