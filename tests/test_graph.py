"""hampart.graph.radius_graph against ase.neighborlist.neighbor_list, and its refusals."""

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from hampart.errors import InputError
from hampart.graph import cell_heights, edge_vectors, minimum_image, radius_graph
from hampart.testing import random_structure


def random_atoms(n=60, seed=0, triclinic=True, min_dist=1.2):
    cell = np.diag([11.0, 12.0, 10.5])
    if triclinic:
        cell = cell + np.array([[0, 0, 0], [2.5, 0, 0], [1.5, -2.0, 0]])
    _, positions, cell = random_structure(n, cell, seed=seed, min_dist=min_dist)
    return positions, cell


def test_minimum_image_is_the_shortest_image():
    positions, cell = random_atoms(n=30, seed=3, triclinic=False)
    delta = positions[::2] - positions[1::2] + np.array([2, -1, 0]) @ cell
    short = minimum_image(delta, cell, [True] * 3)
    images = np.array([[a, b, c] for a in (-2, -1, 0, 1, 2) for b in (-2, -1, 0, 1, 2)
                       for c in (-2, -1, 0, 1, 2)]) @ cell
    brute = np.linalg.norm(delta[:, None] + images[None], axis=2).min(axis=1)
    assert np.allclose(np.linalg.norm(short, axis=1), brute, atol=1e-12)
    # a shift by whole cell vectors: the same point
    assert np.allclose(np.linalg.solve(cell.T, (short - delta).T).round(), np.linalg.solve(
        cell.T, (short - delta).T), atol=1e-9)
    # not periodic along z: the z image is kept
    kept = minimum_image(delta + cell[2], cell, [True, True, False])
    assert not np.allclose(kept, short)
    assert np.array_equal(minimum_image(delta, cell, [False] * 3), delta)


def ase_edges(positions, cell, pbc, rcut):
    from ase import Atoms

    atoms = Atoms("H" * len(positions), positions=positions, cell=cell, pbc=pbc)
    i, j, S, d = neighbor_list("ijSd", atoms, rcut)
    return {(int(a), int(b), *map(int, s)): float(x) for a, b, s, x in zip(i, j, S, d)}


def our_edges(graph, positions, cell):
    vec = edge_vectors(positions, cell, graph.edge_index, graph.edge_shift)
    dist = np.linalg.norm(vec, axis=1)
    j, i = graph.edge_index
    return {(int(a), int(b), *map(int, s)): float(x)
            for a, b, s, x in zip(i, j, graph.edge_shift, dist)}


@pytest.mark.parametrize("pbc", [[True, True, True], [True, False, True], [False] * 3],
                         ids=["periodic", "mixed", "open"])
@pytest.mark.parametrize("triclinic", [True, False], ids=["triclinic", "orthorhombic"])
def test_same_pairs_shifts_and_distances_as_ase(pbc, triclinic):
    positions, cell = random_atoms(triclinic=triclinic)
    rcut = 4.5
    graph = radius_graph(positions, cell if any(pbc) else np.zeros((3, 3)), pbc, rcut)
    ours = our_edges(graph, positions, cell)
    ref = ase_edges(positions, cell, pbc, rcut)
    assert len(ours) == graph.n_edges  # no duplicate edge
    assert ours.keys() == ref.keys()
    assert max(abs(ours[k] - ref[k]) for k in ref) < 1e-10
    assert graph.merged == 0 and graph.n_nodes == len(positions)
    j, i = graph.edge_index
    assert not ((i == j) & (graph.edge_shift == 0).all(1)).any()  # no on-site edge
    if not any(pbc):
        assert not graph.edge_shift.any()
    else:
        assert not graph.edge_shift[:, ~np.asarray(pbc)].any()


def test_both_directions_and_sorted_by_receiver():
    positions, cell = random_atoms(seed=1)
    graph = radius_graph(positions, cell, [True] * 3, 4.0)
    j, i = graph.edge_index
    forward = set(zip(i.tolist(), j.tolist(), map(tuple, graph.edge_shift.tolist())))
    backward = set(zip(j.tolist(), i.tolist(), map(tuple, (-graph.edge_shift).tolist())))
    assert forward == backward
    assert (np.diff(i) >= 0).all()
    assert np.array_equal(graph.in_degree(), np.bincount(i, minlength=len(positions)))


def test_refuses_second_images_naming_height_and_safe_rcut():
    positions, cell = random_atoms(n=20, seed=2)
    heights = cell_heights(cell)
    assert np.allclose(heights, [abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[1], cell[2])),
                                 abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[2], cell[0])),
                                 abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[0], cell[1]))])
    rcut = 0.5 * heights.min() + 1.0
    with pytest.raises(InputError) as err:
        radius_graph(positions, cell, [True] * 3, rcut, source="cell.xyz")
    msg = str(err.value)
    assert msg.startswith("cell.xyz:")
    assert f"{heights.min():.3f}" in msg and f"r_cut <= {0.5 * heights.min():.3f}" in msg
    assert "minimum" in msg
    # just below the safe r_cut there is nothing to refuse
    radius_graph(positions, cell, [True] * 3, 0.5 * heights.min() - 1e-6)


