"""``hampart.evaluate.evaluate`` (and ``hampart evaluate``) with overlap matrices, electron
counts and the gap, on small datasets made with the synthetic generator plus a positive definite
S (the real CP2K data are not in CI)."""

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from hampart.cli import main
from hampart.errors import InputError, InputWarning
from hampart.evaluate import evaluate
from hampart.evaluate.commands import EvaluateConfig, run_evaluate
from hampart.evaluate.metrics import HARTREE_EV
from hampart.evaluate.spectrum import solve
from hampart.generate import generate
from hampart.io.csr import read_matrix, write_matrix


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, synthetic_overlap):
    """``(orthogonal synthetic dataset, "DFT-like" dataset with S.npz and electrons)``, and
    a perturbed prediction."""
    root = tmp_path_factory.mktemp("overlap")
    plain = generate("si", seed=0, out=root / "plain", size=(2, 2, 2), interaction_radius=4.0)
    dft = generate("si", seed=0, out=root / "dft", size=(2, 2, 2), interaction_radius=4.0)
    H = read_matrix(root / "dft" / "H.npz")
    meta_file = root / "dft" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta.pop("generator")  # as CP2K data: the basis is not declared orthogonal
    meta["electrons"] = 256  # 64 Si x 4 valence electrons
    meta_file.write_text(json.dumps(meta))
    S = synthetic_overlap(H)
    rng = np.random.default_rng(0)
    write_matrix(root / "dft" / "S.npz", S)
    noisy = H.tocsr(copy=True)
    noisy.data += rng.normal(scale=2e-3, size=noisy.nnz)
    noisy = ((noisy + noisy.T) * 0.5).tocsr()
    write_matrix(root / "pred.npz", noisy)
    return plain, dft, H, S, noisy, root


def _strict(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        return evaluate(*args, **kwargs)


def test_the_datasets_S_is_found_and_its_own_H_has_no_error(datasets):
    _, dft, H, S, _, _ = datasets
    report = _strict(f"{dft}/H.npz", dft, rcut=4.0)
    assert report["overlap"] == f"{dft}/S.npz" and report["eigenvalue_problem"] == "H c = E S c"
    for key in ("node_mae_mEh", "edge_mae_mEh", "total_mae_meV", "eig_mae_meV",
                "eig_l1_percent", "gap_error_meV"):
        assert report[key] == 0.0, key
    homo, lumo = solve(H, S).values[[127, 128]]
    assert report["electrons"] == 256 and report["n_eigenvalues"] == H.shape[0]
    assert report["reference_gap_eV"] == pytest.approx(HARTREE_EV * (lumo - homo), rel=1e-12)
    assert report["reference_homo_eV"] == pytest.approx(HARTREE_EV * homo, rel=1e-12)


def test_perturbed_prediction_errors_follow_the_formulas(datasets, tmp_path):
    _, dft, H, S, noisy, root = datasets
    out = tmp_path / "report.json"
    assert run_evaluate(EvaluateConfig(str(root / "pred.npz"), str(dft), rcut=4.0, json=str(out),
                                       plot=str(tmp_path / "report.png"))) == 0
    report = json.loads(out.read_text())
    ref, pred = solve(H, S).values, solve(noisy, S).values
    assert report["eig_l1_percent"] == pytest.approx(
        100 * np.abs(pred - ref).sum() / np.abs(ref).sum(), rel=1e-9)
    assert report["eig_mae_meV"] == pytest.approx(1e3 * HARTREE_EV * np.abs(pred - ref).mean(),
                                                  rel=1e-9)
    gap = HARTREE_EV * ((pred[128] - pred[127]) - (ref[128] - ref[127]))
    assert report["gap_error_meV"] == pytest.approx(1e3 * gap, rel=1e-9)
    assert report["node_mae_mEh"] > 0 and report["edge_mae_mEh"] > 0
    assert (tmp_path / "report.png").stat().st_size > 20_000
    # forcing the sparse solver gives the same gap, from a window around it
    sparse = evaluate(str(root / "pred.npz"), dft, rcut=4.0, solver="sparse",
                                     eigs=20)
    assert sparse["n_eigenvalues"] <= 20 and "shift-invert" in sparse["eigenvalue_solver"]
    assert sparse["gap_error_meV"] == pytest.approx(report["gap_error_meV"], abs=1e-6)


def test_overlap_warnings_and_explicit_choices(datasets, tmp_path):
    plain, dft, H, S, _, root = datasets
    # the synthetic generator's data are orthogonal: no warning, no gap without electrons
    report = _strict(f"{plain}/H.npz", plain, rcut=4.0)
    assert report["overlap"].startswith("identity") and report["eigenvalue_problem"] == "H c = E c"
    assert report["gap"].startswith("skipped: electron count unknown")
    report = _strict(f"{plain}/H.npz", plain, rcut=4.0, electrons=256)
    assert report["gap_error_meV"] == 0.0
    # DFT-like data without S: warned, since eigenvalues of H alone are not energies
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("structure.xyz", "H.npz", "basis.yaml", "meta.json"):
        (bare / name).write_bytes((root / "dft" / name).read_bytes())
    with pytest.warns(InputWarning, match="not the band energies"):
        report = evaluate(str(bare / "H.npz"), str(bare), rcut=4.0)
    assert report["eigenvalue_problem"] == "H c = E c"
    report = _strict(str(bare / "H.npz"), str(bare), rcut=4.0,
                                    overlap=f"{dft}/S.npz")
    assert report["overlap"] == f"{dft}/S.npz" and report["eigenvalue_problem"] == "H c = E S c"
    _strict(str(bare / "H.npz"), str(bare), rcut=4.0, overlap="identity")


def test_an_overlap_of_the_wrong_size_is_named_with_both_sizes(datasets, tmp_path, capsys):
    _, dft, H, _, _, _ = datasets
    write_matrix(tmp_path / "S_small.npz", sp.identity(12, format="csr"))
    with pytest.raises(InputError) as e:
        evaluate(f"{dft}/H.npz", dft, rcut=4.0,
                                overlap=str(tmp_path / "S_small.npz"))
    message = str(e.value)
    assert "S_small.npz" in message and "H.npz" in message
    assert "12 orbitals" in message and f"has {H.shape[0]}" in message
    assert main(["evaluate", f"{dft}/H.npz", "--reference", str(dft), "--rcut", "4",
                 "--overlap", str(tmp_path / "S_small.npz")]) == 2
    assert "S_small.npz" in capsys.readouterr().err
    with pytest.raises(InputError, match="fill 300 states, but the basis has 256"):
        evaluate(f"{dft}/H.npz", dft, rcut=4.0, electrons=600)
