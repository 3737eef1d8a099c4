import dataclasses
import json

import pytest
import scipy.sparse as sp
import torch

from hampart.basis import load_basis
from hampart.blocks import assemble_blocks
from hampart.cli import main
from hampart.model.io import save_model
from hampart.evaluate import (block_errors, eigenvalue_errors, eigenvalues, evaluate, predict_file,
                              predict_hamiltonian)
from hampart.evaluate.commands import EvaluateConfig, PredictConfig, run_evaluate, run_predict
from hampart.errors import InputError, InputWarning
from hampart.evaluate.metrics import HARTREE_EV
from hampart.evaluate.predict import check_predicted_for
from hampart.generate import generate, make_structure
from hampart.graph import radius_graph
from hampart.io.csr import read_matrix, write_matrix
from hampart.io.dataset import load_dataset
from hampart.model import HamiltonianModel

KW = {"lmax": 4, "mmax": 2, "channels": 4, "ff_hidden": 8, "heads": 1, "layers": 2, "rcut": 4.0}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HamiltonianModel(load_basis("SZV"), **KW).double()


def test_streamed_slabs_equal_one_pass_and_are_exactly_symmetric(model):
    s = make_structure("hfo2", seed=3, size=(3, 2, 2), vacancies=0.05)
    basis = load_basis("SZV")
    whole, info1 = predict_hamiltonian(model, basis, s, 2, 4.0, max_atoms=10_000,
                                       dtype=torch.float64)
    sliced, info3 = predict_hamiltonian(model, basis, s, 2, 4.0, max_atoms=50, dtype=torch.float64,
                                        group_atoms=7)  # rows written 7 atoms at a time
    assert info1["parts"] == 1 and info3["parts"] == 3
    assert abs(whole - sliced).max() < 1e-12
    assert abs(sliced - sliced.T).max() == 0.0
    assert sliced.shape[0] == basis.orbital_offsets(s.numbers)[-1]
    # the same as the full graph's blocks assembled as (P + P^T) / 2, entry for entry
    g = radius_graph(s.positions, s.cell, s.pbc, 4.0)
    t = torch.as_tensor
    with torch.no_grad():
        nb, eb = model(t(s.numbers), t(s.positions), t(s.cell), t(g.edge_index), t(g.edge_shift))
    direct = assemble_blocks(nb, eb, s.numbers, basis, g.edge_index, symmetrize=True)
    assert abs(direct - sliced).max() < 1e-12
    assert sliced.has_canonical_format and sliced.nnz >= direct.nnz


def test_minimum_images_in_a_small_cell_stream_like_the_full_graph(model):
    """Cell shorter than 2 r_cut: pairs are merged to their minimum image; slabs still give
    the full graph's matrix, exactly symmetric."""
    s = make_structure("hfo2", seed=4, size=(2, 1, 1))  # 24 atoms, 5.2 A across
    basis = load_basis("SZV")
    with pytest.raises(InputError):
        predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64)
    g = radius_graph(s.positions, s.cell, s.pbc, 4.0, images="minimum")
    t = torch.as_tensor
    with torch.no_grad():
        nb, eb = model(t(s.numbers), t(s.positions), t(s.cell), t(g.edge_index), t(g.edge_shift))
    direct = assemble_blocks(nb, eb, s.numbers, basis, g.edge_index, symmetrize=True)
    H, info = predict_hamiltonian(model, basis, s, 2, 4.0, images="minimum", max_atoms=7,
                                  dtype=torch.float64, group_atoms=3)
    assert info["parts"] == 4
    assert abs(H - direct).max() < 1e-12 and abs(H - H.T).max() == 0.0


def test_memory_budget_chunks_edges_without_changing_the_prediction(model):
    s = make_structure("hfo2", seed=3, size=(2, 2, 2))
    basis = load_basis("SZV")
    free, info = predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64, max_gib=100)
    assert info["edge_chunks"] == [None]
    assert info["parts"] == 1  # the whole structure fits: no slab computes a halo
    tight, info = predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64, max_gib=0.05,
                                      max_atoms=10_000)  # one slab, in chunks
    (chunk,) = info["edge_chunks"]
    assert chunk is not None and chunk < info["largest_part_edges"]
    assert abs(free - tight).max() < 1e-12
    assert model.edge_chunk is None  # the model is left as it was
    sliced, info = predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64,
                                       max_gib=0.05)  # slabs sized by the budget instead
    assert info["parts"] > 1 and info["edge_chunks"] == [None]
    assert abs(free - sliced).max() < 1e-12
    # nothing fits: the slicing search's error, with prediction's own fix
    with pytest.raises(InputError, match="no number of parts fits.*--max-atoms"):
        predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64, max_gib=1e-5)


