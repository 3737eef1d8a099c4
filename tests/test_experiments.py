"""The partitioning experiments (examples/ablation_halo.py, examples/slice_sweep.py,
benchmarks/bench_scaling.py, all on hampart.experiments) in their --quick form on real CP2K
data: tests/data/cp2k-si64 (two 64-atom rattled Si cells, SZV-MOLOPT-SR-GTH, PBE; a trains,
b is the unseen test structure with S). Epochs are cut further to keep CI short."""

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "cp2k-si64"
PNG = b"\x89PNG\r\n\x1a\n"


def _script(relative):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(out, name):
    table = (out / f"{name}.md").read_text()
    report = json.loads((out / f"{name}.json").read_text())
    assert (out / f"{name}.png").read_bytes()[:8] == PNG
    env = report["environment"]
    assert env["torch"] and env["python"] and "git_commit" in env and env["cpu_count"] >= 1
    return table, report


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    script = _script("examples/ablation_halo.py")
    argv = ["--data", str(DATA / "a"), "--test", str(DATA / "b"), "--out", str(out), "--quick",
            "--seeds", "0", "1", "--epochs", "20"]
    summary = script.main(argv)
    return out, argv, script, summary


def test_ablation_raw_partitions_are_clearly_worse_on_real_data(ablation):
    out, _, _, summary = ablation
    table, report = _outputs(out, "ablation_halo")
    assert set(summary) == {"raw", "augmented", "exact"}
    assert report["settings"]["seeds"] == [0, 1] and report["settings"]["epochs"] == 20
    assert len(report["runs"]) == 6 and {r["seed"] for r in report["runs"]} == {0, 1}
    for name, row in summary.items():
        assert row["seeds"] == [0, 1], name
        for key in ("node_mae_mEh", "edge_mae_mEh", "eig_l1_pct"):
            mean, spread = row[key]
            assert math.isfinite(mean) and mean > 0 and spread >= 0, (name, key)
    raw, aug, exact = summary["raw"], summary["augmented"], summary["exact"]
    # raw parts miss the neighbours across the cut: their on-site energies are learnt from
    # incomplete environments (on this data about 7x worse) and cross-cut edges never
    assert raw["node_mae_mEh"][0] > 3 * aug["node_mae_mEh"][0], (raw, aug)
    assert raw["edge_mae_mEh"][0] > 1.05 * aug["edge_mae_mEh"][0], (raw, aug)
    assert raw["eig_l1_pct"][0] > 1.5 * aug["eig_l1_pct"][0], (raw, aug)
    assert aug["better_than_raw_pct"]["node_mae_mEh"] > 60
    # the same edges are trained raw and augmented (both ends owned); exact trains all of them
    assert raw["trained_edge_fraction"] == aug["trained_edge_fraction"] < 1
    assert exact["trained_edge_fraction"] == 1
    assert "| raw | 0 | 0,1 |" in table and "| exact | 2 | 0,1 |" in table and "lower error than raw" in table


def test_ablation_rerun_reuses_finished_runs(ablation, capsys):
    out, argv, script, summary = ablation
    again = script.main(argv + ["--cells", "raw"])
    assert "raw seed 0: reusing the finished run" in capsys.readouterr().out
    assert again["raw"]["node_mae_mEh"] == pytest.approx(summary["raw"]["node_mae_mEh"])


def test_slice_sweep_exact_halo_trains_as_the_whole_graph(tmp_path):
    out = tmp_path / "sweep"
    rows = _script("examples/slice_sweep.py").main(
        ["--data", str(DATA / "a"), "--test", str(DATA / "b"), "--out", str(out), "--quick",
         "--parts", "1", "2", "--methods", "metis", "--epochs", "8"])
    table, report = _outputs(out, "slice_sweep")
    by = {r["cell"]: r for r in rows}
    assert set(by) == {"whole", "metis2-halo1", "metis2-halo2"}
    whole, aug, exact = by["whole"], by["metis2-halo1"], by["metis2-halo2"]
    n_edges = whole["n_edges"]
    assert whole["trained_edges"] == exact["trained_edges"] == n_edges > aug["trained_edges"]
    # halo L stores each edge once; halo L + 1 replicates edges around the cut
    assert aug["stored_edges"] == n_edges < exact["stored_edges"]
    # halo L + 1: the loss is the full-graph loss, so training follows the whole graph's
    for key in ("node_mae_mEh", "edge_mae_mEh", "train_mae_last_mEh"):
        assert exact[key] == pytest.approx(whole[key], rel=1e-3), key
    for r in rows:
        assert r["epoch_seconds_median"] > 0 and 0 <= r["converged_epoch"] < 8
    assert len(report["runs"][0]["train_mae_mEh"]) == 8 and "whole graph" in table
    # a second seed: seed 0's run is reused, the row gives mean and spread over both
    two = _script("examples/slice_sweep.py").main(
        ["--data", str(DATA / "a"), "--test", str(DATA / "b"), "--out", str(out), "--quick",
         "--parts", "1", "--methods", "metis", "--epochs", "8", "--seeds", "0", "1"])
    table, report = _outputs(out, "slice_sweep")
    (both,) = two
    runs = [r for r in report["runs"] if r["parts"] == 1]
    assert both["seeds"] == [0, 1] == sorted(r["seed"] for r in runs)
    assert [r["reused"] for r in sorted(runs, key=lambda r: r["seed"])] == [True, False]
    seed1 = next(r for r in runs if r["seed"] == 1)
    assert both["node_mae_mEh"] == pytest.approx((whole["node_mae_mEh"]
                                                  + seed1["node_mae_mEh"]) / 2)
    assert both["edge_mae_mEh_spread"] > 0 and "| whole graph | - | 0,1 |" in table
    assert " +- " in table and "metis2" not in table  # only the slicings asked for


