"""Partition store: labels equal the full H's blocks, format v1 on disk, reuse by key, refusals,
corruption and version checks, nothing written on bad input."""

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from hampart.basis import Basis
from hampart.errors import InputError
from hampart.partition import (inspect_partitions, load_manifest, load_partition,
                               partition_arrays, slice_dataset, verify)
from hampart.partition.plot import plot_partitions

from partition_helpers import random_graph, random_hamiltonian

RCUT = 4.0
BASIS = Basis({72: (0, 0, 1, 2), 8: (0, 1)}, name="SZV-HfO")


@pytest.fixture(scope="module")
def dataset():
    numbers, positions, cell, graph = random_graph(90, rcut=RCUT, seed=6)
    numbers[7] = 0  # a ghost atom: in the graph, owns no orbitals
    H = random_hamiltonian(numbers, graph, BASIS)
    structure = SimpleNamespace(numbers=numbers, positions=positions, cell=cell,
                                pbc=np.ones(3, dtype=bool), source="random")
    return SimpleNamespace(structure=structure, hamiltonian=H, basis=BASIS, path=None, meta={})


@pytest.mark.parametrize("method", ["slab", "metis"])
def test_labels_equal_blocks_of_full_h(dataset, method):
    s, H = dataset.structure, dataset.hamiltonian.toarray()
    parts, info = partition_arrays(s, RCUT, method=method, parts=3, halo=2,
                                   hamiltonian=dataset.hamiltonian, basis=BASIS)
    offsets = BASIS.orbital_offsets(s.numbers)
    rng = np.random.default_rng(0)
    n_checked = 0
    for a in parts:
        n_owned, m_owned = len(a["node_blocks"]), len(a["edge_blocks"])
        assert n_owned == (a["node_hop"] == 0).sum() and m_owned == a["edge_owned"].sum()
        for e in rng.choice(m_owned, 15, replace=False):
            j, i = a["node_ids"][a["edge_index"][:, e]]
            zi, zj = s.numbers[i], s.numbers[j]
            if zi == 0 or zj == 0:
                assert not a["edge_blocks"][e].any()
                continue
            block = a["edge_blocks"][e][np.ix_(BASIS.union_index(zi), BASIS.union_index(zj))]
            expect = H[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]]
            assert np.array_equal(block, expect)
            n_checked += 1
        for v in range(0, n_owned, 7):
            i = a["node_ids"][v]
            if s.numbers[i]:
                idx = BASIS.union_index(s.numbers[i])
                assert np.array_equal(a["node_blocks"][v][np.ix_(idx, idx)],
                                      H[offsets[i]:offsets[i + 1], offsets[i]:offsets[i + 1]])
    assert n_checked > 20
    # every graph edge's label lives in exactly one part
    assert sum(len(a["edge_blocks"]) for a in parts) == info["graph"].n_edges


def test_slice_writes_format_v1(dataset, tmp_path):
    out, reused = slice_dataset(dataset, RCUT, "metis", 3, 2, tmp_path / "p")
    assert not reused and sorted(os.listdir(out)) == ["manifest.json", "part-00000.npz",
                                                      "part-00001.npz", "part-00002.npz"]
    m = load_manifest(out)
    assert m["format"] == "hampart-partitions" and m["version"] == 1 and len(m["key"]) == 64
    assert m["source"]["n_atoms"] == 90 and m["params"]["halo"] == 2
    assert m["params"]["basis"] == BASIS.to_dict() and m["params"]["axis"] is None
    for field in ("edge_cut", "replication", "node_imbalance", "edge_imbalance", "seconds"):
        assert field in m["stats"]
    assert m["stats"]["replication"] > 1.0  # halo 2 replicates edges around the cuts
    with np.load(out / "part-00001.npz", allow_pickle=False) as z:
        assert z["edge_index"].dtype == np.int64 and z["edge_owned"].dtype == bool
        assert z["edge_blocks"].shape == (m["parts"][1]["n_owned_edges"], 10, 10)
        assert z["positions"].shape == (m["parts"][1]["n_nodes"], 3)
    assert verify(out)["ok"]
    report = inspect_partitions(out, verify=True)
    assert report["verify"]["ok"] and report["totals"]["parts"] == 3
    assert sum(p["n_owned"] for p in report["parts"]) == 90


