"""A vacancy as CP2K makes it: a ghost atom keeping the Si orbitals (GHOST kind), on real CP2K
output committed under tests/data/cp2k-si8-ghost (the cp2k-si8 structure with atom 0 a ghost,
SZV, made by ``scripts/make_cp2k_test_data.py --only si8-ghost``), through labelling, blocks,
slicing, training, prediction, evaluation, inspection and export; and one run of CP2K itself
when it is installed."""

import json
import os
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import eigh

from hampart.blocks import assemble_blocks, block_masks, extract_blocks
from hampart.dft import CP2KSettings, make_input, read_cp2k_run
from hampart.errors import InputError
from hampart.graph import radius_graph
from hampart.io.csr import read_matrix, write_csr
from hampart.io.dataset import load_dataset

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
GHOST = os.path.join(DATA, "cp2k-si8-ghost")
SI8 = os.path.join(DATA, "cp2k-si8")
HAVE_DATA = os.path.isfile("/usr/share/cp2k/BASIS_MOLOPT")
HAVE_CP2K = shutil.which("cp2k.psmp") is not None and HAVE_DATA
MODEL = {"lmax": 2, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1, "layers": 1}


def ghost_dataset():
    return load_dataset(GHOST)


def test_ghost_rows_are_in_h_and_s():
    ds = ghost_dataset()
    s, H = ds.structure, ds.hamiltonian.toarray()
    S = read_matrix(os.path.join(GHOST, "S.npz")).toarray()
    assert s.numbers.tolist() == [-14] + [14] * 7
    assert ds.basis.ghosts == (14,) and ds.basis.species == [14, -14]
    assert H.shape == S.shape == (32, 32) and ds.meta["orbitals"] == 32
    assert ds.meta["electrons"] == 28 and ds.meta["scf_converged"]  # 7 x 4: the ghost has none
    # S depends on the basis functions and positions only: the ghost's are Si's, at the same
    # places as in cp2k-si8, so S is the one of the full crystal
    S_full = read_matrix(os.path.join(SI8, "S.npz")).toarray()
    assert np.abs(S - S_full).max() < 1e-12
    assert (np.abs(S[:4, :4]) > 0.1).sum() >= 4 and np.abs(S[:4, 4:]).max() > 0.1
    # H: the ghost's on-site and hopping blocks are there, and differ from a Si atom's (no
    # potential at the vacancy: its s level lies ~0.5 Eh above Si's)
    H_full = load_dataset(SI8).hamiltonian.toarray()
    assert np.abs(np.diag(H)[:4]).min() > 0.1
    assert np.abs(H[:4, 4:]).max() > 0.01
    assert H[0, 0] - H_full[0, 0] > 0.3
    e = eigh(H, S, eigvals_only=True)
    assert np.isfinite(e).all() and e[14] - e[13] > 0  # 14 occupied states


def test_input_has_a_ghost_kind():
    text = open(os.path.join(GHOST, "cp2k", "hampart.inp")).read()
    kind = text[text.index("&KIND Si_ghost"):]
    kind = kind[:kind.index("&END KIND")]
    assert "ELEMENT Si" in kind and "GHOST" in kind and "POTENTIAL" not in kind
    assert text.count("Si_ghost ") == 1  # one ghost coordinate line


@pytest.mark.skipif(not HAVE_DATA, reason="CP2K's data files not installed")
def test_input_is_regenerated_bit_for_bit_from_the_structure():
    ds = ghost_dataset()
    s = ds.structure
    made = make_input(s.numbers, s.positions, s.cell, s.pbc, CP2KSettings())
    assert made.sha256 == ds.meta["input_sha256"] and made.electrons == 28


def test_blocks_round_trip_is_exact_with_the_ghost():
    ds = ghost_dataset()
    s = ds.structure
    g = radius_graph(s.positions, s.cell, s.pbc, rcut=5.0, images="minimum")
    for M in (ds.hamiltonian, read_matrix(os.path.join(GHOST, "S.npz"))):
        node, edge, info = extract_blocks(M, s.numbers, ds.basis, g)
        assert info["outside_count"] == 0
        assert np.abs(node[0]).sum() > 0  # the ghost's node block
        node_mask, edge_mask = block_masks(s.numbers, ds.basis, g.edge_index)
        assert node_mask[0].sum() == 16 and not node[~node_mask].any()
        to_ghost = g.edge_index[1] == 0
        assert np.abs(edge[to_ghost]).sum((1, 2)).min() > 0
        back = assemble_blocks(node, edge, s.numbers, ds.basis, g.edge_index)
        assert (back != M).nnz == 0


