"""Owners: every atom owned once, slabs respect the periodic wrap, METIS balances edges."""

import numpy as np
import pytest

from hampart.errors import InputError
from hampart.graph import radius_graph
from hampart.partition.owners import metis_owners, owners_from_array, slab_owners

from partition_helpers import random_graph, random_structure


@pytest.mark.parametrize("balance", ["width", "atoms"])
@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_slab_covers_every_atom_once(axis, balance):
    _, positions, cell = random_structure(90, seed=1)
    owner = slab_owners(positions, cell, 3, axis=axis, balance=balance)
    assert owner.shape == (90,) and owner.dtype == np.int64
    assert set(np.unique(owner)) == {0, 1, 2}
    if balance == "atoms":
        assert np.bincount(owner).tolist() == [30, 30, 30]


def test_slab_uses_wrapped_fractional_coordinates():
    cell = np.diag([10.0, 5.0, 5.0])
    # fractions 0.1, 0.6 and, outside the cell, -0.3 (= 0.7) and 1.2 (= 0.2)
    positions = np.array([[1.0, 1, 1], [6.0, 1, 1], [-3.0, 1, 1], [12.0, 1, 1]])
    assert slab_owners(positions, cell, 2, axis="x").tolist() == [0, 1, 1, 0]
    # a skewed cell: the slab follows the fractional coordinate, not Cartesian x
    skew = np.array([[10.0, 0, 0], [5.0, 5.0, 0], [0, 0, 5.0]])
    frac = np.array([[0.1, 0.9, 0.5], [0.6, 0.1, 0.5]])
    assert slab_owners(frac @ skew, skew, 2, axis="x").tolist() == [0, 1]


def test_slab_equal_width_refuses_empty_slab():
    cell = np.diag([10.0, 5.0, 5.0])
    positions = np.array([[1.0, 1, 1], [1.5, 1, 1], [2.0, 2, 2]])
    with pytest.raises(InputError, match="own no atom"):
        slab_owners(positions, cell, 2, axis="x")
    assert slab_owners(positions, cell, 2, axis="x", balance="atoms").tolist() == [0, 0, 1]


@pytest.mark.parametrize("parts", [0, -1, 2.5, 91])
def test_bad_part_counts(parts):
    _, positions, cell = random_structure(90, seed=1)
    with pytest.raises(InputError):
        slab_owners(positions, cell, parts)


def test_unknown_axis_and_balance():
    _, positions, cell = random_structure(20, seed=1)
    with pytest.raises(InputError, match="axis"):
        slab_owners(positions, cell, 2, axis="w")
    with pytest.raises(InputError, match="balance"):
        slab_owners(positions, cell, 2, balance="edges")


def test_metis_balanced_and_deterministic():
    _, _, _, graph = random_graph(160, rcut=4.0, seed=2, lengths=(16.0, 12.0, 12.0))
    owner = metis_owners(graph, 4, seed=0)
    assert owner.shape == (160,) and set(np.unique(owner)) == {0, 1, 2, 3}
    in_degree = graph.in_degree()
    edges_per_part = np.bincount(owner, weights=in_degree, minlength=4)
    assert edges_per_part.max() / edges_per_part.mean() < 1.25
    assert np.array_equal(owner, metis_owners(graph, 4, seed=0))
    # a real cut: fewer edges cross than with a random assignment of the same sizes
    j, i = graph.edge_index
    cut = (owner[j] != owner[i]).mean()
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(owner)
    assert cut < 0.6 * (shuffled[j] != shuffled[i]).mean()


def test_metis_disconnected_graph_and_images():
    # two far-apart clusters in a large box: METIS still fills every part
    rng = np.random.default_rng(3)
    a = np.stack(np.meshgrid(*[np.arange(3) * 2.0] * 3), -1).reshape(-1, 3)
    positions = np.concatenate([a, a + 30.0]) + rng.normal(0, 0.05, (54, 3))
    cell = np.diag([60.0, 60.0, 60.0])
    graph = radius_graph(positions, cell, [True] * 3, 2.5)
    owner = metis_owners(graph, 2)
    assert set(np.unique(owner)) == {0, 1}
    assert np.bincount(owner).tolist() == [27, 27]
    # a small cell where pairs meet through several images (merged to the minimum image)
    _, positions, cell = random_structure(30, lengths=(7.0, 7.0, 7.0), seed=4)
    graph = radius_graph(positions, cell, [True] * 3, 5.0, images="minimum")
    owner = metis_owners(graph, 3, seed=7)
    assert set(np.unique(owner)) == {0, 1, 2}


def test_metis_bad_parts():
    _, _, _, graph = random_graph(20, rcut=4.0, seed=2)
    for parts in (0, 21):
        with pytest.raises(InputError):
            metis_owners(graph, parts)
    assert (metis_owners(graph, 1) == 0).all()


def test_owners_from_array_validates():
    assert owners_from_array([0, 1, 1, 0]).tolist() == [0, 1, 1, 0]
    with pytest.raises(InputError, match="own no atom"):
        owners_from_array([0, 2, 2, 0])
    with pytest.raises(InputError):
        owners_from_array([0, -1, 1])
    with pytest.raises(InputError):
        owners_from_array([[0, 1]])
    with pytest.raises(InputError):
        owners_from_array([0.5, 1.0])
    with pytest.raises(InputError, match="span"):
        owners_from_array([0, 1, 3], parts=3)


def test_metis_on_a_hand_made_graph_with_duplicates_and_one_way_edges():
    from hampart.graph import Graph

    # a ring of 8 atoms given one way only, one edge twice (two images) and a self image
    j = np.array([0, 1, 2, 3, 4, 5, 6, 7, 7, 3])
    i = np.array([1, 2, 3, 4, 5, 6, 7, 0, 0, 3])
    order = np.lexsort((j, i))
    graph = Graph(edge_index=np.stack([j[order], i[order]]), edge_shift=np.zeros((10, 3), np.int64),
                  n_nodes=8, rcut=1.0)
    owner = metis_owners(graph, 2)
    assert np.bincount(owner).tolist() == [4, 4]
    # a ring cut in two halves: exactly 2 of its 8 links cross
    assert (owner[np.arange(8)] != owner[(np.arange(8) + 1) % 8]).sum() == 2
