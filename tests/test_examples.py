"""examples/train_hfo2.py end to end on 2 MPI ranks, with tiny settings."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"lmax": 4, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1, "layers": 1}


def _run_example(out, epochs):
    mpirun = shutil.which("mpirun") or os.path.join(os.path.dirname(sys.executable), "mpirun")
    assert os.path.exists(mpirun), "mpirun not found: install the mpi extra (pip install mpich)"
    # the script's directory comes first on its sys.path, so point it at this checkout's hampart
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    run = subprocess.run([mpirun, "-n", "2", sys.executable, str(ROOT / "examples/train_hfo2.py"),
                          "--out", str(out), "--size", "2", "--parts", "2",
                          "--epochs", str(epochs),
                          "--model", json.dumps(TINY_MODEL), "--device", "cpu"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-4000:] + run.stdout[-4000:]
    return run.stdout, json.loads((out / "evaluation.json").read_text())


def test_train_hfo2_example_on_two_ranks(tmp_path):
    out = tmp_path / "run"
    stdout, report = _run_example(out, epochs=3)
    assert "wrote" in stdout and (out / "parts-train" / "manifest.json").is_file()
    assert (out / "model" / "model.pt").is_file() and (out / "H_pred.npz").is_file()
    assert report["train"]["epochs"] == 3 and report["train"]["ranks"] == 2
    test = report["test"]
    assert test["n_atoms"] == 96 and test["n_eigenvalues"] == test["n_orbitals"]
    for key in ("node_mae_mEh", "edge_mae_mEh", "total_mae_meV", "eig_mae_meV"):
        assert math.isfinite(test[key]) and test[key] > 0, (key, test[key])
    assert report["train"]["mae_mEh"] > 0 and math.isfinite(report["train"]["mae_mEh"])

    # a second run reuses the partitions and continues training from the checkpoint
    stdout, report = _run_example(out, epochs=5)
    assert f"reusing {out / 'parts-train'}" in stdout and "resuming" in stdout
    assert report["train"]["epochs"] == 2


def test_paper_config_slices_the_papers_cartesian_slabs():
    """examples/hfo2_paper.yaml says it is the paper's recipe: its slice commands must cut the
    paper's partitions (8 equal-width slabs along x, halo 1) into the directories it trains on,
    and the METIS alternative must be named as not the paper's."""
    import shlex

    from hampart.cli import build_parser
    from hampart.distributed.trainer import config_from_yaml
    from hampart.partition.commands import SLICE

    path = ROOT / "examples" / "hfo2_paper.yaml"
    text = path.read_text()
    config = config_from_yaml(path)
    parser = build_parser(["slice"])
    slices = [SLICE.make_config(parser.parse_args(shlex.split(line.lstrip("# "))[1:]))
              for line in text.splitlines() if line.lstrip("# ").startswith("hampart slice")]
    assert len(slices) == 2
    for c in slices:
        assert (c.method, c.axis, c.parts, c.halo, c.rcut) == ("slab", "x", 8, 1, 8.0)
        assert c.balance in (None, "width")
    assert sorted(c.out for c in slices) == sorted([config.parts, config.validation])
    assert "Not the paper's: METIS" in text
