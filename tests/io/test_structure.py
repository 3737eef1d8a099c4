import numpy as np
import pytest

from hampart.errors import InputError
from hampart.io.structure import Structure, read_structure, write_structure


def test_extxyz_round_trip_exact_with_ghosts(tmp_path):
    rng = np.random.default_rng(1)
    cell = np.array([[5.1, 0.0, 0.0], [0.3, 6.2, 0.0], [0.1, 0.2, 7.3]])
    s = Structure([8, 0, 72, 8], rng.random((4, 3)) @ cell, cell, [True, True, False])
    write_structure(tmp_path / "s.xyz", s)
    t = read_structure(tmp_path / "s.xyz")
    assert t.numbers.tolist() == [8, 0, 72, 8]
    assert np.array_equal(t.positions, s.positions) and np.array_equal(t.cell, s.cell)
    assert t.pbc.tolist() == [True, True, False]


@pytest.mark.parametrize("comment, cell", [
    ("cell: 10 11 12", np.diag([10.0, 11.0, 12.0])),
    ("10.0 11.0 12.0", np.diag([10.0, 11.0, 12.0])),
    ("Lattice 10 0 0 0 11 0 0 0 12", np.diag([10.0, 11.0, 12.0])),
])
def test_cp2k_style_xyz_cell_in_comment(tmp_path, comment, cell):
    (tmp_path / "c.xyz").write_text(f"2\n{comment}\nO 0 0 0\nHf 1 1 1\n")
    s = read_structure(tmp_path / "c.xyz")
    assert np.allclose(s.cell, cell) and s.pbc.all()


def test_plain_xyz_is_molecule(tmp_path):
    (tmp_path / "m.xyz").write_text("2\nwater fragment E = -3.2\nO 0 0 0\nH 0.9 0 0\n")
    s = read_structure(tmp_path / "m.xyz")
    assert not s.pbc.any()


def test_poscar_and_cif(tmp_path):
    import ase.io
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    ase.io.write(tmp_path / "POSCAR", atoms, format="vasp")
    ase.io.write(tmp_path / "si.cif", atoms)
    for name in ("POSCAR", "si.cif"):
        s = read_structure(tmp_path / name)
        assert s.n_atoms == 8 and np.allclose(np.diag(s.cell), 5.43) and s.pbc.all()


def test_bad_structures(tmp_path):
    with pytest.raises(InputError, match="no such"):
        read_structure(tmp_path / "missing.xyz")
    (tmp_path / "u.xyz").write_text("1\n\nQq 0 0 0\n")
    with pytest.raises(InputError, match="u.xyz"):
        read_structure(tmp_path / "u.xyz")
    (tmp_path / "p.xyz").write_text('1\npbc="T T T"\nO 0 0 0\n')
    with pytest.raises(InputError, match="no \\(or a flat\\) cell"):
        read_structure(tmp_path / "p.xyz")
