"""`hampart slice`: writes, reuses, refuses, inspects, plots; ``run_slice`` with its config, and
the command line (``main``) for its exit status and messages on bad arguments."""

import json
import os

import pytest
import scipy.sparse as sp

from hampart.basis import Basis
from hampart.cli import main
from hampart.errors import InputError
from hampart.partition import inspect_partitions, load_manifest
from hampart.partition.commands import SliceConfig, run_slice

from partition_helpers import random_graph, random_hamiltonian

RCUT = 4.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import ase
    import ase.io


    d = tmp_path_factory.mktemp("data")
    numbers, positions, cell, graph = random_graph(60, rcut=RCUT, seed=9)
    ase.io.write(d / "structure.xyz", ase.Atoms(numbers=numbers, positions=positions, cell=cell,
                                                 pbc=True), format="extxyz")
    basis = Basis({72: (0, 0, 1, 2), 8: (0, 1)}, name="SZV-HfO")
    basis.to_yaml(d / "basis.yaml")
    sp.save_npz(d / "H.npz", random_hamiltonian(numbers, graph, basis))
    return d


def _config(files, out, **options):
    return SliceConfig(str(files / "structure.xyz"), RCUT, options.pop("parts"), str(out),
                       hamiltonian=str(files / "H.npz"), basis=str(files / "basis.yaml"),
                       **options)


def _args(files, out, *extra):
    return ["slice", str(files / "structure.xyz"), "--hamiltonian", str(files / "H.npz"),
            "--basis", str(files / "basis.yaml"), "--rcut", str(RCUT), "--out", str(out), *extra]


def test_slice_reuse_and_refuse(files, tmp_path, capsys):
    out = tmp_path / "parts"
    assert run_slice(_config(files, out, method="metis", parts=3, halo=2,
                             plot=str(tmp_path / "p.png"))) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "replication" in text and (tmp_path / "p.png").exists()
    m = load_manifest(out)
    assert m["params"]["parts"] == 3 and m["params"]["labels"] and m["source"]["n_atoms"] == 60
    mtime = os.stat(out / "manifest.json").st_mtime_ns
    assert run_slice(_config(files, out, method="metis", parts=3, halo=2)) == 0
    assert "reusing" in capsys.readouterr().out
    assert os.stat(out / "manifest.json").st_mtime_ns == mtime
    # other parameters: refused with a message naming --force, nothing changed
    with pytest.raises(InputError, match="--force"):
        run_slice(_config(files, out, method="slab", parts=3))
    assert os.stat(out / "manifest.json").st_mtime_ns == mtime
    assert run_slice(_config(files, out, method="slab", parts=3, axis="y", balance="atoms",
                             force=True)) == 0
    m = load_manifest(out)
    assert m["params"]["method"] == "slab" and m["params"]["axis"] == "y"
    report = inspect_partitions(out, verify=True)
    assert report["verify"]["ok"] and [p["n_owned"] for p in report["parts"]] == [20, 20, 20]
    capsys.readouterr()
    assert main(["inspect", str(out), "--verify"]) == 0
    assert "verify: ok" in capsys.readouterr().out


@pytest.mark.parametrize("extra,match", [
    (["--parts", "61"], "at most 60"),
    (["--parts", "0"], "parts"),
    (["--parts", "2", "--halo", "-1"], "halo"),
    (["--parts", "2", "--method", "metis", "--axis", "x"], "axis"),
])
def test_slice_errors_exit_2_and_write_nothing(files, tmp_path, capsys, extra, match):
    out = tmp_path / "parts"
    assert main(_args(files, out, *extra)) == 2
    assert match in capsys.readouterr().err
    assert not out.exists() and os.listdir(tmp_path) == []


def test_slice_dataset_directory(files, tmp_path, capsys):
    from hampart.io.dataset import load_dataset, save_dataset

    ds = load_dataset(files / "structure.xyz", hamiltonian=files / "H.npz",
                      basis=files / "basis.yaml")
    save_dataset(tmp_path / "data", ds.structure, ds.hamiltonian, ds.basis, {"seed": 9})
    out = tmp_path / "parts"
    config = SliceConfig(str(tmp_path / "data"), RCUT, 2, str(out))
    assert run_slice(config) == 0
    m = load_manifest(out)
    assert m["params"]["labels"] and m["params"]["basis"]["name"] == "SZV-HfO"
    assert m["source"]["file"] == str(tmp_path / "data")
    assert run_slice(config) == 0 and "reusing" in capsys.readouterr().out
    # the same data rewritten (new meta.json, new zip time stamps in H.npz) keep the key
    (tmp_path / "data" / "meta.json").write_text(json.dumps({"seed": 9, "seconds": 1.23}))
    h_file = tmp_path / "data" / "H.npz"
    before = h_file.read_bytes()
    _restamp_zip(h_file, (1999, 1, 2, 3, 4, 6))
    assert h_file.read_bytes() != before
    assert run_slice(config) == 0 and "reusing" in capsys.readouterr().out
    # changed data change the key: refused without --force
    H = sp.load_npz(h_file)
    H.data[0] += 1e-3
    sp.save_npz(h_file, H)
    with pytest.raises(InputError, match="other inputs"):
        run_slice(config)


def _restamp_zip(path, date_time):
    """Rewrite a zip archive with the same members and another time stamp."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = [(name, z.read(name)) for name in z.namelist()]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=date_time), data)


def test_slice_auto_parts_with_the_model_memory_law(files, tmp_path, capsys):
    """--parts auto measures the model's memory law; a generous budget gives --min-parts."""
    out = tmp_path / "auto"
    model = {"lmax": 4, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1}
    assert run_slice(_config(files, out, parts="auto", max_gib=50.0, min_parts=2,
                             model=model)) == 0
    m = load_manifest(out)
    assert m["params"]["parts"] == 2 and len(m["parts"]) == 2
    budget = m["params"]["budget"]
    assert 0 < budget["largest_part_gib"] <= 50 and budget["model"]["channels"] == 4
    assert "parts chosen for 50 GiB" in capsys.readouterr().out
    assert main(_args(files, tmp_path / "x", "--parts", "3", "--max-gib", "5")) == 2
    assert "auto and --max-gib go together" in capsys.readouterr().err