def test_minimum_images_merges_and_reports():
    positions, cell = random_atoms(n=20, seed=3)
    rcut = 0.5 * cell_heights(cell).min() + 2.0
    graph = radius_graph(positions, cell, [True] * 3, rcut, images="minimum")
    ref = ase_edges(positions, cell, [True] * 3, rcut)
    ours = our_edges(graph, positions, cell)
    j, i = graph.edge_index
    assert (i != j).all()  # self images dropped
    pairs = i * len(positions) + j
    assert len(np.unique(pairs)) == len(pairs)  # one edge per ordered pair
    shortest = {}
    for (a, b, *_s), d in ref.items():
        if a != b:
            shortest[(a, b)] = min(d, shortest.get((a, b), np.inf))
    assert {(a, b): d for (a, b, *_s), d in ours.items()}.keys() == shortest.keys()
    assert max(abs(d - shortest[(a, b)]) for (a, b, *_s), d in ours.items()) < 1e-10
    assert graph.merged == len(ref) - graph.n_edges > 0
    assert graph.images == "minimum"


def test_overlapping_atoms_raise():
    positions, cell = random_atoms(n=10, seed=4)
    positions = np.concatenate([positions, positions[3:4] + [0.1, 0.0, 0.0]])
    with pytest.raises(InputError, match="atoms .* are 0.100 Angstrom apart"):
        radius_graph(positions, cell, [True] * 3, 3.0, source="bad.xyz")


@pytest.mark.parametrize("cell", [np.zeros((3, 3)), np.diag([10.0, 10.0, 0.0])],
                         ids=["missing", "flat"])
def test_periodic_without_cell_raises(cell):
    positions, _ = random_atoms(n=10, seed=5)
    with pytest.raises(InputError, match="cell is missing or flat"):
        radius_graph(positions, cell, [True] * 3, 3.0)


def test_other_bad_arguments():
    positions, cell = random_atoms(n=10, seed=6)
    with pytest.raises(InputError, match="unknown images mode"):
        radius_graph(positions, cell, True, 3.0, images="all")
    with pytest.raises(InputError, match="positive r_cut"):
        radius_graph(positions, cell, True, 0.0)
    with pytest.raises(InputError, match="NaN"):
        radius_graph(np.full((2, 3), np.nan), cell, True, 3.0)


@pytest.mark.parametrize("seed", range(6))
def test_minimum_images_reverse_edges_have_negated_shifts_at_ties(seed):
    """Atoms on a grid of quarter cells: many pairs are exactly half a cell apart, where two
    images are equally short. Each pair's image is chosen once, so the reverse of j -> i with
    shift S is i -> j with shift -S, and it is still a shortest image."""
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(3.5, 5.0, 3))
    if seed % 2:
        cell[1, 0] = rng.uniform(-1.0, 1.0)  # triclinic: ties remain along single cell vectors
    grid = np.stack(np.meshgrid(*[np.arange(4) / 4] * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = grid[rng.choice(len(grid), size=12, replace=False)]
    positions = frac @ cell
    rcut = 0.5 * cell_heights(cell).max() + 0.3
    graph = radius_graph(positions, cell, [True] * 3, rcut, images="minimum")
    j, i = graph.edge_index
    n = len(positions)
    forward = {(a, b): tuple(s) for a, b, s in zip(i.tolist(), j.tolist(),
                                                    graph.edge_shift.tolist())}
    assert len(forward) == graph.n_edges and graph.n_edges % 2 == 0
    for (a, b), s in forward.items():
        assert forward[(b, a)] == tuple(-x for x in s), (a, b)
    assert (np.diff(i * n + j) > 0).all()  # sorted by receiver, then sender
    ref = ase_edges(positions, cell, [True] * 3, rcut)
    shortest = {}
    for (a, b, *_s), d in ref.items():
        if a != b:
            shortest[(a, b)] = min(d, shortest.get((a, b), np.inf))
    ours = our_edges(graph, positions, cell)
    assert {(a, b) for (a, b, *_s) in ours} == shortest.keys()
    assert max(abs(d - shortest[(a, b)]) for (a, b, *_s), d in ours.items()) < 1e-10
    assert graph.merged == len(ref) - graph.n_edges > 0


def test_minimum_images_half_cell_pair():
    """The smallest case: two atoms 2 A apart in a 4 A cubic cell."""
    graph = radius_graph(np.array([[0.0, 0, 0], [2.0, 0, 0]]), np.eye(3) * 4.0, [True] * 3, 2.5,
                         images="minimum")
    assert graph.edge_index.tolist() == [[1, 0], [0, 1]]
    assert (graph.edge_shift[0] == -graph.edge_shift[1]).all()
    assert np.allclose(np.linalg.norm(edge_vectors(np.array([[0.0, 0, 0], [2.0, 0, 0]]),
                                                   np.eye(3) * 4.0, graph.edge_index,
                                                   graph.edge_shift), axis=1), 2.0)
