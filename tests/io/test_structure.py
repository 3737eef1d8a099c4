import os

import numpy as np
import pytest

from hampart.errors import InputError
from hampart.io.structure import Structure, read_structure, write_structure


def _triclinic(n=30, seed=1):
    rng = np.random.default_rng(seed)
    cell = np.array([[5.1, 0.0, 0.0], [0.3, 6.2, 0.0], [0.1, 0.2, 7.3]]) + rng.random((3, 3)) / 7
    numbers = rng.choice([0, 8, 72], size=n)
    return Structure(numbers, rng.random((n, 3)) @ cell - 1e-7, cell, [True, True, False])


def test_extxyz_round_trip_is_bitwise_with_ghosts(tmp_path):
    s = _triclinic()
    write_structure(tmp_path / "s.xyz", s)
    t = read_structure(tmp_path / "s.xyz")
    assert t.numbers.tolist() == s.numbers.tolist() and (t.numbers == 0).any()
    assert np.array_equal(t.positions, s.positions) and np.array_equal(t.cell, s.cell)
    assert t.pbc.tolist() == [True, True, False]
    assert t.positions.dtype == np.float64 and t.numbers.dtype == np.int64
    assert t.source == str(tmp_path / "s.xyz") and t.n_atoms == 30
    symbols = [line.split()[0] for line in (tmp_path / "s.xyz").read_text().splitlines()[2:]]
    assert symbols.count("X") == int((s.numbers == 0).sum())


def test_ghosts_keeping_orbitals_round_trip_as_a_ghost_column(tmp_path):
    import ase.io

    s = _triclinic(seed=4)
    numbers = s.numbers.copy()
    numbers[[3, 5]] = [-8, -72]
    numbers[7] = 0
    s = Structure(numbers, s.positions, s.cell, s.pbc)
    write_structure(tmp_path / "g.xyz", s)
    text = (tmp_path / "g.xyz").read_text().splitlines()
    assert "Properties=species:S:1:pos:R:3:ghost:L:1" in text[1]
    assert text[2 + 3].split()[::4] == ["O", "T"] and text[2 + 5].split()[::4] == ["Hf", "T"]
    t = read_structure(tmp_path / "g.xyz")
    assert t.numbers.tolist() == numbers.tolist() and np.array_equal(t.positions, s.positions)
    atoms = ase.io.read(tmp_path / "g.xyz")  # plain ase: the element plus a ghost array
    assert atoms.numbers[3] == 8 and atoms.arrays["ghost"].tolist().count(True) == 2
    # without ghosts keeping orbitals the file has no ghost column (as before)
    write_structure(tmp_path / "p.xyz", Structure(np.abs(numbers), s.positions, s.cell, s.pbc))
    assert "ghost" not in (tmp_path / "p.xyz").read_text()


def test_ghost_column_that_is_not_logical_is_refused(tmp_path):
    path = tmp_path / "bad.xyz"
    path.write_text('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:ghost:I:1 '
                    'pbc="T T T"\nO 0 0 0 1\nO 1 1 1 0\n')
    with pytest.raises(InputError, match="bad.xyz.*'ghost' is int"):
        read_structure(path)


def test_molecule_round_trip_has_no_cell(tmp_path):
    s = Structure([8, 1, 1], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], np.zeros((3, 3)), False)
    write_structure(tmp_path / "w.xyz", s)
    assert "Lattice" not in (tmp_path / "w.xyz").read_text()
    t = read_structure(tmp_path / "w.xyz")
    assert not t.pbc.any() and not t.cell.any() and np.array_equal(t.positions, s.positions)


