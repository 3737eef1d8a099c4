"""The same code on CUDA as on the CPU: network (outputs and gradients, chunked too), training
and prediction agree in float64. Runs where a GPU is present (``pytest tests/test_cuda.py`` on a
GPU machine); skipped, and reported so, elsewhere. ``HAMPART_TEST_DEVICE=cpu`` compares the
CPU with itself, which checks the tests' own logic on a machine without a GPU."""

import os

import pytest
import torch

OTHER = os.environ.get("HAMPART_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(OTHER == "cuda" and not torch.cuda.is_available(),
                                reason="no CUDA device on this machine: run on a GPU machine")

KW = {"lmax": 4, "mmax": 2, "channels": 4, "ff_hidden": 8, "heads": 2, "layers": 2, "rcut": 4.0}


def _model(device, **extra):
    from hampart.basis import load_basis
    from hampart.model import HamiltonianModel

    torch.manual_seed(0)
    return HamiltonianModel(load_basis("SZV"), **KW, **extra).double().to(device)


@pytest.mark.parametrize("edge_chunk", [None, 500])
def test_network_outputs_and_gradients_match_the_cpu(edge_chunk):
    from hampart.generate import make_structure
    from hampart.graph import radius_graph

    s = make_structure("hfo2", seed=1, size=(2, 2, 2), vacancies=0.05)
    g = radius_graph(s.positions, s.cell, s.pbc, 4.0)
    results = []
    for device in ("cpu", OTHER):
        model = _model(device, edge_chunk=edge_chunk)
        t = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
        nodes, edges = model(t(s.numbers), t(s.positions), t(s.cell), t(g.edge_index),
                             t(g.edge_shift), edge_outputs=g.n_edges // 2)
        (nodes.square().sum() + edges.square().sum()).backward()
        results.append([nodes.detach().cpu(), edges.detach().cpu()]
                       + [p.grad.cpu() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)


def test_training_and_prediction_match_the_cpu(tmp_path):
    from hampart.basis import load_basis
    from hampart.distributed.trainer import TrainConfig, train
    from hampart.evaluate import predict_hamiltonian
    from hampart.generate import generate, make_structure
    from hampart.partition import slice_dataset

    data = generate("hfo2", seed=0, out=tmp_path / "data", size=(2, 2, 2), interaction_radius=4.0)
    parts, _ = slice_dataset(data, rcut=4.0, method="metis", parts=3, halo=2,
                             out=tmp_path / "parts")
    model_kw = {k: v for k, v in KW.items() if k != "rcut"}
    summaries = [train(TrainConfig(parts=str(parts), out=str(tmp_path / f"run-{k}"),
                                   model=model_kw, dtype="float64", lr=1e-2, epochs=4,
                                   device=device))
                 for k, device in enumerate(("cpu", OTHER))]
    assert summaries[0]["last"]["mse"] == pytest.approx(summaries[1]["last"]["mse"], rel=1e-8)
    s = make_structure("hfo2", seed=3, size=(3, 2, 2))
    basis = load_basis("SZV")
    H = [predict_hamiltonian(_model(device), basis, s, 2, 4.0, max_atoms=50, device=device,
                             dtype=torch.float64, max_gib=0.05)[0] for device in ("cpu", OTHER)]
    assert abs(H[0] - H[1]).max() < 1e-10
    assert abs(H[1] - H[1].T).max() == 0.0
