"""hampart.dft.cp2k on real CP2K output committed under tests/data/cp2k-si8 (8 Si atoms, SZV,
made by scripts/make_cp2k_test_data.py), and one run of CP2K itself when it is installed."""

import json
import os
import shutil

import numpy as np
import pytest

from hampart.blocks import assemble_blocks, extract_blocks
from hampart.dft import CP2KSettings, label_cp2k, make_input, parse_log, read_cp2k_run
from hampart.dft.cp2k import find_cp2k
from hampart.errors import InputError
from hampart.graph import radius_graph
from hampart.io.csr import read_matrix, write_csr
from hampart.io.dataset import load_dataset

SI8 = os.path.join(os.path.dirname(__file__), "..", "data", "cp2k-si8")
HAVE_DATA = os.path.isfile("/usr/share/cp2k/BASIS_MOLOPT")
HAVE_CP2K = shutil.which("cp2k.psmp") is not None and HAVE_DATA


def si8():
    return load_dataset(SI8)


def test_dataset_reads_like_the_shared_cp2k_directories():
    ds = si8()
    H = ds.hamiltonian
    S = read_matrix(os.path.join(SI8, "S.npz"), n_orbitals=32)
    assert H.shape == (32, 32) and ds.structure.n_atoms == 8
    assert ds.basis.name == "SZV-MOLOPT-SR-GTH" and ds.basis.shells == {14: (0, 1)}
    assert abs(H - H.T).max() == 0 and abs(S - S.T).max() == 0  # stored exactly symmetric
    # normalised functions plus their overlap with their own periodic images (Gamma point):
    # the same for every Si atom, and for the three p of a cubic lattice
    d = S.diagonal().reshape(8, 4)
    assert np.abs(d - d[0]).max() < 1e-10 and np.ptp(d[0, 1:]) < 1e-10
    assert 0.9 < d[0].min() and d[0].max() < 1.1
    assert np.linalg.eigvalsh(S.toarray()).min() > 0
    # valence 4 x 8 = 32 electrons: 16 occupied states of H c = E S c, gap > 0 in Si
    from scipy.linalg import eigh

    e = eigh(H.toarray(), S.toarray(), eigvals_only=True)
    assert e[16] - e[15] > 0.005
    m = ds.meta
    assert m["generator"] == "cp2k" and m["cp2k_version"].startswith("CP2K version 2023")
    assert m["scf_converged"] is True and m["scf_steps"] >= 1 and m["electrons"] == 32
    assert m["basis"] == "SZV-MOLOPT-SR-GTH" and m["potentials"] == {"Si": "GTH-PBE-q4"}
    assert m["cutoff_ry"] == 300 and m["rel_cutoff_ry"] == 50 and m["kpoints"] == "gamma"
    assert m["wall_seconds"] > 0 and m["orbitals"] == 32


def test_log_facts_match_meta_and_input_hash():
    m = si8().meta
    text = open(os.path.join(SI8, "cp2k", "hampart.log")).read()
    run = parse_log(text)
    assert run.converged and run.scf_steps == m["scf_steps"]
    assert run.energy == m["energy_hartree"] and run.electrons == 32
    assert run.processes == m["cp2k_processes"] == 2
    assert not run.spin_polarised and not run.kpoints and run.error is None
    import hashlib

    inp = open(os.path.join(SI8, "cp2k", "hampart.inp")).read()
    assert hashlib.sha256(inp.encode()).hexdigest() == m["input_sha256"]


@pytest.mark.skipif(not HAVE_DATA, reason="CP2K's data files not installed")
def test_input_is_regenerated_bit_for_bit_from_the_structure():
    s = si8().structure
    made = make_input(s.numbers, s.positions, s.cell, s.pbc, CP2KSettings())
    assert made.sha256 == si8().meta["input_sha256"]
    assert made.electrons == si8().meta["electrons"]


def test_blocks_round_trip_gives_cp2ks_matrix_back_exactly():
    ds = si8()
    s = ds.structure
    # the cell is 5.43 A: every pair once at its minimum image (the Gamma-point block)
    g = radius_graph(s.positions, s.cell, s.pbc, rcut=5.0, images="minimum")
    for M in (ds.hamiltonian, read_matrix(os.path.join(SI8, "S.npz"))):
        node, edge, info = extract_blocks(M, s.numbers, ds.basis, g)
        assert info["outside_count"] == 0
        back = assemble_blocks(node, edge, s.numbers, ds.basis, g.edge_index)
        assert (back != M).nnz == 0


def test_slice_reads_the_directory(tmp_path):
    from hampart.partition.commands import SliceConfig, run_slice

    assert run_slice(SliceConfig(data=SI8, rcut=2.6, parts=2, out=str(tmp_path / "p"),
                                 method="slab", axis="x")) == 0
    manifest = json.load(open(tmp_path / "p" / "manifest.json"))
    assert manifest["params"]["basis"]["name"] == "SZV-MOLOPT-SR-GTH"
    assert sum(p["n_owned"] for p in manifest["parts"]) == 8


