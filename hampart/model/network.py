"""The equivariant Hamiltonian network (DESIGN.md §4).

``HamiltonianModel(basis, ...)(numbers, positions, cell, edge_index, edge_shift)`` returns
``(node_blocks (n, u, u), edge_blocks (m, u, u))`` in the **orbital basis** of the padded union
basis (:class:`hampart.basis.Basis`; u = ``basis.n_union``), H in Hartree. Entries a species
(pair) lacks are exactly zero; ghost atoms without orbitals (Z = 0) take part as neighbours and
get zero blocks. A ghost keeping element Z's orbitals (atomic number -Z, a species of
``basis.species``) is a species of its own: own embedding, node head and edge heads.

Inputs (torch): numbers ``(n,)`` int64; positions ``(n, 3)`` Angstrom; cell ``(3, 3)`` rows are
cell vectors; edge_index ``(2, m)`` int64 with ``edge_index[0]`` = sender j and
``edge_index[1]`` = receiver i; edge_shift ``(m, 3)`` image shift of the sender, so
``r_ij = positions[j] + edge_shift @ cell - positions[i]``. Edge vectors are computed here from
positions, so rotating positions and cell rotates every block as ``D H D^T``.

Inside, node features are ``(n, (lmax+1)^2, C)`` in the e3nn basis (y polar). Each layer:
``x += MessageBlock(norm(x))`` (eSCN SO(2) convolution with graph attention over each receiver's
incoming edges) then ``x += FeedForward(norm(x))``. After the last layer an
:class:`~hampart.model.layers.EdgeBlock` makes one edge-frame feature per directed edge; heads
per species (nodes) and per ordered species pair (edges) predict irreps, which
:class:`hampart.blocks.IrrepsLayout` maps to blocks. Node blocks are symmetrised
(``(B + B^T) / 2``, as H_ii is); the edge j -> i predicts H_ij and the edge i -> j predicts H_ji
independently: the assembly symmetrises (DESIGN.md §2). Head scales and node-head biases are
set from the training labels by :meth:`HamiltonianModel.set_label_statistics`.

Receptive field: an atom's features after L layers depend on atoms within L hops; an edge's
output on its two end atoms' features. Hence partition halos of depth L (owned atoms exact) and
L + 1 (owned edges exact; DESIGN.md §3).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..basis import load_basis, species_name
from ..errors import InputError
from .edges import EdgeEmbedding, EdgeUpdate
from .heads import EdgeHead, NodeHead, present_entries
from .layers import EdgeBlock, EdgeGeometry, EquivariantLayerNorm, FeedForward, MessageBlock
from .onsite import NeighbourSum
from .radial import GaussianBasis, envelope
from .ridge import FOLDS, RIDGES, fold_ridge_fit
from .so2 import EdgeFrame

__all__ = ["HamiltonianModel", "PAPER_HYPERPARAMETERS", "OFFICIAL_OPTIONS",
           "OFFICIAL_HYPERPARAMETERS"]

# the paper's network: its sizes, and neither the neighbour sums nor the degree embedding
PAPER_HYPERPARAMETERS = {"lmax": 4, "mmax": 4, "channels": 16, "ff_hidden": 64, "heads": 2,
                         "layers": 1, "degree_embedding": False, "onsite_channels": 0}

# components of the paper's own code that the network above simplifies (docs/model.md,
# "Options from the paper's code"); each is an option, all off by default
OFFICIAL_OPTIONS = {"edge_embedding": True, "message_edges": True, "radial_species": True,
                    "att_channels": 16, "attention_norm": True, "value_channels": 16,
                    "radial_stop": 13.0, "radial_width": 2.0}
OFFICIAL_HYPERPARAMETERS = {**PAPER_HYPERPARAMETERS, **OFFICIAL_OPTIONS}


def _make_layout(basis):
    from ..blocks import IrrepsLayout  # one implementation of blocks <-> irreps, shared

    return IrrepsLayout(basis)


def _first_edges(geom: EdgeGeometry, k: int) -> EdgeGeometry:
    """The geometry of the first ``k`` edges (views, no copies)."""
    if k == geom.sender.shape[0]:
        return geom
    return EdgeGeometry(geom.sender[:k], geom.receiver[:k], geom.n_nodes,
                        geom.frame.select(slice(0, k)), geom.rbf[:k], geom.env[:k], geom.kind)


class HamiltonianModel(nn.Module):
    """Equivariant graph network predicting padded H blocks; see the module docstring.

    Defaults are the paper's hyperparameters (lmax = mmax = 4, 16 channels, feed-forward 64,
    2 heads, 1 layer). ``rcut`` (Angstrom) is where the radial envelope reaches zero; edges
    longer than it carry no message. ``edge_channels`` defaults to ``channels``.
    ``edge_chunk`` (edges, default None = all at once) bounds memory: edges are processed in
    chunks of about that many (cut between receivers), each recomputed in the backward pass
    (activation checkpointing) instead of storing its activations; results are unchanged.
    ``attention_degree`` (default None: the paper's softmax mean) turns each message into a
    normalised sum over neighbours (see :class:`~hampart.model.layers.MessageBlock`); give the
    mean envelope-weighted in-degree of the data (``hampart train`` resolves ``"auto"``).
    ``elements`` (atomic numbers, -Z for a ghost keeping Z's orbitals; default: every species
    of the basis) are the species the model embeds and has output heads for: ``hampart train``
    gives those of its training data, so no head is left untrained; other atoms are refused.
    On-site neighbour sums (:mod:`hampart.model.onsite`): ``onsite_channels`` (0: off),
    ``onsite_invariants`` (their rotation invariants on L = 0) and ``onsite_products`` (their
    Clebsch-Gordan products on L >= 1; none without the sums), the two-body and three-body
    on-site terms the node heads read and the least-squares start fits.

    Options from the paper's code (off by default; ``OFFICIAL_OPTIONS`` turns all on; see
    docs/model.md): ``edge_embedding`` keeps an edge feature that every layer updates
    (:mod:`hampart.model.edges`; it replaces the single edge block); ``message_edges`` feeds
    ``[x_i, x_j, e]`` into the messages (e: the persistent edge feature, or without it the
    initial radial edge embedding); ``radial_species`` puts both end atoms' species and a layer
    norm into the radial MLPs; ``attention_norm`` (layer norm and smooth leaky ReLU on the
    attention channels) and ``value_channels`` (each head's value width, default
    ``channels // heads``) with ``att_channels``; ``radial_stop`` (Angstrom, default ``rcut``) and
    ``radial_width`` (in Gaussian spacings, default 1) place the radial basis.
    """

    def __init__(self, basis, lmax: int = 4, mmax: int | None = None, channels: int = 16,
                 ff_hidden: int = 64, heads: int = 2, layers: int = 1, rcut: float = 8.0,
                 n_radial: int = 16, radial_hidden: int = 64, edge_channels: int | None = None,
                 att_channels: int = 8, edge_chunk: int | None = None,
                 attention_degree: float | None = None, degree_embedding: bool = True,
                 onsite_channels: int = 16, onsite_invariants: bool = False,
                 onsite_products: bool = True, elements=None,
                 edge_embedding: bool = False, message_edges: bool = False,
                 radial_species: bool = False, attention_norm: bool = False,
                 value_channels: int | None = None, radial_stop: float | None = None,
                 radial_width: float = 1.0):
        super().__init__()
        self.basis = load_basis(basis)
        mmax = lmax if mmax is None else mmax
        self._check_args(lmax, mmax, channels, heads, layers, rcut, attention_degree)
        self.elements = self._check_elements(elements)  # species with heads, atomic numbers
        self._check_options(value_channels, radial_stop, radial_width)
        self.lmax, self.mmax, self.channels = int(lmax), int(mmax), int(channels)
        self.layers_n, self.rcut = int(layers), float(rcut)
        c_edge = int(edge_channels or channels)

        self.edge_chunk = int(edge_chunk) if edge_chunk else None
        species = [0] + self.elements
        self.species = species  # species index -> Z; 0 = ghost without orbitals, -Z ghost of Z
        table = torch.full((2 * 118 + 1,), -1, dtype=torch.long)  # a ghost's -Z wraps to the end
        table[torch.tensor(species)] = torch.arange(len(species))
        self.register_buffer("species_of_z", table, persistent=False)
        self.embed = nn.Embedding(len(species), channels)
        self.radial_basis = GaussianBasis(n_radial, rcut, radial_stop, radial_width)
        self.radial_species = bool(radial_species)
        n_sp = len(species) if radial_species else 0  # species-aware radial MLPs
        self.message_edges = bool(message_edges)
        self.norm_msg = nn.ModuleList([EquivariantLayerNorm(lmax, channels) for _ in range(layers)])
        self.message = nn.ModuleList([MessageBlock(lmax, mmax, channels, heads, n_radial,
                                                   radial_hidden, att_channels,
                                                   attention_degree, degree_embedding,
                                                   edge_in=c_edge if message_edges else 0,
                                                   attention_norm=attention_norm,
                                                   value_channels=value_channels, n_species=n_sp)
                                      for _ in range(layers)])
        self.norm_ff = nn.ModuleList([EquivariantLayerNorm(lmax, channels) for _ in range(layers)])
        self.ff = nn.ModuleList([FeedForward(lmax, channels, ff_hidden) for _ in range(layers)])
        self.norm_out = EquivariantLayerNorm(lmax, channels)
        # initial edge features: read by the messages ([x_i, x_j, e]) or updated by every layer
        self.edge_embed = (EdgeEmbedding(lmax, mmax, c_edge, n_radial, radial_hidden, n_sp)
                           if edge_embedding or message_edges else None)
        if edge_embedding:  # every layer updates e; the last update is the edge output
            self.edge_update = nn.ModuleList([
                EdgeUpdate(lmax, mmax, channels, c_edge, ff_hidden, n_radial, radial_hidden, n_sp,
                           final=k == layers - 1) for k in range(layers)])
            self.edge_block = None
        else:
            self.edge_update = None
            self.edge_block = EdgeBlock(lmax, mmax, channels, c_edge, n_radial, radial_hidden,
                                        n_sp)
        self.onsite = (NeighbourSum(len(species), lmax, mmax, int(onsite_channels), n_radial,
                                    radial_hidden, invariants=onsite_invariants,
                                    products=onsite_products)
                       if onsite_channels else None)
        n_invariants = self.onsite.n_invariants if self.onsite is not None else 0
        n_products = self.onsite.n_products if self.onsite is not None else 0
        # node heads read [features, neighbour sums, their products]
        c_node = channels + int(onsite_channels) + n_products

        layout = _make_layout(self.basis)
        u = self.basis.n_union
        # float64 master copy, not a buffer: model.to(float32).to(float64) must not round it
        self._irreps_to_blocks = torch.as_tensor(np.asarray(layout.U, dtype=np.float64))
        self.node_heads = nn.ModuleDict()
        self.edge_heads = nn.ModuleDict()
        for zi in self.elements:
            self.node_heads[str(zi)] = NodeHead(layout, present_entries(layout, self.basis, zi, zi),
                                                u * u, c_node, n_invariants)
            if onsite_channels:  # on-site blocks start at the bias (plus a fitted linear term)
                with torch.no_grad():
                    for w in self.node_heads[str(zi)].weight:
                        w.zero_()
            for zj in self.elements:
                ids = present_entries(layout, self.basis, zi, zj)
                self.edge_heads[f"{zi}-{zj}"] = EdgeHead(layout, ids, u * u, lmax, mmax, c_edge)

    @torch.no_grad()
    def set_label_statistics(self, sums) -> None:
        """Node-head biases and head scales from :class:`~hampart.model.statistics.LabelSums`
        of the training labels (see that module for why)."""
        if not set(self.elements) <= set(sums.species):
            raise InputError("label statistics", f"are for elements {sums.species}, the model "
                             f"for {tuple(self.elements)}", "compute them with this basis")
        u = self.basis.n_union
        U = self._irreps_to_blocks.to(sums.node_sum.device)
        mean_irreps = sums.node_mean().reshape(-1, u * u) @ U.T  # U orthogonal: blocks -> irreps
        node_scale, edge_scale = sums.node_scale(self.basis), sums.edge_scale()
        for k, zi in enumerate(sums.species):
            if str(zi) in self.node_heads:  # the basis' other elements have no head
                self.node_heads[str(zi)].set_statistics(mean_irreps[k], node_scale)
        for head in self.edge_heads.values():
            head.scale.fill_(edge_scale)

    @torch.no_grad()
    def set_mean_degree(self, degree: float) -> None:
        """The normalisation d of the degree embedding: the training atoms' mean
        envelope-weighted in-degree (``sum_j envelope(r_ij)``), so its sum is of order one."""
        if not degree > 0:
            raise InputError("mean degree", f"{degree}", "give a positive neighbour count")
        for block in self.message:
            if block.degree is not None:
                block.degree_norm.fill_(float(degree))
        if self.onsite is not None:
            self.onsite.degree_norm.fill_(float(degree))

    @torch.no_grad()
    def neighbour_sum_statistics(self, numbers, positions, cell, edge_index, edge_shift,
                                 n_atoms: int | None = None) -> torch.Tensor:
        """Raw on-site neighbour sums of the first ``n_atoms`` atoms (ghosts left out) as one
        float64 vector ``[count, sum of l = 0 (C), sums of squares per l ((lmax+1) C)]``, then
        with invariants their sums and sums of squares (P each): add such vectors over
        partitions and ranks, then :meth:`set_neighbour_sum_statistics`."""
        n_atoms = numbers.shape[0] if n_atoms is None else int(n_atoms)
        sums = self._raw_neighbour_sums(numbers, positions, cell, edge_index, edge_shift)
        sums = sums[:n_atoms][numbers[:n_atoms] != 0].double()
        square = torch.stack([p.square().sum((0, 1)) for p in
                              sums.split([2 * l + 1 for l in range(self.lmax + 1)], dim=1)])
        out = [sums.new_tensor([sums.shape[0]]), sums[:, 0].sum(0), square.reshape(-1)]
        if self.onsite.n_invariants:
            q = self.onsite.raw_invariants(sums)
            out += [q.sum(0), q.square().sum(0)]
        return torch.cat(out)

    @property
    def neighbour_sum_statistics_size(self) -> int:
        """Length of the vector :meth:`neighbour_sum_statistics` returns."""
        c = self.onsite.channels
        return 1 + c + (self.lmax + 1) * c + 2 * self.onsite.n_invariants

    def _raw_neighbour_sums(self, numbers, positions, cell, edge_index, edge_shift):
        """Unstandardised neighbour sums ``(n, K, C_o)`` of every atom, edges in chunks."""
        n = numbers.shape[0]
        dtype = self.embed.weight.dtype
        numbers, edge_index = numbers.long(), edge_index.long()
        positions, cell = positions.to(dtype), cell.to(dtype)
        sender, receiver = edge_index[0], edge_index[1]
        vec = positions[sender] + edge_shift.to(dtype) @ cell - positions[receiver]
        kind = self.species_of_z[numbers]
        m = edge_index.shape[1]
        step = self.edge_chunk or max(m, 1)
        sums = positions.new_zeros(n, (self.lmax + 1) ** 2, self.onsite.channels)
        for a in range(0, m, step):  # sums add over any split of the edges
            b = min(a + step, m)
            sums += self.onsite(kind, self._geometry(sender[a:b], receiver[a:b], vec[a:b], n))
        return sums

    def set_neighbour_sum_statistics(self, flat: torch.Tensor) -> None:
        """Standardise the neighbour sums with a (summed) vector of
        :meth:`neighbour_sum_statistics`."""
        c, p = self.onsite.channels, self.onsite.n_invariants
        end = 1 + c + (self.lmax + 1) * c
        self.onsite.set_statistics(flat[0], flat[1:1 + c], flat[1 + c:end].reshape(self.lmax + 1, c))
        if p:
            self.onsite.set_invariant_statistics(flat[0], flat[end:end + p], flat[end + p:end + 2 * p])

    @torch.no_grad()
    def onsite_normal_equations(self, numbers, positions, cell, edge_index, edge_shift,
                                node_blocks, atoms=None, atom_ids=None) -> torch.Tensor:
        """Normal equations of a least-squares fit of the node heads' neighbour-sum weights to
        the labels ``node_blocks`` ``(n_owned, u, u)`` of the first atoms, as one float64 vector
        (for each species and L and each of ``ridge.FOLDS`` folds: ``A = S^T S``,
        ``B = S^T T``, ``|T|^2``; L = 0 with a constant column for the bias): add over
        partitions and ranks, then :meth:`set_onsite_fit`. ``atoms`` ``(n_owned,)`` bool: the
        atoms to fit (default all); ``atom_ids`` ``(n_owned,)``: their global indices, which
        deal them into folds (default the position in this input). Call after the label
        statistics and the neighbour-sum statistics are set."""
        n_owned = node_blocks.shape[0]
        ids = torch.arange(n_owned, device=node_blocks.device) if atom_ids is None else atom_ids
        fold = ids[:n_owned].long() % FOLDS
        raw = self._raw_neighbour_sums(numbers, positions, cell, edge_index, edge_shift)[:n_owned]
        sums = self.onsite.standardise(raw).double()
        scalars = self.onsite.invariants(raw).double() if self.onsite.n_invariants else None
        products = self.onsite.products(sums) if self.onsite.n_products else None
        u = self.basis.n_union
        U = self._irreps_to_blocks.to(sums.device)
        irreps = node_blocks.reshape(n_owned, u * u).double() @ U.T  # U orthogonal
        numbers = numbers[:n_owned]
        out = []
        for z in self.elements:
            head = self.node_heads[str(z)]
            sel = (numbers == z) if atoms is None else (numbers == z) & atoms
            targets = self._head_targets(head, irreps[sel])
            for L, t in enumerate(targets):
                f = sums[sel][:, L * L:(L + 1) * (L + 1)]  # (n_z, 2L+1, C_o)
                if L == 0:  # [sums, invariants, 1 for the bias]
                    extra = [] if scalars is None else [scalars[sel][:, None]]
                    f = torch.cat([f, *extra, torch.ones_like(f[..., :1])], dim=2)
                elif products is not None:  # [sums, their products]
                    f = torch.cat([f, products[sel][:, L * L:(L + 1) * (L + 1)]], dim=2)
                # one set of sums per fold, for the cross-validated ridge
                folds = fold[sel][:, None].expand(-1, 2 * L + 1).reshape(-1)
                f, t = f.reshape(-1, f.shape[2]), t.reshape(-1, t.shape[2])
                rows = [folds == k for k in range(FOLDS)]
                out += [torch.stack([f[r].T @ f[r] for r in rows]).reshape(-1),
                        torch.stack([f[r].T @ t[r] for r in rows]).reshape(-1),
                        torch.stack([t[r].square().sum() for r in rows])]
        return torch.cat(out) if out else sums.new_zeros(0)

    @staticmethod
    def _head_targets(head, irreps):
        """Per L ``(n, 2L+1, width_L)`` of what the head must output, in units of its scale."""
        place = head.place
        flat = irreps.new_zeros(irreps.shape[0], place.src.numel())
        flat[:, place.src] = irreps[:, place.pos]
        flat = flat / float(head.scale)
        sizes = [(2 * L + 1) * w for L, w in enumerate(place.width)]
        return [t.reshape(-1, 2 * L + 1, w) for L, (t, w) in
                enumerate(zip(flat.split(sizes, dim=1), place.width))]

    @torch.no_grad()
    def set_onsite_fit(self, flat: torch.Tensor, ridge: float | None = None) -> dict:
        """Solve the summed :meth:`onsite_normal_equations` and set the node heads'
        neighbour-sum weights and L = 0 biases: training starts from the best linear on-site
        model in the neighbour sums, as the biases start from the species means. The ridge
        (times the mean diagonal, on the weights only, not on the L = 0 bias, since a shrunk
        bias would shift every atom) is chosen per species and L by cross-validation over the
        folds (:mod:`hampart.model.ridge`), or ``ridge`` for all. Species without atoms keep
        their weights. Returns ``{"Si": [ridge of L = 0, 1, ...], ...}``."""
        c, p, q = self.onsite.channels, self.onsite.n_invariants, self.onsite.n_products
        offset, start, chosen = 0, self.channels, {}
        for z in self.elements:
            head = self.node_heads[str(z)]
            for L, (weight, w) in enumerate(zip(head.weight, head.place.width)):
                k = c + (p + 1 if L == 0 else q)
                sizes = (FOLDS * k * k, FOLDS * k * w, FOLDS)
                A, B, sq = flat[offset:offset + sum(sizes)].split(sizes)
                offset += sum(sizes)
                A, B = A.reshape(FOLDS, k, k), B.reshape(FOLDS, k, w)
                if float(A.sum(0).trace()) <= 0 or w == 0:
                    continue
                free = (k - 1,) if L == 0 else ()  # the bias, the species mean
                X, alpha = fold_ridge_fit(A, B, sq, free,
                                          RIDGES if ridge is None else (float(ridge),))
                chosen.setdefault(species_name(z), []).append(alpha)
                weight[start:start + c].copy_(X[:c].to(weight))
                if L > 0 and q:
                    weight[start + c:start + c + q].copy_(X[c:c + q].to(weight))
                if L == 0 and p:
                    head.scalar_weight.copy_(X[c:c + p].to(head.scalar_weight))
                if L == 0:  # the bias is added after the scale
                    head.bias.copy_((X[c + p] * head.scale).to(head.bias))
        return chosen

    @property
    def onsite_fit_size(self) -> int:
        """Length of the vector :meth:`onsite_normal_equations` returns."""
        c, p, q = self.onsite.channels, self.onsite.n_invariants, self.onsite.n_products
        size = 0
        for z in self.elements:
            for L, w in enumerate(self.node_heads[str(z)].place.width):
                k = c + (p + 1 if L == 0 else q)
                size += FOLDS * (k * (k + w) + 1)
        return size

    @property
    def needs_mean_degree(self) -> bool:
        """Whether :meth:`set_mean_degree` must be called before training."""
        return self.onsite is not None or any(b.degree is not None for b in self.message)

    # ------------------------------------------------------------------ checks
    def _check_elements(self, elements) -> list[int]:
        if elements is None:
            return list(self.basis.species)
        zs = sorted({int(z) for z in elements}, key=lambda z: (z < 0, abs(z)))
        extra = [z for z in zs if z not in self.basis.species]
        if not zs or extra:
            names = ", ".join(species_name(z) if 0 < abs(z) <= 118 else str(z) for z in extra)
            raise InputError("model elements", f"{list(elements)}: " + (
                f"{names} not in basis '{self.basis.name}'" if extra else "none given"),
                "give atomic numbers of elements the basis has")
        return zs

    def unknown_elements(self, numbers) -> list[int]:
        """Species (atomic numbers; -Z a ghost keeping Z's orbitals; orbital-less ghosts
        excepted) among ``numbers`` that the model has no heads for."""
        zs = {int(z) for z in np.unique(np.asarray(numbers)) if z}
        return sorted(zs - set(self.elements))

    def _check_args(self, lmax, mmax, channels, heads, layers, rcut, attention_degree):
        need = 2 * self.basis.lmax
        if lmax < need:
            raise InputError("model lmax", f"lmax = {lmax} cannot represent the blocks of basis "
                             f"'{self.basis.name}' (shells up to l = {self.basis.lmax} need "
                             f"L up to {need})", f"use lmax >= {need}")
        if not 0 <= mmax <= lmax:
            raise InputError("model mmax", f"mmax = {mmax} with lmax = {lmax}",
                             "use 0 <= mmax <= lmax")
        if channels < 1 or heads < 1 or channels % heads:
            raise InputError("model channels/heads", f"{channels} channels in {heads} heads",
                             "use channels divisible by heads, both positive")
        if layers < 1:
            raise InputError("model layers", f"layers = {layers}", "use at least 1 layer")
        if not rcut > 0:
            raise InputError("model rcut", f"rcut = {rcut}", "give a positive rcut (Angstrom)")
        if attention_degree is not None and not (
                isinstance(attention_degree, (int, float)) and attention_degree > 0):
            raise InputError("model attention_degree", f"{attention_degree!r}",
                             "give a positive number (a typical envelope-weighted neighbour "
                             "count), or 'auto' to hampart train, or leave it out")

    @staticmethod
    def _check_options(value_channels, radial_stop, radial_width):
        if value_channels is not None and not (isinstance(value_channels, int)
                                               and value_channels > 0):
            raise InputError("model value_channels", f"{value_channels!r}",
                             "give a positive integer (each attention head's value width) or "
                             "leave it out")
        if radial_stop is not None and not (isinstance(radial_stop, (int, float))
                                            and radial_stop > 0):
            raise InputError("model radial_stop", f"{radial_stop!r}",
                             "give the last Gaussian centre in Angstrom (> 0) or leave it out")
        if not (isinstance(radial_width, (int, float)) and radial_width > 0):
            raise InputError("model radial_width", f"{radial_width!r}",
                             "give the Gaussian width in spacings (> 0), e.g. 1 or 2")

    def _check_inputs(self, numbers, positions, cell, edge_index, edge_shift):
        n = numbers.shape[0]
        if numbers.dim() != 1 or positions.shape != (n, 3) or tuple(cell.shape) != (3, 3):
            raise InputError("model input", f"numbers {tuple(numbers.shape)}, positions "
                             f"{tuple(positions.shape)}, cell {tuple(cell.shape)}",
                             "give numbers (n,), positions (n, 3), cell (3, 3)")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2 or \
                tuple(edge_shift.shape) != (edge_index.shape[1], 3):
            raise InputError("model input", f"edge_index {tuple(edge_index.shape)}, edge_shift "
                             f"{tuple(edge_shift.shape)}", "give edge_index (2, m), edge_shift (m, 3)")
        if edge_index.shape[1] == 0:
            raise InputError("graph", "has no edges: no atom has a neighbour within r_cut",
                             "check the structure and increase r_cut")
        if not bool(torch.isfinite(positions).all()) or not bool(torch.isfinite(cell).all()):
            raise InputError("positions", "contain NaN or infinity", "fix the structure")
        if int(edge_index.min()) < 0 or int(edge_index.max()) >= n:
            raise InputError("edge_index", f"indices outside 0..{n - 1}",
                             "build the graph for these atoms (hampart.graph.radius_graph)")
        bad = (numbers < -118) | (numbers > 118)
        if not bool(bad.any()):
            bad = self.species_of_z[numbers] < 0
        if bool(bad.any()):
            zs = sorted({int(z) for z in numbers[bad].tolist()}, key=abs)
            names = ", ".join(species_name(z) if abs(z) <= 118 else str(z) for z in zs)
            have = ", ".join(species_name(z) for z in self.elements)
            raise InputError("numbers", f"species {names} not covered by the model (it was "
                             f"built for {have})", "train a model on data with these species "
                             "(a ghost keeping orbitals, <El>_ghost, is a species of its own)")

    # ------------------------------------------------------------------ forward
    def chunk_size(self, edge_chunk: int | None = None) -> int | None:
        """The edge chunk a call runs in: ``edge_chunk`` when given (0: all edges at once),
        else the model's own ``edge_chunk``; None means all edges at once."""
        if edge_chunk is None:
            return self.edge_chunk
        return int(edge_chunk) or None

    def forward(self, numbers, positions, cell, edge_index, edge_shift,
                edge_outputs: int | None = None, edge_chunk: int | None = None):
        """``(node_blocks (n, u, u), edge_blocks (m_out, u, u))``; ``edge_outputs`` = m_out
        (default: all m edges) asks for the blocks of the first m_out edges only: every edge
        still carries messages, but the edge block and heads, about half of an edge's cost, run
        only where a block is wanted (a partition's owned edges come first). ``edge_chunk``
        (edges; default the model's ``edge_chunk``, 0 all at once) bounds this call's memory,
        as a memory plan chooses per graph (:func:`hampart.model.memory.plan_chunks`); the
        results do not depend on it."""
        chunk = self.chunk_size(edge_chunk)
        self._check_inputs(numbers, positions, cell, edge_index, edge_shift)
        m = edge_index.shape[1]
        m_out = m if edge_outputs is None else int(edge_outputs)
        if not 0 <= m_out <= m:
            raise InputError("edge_outputs", f"{edge_outputs} of {m} edges",
                             f"ask for 0 to {m} edge blocks")
        dtype = self.embed.weight.dtype  # the model's dtype: set it with .to(dtype)
        numbers, edge_index = numbers.long(), edge_index.long()
        positions, cell = positions.to(dtype), cell.to(dtype)
        sender, receiver = edge_index[0], edge_index[1]
        vec = positions[sender] + edge_shift.to(dtype) @ cell - positions[receiver]
        if bool((vec.norm(dim=-1) < 1e-6).any()):
            raise InputError("positions", "two atoms joined by an edge coincide",
                             "remove the duplicate atom")
        n = numbers.shape[0]
        kind = self.species_of_z[numbers]
        order, bounds = self._edge_chunks(receiver, n, chunk)
        shared = None
        if order is None:  # one chunk: the edges' geometry (Wigner blocks...) serves every layer
            shared = self._geometry(sender, receiver, vec, n, kind)
        else:
            s, r, v = sender[order], receiver[order], vec[order]
            chunks = [(s[a:b], r[a:b], v[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        remat = bool(chunk) and m > chunk and torch.is_grad_enabled()

        def run(fn, *args):  # a chunk's activations are recomputed in backward, not stored
            return checkpoint(fn, *args, use_reentrant=False) if remat else fn(*args)

        # edge features of every edge (edge frame; per chunk when chunked): only when the
        # messages read them or a layer before the last updates them
        edges = None
        if self.message_edges or (self.edge_update is not None and self.layers_n > 1):
            edges = (self.edge_embed(shared) if shared is not None else
                     [run(self._edge_init, *c, kind) for c in chunks])
        x = positions.new_zeros(n, (self.lmax + 1) ** 2, self.channels)
        x = torch.cat([self.embed(kind)[:, None], x[:, 1:]], dim=1)
        for k in range(self.layers_n):
            h = self.norm_msg[k](x)
            if k and self.edge_update is not None:  # layer k-1's update reads its output
                edges = (self.edge_update[k - 1](h, shared, edges) if shared is not None else
                         [run(self._edge_step, k - 1, h, e, *c, kind)
                          for e, c in zip(edges, chunks)])
            if shared is not None:
                agg = self.message[k].aggregate(h, shared, edges if self.message_edges else None)
            else:
                agg = sum(run(self._messages, k, h, *c, kind, e if self.message_edges else None)
                          for c, e in zip(chunks, edges or [None] * len(chunks)))
            x = x + self.message[k].proj(agg)
            x = x + self.ff[k](self.norm_ff[k](x))
        x = self.norm_out(x)
        if self.edge_update is None:
            edges = None  # the edge block reads the node features only
        elif edges is not None and shared is None:  # back to the edges' own order
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(m, device=order.device)
            edges = torch.cat(edges).index_select(0, inverse[:m_out])
        x_nodes, scalars = x, None
        if self.onsite is not None:
            kind = self.species_of_z[numbers]
            sums = (self.onsite(kind, shared) if shared is not None else
                    sum(run(self._onsite, kind, *c) for c in chunks))
            standard = self.onsite.standardise(sums)
            extra = [self.onsite.products(standard)] if self.onsite.n_products else []
            x_nodes = torch.cat([x, standard, *extra], dim=2)
            if self.onsite.n_invariants:
                scalars = self.onsite.invariants(sums)

        u = self.basis.n_union
        U = self._irreps_to_blocks.to(device=x.device, dtype=dtype)
        node_blocks = (self._node_irreps(x_nodes, numbers, scalars) @ U).reshape(n, u, u)
        node_blocks = 0.5 * (node_blocks + node_blocks.transpose(1, 2))
        # edge blocks need no softmax over a receiver: plain contiguous chunks of the wanted edges
        step = chunk or max(m_out, 1)
        if shared is not None and m_out <= step:
            edge_irreps = [self._edge_irreps(x, numbers, _first_edges(shared, m_out),
                                             None if edges is None else edges[:m_out])] \
                if m_out else []
        else:
            edge_irreps = [run(self._chunk_edge_irreps, x, numbers, sender[a:b], receiver[a:b],
                               vec[a:b], kind, None if edges is None else edges[a:b])
                           for a, b in ((a, min(a + step, m_out)) for a in range(0, m_out, step))]
        edge_irreps = torch.cat(edge_irreps) if edge_irreps else x.new_zeros(0, u * u)
        return node_blocks, (edge_irreps @ U).reshape(m_out, u, u)

    def _edge_chunks(self, receiver, n, chunk=None):
        """(order, bounds): edges sorted by receiver and cut, at receiver boundaries (so each
        attention softmax stays inside one chunk), into pieces of about ``chunk`` edges (None:
        one piece)."""
        m = receiver.shape[0]
        if not chunk or m <= chunk:
            return None, [0, m]
        order = torch.argsort(receiver, stable=True)
        ends = torch.cumsum(torch.bincount(receiver, minlength=n), 0)
        targets = torch.arange(chunk, m, chunk, device=receiver.device)
        cuts = ends[torch.searchsorted(ends, targets)]
        return order, sorted({0, m, *cuts.tolist()})

    def _geometry(self, sender, receiver, vec, n, kind=None):
        dist = vec.norm(dim=-1)
        return EdgeGeometry(sender, receiver, n, EdgeFrame(vec, self.lmax, self.mmax, vec.dtype),
                            self.radial_basis(dist), envelope(dist, self.rcut), kind)

    def _messages(self, k, h, sender, receiver, vec, kind=None, edge=None):
        """Layer k's summed messages ``(n, K, C)`` over a set of edges (whole receivers)."""
        return self.message[k].aggregate(h, self._geometry(sender, receiver, vec, h.shape[0],
                                                           kind), edge)

    def _edge_init(self, sender, receiver, vec, kind):
        """Initial edge features ``(m, K_m, C_e)`` of a set of edges."""
        return self.edge_embed(self._geometry(sender, receiver, vec, kind.shape[0], kind))

    def _edge_step(self, k, h, edge, sender, receiver, vec, kind):
        """Layer k's update of a set of edges' features."""
        return self.edge_update[k](h, self._geometry(sender, receiver, vec, h.shape[0], kind),
                                   edge)

    def _onsite(self, kind, sender, receiver, vec):
        """Neighbour sums ``(n, K, C_o)`` over a set of edges (additive over sets)."""
        return self.onsite(kind, self._geometry(sender, receiver, vec, kind.shape[0]))

    def _node_irreps(self, x, numbers, scalars=None):
        u = self.basis.n_union
        rows, vals = [], []
        for z in self.elements:
            idx = torch.nonzero(numbers == z).flatten()
            if idx.numel():
                rows.append(idx)
                mine = None if scalars is None else scalars.index_select(0, idx)
                vals.append(self.node_heads[str(z)](x.index_select(0, idx), mine))
        out = x.new_zeros(x.shape[0], u * u)
        return out.index_copy(0, torch.cat(rows), torch.cat(vals)) if rows else out

    def _chunk_edge_irreps(self, x, numbers, sender, receiver, vec, kind=None, edges=None):
        return self._edge_irreps(x, numbers, self._geometry(sender, receiver, vec, x.shape[0],
                                                            kind), edges)

    def _edge_irreps(self, x, numbers, geom, edges=None):
        """Irreps ``(m, u*u)`` of a set of edges: edge block, then the head of each species pair
        (edges grouped by pair with one sort, so gradients need no per-pair scatter).
        ``edges``: the persistent edge features before the last layer's update (None: the
        initial embedding, computed here)."""
        sender, receiver = geom.sender, geom.receiver
        if self.edge_update is not None:
            feats = self.edge_update[-1](x, geom, self.edge_embed(geom) if edges is None else edges)
        else:
            feats = self.edge_block(x, geom)
        n_species = len(self.species)
        pair = self.species_of_z[numbers[receiver]] * n_species + self.species_of_z[numbers[sender]]
        order = torch.argsort(pair, stable=True)
        counts = torch.bincount(pair, minlength=n_species ** 2).tolist()
        pieces = feats.index_select(0, order).split(counts)
        out, start = [], 0
        for code, (piece, count) in enumerate(zip(pieces, counts)):
            zi, zj = self.species[code // n_species], self.species[code % n_species]
            if count and zi and zj:
                frame = geom.frame.select(order[start:start + count])
                out.append(self.edge_heads[f"{zi}-{zj}"](piece, frame))
            elif count:  # an edge to or from a ghost atom: no block
                out.append(x.new_zeros(count, self.basis.n_union ** 2))
            start += count
        out = torch.cat(out)
        return torch.zeros_like(out).index_copy(0, order, out)