def test_read_cp2k_run_keeps_the_ghost_rows(tmp_path):
    ds = ghost_dataset()
    d = tmp_path / "run"
    d.mkdir()
    write_csr(d / "hampart-KS_SPIN_1-1_0.csr", ds.hamiltonian, triangle="full")
    write_csr(d / "hampart-S_SPIN_1-1_0.csr", read_matrix(os.path.join(GHOST, "S.npz")),
              triangle="full")
    shutil.copy(os.path.join(GHOST, "cp2k", "hampart.log"), d / "hampart.log")
    H, S, run, _ = read_cp2k_run(d)
    assert H.shape == (32, 32) and run.converged and run.electrons == 28
    assert abs(H - ds.hamiltonian).max() == 0 and S[0, 0] > 0.9


def test_structure_with_a_ghost_of_an_unknown_element_is_named(tmp_path):
    from hampart.io.structure import Structure, write_structure

    s = ghost_dataset().structure
    numbers = s.numbers.copy()
    numbers[1] = -8  # a ghost of O: not in the dataset's Si basis
    write_structure(tmp_path / "s.xyz", Structure(numbers, s.positions, s.cell, s.pbc))
    with pytest.raises(InputError, match=r"s.xyz.*O_ghost not in basis 'SZV-MOLOPT-SR-GTH'"):
        load_dataset(tmp_path / "s.xyz", basis=os.path.join(GHOST, "basis.yaml"))


