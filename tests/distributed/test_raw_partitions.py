"""Raw partitions (halo 0, the halo ablation): they train, with a one-line warning, and the loss
counts every owned atom and every edge whose two ends are owned, computed here independently
from the full graph and the owners."""

import warnings

import numpy as np
import pytest
import torch

from hampart.distributed.trainer import TrainConfig, train
from hampart.model.io import load_model
from hampart.errors import InputWarning
from hampart.generate import generate
from hampart.graph import radius_graph
from hampart.io.dataset import load_dataset
from hampart.model.loss import block_masks_torch
from hampart.partition import load_manifest, load_partition, slice_dataset, to_batch, verify

MODEL = {"lmax": 4, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1, "layers": 1}


def test_raw_parts_train_on_owned_atoms_and_edges_inside_a_part(tmp_path):
    data = generate("hfo2", seed=0, out=tmp_path / "data", size=(2, 2, 2), interaction_radius=4.0)
    raw, _ = slice_dataset(data, rcut=4.0, method="metis", parts=3, halo=0, out=tmp_path / "raw")
    assert verify(raw)["ok"]
    manifest = load_manifest(raw)

    ds = load_dataset(data)
    s = ds.structure
    graph = radius_graph(s.positions, s.cell, s.pbc, 4.0)
    owner = np.full(s.n_atoms, -1)
    for k in range(3):
        a = load_partition(raw, k)
        assert (a["node_hop"] == 0).all() and a["edge_owned"].all()  # no virtual atom or edge
        owner[a["node_ids"]] = k
    sender, receiver = graph.edge_index
    inside = owner[sender] == owner[receiver]
    assert 0 < inside.sum() < graph.n_edges
    assert int(inside.sum()) == sum(p["n_owned_edges"] for p in manifest["parts"])
    n_orb = np.array([ds.basis.n_orbitals(int(z)) for z in s.numbers])
    count = float((n_orb ** 2).sum() + (n_orb[receiver] * n_orb[sender])[inside].sum())

    # lr so small that the saved model is the one the first epoch's loss was computed with
    config = TrainConfig(parts=str(raw), out=str(tmp_path / "run"), model=MODEL, dtype="float64",
                         lr=1e-300, epochs=1, device="cpu", log_every=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train(config)
    raw_warnings = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert len(raw_warnings) == 1 and "halo 0" in raw_warnings[0]
    assert "comparison only" in raw_warnings[0] and "\n" not in raw_warnings[0]

    model, _ = load_model(tmp_path / "run" / "model.pt", dtype=torch.float64)
    sse = sae = 0.0
    with torch.no_grad():
        for k in range(3):
            b = to_batch(load_partition(raw, k), n_layers=1, dtype=torch.float64)
            nodes, edges = model(b.numbers, b.positions, b.cell, b.edge_index, b.edge_shift)
            node_mask, edge_mask = block_masks_torch(b.numbers, b.edge_index, ds.basis)
            dn = (nodes - b.node_blocks)[node_mask]
            de = (edges - b.edge_blocks)[edge_mask]
            sse += float(dn.square().sum() + de.square().sum())
            sae += float(dn.abs().sum() + de.abs().sum())
    first = summary["first"]
    assert first["mse"] == pytest.approx(sse / count, rel=1e-9)
    assert first["mae_mEh"] == pytest.approx(1e3 * sae / count, rel=1e-9)