def fake_run(tmp_path, log_edit=None, spin2=False, asymmetry=0.0):
    """A CP2K run directory rebuilt from the committed matrices and log."""
    H = si8().hamiltonian.tolil()
    H[1, 2] += asymmetry  # on-site block of atom 0, one side only
    S = read_matrix(os.path.join(SI8, "S.npz"))
    d = tmp_path / "run"
    d.mkdir()
    write_csr(d / "hampart-KS_SPIN_1-1_0.csr", H.tocsr(), triangle="full")
    write_csr(d / "hampart-S_SPIN_1-1_0.csr", S, triangle="full")
    if spin2:
        write_csr(d / "hampart-KS_SPIN_2-1_0.csr", H.tocsr(), triangle="full")
    text = open(os.path.join(SI8, "cp2k", "hampart.log")).read()
    (d / "hampart.log").write_text(log_edit(text) if log_edit else text)
    return d


def test_read_run_symmetrises_on_site_noise_and_reports_it(tmp_path):
    H, S, run, asym = read_cp2k_run(fake_run(tmp_path, asymmetry=3e-8))
    ref = si8().hamiltonian
    assert abs(H - H.T).max() == 0
    assert abs(asym["H"] - 3e-8) < 1e-15 and asym["S"] == 0
    assert abs(H[1, 2] - (ref[1, 2] + 1.5e-8)) < 1e-15
    assert (H[3:, :] != ref[3:, :]).nnz == 0  # other rows untouched
    assert run.converged


@pytest.mark.parametrize("kwargs, message", [
    ({"spin2": True}, "spin-polarised run"),
    ({"log_edit": lambda t: t.replace("DFT| Spin restricted Kohn-Sham (RKS) calculation",
                                      "DFT| Spin unrestricted (spin-polarized) Kohn-Sham "
                                      "calculation")}, "spin-polarised run"),
    ({"log_edit": lambda t: t + "\n BRILLOUIN| K-point scheme   Monkhorst-Pack\n"},
     "run with k-points"),
    ({"log_edit": lambda t: t.replace("*** SCF run converged in", "*** SCF run NOT converged "
                                      "in")}, "the SCF did not converge"),
    ({"asymmetry": 1e-3}, "matrix is not symmetric"),
])
def test_read_run_refusals(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        read_cp2k_run(fake_run(tmp_path, **kwargs))


def test_missing_cp2k_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HAMPART_CP2K", str(tmp_path / "nothing"))
    with pytest.raises(InputError, match=r"HAMPART_CP2K=.*apt-get install cp2k"):
        find_cp2k()
    monkeypatch.delenv("HAMPART_CP2K")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match=r"CP2K is not installed.*HAMPART_CP2K=/path/to/cp2k"):
        find_cp2k()
    if HAVE_DATA:
        with pytest.raises(InputError, match="not installed"):
            label_cp2k(os.path.join(SI8, "structure.xyz"), tmp_path / "out", progress=False)
        assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_bad_core_count(tmp_path):
    with pytest.raises(InputError, match="--cores 0: must be at least 1"):
        label_cp2k(os.path.join(SI8, "structure.xyz"), tmp_path / "out", cores=0)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    with pytest.raises(InputError, match="--force"):
        label_cp2k(os.path.join(SI8, "structure.xyz"), tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "x").read_text() == "keep"


@pytest.mark.skipif(not HAVE_CP2K, reason="cp2k.psmp not installed")
def test_cp2k_runs_and_writes_the_dataset(tmp_path):
    """Two Si atoms (primitive cell, one displaced): seconds on one core."""
    from ase.build import bulk

    from hampart.generate.commands import LabelConfig, run_label
    from hampart.io.structure import Structure, write_structure

    a = bulk("Si", "diamond", 5.431)
    pos = a.positions + [[0, 0, 0], [0.05, -0.03, 0.02]]
    write_structure(tmp_path / "si2.xyz", Structure(a.numbers, pos, a.cell.array, True))
    # an SCF cut short is refused and leaves nothing behind
    with pytest.raises(InputError, match="SCF did not converge"):
        label_cp2k(tmp_path / "si2.xyz", tmp_path / "bad", CP2KSettings(max_scf=2),
                   progress=False)
    assert sorted(os.listdir(tmp_path)) == ["si2.xyz"]
    assert run_label(LabelConfig(str(tmp_path / "si2.xyz"), str(tmp_path / "si2"), dft="cp2k",
                                 cores=1)) == 0
    ds = load_dataset(tmp_path / "si2")
    assert ds.hamiltonian.shape == (8, 8) and ds.meta["electrons"] == 8
    assert ds.meta["scf_converged"] and abs(ds.hamiltonian - ds.hamiltonian.T).max() == 0
    assert sorted(os.listdir(tmp_path / "si2" / "cp2k")) == ["hampart.inp", "hampart.log"]
    S = read_matrix(tmp_path / "si2" / "S.npz")
    d = S.diagonal().reshape(2, 4)  # s and p: the same on both atoms (image sums, fcc lattice)
    assert np.abs(d - d[0]).max() < 1e-10 and np.linalg.eigvalsh(S.toarray()).min() > 0


