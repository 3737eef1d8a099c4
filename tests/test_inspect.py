import json

from hampart.cli import main
from hampart.inspect import inspect_dataset


def test_generate_label_inspect_cli(tmp_path, capsys):
    out = tmp_path / "hfox"
    assert main(["generate", "hfo2", "--seed", "1", "--vacancies", "0.1", "--size", "2",
                 "--interaction-radius", "4.5", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--rcut", "4.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_atoms"] == 96 and report["species"]["ghost"] == 6
    assert report["fraction_beyond_rcut"] == 0.0 and report["H_symmetry_error"] == 0.0
    # below the interaction radius, part of H is out of reach and inspect says how much
    short = inspect_dataset(out, rcut=3.0)
    assert 0 < short["fraction_beyond_rcut"] < 0.1 and short["max_abs_beyond_rcut"] > 0
    assert main(["label", str(out / "structure.xyz"), "--interaction-radius", "4.5",
                 "--out", str(tmp_path / "relabelled")]) == 0


def test_cli_errors_write_nothing(tmp_path, capsys):
    assert main(["generate", "graphene", "--out", str(tmp_path / "g")]) == 2
    assert "hfo2, gst, ptge, si" in capsys.readouterr().err
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
    assert main(["generate", "si", "--atoms", "60", "--interaction-radius", "4",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--rcut", "4"]) == 0
    text = capsys.readouterr().out
    assert "n_atoms: 64" in text and "max |H_ij| by distance" in text
    report = inspect_dataset(out, rcut=4.0)
    assert report["meta"]["atoms_requested"] == 60
    assert abs(report["density_atoms_per_A3"] - 0.0499) < 0.002
    assert report["node_block_frobenius"] > report["edge_block_frobenius"] > 0
