"""``hampart label``: synthetic by default, CP2K with --dft cp2k (config and refusals)."""

import os

from hampart.cli import main
from hampart.generate.commands import LABEL, LabelConfig, run_label
from hampart.io.dataset import load_dataset

SI8 = os.path.join(os.path.dirname(__file__), "..", "data", "cp2k-si8", "structure.xyz")


def config(argv):
    import argparse

    p = argparse.ArgumentParser()
    LABEL.add_arguments(p)
    return LABEL.make_config(p.parse_args(argv))


def test_arguments_parse_into_the_config():
    c = config([SI8, "--out", "o", "--dft", "cp2k", "--cores", "2", "--basis", "DZVP",
                "--cutoff", "400", "--rel-cutoff", "60", "--scf", "ot", "--max-scf", "50"])
    assert c == LabelConfig(SI8, "o", "DZVP", None, False, "cp2k", 2, 400.0, 60.0, "ot", 50,
                            300.0)
    assert config([SI8, "--out", "o"]).dft == "synthetic"


def test_default_stays_synthetic(tmp_path):
    assert run_label(LabelConfig(SI8, str(tmp_path / "syn"), interaction_radius=2.5)) == 0
    ds = load_dataset(tmp_path / "syn")
    assert ds.meta["generator"].startswith("hampart synthetic") and ds.basis.name == "SZV"


def test_cp2k_refusals_are_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HAMPART_CP2K", str(tmp_path / "no-cp2k"))
    assert main(["label", SI8, "--dft", "cp2k", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install cp2k" in err and "HAMPART_CP2K" in err and len(err.splitlines()) == 1
    assert main(["label", SI8, "--dft", "cp2k", "--interaction-radius", "5", "--out",
                 str(tmp_path / "o")]) == 2
    assert "--dft synthetic only" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
