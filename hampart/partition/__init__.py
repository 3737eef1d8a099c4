"""Partitions with halos (DESIGN.md §3): owners (``owners``), halo BFS (``halo``), the arrays
of each part (``build``), the number of parts for a memory budget (``plan``), the input key
(``key``), the on-disk store (``store``, format version 1, docs/partitions.md), their
composition ``slicing.slice_dataset``, and the training loader with exact-output masks.

Edge direction: ``edge_index[0]`` = sender j, ``edge_index[1]`` = receiver i; an edge is owned
by the part owning its receiver. Positions in Angstrom, labels in Hartree.
"""

from .halo import EDGE_IDS, build_partition, build_partitions, incoming_csr, partition_stats
from .inspect import format_inspection, inspect_partitions
from .owners import check_owner, metis_owners, owners_from_array, slab_owners
from .build import partition_arrays
from .slicing import slice_dataset
from .store import FORMAT, VERSION, load_manifest, load_partition, verify

__all__ = [
    "slab_owners", "metis_owners", "owners_from_array", "check_owner",
    "build_partition", "build_partitions", "incoming_csr", "partition_stats", "EDGE_IDS",
    "slice_dataset", "partition_arrays", "load_manifest", "load_partition", "verify",
    "FORMAT", "VERSION",
    "PartitionBatch", "exact_masks", "to_batch", "load_batch", "exact_edges_first",
    "inspect_partitions", "format_inspection",
]

_LOADER = ("PartitionBatch", "exact_masks", "to_batch", "load_batch", "exact_edges_first")


def __getattr__(name):
    # the loader needs torch; slicing and reuse do not, and must stay fast to start
    if name in _LOADER:
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