def test_cpu_chunks_reuse_freed_memory_without_changing_the_prediction(model, monkeypatch):
    import hampart.model.memory as memory

    # the widest per-edge tensor, (lmax+1)^2 x 2C in the model's dtype, fits a reused block
    width = (model.lmax + 1) ** 2 * 2 * model.channels * 8  # float64
    assert memory.cpu_edge_chunk(model) == memory.REUSED_BLOCK_BYTES // width
    s = make_structure("hfo2", seed=3, size=(2, 2, 2))
    basis = load_basis("SZV")
    whole, info = predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64)
    assert info["edge_chunks"] == [None]  # the whole graph is below the cap
    monkeypatch.setattr(memory, "REUSED_BLOCK_BYTES", 1500 * width)
    capped, info = predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64)
    assert info["edge_chunks"] == [1500] and info["largest_part_edges"] > 1500
    assert abs(whole - capped).max() < 1e-12
    # a budget whose chunk would be the whole graph is capped too
    capped, info = predict_hamiltonian(model, basis, s, 2, 4.0, dtype=torch.float64, max_gib=100)
    assert info["edge_chunks"] == [1500]


def test_metrics_on_known_errors():
    s = make_structure("si", seed=0, size=(2, 2, 2))
    basis = load_basis("SZV")
    graph = radius_graph(s.positions, s.cell, s.pbc, 4.0)
    from hampart.generate import SyntheticParams, synthetic_hamiltonian

    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=4.0))
    zero = block_errors(H, H, s.numbers, basis, graph)
    assert zero["node_mae_mEh"] == zero["edge_mae_mEh"] == zero["total_mae_meV"] == 0.0
    shifted = H + 1e-3 * sp.eye(H.shape[0])  # 1 mEh on every node-block diagonal element
    err = block_errors(shifted, H, s.numbers, basis, graph)
    assert err["edge_mae_mEh"] == 0.0
    assert abs(err["node_mae_mEh"] - 1.0 / 4) < 1e-9  # 4 of every 16 node elements are diagonal
    assert err["node_diagonal_shift_mEh"] == pytest.approx(1.0, rel=1e-9)
    assert zero["node_diagonal_shift_mEh"] == 0.0
    ev = eigenvalue_errors(eigenvalues(shifted), eigenvalues(H))
    assert abs(ev["eig_mae_meV"] - 1e3 * HARTREE_EV * 1e-3) < 1e-6
    assert ev["eig_shift_meV"] == pytest.approx(ev["eig_mae_meV"], rel=1e-9)
    assert ev["eig_mae_aligned_meV"] < 1e-9


@pytest.mark.parametrize("rows_per_chunk", [None, 29])
def test_a_shift_of_the_potential_zero_is_fitted_as_d_times_s(rows_per_chunk):
    """A reference whose potential zero lies d higher is H + d S: hoppings move by d S_ij
    too. With S, block_errors fits d over the elements within r_cut and gives the errors
    without it; what is not d S (noise) stays."""
    import numpy as np

    from hampart.generate import SyntheticParams, synthetic_hamiltonian

    s = make_structure("si", seed=1, size=(2, 2, 2))
    basis = load_basis("SZV")
    graph = radius_graph(s.positions, s.cell, s.pbc, 4.0)
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=4.0))
    S = sp.csr_matrix(sp.eye(H.shape[0]) + 0.3 * abs(H) / abs(H).max())  # overlap-like
    ref = H + 2e-3 * S
    err = block_errors(H, ref, s.numbers, basis, graph, rows_per_chunk=rows_per_chunk, overlap=S)
    assert err["potential_shift_mEh"] == pytest.approx(-2.0, rel=1e-9)  # pred - ref
    assert err["node_mae_shifted_mEh"] < 1e-9 and err["edge_mae_shifted_mEh"] < 1e-9
    assert err["edge_mae_mEh"] > 1e-3  # the shift moved the hoppings as well (0.006 here)
    noise = sp.random(*H.shape, density=0.05, random_state=np.random.default_rng(0)) * 1e-4
    noisy = block_errors(H + noise + noise.T, ref, s.numbers, basis, graph, overlap=S)
    assert noisy["potential_shift_mEh"] == pytest.approx(-2.0, abs=0.05)
    assert 0 < noisy["edge_mae_shifted_mEh"] < noisy["edge_mae_mEh"]
    assert "potential_shift_mEh" not in block_errors(H, ref, s.numbers, basis, graph)


