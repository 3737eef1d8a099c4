"""Helpers for tests: one shared equivariance assertion and one random periodic structure.

:func:`assert_equivariant` follows e3nn's ``e3nn.util.test.assert_equivariant``: draw a random
rotation R, apply it to the inputs, run the function, and compare with the outputs rotated by
the same R. How R acts on each argument and output is said by one entry each:

* ``None``: invariant (atomic numbers, indices, image shifts, distances, gates, losses);
* ``"cartesian"``: vectors on the last axis, ``x -> x @ R^T`` (positions, cell rows, edge
  vectors; Angstrom);
* :class:`Features` (or an e3nn ``Irreps`` / its string, on the last axis): e3nn-basis
  components (y polar, l-major ``l*l + l + m``) on one axis, ``x -> D(R) x`` with e3nn's
  Wigner-D of each irrep;
* :class:`OrbitalBlocks`: Hamiltonian blocks ``(..., n_orb, n_orb)`` in hampart's orbital basis
  (CP2K order, z polar; :mod:`hampart.so3`), ``H_ij -> D_i H_ij D_j^T`` with
  :func:`hampart.so3.block_rotation` of the given shells on both sides (the union shells for
  padded blocks: D is block-diagonal per shell, so padding stays zero).

R is drawn in float64 and every input is rotated in float64 before being cast back to its
dtype, so the check measures the function, not the rounding of its inputs.

:func:`random_structure` places atoms at random in a periodic cell with a minimum distance
between them (rejection sampling): the small disordered structures the tests of the graph,
blocks, partitions and model share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3

from . import so3

__all__ = ["Features", "OrbitalBlocks", "random_rotation", "rotate", "assert_equivariant",
           "random_structure", "random_hamiltonian", "graph_tensors"]


@dataclass(frozen=True)
class Features:
    """e3nn-basis components on ``axis``: ``lmax`` for one copy of each l = 0..lmax (the
    network's node features ``(n, (lmax+1)^2, C)`` have ``axis=1``), or any e3nn ``irreps``."""

    lmax: int | None = None
    axis: int = 1
    irreps: str | None = None

    def matrix(self, rot: torch.Tensor) -> torch.Tensor:
        if self.irreps is not None:
            ls = [ir.l for mul, ir in o3.Irreps(self.irreps) for _ in range(mul)]
        else:
            ls = range(int(self.lmax) + 1)
        return torch.block_diag(*[so3.wigner_D_from_matrix(l, rot) for l in ls])


@dataclass(frozen=True)
class OrbitalBlocks:
    """Blocks ``(..., n, n)`` over ``shells`` (angular momenta, orbital basis): D B D^T."""

    shells: tuple

    def matrix(self, rot: torch.Tensor) -> torch.Tensor:
        return so3.block_rotation(tuple(int(l) for l in self.shells), rot)


def _spec(spec):
    if spec is None or spec == "cartesian" or isinstance(spec, (Features, OrbitalBlocks)):
        return spec
    return Features(irreps=str(o3.Irreps(spec)), axis=-1)  # e3nn's convention: last axis


def random_rotation(seed: int = 0) -> torch.Tensor:
    """A random proper rotation ``(3, 3)`` float64, uniform (Haar), from e3nn; reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return o3.rand_matrix(dtype=torch.float64)


def rotate(x, spec, rot: torch.Tensor):
    """``x`` transformed by ``rot`` as ``spec`` says (see the module docstring); the same dtype."""
    spec = _spec(spec)
    if spec is None or not torch.is_tensor(x):
        return x
    x64 = x.to(torch.float64)
    rot = rot.to(device=x.device)
    if spec == "cartesian":
        out = x64 @ rot.T
    elif isinstance(spec, OrbitalBlocks):
        d = spec.matrix(rot)
        out = d @ x64 @ d.T
    else:
        d = spec.matrix(rot)
        out = torch.movedim(torch.tensordot(d, torch.movedim(x64, spec.axis, 0), dims=1),
                            0, spec.axis)
    return out.to(x.dtype)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def assert_equivariant(fn, args_in, irreps_in, irreps_out, *, rotation: torch.Tensor | None = None,
                       seed: int = 0, tolerance: float | None = None) -> list[float]:
    """Assert ``fn(*(R . args_in)) == R . fn(*args_in)`` for a random rotation R.

    ``irreps_in`` has one entry per argument and ``irreps_out`` one per output (``fn`` returns
    a tensor or a tuple/list of tensors); entries as in the module docstring. The error of an
    output is ``max |f(R x) - R f(x)| / max |f(x)|``; it must be below ``tolerance`` (default
    1e-9 in float64, 1e-4 in float32). Every output must also be nonzero, or the comparison
    would hold for any function. Returns the relative errors, one per output.
    """
    args_in, irreps_in, irreps_out = tuple(args_in), _as_tuple(irreps_in), _as_tuple(irreps_out)
    if len(irreps_in) != len(args_in):
        raise ValueError(f"{len(args_in)} arguments but {len(irreps_in)} entries in irreps_in")
    rot = random_rotation(seed) if rotation is None else rotation.to(torch.float64)
    assert (rot - torch.eye(3, dtype=rot.dtype)).abs().max() > 0.1, "the rotation is ~identity"
    with torch.no_grad():
        out = _as_tuple(fn(*args_in))
        out_rot = _as_tuple(fn(*[rotate(a, s, rot) for a, s in zip(args_in, irreps_in)]))
    if not len(out) == len(out_rot) == len(irreps_out):
        raise ValueError(f"fn returned {len(out)} outputs; irreps_out has {len(irreps_out)}")
    errors = []
    for k, (y, y_rot, spec) in enumerate(zip(out, out_rot, irreps_out)):
        scale = float(y.abs().max()) if y.numel() else 0.0
        assert scale > 0, f"output {k} is zero: the equivariance check would be trivial"
        expected = rotate(y.to(torch.float64), spec, rot)
        err = float((y_rot.to(torch.float64) - expected).abs().max()) / scale
        tol = tolerance if tolerance is not None else (1e-9 if y.dtype == torch.float64 else 1e-4)
        assert err < tol, f"output {k} ({spec}): relative equivariance error {err:.3g} >= {tol:g}"
        errors.append(err)
    return errors


def random_structure(n_atoms: int, cell, *, seed: int = 0, min_dist: float = 1.6,
                     cell_noise: float = 0.0, ghosts: int = 0, species=(72, 8)):
    """Random periodic structure: ``(numbers (n,) int64, positions (n, 3) A, cell (3, 3) A)``.

    ``cell`` ``(3, 3)`` rows = lattice vectors, plus Gaussian noise of ``cell_noise`` A on every
    entry when given (a triclinic cell); atoms uniform in it, at least ``min_dist`` A apart at
    the minimum image; atom k is ``species[0]`` when k % 3 == 0, else ``species[-1]`` (Hf/O at
    1:2 by default; one species for a 1-tuple); ``ghosts`` atoms chosen at random get Z = 0. One
    seeded generator draws, in this order, the cell noise, the positions, the ghosts.
    """
    rng = np.random.default_rng(seed)
    cell = np.array(cell, dtype=np.float64)
    if cell_noise:
        cell = cell + rng.normal(0.0, cell_noise, (3, 3))
    frac = np.empty((0, 3))
    while len(frac) < n_atoms:
        f = rng.random(3)
        if len(frac):
            d = frac - f
            d -= np.round(d)
            if np.linalg.norm(d @ cell, axis=1).min() < min_dist:
                continue
        frac = np.vstack([frac, f])
    numbers = np.where(np.arange(n_atoms) % 3 == 0, species[0], species[-1]).astype(np.int64)
    if ghosts:
        numbers[rng.permutation(n_atoms)[:ghosts]] = 0
    return numbers, frac @ cell, cell


def graph_tensors(numbers, positions, cell, rcut: float, dtype=torch.float64):
    """The model's inputs for a periodic structure: ``((numbers, positions, cell, edge_index,
    edge_shift) as tensors, Graph)``; positions and cell in ``dtype``."""
    from .graph import radius_graph

    g = radius_graph(positions, cell, [True] * 3, rcut)
    return (torch.as_tensor(numbers), torch.as_tensor(positions, dtype=dtype),
            torch.as_tensor(cell, dtype=dtype), torch.as_tensor(g.edge_index),
            torch.as_tensor(g.edge_shift)), g


def random_hamiltonian(numbers, graph, basis, seed: int = 0):
    """Random symmetric H ``scipy.sparse.csr_matrix`` (internal orbital order) whose atom-pair
    pattern is exactly the graph's edges plus the on-site blocks."""
    import scipy.sparse as sp

    offsets = basis.orbital_offsets(numbers)
    atom_of = np.repeat(np.arange(len(numbers)), np.diff(offsets))
    pair = np.eye(len(numbers), dtype=bool)
    pair[graph.edge_index[1], graph.edge_index[0]] = True
    A = np.random.default_rng(seed).normal(size=(offsets[-1], offsets[-1]))
    A *= pair[np.ix_(atom_of, atom_of)]
    return sp.csr_matrix(A + A.T)
