"""Names of the arrays that travel between modules and into partition files.

Edge direction, stated once for the whole package: ``edge_index[0]`` is the **sender** j and
``edge_index[1]`` the **receiver** i of the message j -> i. That edge carries the block
H_ij = H[orbitals of i, orbitals of j] and its vector is

    r_ij = positions[j] + edge_shift @ cell - positions[i]      (Angstrom)

so ``edge_shift`` is the integer image shift of the sender.

Each entry of :data:`FIELDS` says ``(kind, shape, dtype, unit, meaning)``; ``kind`` is one of
``"node"``, ``"edge"``, ``"graph"`` so that slicing a partition and batching stay generic: the
shape names the axis along which the atoms (``n``) or edges (``m``) run, and ``n_owned`` /
``m_owned`` there marks a field covering the owned atoms or edges only (they come first).
:func:`take` gathers every field of a kind at once (building parts, reordering edges),
:func:`axis_of` and :func:`owned_only` read the registry, and the loader converts each field to
a tensor of its registered dtype (``float64``: the model's floating dtype).
"""

__all__ = [
    "NODE_IDS", "NODE_HOP", "NUMBERS", "POSITIONS", "CELL", "PBC",
    "EDGE_INDEX", "EDGE_SHIFT", "EDGE_OWNED", "EDGE_IDS", "NODE_BLOCKS", "EDGE_BLOCKS",
    "NODE_EXACT", "EDGE_EXACT", "HALO", "PART", "FIELDS", "kind_of", "axis_of", "owned_only",
    "take", "gather",
]

NODE_IDS = "node_ids"
NODE_HOP = "node_hop"
NUMBERS = "numbers"
POSITIONS = "positions"
CELL = "cell"
PBC = "pbc"
EDGE_INDEX = "edge_index"
EDGE_SHIFT = "edge_shift"
EDGE_OWNED = "edge_owned"
EDGE_IDS = "edge_ids"
NODE_BLOCKS = "node_blocks"
EDGE_BLOCKS = "edge_blocks"
NODE_EXACT = "node_exact"
EDGE_EXACT = "edge_exact"
HALO = "halo"
PART = "part"

FIELDS = {
    NODE_IDS: ("node", "[n]", "int64", "-", "global atom index; owned atoms first"),
    NODE_HOP: ("node", "[n]", "int64", "-", "hop distance from the owned set (0 = owned)"),
    NUMBERS: ("node", "[n]", "int64", "-", "atomic number (0: ghost without orbitals; -Z: ghost "
              "keeping element Z's orbitals)"),
    POSITIONS: ("node", "[n, 3]", "float64", "Angstrom", "Cartesian positions"),
    CELL: ("graph", "[3, 3]", "float64", "Angstrom", "cell vectors as rows"),
    PBC: ("graph", "[3]", "bool", "-", "periodic along each cell vector"),
    EDGE_INDEX: ("edge", "[2, m]", "int64", "-", "(sender j, receiver i) local node indices"),
    EDGE_SHIFT: ("edge", "[m, 3]", "int64", "cells", "image shift of the sender"),
    EDGE_OWNED: ("edge", "[m]", "bool", "-", "receiver is owned: the edge's label belongs here"),
    EDGE_IDS: ("edge", "[m_owned]", "int64", "-",
               "index of each owned edge in the full graph's edge list (built for every edge; "
               "part files keep the owned edges')"),
    NODE_BLOCKS: ("node", "[n_owned, u, u]", "float64", "Hartree",
                  "H_ii in the padded union basis (see Basis.union_index), owned atoms"),
    EDGE_BLOCKS: ("edge", "[m_owned, u, u]", "float64", "Hartree",
                  "H_ij in the padded union basis, owned edges (they come first)"),
    NODE_EXACT: ("node", "[n_owned]", "bool", "-",
                 "owned atom computed as in the full graph (loader; not stored)"),
    EDGE_EXACT: ("edge", "[m_owned]", "bool", "-",
                 "owned edge computed as in the full graph (loader; not stored)"),
    HALO: ("graph", "[]", "int64", "hops", "halo depth k the part was built with"),
    PART: ("graph", "[]", "int64", "-", "index of the part in its partition directory"),
}


def kind_of(key: str) -> str:
    """``"node"``, ``"edge"`` or ``"graph"`` for a known field name."""
    return FIELDS[key][0]


_OWNED = ("n_owned", "m_owned")


def _dims(key: str) -> list[str]:
    return [d.strip() for d in FIELDS[key][1].strip("[]").split(",")]


def axis_of(key: str) -> int | None:
    """The axis along which a field's atoms or edges run (``edge_index``: 1); None for a
    per-graph field."""
    if kind_of(key) == "graph":
        return None
    return next(i for i, d in enumerate(_dims(key)) if d in ("n", "m") + _OWNED)


def owned_only(key: str) -> bool:
    """True for a field that covers the owned atoms or edges only (labels, exact masks)."""
    return kind_of(key) != "graph" and _dims(key)[axis_of(key)] in _OWNED


def _take(value, index, axis: int):
    if hasattr(value, "index_select"):  # a torch tensor (this module does not import torch)
        return value.index_select(axis, index)
    return value.take(index, axis=axis)


def take(fields: dict, kind: str, index, owned=None) -> dict:
    """The fields of ``kind`` (``"node"`` or ``"edge"``) among ``fields`` (numpy arrays or
    torch tensors; names not in :data:`FIELDS` and ``None`` values are skipped) at the
    positions ``index`` along their atom or edge axis; fields of the owned atoms or edges only
    at ``owned``, which must then be given. Reorders a part's edges, for instance."""
    out = {}
    for key, value in fields.items():
        if value is None or key not in FIELDS or kind_of(key) != kind:
            continue
        where = owned if owned_only(key) else index
        if where is None:
            raise ValueError(f"{key} covers the owned {kind}s only: give owned=")
        out[key] = _take(value, where, axis_of(key))
    return out


def gather(fields: dict, nodes, edges, n_owned: int, m_owned: int) -> dict:
    """A part's share of fields of the whole structure (every atom, every graph edge), in the
    order given: node fields at the global atom ids ``nodes``, edge fields at the global edge
    ids ``edges`` (owned first; fields of owned atoms or edges only at the first ``n_owned`` or
    ``m_owned``), per-graph fields as they are."""
    out = {}
    for key, value in fields.items():
        kind = kind_of(key)
        if kind == "graph":
            out[key] = value
            continue
        index = nodes if kind == "node" else edges
        if owned_only(key):
            index = index[:n_owned if kind == "node" else m_owned]
        out[key] = _take(value, index, axis_of(key))
    return out