@pytest.mark.parametrize("comment, cell", [
    ("cell: 10 11 12", np.diag([10.0, 11.0, 12.0])),
    ("cell = 10 11 12", np.diag([10.0, 11.0, 12.0])),
    ("10.0 11.0 12.0", np.diag([10.0, 11.0, 12.0])),
    ("Lattice 10 0 0 0 11 0 0 0 12", np.diag([10.0, 11.0, 12.0])),
    ("10 0 0 1 11 0 0 0 12", np.array([[10.0, 0, 0], [1, 11, 0], [0, 0, 12]])),
    ("HfO2 step 3, E = -1.5, cell: 10 11 12", np.diag([10.0, 11.0, 12.0])),
    ("box 10 11 12 90 90 90", np.diag([10.0, 11.0, 12.0])),
    ('Lattice="10 0 0 0 11 0 0 0 12" Properties=species:S:1:pos:R:3',
     np.diag([10.0, 11.0, 12.0])),
])
def test_cp2k_style_xyz_cell_in_comment(tmp_path, comment, cell):
    (tmp_path / "c.xyz").write_text(f"3\n{comment}\nO 0 0 0\nHf 1 1 1\nX 2 2 2\n")
    s = read_structure(tmp_path / "c.xyz")
    assert np.allclose(s.cell, cell, atol=1e-12) and s.pbc.all()
    assert s.numbers.tolist() == [8, 72, 0]


@pytest.mark.parametrize("comment", ["water fragment E = -3.2",
                                     " i =        0, time =        0.000, E =  -1234.5678",
                                     "", "3 atoms in a box"])
def test_plain_xyz_without_cell_is_molecule(tmp_path, comment):
    (tmp_path / "m.xyz").write_text(f"2\n{comment}\nO 0 0 0\nH 0.9 0 0\n")
    s = read_structure(tmp_path / "m.xyz")
    assert not s.pbc.any() and not s.cell.any() and s.n_atoms == 2


def test_poscar_and_cif(tmp_path):
    import ase.io
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    ase.io.write(tmp_path / "POSCAR", atoms, format="vasp")
    ase.io.write(tmp_path / "si.cif", atoms)
    for name in ("POSCAR", "si.cif"):
        s = read_structure(tmp_path / name)
        assert s.n_atoms == 8 and np.allclose(np.diag(s.cell), 5.43) and s.pbc.all()
        assert (s.numbers == 14).all()


@pytest.mark.parametrize("name, text, words", [
    ("u.xyz", "1\n\nQq 0 0 0\n", ["unknown element", "Qq"]),
    ("p.xyz", '1\npbc="T T T"\nO 0 0 0\n', ["no (or a flat) cell"]),
    ("n.xyz", "2\ncell: 5 5 5\nO 0 0 nan\nH 0 0 1\n", ["NaN"]),
    ("z.xyz", "0\n\n", ["no atoms"]),
    ("e.xyz", "", ["cannot be read"]),
    ("s.xyz", "3\n\nO 0 0 0\nH 1 0 0\n", ["cannot be read"]),
    ("k.xyz", "1\ncell: 5 5\nO 0 0 0\n", ["gives 2 numbers"]),
    ("f.xyz", "2\ncell: 5 5 0\nO 0 0 0\nH 1 0 0\n", ["flat"]),
])
def test_bad_structures_name_the_file(tmp_path, name, text, words):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as e:
        read_structure(tmp_path / name)
    assert str(tmp_path / name) in str(e.value)
    for word in words:
        assert word in str(e.value)
    assert os.listdir(tmp_path) == [name]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="missing.xyz: no such"):
        read_structure(tmp_path / "missing.xyz")


def test_write_refuses_bad_structure_and_leaves_nothing(tmp_path):
    s = _triclinic()
    positions = s.positions.copy()
    positions[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        write_structure(tmp_path / "bad.xyz", Structure(s.numbers, positions, s.cell, s.pbc))
    with pytest.raises(InputError, match="no atoms"):
        write_structure(tmp_path / "empty.xyz", Structure([], np.zeros((0, 3)), s.cell, True))
    assert os.listdir(tmp_path) == []


def test_reading_is_never_an_mpi_collective(tmp_path, monkeypatch):
    """ase.io.read broadcasts from rank 0 when mpi4py is loaded; one rank reading alone (rank 0
    preparing partitions while the others wait) must not start an MPI collective."""
    import ase.parallel

    class TwoRanks:  # what ase sees under mpirun -n 2
        size, rank = 2, 0

    def broadcast(*args, **kwargs):
        raise AssertionError("read_structure started an MPI broadcast")

    write_structure(tmp_path / "s.xyz", _triclinic())
    monkeypatch.setattr(ase.parallel, "world", TwoRanks())
    monkeypatch.setattr(ase.parallel, "broadcast", broadcast)
    assert read_structure(tmp_path / "s.xyz").n_atoms == 30