def test_reuse_by_key_and_refusals(dataset, tmp_path):
    out, reused = slice_dataset(dataset, RCUT, "slab", 2, 1, tmp_path / "p")
    mtimes = {f: os.stat(out / f).st_mtime_ns for f in os.listdir(out)}
    out2, reused = slice_dataset(dataset, RCUT, "slab", 2, 1, tmp_path / "p")
    assert reused and {f: os.stat(out / f).st_mtime_ns for f in os.listdir(out)} == mtimes
    # other parameters into the same directory: refused, untouched
    with pytest.raises(InputError, match="--force"):
        slice_dataset(dataset, RCUT, "slab", 2, 2, tmp_path / "p")
    assert {f: os.stat(out / f).st_mtime_ns for f in os.listdir(out)} == mtimes
    # other inputs: refused too
    other = SimpleNamespace(**vars(dataset))
    other.hamiltonian = dataset.hamiltonian * 2.0
    with pytest.raises(InputError, match="other inputs"):
        slice_dataset(other, RCUT, "slab", 2, 1, tmp_path / "p")
    # replace=True rewrites it
    _, reused = slice_dataset(dataset, RCUT, "slab", 2, 2, tmp_path / "p", replace=True)
    assert not reused and load_manifest(out)["params"]["halo"] == 2
    # a directory that is not ours is never deleted, even with replace
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="not a partition directory"):
        slice_dataset(dataset, RCUT, "slab", 2, 1, tmp_path / "mine", replace=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_corrupt_part_and_versions(dataset, tmp_path):
    out, _ = slice_dataset(dataset, RCUT, "slab", 2, 1, tmp_path / "p")
    part = out / "part-00001.npz"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    load_partition(out, 0)
    with pytest.raises(InputError, match="corrupt or edited"):
        load_partition(out, 1)
    report = verify(out)
    assert not report["ok"] and report["parts"][0]["ok"] and not report["parts"][1]["ok"]
    manifest = json.loads((out / "manifest.json").read_text())
    for version, hint in ((0, "re-run hampart slice"), (2, "upgrade")):
        manifest["version"] = version
        (out / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(InputError, match=hint):
            load_manifest(out)
    with pytest.raises(InputError, match="not a partition directory"):
        load_manifest(tmp_path)


@pytest.mark.parametrize("kwargs,match", [
    (dict(parts=91), "at most 90"),
    (dict(parts=0), "parts"),
    (dict(halo=-1), "halo"),
    (dict(method="kway"), "method"),
    (dict(method="slab", axis="w"), "axis"),
    (dict(method="metis", axis="x"), "axis"),
    (dict(rcut=-2.0), "r_cut"),
    (dict(images="all"), "images"),
])
def test_bad_arguments_write_nothing(dataset, tmp_path, kwargs, match):
    args = dict(rcut=RCUT, method="metis", parts=2, halo=1) | kwargs
    with pytest.raises(InputError, match=match):
        slice_dataset(dataset, out=tmp_path / "p", **args)
    assert os.listdir(tmp_path) == []


def test_out_is_a_file(dataset, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        slice_dataset(dataset, RCUT, "slab", 2, 1, tmp_path / "f")
    assert (tmp_path / "f").read_text() == "x"


def test_custom_owner_and_plot(dataset, tmp_path):
    owner = np.arange(90) % 3
    out, _ = slice_dataset(dataset, RCUT, "custom", 3, 1, tmp_path / "c", owner=owner)
    a = load_partition(out, 2)
    assert (owner[a["node_ids"][a["node_hop"] == 0]] == 2).all()
    with pytest.raises(InputError, match="own no atom"):
        slice_dataset(dataset, RCUT, "custom", 4, 1, tmp_path / "d", owner=owner)
    png = plot_partitions(out, tmp_path / "parts.png")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_verify_finds_edges_owned_twice_even_with_a_matching_hash(dataset, tmp_path):
    from hampart.partition.store import sha256_file

    out, _ = slice_dataset(dataset, RCUT, "slab", 2, 1, tmp_path / "p")
    with np.load(out / "part-00000.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["edge_ids"][0] = arrays["edge_ids"][1]  # one edge claimed twice, another by nobody
    np.savez(out / "part-00000.npz", **arrays)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["parts"][0]["sha256"] = sha256_file(out / "part-00000.npz")
    (out / "manifest.json").write_text(json.dumps(manifest))
    report = verify(out)
    assert not report["ok"] and "cover" in report["problems"][0]


def _edges_gib(basis, model, dtype):
    """A stand-in memory law for the auto tests: 1 GiB per 1,000 stored edges."""
    return lambda sizes: sizes["n_edges"] / 1000.0


def test_auto_parts_are_the_fewest_that_fit(dataset, tmp_path):
    graph_edges = partition_arrays(dataset.structure, RCUT, parts=1, halo=1)[1]["graph"].n_edges
    budget = {"max_gib": 0.45 * graph_edges / 1000.0}
    out, reused = slice_dataset(dataset, RCUT, "metis", "auto", 1, tmp_path / "auto",
                                budget=budget, part_memory=_edges_gib)
    m = load_manifest(out)
    count = m["params"]["parts"]
    assert not reused and len(m["parts"]) == count >= 3
    assert max(p["n_edges"] for p in m["parts"]) / 1000.0 <= budget["max_gib"]
    assert m["params"]["budget"]["largest_part_gib"] <= budget["max_gib"]
    fewer, _ = partition_arrays(dataset.structure, RCUT, "metis", count - 1, halo=1)
    assert max(a["edge_index"].shape[1] for a in fewer) / 1000.0 > budget["max_gib"]
    assert slice_dataset(dataset, RCUT, "metis", "auto", 1, tmp_path / "auto", budget=budget,
                         part_memory=_edges_gib)[1]  # the same request is reused
    # a generous budget gives the requested minimum
    out, _ = slice_dataset(dataset, RCUT, "slab", "auto", 1, tmp_path / "min", axis="x",
                           budget={"max_gib": 1e6, "min_parts": 3}, part_memory=_edges_gib)
    assert load_manifest(out)["params"]["parts"] == 3


def test_auto_parts_refusals_write_nothing(dataset, tmp_path):
    with pytest.raises(InputError, match="no number of parts fits"):
        slice_dataset(dataset, RCUT, "metis", "auto", 2, tmp_path / "tiny",
                      budget={"max_gib": 1e-3}, part_memory=_edges_gib)
    with pytest.raises(InputError, match="auto needs a memory budget"):
        slice_dataset(dataset, RCUT, "metis", "auto", 1, tmp_path / "nobudget")
    with pytest.raises(InputError, match="shallower than the model's 2 layers"):
        slice_dataset(dataset, RCUT, "metis", "auto", 1, tmp_path / "deep",
                      budget={"max_gib": 1.0, "model": {"layers": 2}}, part_memory=_edges_gib)
    # partitioning does not import the model: the caller hands it the memory law
    with pytest.raises(InputError, match="hampart.model.memory.part_memory"):
        slice_dataset(dataset, RCUT, "metis", "auto", 1, tmp_path / "nolaw",
                      budget={"max_gib": 1.0})
    assert os.listdir(tmp_path) == []
