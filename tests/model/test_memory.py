"""The memory law: fitted on small graphs, it predicts the saved activations of larger ones."""

import pytest
import torch

from hampart.basis import Basis
from hampart.errors import InputError
from hampart.model import HamiltonianModel
from hampart.model.memory import (GIB, HEADROOM, _random_graph, _saved_bytes, measure_memory_law,
                                  plan_chunks)

BASIS = Basis({72: (0, 0, 1, 2), 8: (0, 1)}, name="SZV")


@pytest.fixture(scope="module")
def model_and_law():
    torch.manual_seed(0)
    model = HamiltonianModel(BASIS, lmax=4, mmax=2, channels=8, ff_hidden=16, rcut=5.0)
    return model, measure_memory_law(model)


@pytest.mark.parametrize("chunk, outputs", [(None, None), (1500, None), (None, 2000),
                                             (1500, 2000)])
def test_law_extrapolates_to_a_larger_graph(model_and_law, chunk, outputs):
    model, law = model_and_law
    n, m = 300, 9000  # 6x the atoms, ~4x the edges of the fit
    graph = _random_graph(model, n, m, "cpu", torch.float32, seed=3)
    measured = _saved_bytes(model, graph, outputs, chunk or 0)
    all_outputs = _saved_bytes(model, graph, edge_chunk=chunk or 0)  # every edge's block
    predicted = law.step_bytes(n, m, chunk, outputs) / HEADROOM
    if chunk:  # a chunk's activations are made again in the backward pass, not saved in forward
        predicted -= (law.per_active_edge * chunk
                      + law.per_active_output_edge * min(chunk, outputs or m))
    assert abs(predicted - measured) < 0.05 * measured, (predicted, measured)
    if outputs:  # and fewer outputs really save memory, chunked or not: the 7000 edges
        # without blocks save what the law gives them (measured: 48.1 of 48.9 MB unchunked,
        # 2.80 of 2.80 MB in chunks of 1500); half of it fails if the outputs stop saving
        per_output = law.per_output_edge + (0 if chunk else law.per_active_output_edge)
        assert all_outputs - measured > 0.5 * (m - outputs) * per_output, (measured, all_outputs)
    if chunk:  # and chunks really save memory
        assert measured < 0.5 * _saved_bytes(model, graph, outputs)


def test_plan_fits_the_budget_or_names_the_fix(model_and_law):
    _, law = model_and_law
    n, m = 3000, 500_000
    whole = law.step_bytes(n, m) + law.fixed_bytes()
    assert plan_chunks(law, [(n, m, 200)], 2 * whole / GIB) == [None]
    budget = 0.5 * whole / GIB
    (chunk,) = plan_chunks(law, [(n, m, 200)], budget)
    assert 200 <= chunk < m
    assert law.step_bytes(n, m, chunk) + law.fixed_bytes() <= budget * GIB
    assert law.step_bytes(n, m, chunk + 1000) + law.fixed_bytes() > budget * GIB
    with pytest.raises(InputError, match="more parts"):
        plan_chunks(law, [(n, m, 200)], 0.01 * whole / GIB)