@pytest.mark.parametrize("rows_per_chunk", [None, 37])
def test_sparse_block_errors_equal_the_padded_blocks(rows_per_chunk):
    """The row-chunked sparse errors equal those of the extracted padded blocks, with ghosts,
    entries beyond r_cut in the reference and noise in the prediction."""
    import numpy as np

    from hampart.blocks import block_masks, extract_blocks
    from hampart.generate import SyntheticParams, synthetic_hamiltonian

    s = make_structure("hfo2", seed=2, size=(2, 2, 2), vacancies=0.05)
    basis = load_basis("SZV")
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=5.0))
    graph = radius_graph(s.positions, s.cell, s.pbc, 4.0)  # the reference reaches beyond
    rng = np.random.default_rng(0)
    P = H.tocsr(copy=True)
    P.data += rng.normal(scale=1e-3, size=P.nnz)
    got = block_errors(P, H, s.numbers, basis, graph, rows_per_chunk=rows_per_chunk)
    node_p, edge_p, _ = extract_blocks(P, s.numbers, basis, graph)
    node_r, edge_r, info = extract_blocks(H, s.numbers, basis, graph)
    node_m, edge_m = block_masks(s.numbers, basis, graph.edge_index)
    dn, de = (node_p - node_r)[node_m], (edge_p - edge_r)[edge_m]
    both = np.concatenate([dn, de])
    want = {"node_mae_mEh": 1e3 * np.abs(dn).mean(), "edge_mae_mEh": 1e3 * np.abs(de).mean(),
            "total_mae_meV": 1e3 * HARTREE_EV * np.abs(both).mean(),
            "node_rmse_mEh": 1e3 * np.sqrt((dn ** 2).mean()),
            "edge_rmse_mEh": 1e3 * np.sqrt((de ** 2).mean()),
            "max_abs_error_mEh": 1e3 * np.abs(both).max(),
            "reference_outside_rcut_max_abs_mEh": 1e3 * info["outside_max_abs"]}
    assert info["outside_max_abs"] > 0
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-9 * abs(value), key
    assert (got["n_node_elements"], got["n_edge_elements"]) == (node_m.sum(), edge_m.sum())


def test_predict_and_evaluate_commands(model, tmp_path, capsys):
    """``run`` of predict and evaluate with their configs; the command line's exit status and
    messages for bad input at the end."""
    data = generate("hfo2", seed=5, out=tmp_path / "test", size=(2, 2, 2), interaction_radius=4.0)
    save_model(tmp_path / "model.pt", model, KW, load_basis("SZV"))
    assert run_predict(PredictConfig(str(tmp_path / "model.pt"), str(data),
                                     str(tmp_path / "H_pred.npz"), dtype="float64")) == 0
    H = read_matrix(tmp_path / "H_pred.npz")
    assert H.shape == load_dataset(data).hamiltonian.shape
    capsys.readouterr()
    assert run_evaluate(EvaluateConfig(str(tmp_path / "H_pred.npz"), str(data), rcut=4.0,
                                       json=True, plot=str(tmp_path / "eval.png"))) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_eigenvalues"] == H.shape[0] and report["node_mae_mEh"] > 0
    assert (tmp_path / "eval.png").stat().st_size > 1000
    # in slabs, with their progress, and as CP2K text: the same matrix
    assert run_predict(PredictConfig(str(tmp_path / "model.pt"), str(data),
                                     str(tmp_path / "H_pred.csr"), dtype="float64",
                                     max_atoms=40)) == 0
    out = capsys.readouterr().out
    assert "slab 1/3: 32 atoms" in out and "slab 3/3" in out and "3 slab(s)" in out
    assert abs(read_matrix(tmp_path / "H_pred.csr") - H).max() < 1e-12
    # a bare matrix needs its structure and basis; a matrix of the wrong size is named
    assert main(["evaluate", str(tmp_path / "H_pred.npz"), "--reference",
                 str(tmp_path / "H_pred.npz")]) == 2
    write_matrix(tmp_path / "small.npz", sp.eye(5).tocsr())
    assert main(["evaluate", str(tmp_path / "small.npz"), "--reference", str(data)]) == 2
    assert "small.npz" in capsys.readouterr().err
    for flag, value in (("--max-atoms", "0"), ("--max-gib", "-1")):
        assert main(["predict", str(tmp_path / "model.pt"), str(data), "--out",
                     str(tmp_path / "bad.npz"), flag, value]) == 2
        assert flag in capsys.readouterr().err and not (tmp_path / "bad.npz").exists()