def test_slice_train_predict_evaluate_inspect_export(tmp_path, capsys):
    """End to end on the ghost dataset (minimum images: the cell is 5.43 A)."""
    import sisl

    from hampart.distributed.trainer import TrainConfig, load_model, save_model, train
    from hampart.evaluate.commands import (EvaluateConfig, ExportConfig, PredictConfig,
                                           run_evaluate, run_export, run_predict)
    from hampart.evaluate.export import to_sisl
    from hampart.inspect import inspect_dataset, inspect_model
    from hampart.model import HamiltonianModel
    from hampart.partition import slice_dataset

    parts, _ = slice_dataset(GHOST, rcut=4.0, method="slab", parts=2, halo=2, axis="x",
                             images="minimum", out=tmp_path / "parts")
    manifest = json.load(open(parts / "manifest.json"))
    assert manifest["params"]["basis"]["ghosts"] == ["Si"]
    assert sum(p["n_owned"] for p in manifest["parts"]) == 8
    part = np.load(parts / manifest["parts"][0]["file"], allow_pickle=False)
    assert -14 in part["numbers"].tolist() or -14 in np.load(
        parts / manifest["parts"][1]["file"], allow_pickle=False)["numbers"].tolist()

    summary = train(TrainConfig(parts=str(parts), out=str(tmp_path / "run"), model=MODEL,
                                dtype="float64", lr=1e-2, epochs=4, device="cpu", log_every=1))
    assert summary["epochs_run"] == 4
    log = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    losses = [r["mse"] for r in log if "mse" in r]
    assert losses[-1] < losses[0]
    model, payload = load_model(tmp_path / "run" / "model.pt")
    assert model.basis.ghosts == (14,) and "-14" in model.node_heads
    assert payload["basis"]["ghosts"] == ["Si"]
    stats = json.loads(payload["info"]["summary"])["label_statistics"]
    assert stats["atoms"] == {"Si": 7, "Si_ghost": 1}

    assert run_predict(PredictConfig(str(tmp_path / "run" / "model.pt"), GHOST,
                                     str(tmp_path / "H.npz"), images="minimum",
                                     dtype="float64")) == 0
    H = read_matrix(tmp_path / "H.npz")
    assert H.shape == (32, 32) and abs(H - H.T).max() == 0
    assert np.abs(H[:4, :4].toarray()).max() > 0 and np.abs(H[:4, 4:].toarray()).max() > 0
    capsys.readouterr()
    assert run_evaluate(EvaluateConfig(str(tmp_path / "H.npz"), GHOST, rcut=4.0,
                                       images="minimum", json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_eigenvalues"] == 32 and 0 < report["node_mae_mEh"] < 1e4
    # per species, weighted by their node elements (7 Si and one ghost, 16 each), the node MAE
    by = report["node_mae_by_species_mEh"]
    assert set(by) == {"Si", "Si_ghost"}
    assert (7 * by["Si"] + by["Si_ghost"]) / 8 == pytest.approx(report["node_mae_mEh"], rel=1e-12)

    info = inspect_dataset(GHOST, rcut=4.0, images="minimum")
    assert info["species"] == {"Si_ghost": 1, "Si": 7} and info["n_ghosts"] == 1
    assert info["n_orbitals"] == 32 and info["orbitals_per_species"]["Si_ghost"] == 4
    assert inspect_model(tmp_path / "run" / "model.pt")["shells"] == {"Si": [0, 1],
                                                                      "Si_ghost": [0, 1]}

    assert run_export(ExportConfig(str(tmp_path / "H.npz"), GHOST,
                                   str(tmp_path / "si8.TSHS"))) == 0
    ds = ghost_dataset()
    sis = to_sisl(H, read_matrix(os.path.join(GHOST, "S.npz")), ds.structure, ds.basis)
    atoms = sis.geometry.atoms
    assert sis.no == 32 and sis.geometry.na == 8
    assert isinstance(atoms[0], sisl.AtomGhost) and atoms[0].Z == 14 and atoms[0].no == 4
    assert not isinstance(atoms[1], sisl.AtomGhost)
    assert (tmp_path / "si8.TSHS").stat().st_size > 1000

    # a model without the ghost species names it instead of predicting nonsense
    kwargs = dict(MODEL, rcut=4.0)
    plain = HamiltonianModel(load_dataset(SI8).basis, **kwargs)
    save_model(tmp_path / "plain.pt", plain, kwargs, load_dataset(SI8).basis)
    with pytest.raises(InputError, match=r"plain.pt: was trained on Si only, not on Si_ghost \(in .*cp2k-si8-ghost"):
        run_predict(PredictConfig(str(tmp_path / "plain.pt"), GHOST, str(tmp_path / "x.npz"),
                                  images="minimum", dtype="float64"))
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.skipif(not HAVE_CP2K, reason="cp2k.psmp not installed")
def test_cp2k_labels_a_structure_with_a_ghost(tmp_path):
    """Two Si sites of the primitive cell, one a ghost: seconds on one core."""
    from ase.build import bulk

    from hampart.generate.commands import LabelConfig, run_label
    from hampart.io.structure import Structure, write_structure

    a = bulk("Si", "diamond", 5.431)
    pos = a.positions + [[0, 0, 0], [0.05, -0.03, 0.02]]
    write_structure(tmp_path / "si1v.xyz", Structure([14, -14], pos, a.cell.array, True))
    assert run_label(LabelConfig(str(tmp_path / "si1v.xyz"), str(tmp_path / "out"), dft="cp2k",
                                 cores=1)) == 0
    ds = load_dataset(tmp_path / "out")
    assert ds.structure.numbers.tolist() == [14, -14] and ds.basis.ghosts == (14,)
    assert ds.hamiltonian.shape == (8, 8) and ds.meta["electrons"] == 4
    S = read_matrix(tmp_path / "out" / "S.npz")
    d = S.diagonal().reshape(2, 4)  # the same functions on both sites: the same image sums
    assert np.abs(d - d[0]).max() < 1e-10
    H = ds.hamiltonian.toarray()
    assert np.abs(H[4:, 4:]).max() > 0.01 and np.abs(H[:4, 4:]).max() > 0.01
    assert H[4, 4] > H[0, 0]  # no potential at the ghost: its s level lies higher
    assert sp.issparse(ds.hamiltonian)


def test_structures_with_and_without_the_ghost_train_one_model(tmp_path):
    from hampart.distributed.trainer import TrainConfig, load_model, train
    from hampart.partition import slice_dataset

    dirs = [str(slice_dataset(d, rcut=4.0, method="slab", parts=1, halo=1, axis="x",
                              images="minimum", out=tmp_path / name)[0])
            for d, name in ((SI8, "full"), (GHOST, "ghost"))]
    # the crystal alone trains no head for the ghost species: validating on the ghost structure
    # is refused (an untrained head would be judged), naming the species
    with pytest.raises(InputError, match="validation data has Si_ghost, the model is built "
                                         "for Si only"):
        train(TrainConfig(parts=dirs[0], validation=dirs[1], out=str(tmp_path / "a"),
                          model=MODEL, dtype="float64", epochs=1, device="cpu"))
    assert not (tmp_path / "a").exists()
    summary = train(TrainConfig(parts=dirs, out=str(tmp_path / "b"), model=MODEL,
                                dtype="float64", epochs=1, device="cpu"))
    assert summary["epochs_run"] == 1
    model, payload = load_model(tmp_path / "b" / "model.pt")
    assert model.basis.species == [14, -14] and model.elements == [14, -14]
    assert json.loads(payload["info"]["summary"])["label_statistics"]["atoms"] == {
        "Si": 15, "Si_ghost": 1}
