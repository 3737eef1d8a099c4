"""hampart inspect on datasets, partition directories and model files: the commands' ``run``
with their configs (the argument parsing has its own tests at the end)."""

import json

from hampart.cli import main
from hampart.generate import generate
from hampart.generate.commands import GenerateConfig, LabelConfig, run_generate, run_label
from hampart.inspect import InspectConfig, inspect_dataset, run
from hampart.partition.commands import SliceConfig, run_slice


def test_generate_label_inspect(tmp_path, capsys):
    out = tmp_path / "hfox"
    assert run_generate(GenerateConfig("hfo2", str(out), seed=1, vacancies=0.1, size=(2, 2, 2),
                                       interaction_radius=4.5)) == 0
    capsys.readouterr()
    assert run(InspectConfig(str(out), rcut=4.5, json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_atoms"] == 96 and report["species"]["ghost"] == 6
    assert report["fraction_beyond_rcut"] == 0.0 and report["H_symmetry_error"] == 0.0
    # below the interaction radius, part of H is out of reach and inspect says how much
    short = inspect_dataset(out, rcut=3.0)
    assert 0 < short["fraction_beyond_rcut"] < 0.1 and short["max_abs_beyond_rcut"] > 0
    assert run_label(LabelConfig(str(out / "structure.xyz"), str(tmp_path / "relabelled"),
                                 interaction_radius=4.5)) == 0
    relabelled = inspect_dataset(tmp_path / "relabelled", rcut=4.5)
    assert relabelled["n_atoms"] == 96 and relabelled["fraction_beyond_rcut"] == 0.0


def test_cli_errors_write_nothing(tmp_path, capsys):
    assert main(["generate", "graphene", "--out", str(tmp_path / "g")]) == 2
    assert "hfo2, gst, ptge, si" in capsys.readouterr().err
    assert main(["generate", "si", "--size", "1", "--out", str(tmp_path / "g")]) == 2
    assert "--interaction-radius" in capsys.readouterr().err  # 6 A > half the 5.4 A cell
    (tmp_path / "au.xyz").write_text('1\nLattice="9 0 0 0 9 0 0 0 9" pbc="T T T"\nAu 1 1 1\n')
    assert main(["label", str(tmp_path / "au.xyz"), "--out", str(tmp_path / "l")]) == 2
    assert "Au" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["au.xyz"]
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "keep").write_text("x")
    assert main(["generate", "si", "--size", "2", "--interaction-radius", "4", "--out",
                 str(tmp_path / "g")]) == 2
    assert "--force" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["keep"]


def test_generate_by_atom_count_and_inspect_text(tmp_path, capsys):
    out = tmp_path / "si"
    generate("si", atoms=60, interaction_radius=4.0, out=out)
    assert run(InspectConfig(str(out), rcut=4.0)) == 0
    text = capsys.readouterr().out
    assert "n_atoms: 64" in text and "max |H_ij| by distance" in text
    report = inspect_dataset(out, rcut=4.0)
    assert report["meta"]["atoms_requested"] == 60
    assert abs(report["density_atoms_per_A3"] - 0.0499) < 0.002
    assert report["node_block_frobenius"] > report["edge_block_frobenius"] > 0


def test_streamed_matrix_report_matches_one_pass_and_sees_asymmetry(tmp_path):
    import numpy as np

    from hampart.inspect import _matrix_report
    from hampart.io.dataset import load_dataset

    out = generate("hfo2", size=(2, 2, 2), interaction_radius=4.5, out=tmp_path / "hfo2")
    ds = load_dataset(out)
    whole = _matrix_report(ds.hamiltonian, ds.structure, ds.basis, 3.0, chunk_nnz=10**9)
    pieces = _matrix_report(ds.hamiltonian, ds.structure, ds.basis, 3.0, chunk_nnz=997)
    for key in ("node_block_frobenius", "edge_block_frobenius", "fraction_beyond_rcut"):
        assert abs(whole[key] - pieces[key]) < 1e-12 * max(1.0, whole[key])
    assert whole["max_abs_by_distance"] == pieces["max_abs_by_distance"]
    assert whole["H_symmetry_error"] == 0.0
    H = ds.hamiltonian.tolil()
    H[0, 20] = H[0, 20] + 0.125
    bad = _matrix_report(H.tocsr(), ds.structure, ds.basis, 3.0, chunk_nnz=997)
    assert abs(bad["H_symmetry_error"] - 0.125) < 1e-12
    # the reference from the dense matrix: share of ||H||^2 beyond 3 A
    dense = ds.hamiltonian.toarray()
    offsets = ds.basis.orbital_offsets(ds.structure.numbers)
    atom = np.repeat(np.arange(ds.structure.n_atoms), np.diff(offsets))
    from hampart.inspect import _pair_distances
    r, c = np.nonzero(dense)
    far = (atom[r] != atom[c]) & (_pair_distances(ds.structure, atom[r], atom[c]) >= 3.0)
    reference = (dense[r, c][far] ** 2).sum() / (dense ** 2).sum()
    assert 0 < reference and abs(whole["fraction_beyond_rcut"] - reference) < 1e-12


def _sliced_si(tmp_path):
    """A small synthetic Si dataset cut into 2 slabs: the partition directory."""
    out = generate("si", size=(2, 2, 2), interaction_radius=4.0, out=tmp_path / "si")
    parts = tmp_path / "parts"
    assert run_slice(SliceConfig(str(out), rcut=4.0, parts=2, out=str(parts), method="slab")) == 0
    return parts


def test_inspect_partition_directory_delegates(tmp_path, capsys):
    parts = _sliced_si(tmp_path)
    capsys.readouterr()
    assert run(InspectConfig(str(parts), verify=True, json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "hampart-partitions" and report["totals"]["parts"] == 2
    assert report["verify"]["ok"] is True
    assert run(InspectConfig(str(parts))) == 0
    text = capsys.readouterr().out
    assert "hampart-partitions v1" in text
    rows = [line.split() for line in text.splitlines() if line.split()[:1] in (["0"], ["1"])]
    assert [int(r[0]) for r in rows] == [0, 1]  # one table row per part


def test_inspect_model_file(tmp_path, capsys):
    import torch

    from hampart.basis import Basis
    from hampart.model.io import save_model
    from hampart.model import HamiltonianModel

    basis = Basis({72: (0, 0, 1, 2), 8: (0, 1)}, name="SZV-HfO")
    kwargs = {"lmax": 4, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1, "rcut": 4.0}
    model = HamiltonianModel(basis, **kwargs)
    summary = {"epochs_run": 7, "stop": "min_lr", "ranks": 2, "last": {"mse": 1e-6, "mae_mEh": 0.5}}
    save_model(tmp_path / "model.pt", model, kwargs, basis,
               extra={"parts": "parts/x", "summary": json.dumps(summary), "dtype": "float32"})
    assert run(InspectConfig(str(tmp_path / "model.pt"), json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    # options whose defaults changed are written as the model has them
    saved = {**kwargs, "degree_embedding": True, "onsite_channels": 16,
             "onsite_invariants": False, "onsite_products": True, "radial_species": False,
             "elements": [8, 72]}
    assert report["hyperparameters"] == saved and report["shells"] == {"O": [0, 1],
                                                                       "Hf": [0, 0, 1, 2]}
    assert report["epochs_run"] == 7 and report["stop"] == "min_lr"
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    assert main(["inspect", str(tmp_path / "other.pt")]) == 2
    assert "other.pt" in capsys.readouterr().err


def test_inspect_verify_exits_nonzero_on_a_corrupted_part(tmp_path, capsys):
    """The exit status scripts see, through the command line."""
    parts = _sliced_si(tmp_path)
    assert main(["inspect", str(parts), "--verify"]) == 0
    part = parts / "part-00001.npz"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the sha256 no longer matches
    part.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["inspect", str(parts), "--verify"]) == 1
    text = capsys.readouterr().out
    assert "verify: FAILED" in text and "part-00001.npz" in text
    assert run(InspectConfig(str(parts), verify=True, json=True)) == 1
    assert json.loads(capsys.readouterr().out)["verify"]["ok"] is False
    assert main(["inspect", str(parts)]) == 0  # without --verify only the manifest is read