def test_evaluate_refuses_a_reference_of_another_structure(model, tmp_path, capsys):
    """Two cells of one composition have equal orbital counts: only the structure stored with
    the prediction tells them apart."""
    a = generate("hfo2", seed=5, out=tmp_path / "a", size=(2, 2, 2), interaction_radius=4.0)
    b = generate("hfo2", seed=6, out=tmp_path / "b", size=(2, 2, 2), interaction_radius=4.0)
    save_model(tmp_path / "model.pt", model, KW, load_basis("SZV"))
    pred = tmp_path / "H_a.npz"
    predict_file(tmp_path / "model.pt", a, out=pred)
    assert sp.load_npz(pred).shape == read_matrix(pred).shape  # still scipy's format
    with pytest.raises(InputError, match="other positions") as err:
        evaluate(pred, b, rcut=4.0)  # same species order, other places
    assert "H_a.npz" in str(err.value)
    assert evaluate(pred, a, rcut=4.0)["node_mae_mEh"] > 0
    # atoms moved by a lattice vector are the same structure; by 0.01 A they are not
    s = load_dataset(a).structure
    check_predicted_for(pred, dataclasses.replace(s, positions=s.positions + s.cell[0]))
    moved = s.positions.copy()
    moved[7, 1] += 0.01
    with pytest.raises(InputError, match="0.01"):
        check_predicted_for(pred, dataclasses.replace(s, positions=moved))


def test_predict_warns_about_elements_the_model_never_saw(model, tmp_path):
    data = generate("si", seed=0, out=tmp_path / "si", size=(2, 2, 2), interaction_radius=4.0)
    summary = {"label_statistics": {"atoms": {"O": 64, "Hf": 32}}}
    save_model(tmp_path / "model.pt", model, KW, load_basis("SZV"),
               extra={"summary": json.dumps(summary)})
    # it runs, and says what it cannot know (the command line prints the warning)
    with pytest.warns(InputWarning, match="trained on Hf, O only; the blocks of Si"):
        assert run_predict(PredictConfig(str(tmp_path / "model.pt"), str(data),
                                         str(tmp_path / "H.npz"))) == 0


def test_plot_sample_of_edge_elements_reads_the_sparse_matrices():
    import numpy as np

    from hampart.blocks import block_masks, extract_blocks
    from hampart.evaluate.metrics import sample_edge_elements
    from hampart.generate import SyntheticParams, synthetic_hamiltonian

    s = make_structure("hfo2", seed=2, size=(2, 2, 2), vacancies=0.05)
    basis = load_basis("SZV")
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=4.0))
    g = radius_graph(s.positions, s.cell, s.pbc, 4.0)
    P = H.tocsr(copy=True)
    P.data *= 1.1
    x, y = sample_edge_elements(H, P, s.numbers, basis, g)  # small: every edge element
    _, edge_blocks, _ = extract_blocks(H, s.numbers, basis, g)
    _, edge_mask = block_masks(s.numbers, basis, g.edge_index)
    assert np.array_equal(np.sort(x), np.sort(edge_blocks[edge_mask]))
    assert np.allclose(y, 1.1 * x)
    x, y = sample_edge_elements(H, P, s.numbers, basis, g, max_points=5000)
    assert 4000 < len(x) < 6000 and np.allclose(y, 1.1 * x)


def test_node_errors_by_species_see_a_vacancy_apart():
    import numpy as np

    from hampart.evaluate.metrics import node_errors_by_species
    from hampart.generate import SyntheticParams, synthetic_hamiltonian

    s = make_structure("hfo2", seed=0, size=2, vacancies=0.0625, vacancy_orbitals=True)
    basis = load_basis("SZV").with_ghosts(s.numbers)
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=4.0))
    offsets = basis.orbital_offsets(s.numbers)
    ghost_rows = np.concatenate([np.arange(offsets[k], offsets[k + 1])
                                 for k in np.flatnonzero(s.numbers < 0)])
    bump = np.zeros(H.shape[0])
    bump[ghost_rows] = 2e-3  # 2 mEh on every diagonal element of the 4 vacancies only
    err = node_errors_by_species(H + sp.diags(bump), H, s.numbers, basis)
    assert set(err) == {"Hf", "O", "O_ghost"}
    assert err["Hf"] == err["O"] == 0.0
    assert err["O_ghost"] == pytest.approx(2.0 / 4, rel=1e-12)  # 4 of 16 elements per O block
    assert node_errors_by_species(H, H, s.numbers, basis)["O_ghost"] == 0.0