# ------------------------------------------------------------------ the runner, with a stand-in
FAKE = """#!{python}
# stands in for cp2k.psmp: copies a finished run's files into the working directory
import os, shutil, sys
src = os.environ["FAKE_CP2K_FROM"]
log = open(os.path.join(src, "hampart.log")).read()
if os.environ.get("FAKE_CP2K_PROCESSES"):
    log = log.replace("message passing processes                             2",
                      "message passing processes                             1")
open(sys.argv[sys.argv.index("-o") + 1], "w").write(log)
for name in os.listdir(src):
    if name.endswith(".csr"):
        shutil.copy(os.path.join(src, name), name)
sys.exit(int(os.environ.get("FAKE_CP2K_STATUS", "0")))
"""


@pytest.fixture
def fake_cp2k(tmp_path, monkeypatch):
    import sys

    exe = tmp_path / "bin" / "cp2k.psmp"
    exe.parent.mkdir()
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    mpirun = tmp_path / "bin" / "mpirun"  # runs the command once, as one process would
    mpirun.write_text("#!/bin/sh\nshift 2\nexec \"$@\"\n")
    mpirun.chmod(0o755)
    monkeypatch.setenv("HAMPART_CP2K", str(exe))
    monkeypatch.setenv("HAMPART_MPIRUN", str(mpirun))
    return tmp_path


@pytest.mark.skipif(not HAVE_DATA, reason="CP2K's data files not installed")
def test_label_pipeline_end_to_end_with_recorded_output(fake_cp2k, monkeypatch):
    monkeypatch.setenv("FAKE_CP2K_FROM", str(fake_run(fake_cp2k, asymmetry=2e-8)))
    out = label_cp2k(os.path.join(SI8, "structure.xyz"), fake_cp2k / "ds", cores=2,
                     progress=False)
    ds = load_dataset(out)
    ref = si8()
    diff = abs(ds.hamiltonian - ref.hamiltonian)
    assert diff.max() < 1.01e-8 and (diff > 0).sum() == 2  # (M + M^T) / 2: half of 2e-8
    assert ds.meta["electrons"] == 32 and ds.meta["scf_converged"]
    assert ds.meta["symmetrised_max_asymmetry"]["H"] == pytest.approx(2e-8, abs=1e-15)
    assert sorted(os.listdir(out)) == ["H.npz", "S.npz", "basis.yaml", "cp2k", "meta.json",
                                       "structure.xyz"]
    assert sorted(os.listdir(os.path.join(out, "cp2k"))) == ["hampart.inp", "hampart.log"]
    # --force replaces it; without it the directory is refused
    with pytest.raises(InputError, match="--force"):
        label_cp2k(os.path.join(SI8, "structure.xyz"), out, progress=False)
    assert label_cp2k(os.path.join(SI8, "structure.xyz"), out, replace=True, progress=False)


@pytest.mark.skipif(not HAVE_DATA, reason="CP2K's data files not installed")
@pytest.mark.parametrize("setup, message", [
    ({"FAKE_CP2K_STATUS": "1", "log": "abort"},
     "CP2K stopped with status 1: found an unknown keyword NOT_A_KEYWORD in section SCF"),
    ({"log_edit": lambda t: t.replace("*** SCF run converged in", "*** SCF run NOT converged "
                                      "in")}, r"structure.xyz: CP2K's SCF did not converge \(step"),
    ({"FAKE_CP2K_PROCESSES": "1"}, "started 1 CP2K process.* set HAMPART_MPIRUN"),
])
def test_runner_failures_leave_nothing(fake_cp2k, monkeypatch, setup, message):
    setup = dict(setup)
    if setup.pop("log", None) == "abort":
        src = fake_cp2k / "abort"
        src.mkdir()
        shutil.copy(os.path.join(SI8, "..", "cp2k-logs", "abort.log"), src / "hampart.log")
    else:
        src = fake_run(fake_cp2k, log_edit=setup.pop("log_edit", None))
    monkeypatch.setenv("FAKE_CP2K_FROM", str(src))
    for k, v in setup.items():
        monkeypatch.setenv(k, v)
    before = sorted(os.listdir(fake_cp2k))
    with pytest.raises(InputError, match=message):
        label_cp2k(os.path.join(SI8, "structure.xyz"), fake_cp2k / "ds", cores=2,
                   progress=False)
    assert sorted(os.listdir(fake_cp2k)) == before  # no dataset, no temporary left


def test_abort_box_is_read_as_one_line():
    text = open(os.path.join(SI8, "..", "cp2k-logs", "abort.log")).read()
    run = parse_log(text)
    assert run.error == ("found an unknown keyword NOT_A_KEYWORD in section SCF "
                         "input/input_parsing.F:246")
    assert not run.converged and run.energy is None
