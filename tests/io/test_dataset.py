import os

import numpy as np
import pytest
import scipy.sparse as sp

from hampart.basis import load_basis
from hampart.errors import InputError
from hampart.io.atomic import atomic_directory
from hampart.io.dataset import check_matrix, load_dataset, save_dataset
from hampart.io.structure import Structure


def _dataset():
    s = Structure([72, 8, 8, 0], np.eye(4, 3) * 2.0 + 1.0, np.eye(3) * 8.0, True)
    n = 10 + 4 + 4
    H = sp.random(n, n, density=0.3, random_state=0)
    return s, (H + H.T).tocsr(), load_basis("SZV")


def test_save_load_round_trip(tmp_path):
    s, H, basis = _dataset()
    save_dataset(tmp_path / "d", s, H, basis, meta={"seed": 3})
    d = load_dataset(tmp_path / "d")
    assert (d.hamiltonian != H).nnz == 0
    assert d.basis.shells == basis.shells and d.meta == {"seed": 3}
    assert d.structure.numbers.tolist() == [72, 8, 8, 0]


def test_orbital_count_mismatch_names_counts(tmp_path):
    s, H, _ = _dataset()
    with pytest.raises(InputError, match="18 orbitals but basis .DZVP. gives 51") as e:
        check_matrix(H, s, load_basis("DZVP"), source="H.csr")
    assert "H.csr" in str(e.value) and "--basis" in str(e.value)


def test_nothing_half_written(tmp_path):
    s, H, basis = _dataset()
    bad = H.copy()
    bad.data[0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        save_dataset(tmp_path / "d", s, bad, basis)
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "e") as tmp:
            (tmp / "x").write_text("partial")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_existing_output_refused_unless_replace(tmp_path):
    s, H, basis = _dataset()
    save_dataset(tmp_path / "d", s, H, basis)
    with pytest.raises(InputError, match="--force"):
        save_dataset(tmp_path / "d", s, H, basis)
    save_dataset(tmp_path / "d", s, 2 * H, basis, replace=True)
    assert np.allclose(load_dataset(tmp_path / "d").hamiltonian.toarray(), 2 * H.toarray())
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="is a file"):
        save_dataset(tmp_path / "f", s, H, basis)