def test_bench_scaling_times_and_memory(tmp_path, monkeypatch):
    # the benchmark trains in fresh processes: they must import this checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    out = tmp_path / "bench"
    records = _script("benchmarks/bench_scaling.py").main(
        ["--data", str(DATA / "a"), "--out", str(out), "--quick", "--parts", "1", "2",
         "--repeats", "2"])
    table, report = _outputs(out, "bench_scaling")
    assert [r["parts"] for r in records] == [1, 2] and report["settings"]["repeats"] == 2
    for r in records:
        assert r["epochs_timed"] == 2 and r["ranks"] == 1 and r["halo"] == 2
        assert 0 < r["epoch_seconds_min"] <= r["epoch_seconds_median"] <= r["epoch_seconds_max"]
        assert 0 <= r["rss_growth_gib"] < r["rss_peak_gib"] < 8
    one, two = records
    assert two["stored_edges"] > one["stored_edges"] == one["n_edges"]
    assert "| 1 | 1 |" in table and "| 2 | 1 |" in table


def test_a_test_structure_without_overlap_is_refused_before_any_work(tmp_path):
    from hampart.errors import InputError

    script = _script("examples/ablation_halo.py")
    with pytest.raises(InputError, match="S.npz"):
        script.main(["--data", str(DATA / "a"), "--test", str(DATA / "a"),
                     "--out", str(tmp_path / "out")])
    with pytest.raises(InputError, match="not a dataset directory"):
        script.main(["--data", str(tmp_path / "missing"), "--test", str(DATA / "b"),
                     "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_accuracy_real_trains_one_model_on_several_cells(tmp_path):
    # each training cell is sliced alike and the records name them all
    script = _script("benchmarks/accuracy_real.py")
    script.main(["--train", str(DATA / "a"), str(DATA / "b"), "--test", str(DATA / "b"),
                 "--models", "default", "--epochs", "2", "--rcut", "4", "--out", str(tmp_path)])
    assert (tmp_path / "parts-a" / "manifest.json").is_file()
    assert (tmp_path / "parts-b" / "manifest.json").is_file()
    record = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])
    assert record["train"] == f"{DATA / 'a'},{DATA / 'b'}" and record["epochs"] == 2
    assert math.isfinite(record["node_mae_mEh"]) and math.isfinite(record["eig_l1_aligned_percent"])
    assert "| default, lr 0.003 | 2 |" in (tmp_path / "table.md").read_text()


def test_stoichiometry_transfer_judges_every_vacancy_fraction(tmp_path):
    # --quick: synthetic HfO_x, vacancies as ghosts keeping O's orbitals; a second model
    # trained on vacancy-free HfO2 is refused where the test data hold vacancies; a third
    # trains on two stoichiometries together
    out = tmp_path / "stoichiometry"
    script = _script("examples/stoichiometry.py")
    script.main(["--quick", "--out", str(out), "--seeds", "0", "--epochs", "4"])
    data = out / "data"
    rows = script.main(["--quick", "--out", str(out), "--seeds", "0", "--epochs", "4",
                        "--train", str(data / "train-v0.0625"), str(data / "test-v0"),
                        f"{data / 'test-v0'}+{data / 'test-v0.125'}",
                        "--test", str(data / "test-v0"), str(data / "test-v0.0625"),
                        str(data / "test-v0.125")])
    table, report = _outputs(out, "stoichiometry")
    x = {Path(d).name: v["x"] for d, v in report["datasets"].items()}
    assert x == {"train-v0.0625": 1.875, "test-v0": 2.0, "test-v0.0625": 1.875,
                 "test-v0.125": 1.75}
    assert report["datasets"][str(data / "test-v0.125")]["vacancies"] == {"O": 8}
    assert len(rows) == 9 and report["settings"]["images"] == "refuse"
    by = {("+".join(Path(t).name for t in r["train"].split("+")), Path(r["test"]).name): r
          for r in rows}
    for test in ("test-v0", "test-v0.0625", "test-v0.125"):
        row = by["train-v0.0625", test]
        for key in ("node_mae_mEh", "edge_mae_mEh", "eig_l1_pct"):
            assert math.isfinite(row[key][0]) and row[key][0] > 0, (test, key)
        # the vacancies' own error exactly where there are vacancies
        assert math.isfinite(row["ghost_node_mae_mEh"][0]) == (test != "test-v0")
    assert "refused" not in by["test-v0", "test-v0"]
    joined = [r for r in report["runs"] if "+" in r["train"]]
    assert len(joined) == 1 and all("refused" not in t for t in joined[0]["tests"].values())
    assert report["names"][joined[0]["train"]] == "HfO2 + HfO1.75 (test-v0+test-v0.125)"
    assert (out / "train2-test-v0+test-v0.125" / "parts" / "metis2-halo1-1").is_dir()
    for test in ("test-v0.0625", "test-v0.125"):
        assert "O_ghost not covered by the model" in by["test-v0", test]["refused"]
    assert "| HfO1.875 (train-v0.0625) | HfO1.75 (test-v0.125) | 0 |" in table
    assert "| HfO2 (test-v0) | HfO1.75 (test-v0.125) | 0 | refused:" in table
