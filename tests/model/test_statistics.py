"""Label statistics: sums over partitions equal the whole graph's; the scales and the node-head
shift they set are the labels' spread, RMS and mean; models from before head scales still load."""

import numpy as np
import pytest
import torch

from hampart.basis import Basis, load_basis
from hampart.blocks import extract_blocks
from hampart.model.io import load_model, save_model
from hampart.errors import InputError
from hampart.generate import SyntheticParams, make_structure, synthetic_hamiltonian
from hampart.model import HamiltonianModel
from hampart.model.statistics import LabelSums, label_sums
from hampart.partition import partition_arrays, to_batch

RCUT = 3.6
HF, O = 72, 8


@pytest.fixture(scope="module")
def data():
    s = make_structure("hfo2", seed=5, size=(3, 2, 2), vacancies=0.05)  # 144 atoms, ghosts
    basis = load_basis("SZV")
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=RCUT))
    parts, info = partition_arrays(s, RCUT, method="metis", parts=3, halo=1, hamiltonian=H,
                                   basis=basis)
    g = info["graph"]
    nodes, edges, _ = extract_blocks(H, s.numbers, basis, g)
    return s, basis, g, torch.as_tensor(nodes), torch.as_tensor(edges), parts


def _full_sums(data):
    s, basis, g, nodes, edges, _ = data
    return label_sums(basis, torch.as_tensor(s.numbers), torch.as_tensor(g.edge_index), nodes,
                      edges)


def test_partition_sums_equal_full_graph_sums(data):
    basis, parts = data[1], data[5]
    total = LabelSums.zeros(basis)
    for a in parts:
        b = to_batch(a, 1, dtype=torch.float64)
        total = total + label_sums(basis, b.numbers, b.edge_index, b.node_blocks, b.edge_blocks)
    full = _full_sums(data)
    torch.testing.assert_close(total.flat(), full.flat(), rtol=1e-12, atol=1e-14)
    s = data[0]
    assert int(full.node_count.sum()) == int((s.numbers > 0).sum())  # ghosts are not counted


def test_scales_are_the_labels_spread_and_rms(data):
    s, basis, g, nodes, edges, _ = data
    stats = _full_sums(data)
    spread, rms = stats.node_spread(basis), stats.edge_rms()
    k = {z: i for i, z in enumerate(stats.species)}
    deviations = []
    for z in (HF, O):
        idx = torch.as_tensor(basis.union_index(z))
        own = nodes[s.numbers == z][:, idx][:, :, idx].numpy()
        deviations.append(((own - own.mean(0)) ** 2).ravel())
        assert float(spread[k[z]]) == pytest.approx(np.sqrt(deviations[-1].mean()), rel=1e-9)
    # the node heads' scale pools every species' entries
    assert stats.node_scale(basis) == pytest.approx(np.sqrt(np.concatenate(deviations).mean()),
                                                    rel=1e-9)
    zi, zj = s.numbers[g.edge_index[1]], s.numbers[g.edge_index[0]]
    pooled = []
    for a, b in ((HF, O), (O, HF), (O, O), (HF, HF)):
        sel = (zi == a) & (zj == b)
        rows, cols = torch.as_tensor(basis.union_index(a)), torch.as_tensor(basis.union_index(b))
        block = edges[sel][:, rows][:, :, cols].numpy().ravel()
        pooled.append(block)
        assert float(rms[k[a], k[b]]) == pytest.approx(np.sqrt((block ** 2).mean()), rel=1e-9)
    assert stats.edge_scale() == pytest.approx(np.sqrt((np.concatenate(pooled) ** 2).mean()),
                                               rel=1e-9)
    # a pair of mostly distant atoms has small blocks: pooling keeps its head's scale up
    assert float(rms[k[HF], k[HF]]) < 0.5 * stats.edge_scale()
    assert LabelSums.zeros(basis).edge_scale() == 1.0  # nothing to scale by: 1, not 0 or NaN


