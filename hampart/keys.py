"""Names of the arrays that travel between modules and into partition files.

Edge direction, stated once for the whole package: ``edge_index[0]`` is the **sender** j and
``edge_index[1]`` the **receiver** i of the message j -> i. That edge carries the block
H_ij = H[orbitals of i, orbitals of j] and its vector is

    r_ij = positions[j] + edge_shift @ cell - positions[i]      (Angstrom)

so ``edge_shift`` is the integer image shift of the sender.

Each entry of :data:`FIELDS` says ``(kind, shape, dtype, unit, meaning)``; ``kind`` is one of
``"node"``, ``"edge"``, ``"graph"`` so that slicing a partition and batching stay generic.
"""

__all__ = [
    "NODE_IDS", "NODE_HOP", "NUMBERS", "POSITIONS", "CELL", "PBC",
    "EDGE_INDEX", "EDGE_SHIFT", "EDGE_OWNED", "EDGE_IDS", "NODE_BLOCKS", "EDGE_BLOCKS",
    "HALO", "PART", "FIELDS", "kind_of",
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
    EDGE_IDS: ("edge", "[m]", "int64", "-", "index of each local edge in the full graph's edge list"),
    NODE_BLOCKS: ("node", "[n_owned, u, u]", "float64", "Hartree",
                  "H_ii in the padded union basis (see Basis.union_index), owned atoms"),
    EDGE_BLOCKS: ("edge", "[m_owned, u, u]", "float64", "Hartree",
                  "H_ij in the padded union basis, owned edges (they come first)"),
    HALO: ("graph", "[]", "int64", "hops", "halo depth k the part was built with"),
    PART: ("graph", "[]", "int64", "-", "index of the part in its partition directory"),
}


def kind_of(key: str) -> str:
    """``"node"``, ``"edge"`` or ``"graph"`` for a known field name."""
    return FIELDS[key][0]
