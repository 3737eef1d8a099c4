"""The field registry (hampart.keys): every array a part file or a batch holds is a registered
field of the registered kind, dtype and shape, and take/gather move a kind's fields alike."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hampart import keys
from hampart.basis import load_basis
from hampart.partition import exact_edges_first, partition_arrays, to_batch
from hampart.partition.loader import PartitionBatch
from hampart.testing import random_hamiltonian, random_structure


def test_registry_reads_axes_and_owned_fields():
    assert keys.axis_of(keys.EDGE_INDEX) == 1 and keys.axis_of(keys.EDGE_SHIFT) == 0
    assert keys.axis_of(keys.CELL) is None and keys.axis_of(keys.POSITIONS) == 0
    owned = {k for k in keys.FIELDS if keys.owned_only(k)}
    assert owned == {keys.NODE_BLOCKS, keys.EDGE_BLOCKS, keys.EDGE_IDS, keys.NODE_EXACT,
                     keys.EDGE_EXACT}
    assert set(keys.__all__) >= {"FIELDS", "take", "gather", "HALO", "PART"}


def test_take_moves_every_field_of_a_kind_numpy_and_torch():
    edge_index = np.array([[1, 2, 0, 2], [0, 0, 1, 1]])
    fields = {keys.EDGE_INDEX: edge_index, keys.EDGE_SHIFT: np.arange(12).reshape(4, 3),
              keys.EDGE_BLOCKS: np.arange(3 * 4).reshape(3, 2, 2).astype(float),
              keys.NUMBERS: np.array([8, 8, 72]), "not_a_field": np.zeros(1)}
    order, owned = np.array([3, 1, 0, 2]), np.array([1, 0, 2])
    out = keys.take(fields, "edge", order, owned=owned)
    assert set(out) == {keys.EDGE_INDEX, keys.EDGE_SHIFT, keys.EDGE_BLOCKS}
    assert np.array_equal(out[keys.EDGE_INDEX], edge_index[:, order])
    assert np.array_equal(out[keys.EDGE_SHIFT], fields[keys.EDGE_SHIFT][order])
    assert np.array_equal(out[keys.EDGE_BLOCKS], fields[keys.EDGE_BLOCKS][owned])
    tensors = {k: torch.as_tensor(v) for k, v in fields.items()}
    out_t = keys.take(tensors, "edge", torch.as_tensor(order), owned=torch.as_tensor(owned))
    for k in out:
        assert np.array_equal(out_t[k].numpy(), out[k])
    with pytest.raises(ValueError, match="owned"):
        keys.take(fields, "edge", order)


def _structure():
    numbers, positions, cell = random_structure(40, np.diag([10.0, 9.0, 9.5]), seed=3)
    return SimpleNamespace(numbers=numbers, positions=positions, cell=cell,
                           pbc=np.ones(3, dtype=bool), source="random")


def test_part_arrays_and_batches_hold_registered_fields_only():
    from hampart.graph import radius_graph

    s = _structure()
    basis = load_basis("SZV")
    graph = radius_graph(s.positions, s.cell, s.pbc, 4.0)
    H = random_hamiltonian(s.numbers, graph, basis)
    parts, _ = partition_arrays(s, 4.0, method="metis", parts=3, halo=2, hamiltonian=H,
                                basis=basis)
    for a in parts:
        n, m = len(a[keys.NODE_IDS]), a[keys.EDGE_INDEX].shape[1]
        sizes = {"n": n, "m": m, "n_owned": int((a[keys.NODE_HOP] == 0).sum()),
                 "m_owned": int(a[keys.EDGE_OWNED].sum())}
        assert set(a) <= set(keys.FIELDS)
        for name, value in a.items():
            kind, shape, dtype = keys.FIELDS[name][:3]
            assert value.dtype == np.dtype(dtype), name
            if kind != "graph":  # the atom or edge axis has the registered length
                dim = shape.strip("[]").split(",")[keys.axis_of(name)].strip()
                assert value.shape[keys.axis_of(name)] == sizes[dim], name
        b = to_batch(a, n_layers=1, dtype=torch.float64)
        assert set(b.fields()) <= set(keys.FIELDS)
        for name, value in b.fields().items():
            assert value.dtype == {"int64": torch.int64, "bool": torch.bool,
                                   "float64": torch.float64}[keys.FIELDS[name][2]], name
    names = {f for f in PartitionBatch.__dataclass_fields__} - {"halo", "n_layers"}
    assert names <= set(keys.FIELDS)


def test_exact_edges_first_moves_every_edge_field_alike():
    s = _structure()
    parts, _ = partition_arrays(s, 4.0, method="slab", parts=2, halo=1, axis="x")
    b = to_batch(parts[0], n_layers=1, dtype=torch.float64)
    assert not bool(b.edge_exact[:int(b.edge_exact.sum())].all())  # something to move
    moved = exact_edges_first(b)
    n_exact = int(b.edge_exact.sum())
    assert bool(moved.edge_exact[:n_exact].all()) and not bool(moved.edge_exact[n_exact:].any())
    key = lambda x: {(int(i), int(j), *map(int, sh)) for (i, j), sh  # noqa: E731
                     in zip(x.edge_index.T.tolist(), x.edge_shift)}
    assert key(moved) == key(b) and torch.equal(moved.edge_owned, b.edge_owned)