def test_node_bias_is_the_species_mean_invariant_part(data):
    s, basis, g, nodes, edges, _ = data
    torch.manual_seed(0)
    model = HamiltonianModel(basis, channels=8, ff_hidden=16, rcut=RCUT).double()
    model.set_label_statistics(_full_sums(data))
    with torch.no_grad():
        for head in model.node_heads.values():
            for w in head.weight:
                w.zero_()
        pred, _ = model(torch.as_tensor(s.numbers), torch.as_tensor(s.positions),
                        torch.as_tensor(s.cell), torch.as_tensor(g.edge_index),
                        torch.as_tensor(g.edge_shift))
    for z in (HF, O):
        mean = nodes[s.numbers == z].mean(0)
        got = pred[s.numbers == z]
        s0 = int(basis.union_index(z)[0])  # s-s entries are pure L = 0; of p-p only the trace
        torch.testing.assert_close(got[:, s0, s0], mean[s0, s0].expand(got.shape[0]))
        local_p = [1, 2, 3] if z == O else [2, 3, 4]  # O: s p; Hf: s s p d
        p = torch.as_tensor(basis.union_index(z)[local_p])
        got, mean = got[:, p][:, :, p], mean[p][:, p]
        torch.testing.assert_close(got.diagonal(dim1=1, dim2=2).sum(-1),
                                   mean.trace().expand(got.shape[0]))
        off = got - torch.diag_embed(got.diagonal(dim1=1, dim2=2))
        assert float(off.abs().max()) < 1e-12  # no L = 2 part without weights


def test_statistics_for_another_basis_are_refused(data):
    model = HamiltonianModel(load_basis("SZV"), channels=8, ff_hidden=16, rcut=RCUT)
    other = LabelSums.zeros(Basis({HF: (0, 0, 1, 2), O: (0, 1)}, name="HfO only"))
    with pytest.raises(InputError, match="label statistics"):
        model.set_label_statistics(other)


def test_model_files_without_head_scales_load_with_scale_one(tmp_path, data):
    basis = data[1]
    from hampart.model.io import BEFORE_OPTIONS

    # a file of that time: written before the neighbour sums and the degree embedding existed
    model = HamiltonianModel(basis, channels=8, ff_hidden=16, rcut=RCUT, **BEFORE_OPTIONS)
    model.set_label_statistics(_full_sums(data))
    path = tmp_path / "model.pt"
    save_model(path, model, {"channels": 8, "ff_hidden": 16, "rcut": RCUT}, basis)
    loaded, _ = load_model(path)
    assert float(loaded.node_heads[str(HF)].scale) == float(model.node_heads[str(HF)].scale) != 1.0
    assert float(loaded.edge_heads[f"{HF}-{HF}"].scale) == \
        float(model.edge_heads[f"{O}-{HF}"].scale)

    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items()
                             if not k.endswith(".scale")}
    torch.save(payload, path)
    old, _ = load_model(path)
    assert all(float(h.scale) == 1.0 for h in old.node_heads.values())

    payload["state_dict"].pop(next(iter(payload["state_dict"])))  # a weight missing: refused
    torch.save(payload, path)
    with pytest.raises(InputError, match="model.pt"):
        load_model(path)


def test_model_files_are_written_atomically_and_the_old_import_path_still_works(tmp_path, data):
    """save_model leaves no temporary beside the file and replaces an old file whole; the
    functions are also reachable where they used to live (hampart.distributed.trainer)."""
    from hampart.distributed import trainer
    from hampart.model import io

    assert trainer.save_model is io.save_model and trainer.load_model is io.load_model
    basis = data[1]
    model = HamiltonianModel(basis, channels=8, ff_hidden=16, rcut=RCUT)
    path = tmp_path / "model.pt"
    path.write_text("an older file")
    save_model(path, model, {"channels": 8, "ff_hidden": 16, "rcut": RCUT}, basis)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    loaded, payload = load_model(path)
    assert payload["model"]["onsite_channels"] == 16 and payload["model"]["degree_embedding"]
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                 model.state_dict().values()))
