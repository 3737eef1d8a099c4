import numpy as np
import pytest
import vesin

from hampart.errors import InputError
from hampart.generate import MATERIALS, make_structure


@pytest.mark.parametrize("material, n_atoms, density", [
    ("hfo2", 3000, 0.0832), ("gst", 1008, 0.0324), ("ptge", 2688, 0.0518), ("si", 216, 0.0499)])
def test_default_cells_sizes_density_and_no_overlaps(material, n_atoms, density):
    s = make_structure(material, seed=0)
    assert s.n_atoms == n_atoms
    assert abs(s.n_atoms / abs(np.linalg.det(s.cell)) - density) < 0.002
    d = vesin.NeighborList(cutoff=MATERIALS[material].min_distance, full_list=False).compute(
        s.positions, s.cell, True, "d")[0]
    assert d.size == 0 or d.min() >= MATERIALS[material].min_distance - 1e-6
    frac = s.positions @ np.linalg.inv(s.cell)
    assert (frac >= 0).all() and (frac < 1).all()


def test_paper_cells():
    assert np.allclose(np.diag(make_structure("hfo2").cell), [52.3, 26.2, 26.3])
    assert abs(make_structure("ptge").cell[2, 2] - 23.66) < 0.1


def test_gst_composition_is_ge1sb2te4():
    s = make_structure("gst", seed=3)
    counts = {z: int((s.numbers == z).sum()) for z in (32, 51, 52)}
    assert counts == {32: 144, 51: 288, 52: 576}


def test_disorder_is_deterministic_per_seed():
    a, b, c = (make_structure("hfo2", seed=k, size=(2, 2, 2)) for k in (4, 4, 5))
    assert np.array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


def test_vacancies_are_ghost_anions():
    s = make_structure("hfo2", seed=1, vacancies=0.10, size=(3, 3, 3))
    n_o_sites = 2 * 108
    assert (s.numbers == 0).sum() == round(0.1 * n_o_sites)
    assert (s.numbers == 72).sum() == 108  # Hf untouched: HfO_1.8
    assert s.n_atoms == 324


def test_bad_arguments():
    with pytest.raises(InputError, match="hfo2, gst, ptge, si"):
        make_structure("graphene")
    with pytest.raises(InputError, match="fraction"):
        make_structure("hfo2", vacancies=1.5)
    with pytest.raises(InputError, match="positive"):
        make_structure("hfo2", size=(0, 1, 1))


def test_size_by_atom_count_keeps_the_density():
    s = make_structure("hfo2", atoms=100, seed=0)
    assert s.n_atoms == 144  # 3 x 2 x 2 cells: the closest to 100 in the 10 : 5 : 5 proportion
    assert abs(s.n_atoms / abs(np.linalg.det(s.cell)) - 0.0832) < 0.002
    assert make_structure("si", atoms=200).n_atoms == 216
    assert make_structure("gst", atoms=1000).n_atoms == 1008
    with pytest.raises(InputError, match="both"):
        make_structure("si", size=2, atoms=64)


def test_vacancies_keeping_orbitals_from_the_command(tmp_path, capsys):
    from hampart.cli import main
    from hampart.io.dataset import load_dataset

    s = make_structure("hfo2", seed=1, vacancies=0.10, size=(3, 3, 3), vacancy_orbitals=True)
    plain = make_structure("hfo2", seed=1, vacancies=0.10, size=(3, 3, 3))
    assert np.array_equal(np.where(s.numbers < 0, 0, s.numbers), plain.numbers)
    assert (s.numbers == -8).sum() == 22 and "vacancy_orbitals=True" in s.source
    out = tmp_path / "hfox"
    assert main(["generate", "hfo2", "--seed", "1", "--vacancies", "0.1", "--size", "2",
                 "--interaction-radius", "4.5", "--vacancy-orbitals", "--out", str(out)]) == 0
    assert "6 ghosts keeping orbitals" in capsys.readouterr().out
    ds = load_dataset(out)
    assert (ds.structure.numbers == -8).sum() == 6 and ds.basis.ghosts == (8,)
    assert ds.hamiltonian.shape == (32 * 10 + 64 * 4,) * 2 and ds.meta["vacancy_orbitals"]


def test_vacancies_made_in_a_given_structure_stay_in_place():
    from hampart.generate.structures import make_vacancies

    s = make_structure("hfo2", seed=2, size=2)
    v = make_vacancies(s, "O", 8, seed=0)
    assert (v.numbers == -8).sum() == 8 and (v.numbers == 8).sum() == 56
    assert np.array_equal(np.abs(v.numbers), s.numbers)  # only the marks change
    assert np.array_equal(v.positions, s.positions) and np.array_equal(v.cell, s.cell)
    again = make_vacancies(s, 8, 8, seed=0)  # an atomic number works as well as a symbol
    assert np.array_equal(again.numbers, v.numbers)
    assert not np.array_equal(make_vacancies(s, "O", 8, seed=1).numbers, v.numbers)
    bare = make_vacancies(s, "O", 8, seed=0, keep_orbitals=False)
    assert np.array_equal(bare.numbers == 0, v.numbers < 0)
    with pytest.raises(InputError, match="has 64 atoms of Z = 8, cannot make 65"):
        make_vacancies(s, "O", 65)
    with pytest.raises(InputError, match="not a chemical element"):
        make_vacancies(s, "Q", 1)
    # a fraction of the element's sites, rounded: 0.0625 of 64 O is 4
    assert (make_vacancies(s, "O", fraction=0.0625, seed=0).numbers < 0).sum() == 4
    with pytest.raises(InputError, match="not in"):
        make_vacancies(s, "O", fraction=1.5)
    with pytest.raises(InputError, match="neither or both"):
        make_vacancies(s, "O", 4, fraction=0.0625)


def test_vacancies_command_writes_ghosts_a_label_keeps(tmp_path, capsys):
    from hampart.cli import main
    from hampart.io.structure import read_structure, write_structure

    source = tmp_path / "hfo2.xyz"
    write_structure(source, make_structure("hfo2", seed=2, size=2))
    out = tmp_path / "hfox.xyz"
    assert main(["vacancies", str(source), "--fraction", "0.125", "--seed", "3",
                 "--out", str(out)]) == 0
    assert "8 of 64 Z = 8 sites as ghosts keeping orbitals" in capsys.readouterr().out
    assert (read_structure(out).numbers == -8).sum() == 8
    # an existing output is refused, and nothing is written for a bad request
    assert main(["vacancies", str(source), "--count", "2", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    bad = tmp_path / "bad.xyz"
    assert main(["vacancies", str(source), "--count", "99", "--out", str(bad)]) == 2
    assert "cannot make 99 vacancies" in capsys.readouterr().err and not bad.exists()
    assert main(["vacancies", str(source), "--fraction", "2", "--out", str(bad)]) == 2
    assert "fraction 2.0" in capsys.readouterr().err and not bad.exists()
