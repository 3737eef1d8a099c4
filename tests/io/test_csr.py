import os

import numpy as np
import pytest
import scipy.sparse as sp

from hampart.cli import main
from hampart.errors import InputError
from hampart.io.csr import read_csr, read_matrix, write_csr, write_matrix


def _symmetric(n=40, seed=0):
    A = sp.random(n, n, density=0.2, random_state=seed, format="csr")
    A = A + A.T + sp.diags(np.random.default_rng(seed).normal(size=n))
    return A.tocsr()


def test_csr_npz_csr_round_trip_is_bitwise(tmp_path):
    H = _symmetric()
    write_matrix(tmp_path / "a.csr", H)
    A = read_matrix(tmp_path / "a.csr")
    write_matrix(tmp_path / "a.npz", A)
    B = read_matrix(tmp_path / "a.npz")
    write_matrix(tmp_path / "b.csr", B)
    assert (A != H).nnz == 0 and (B != H).nnz == 0
    assert (tmp_path / "a.csr").read_text() == (tmp_path / "b.csr").read_text()


def test_upper_and_full_files_give_the_same_matrix(tmp_path):
    H = _symmetric()
    write_csr(tmp_path / "u.csr", H, triangle="upper")
    write_csr(tmp_path / "f.csr", H, triangle="full")
    write_csr(tmp_path / "l.csr", H, triangle="lower")
    U, F, L = (read_csr(tmp_path / f) for f in ("u.csr", "f.csr", "l.csr"))
    assert (U != F).nnz == 0 and (L != F).nnz == 0
    assert (U != H).nnz == 0


def test_cp2k_style_spacing_and_size(tmp_path):
    (tmp_path / "h.csr").write_text("     1     1  -0.5000000000000000E+00\n"
                                    "     1     3   0.1250000000000000E+00\n"
                                    "     2     2  -0.2500000000000000E+00\n")
    H = read_csr(tmp_path / "h.csr", n_orbitals=4)
    assert H.shape == (4, 4)
    assert H[0, 2] == H[2, 0] == 0.125 and H[0, 0] == -0.5


@pytest.mark.parametrize("text, word", [
    ("1 1 0.5\n1 2\n", "line 2"),
    ("1 1 0.5\n2 x 0.1\n", "line 2"),
    ("1 1 0.5\n0 1 0.1\n", "1-based"),
    ("1 1 nan\n", "line 1"),
    ("1 1 0.5\n1 9 0.1\n", "beyond"),
    ("1 2 0.5\n2 1 0.7\n", "not symmetric"),
    ("1 1 0.5\n1 1 0.5\n", "more than once"),
    ("", "empty"),
])
def test_malformed_csr_names_file_and_line(tmp_path, text, word):
    path = tmp_path / "bad.csr"
    path.write_text(text)
    with pytest.raises(InputError, match=word) as e:
        read_csr(path, n_orbitals=4)
    assert str(path) in str(e.value)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="extension"):
        read_matrix(tmp_path / "h.txt")
    with pytest.raises(InputError, match="no such"):
        read_matrix(tmp_path / "h.npz")


def test_npz_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="not a scipy sparse"):
        read_matrix(path)


def test_convert_cli(tmp_path, capsys):
    H = _symmetric()
    write_matrix(tmp_path / "h.npz", H)
    assert main(["convert", str(tmp_path / "h.npz"), str(tmp_path / "h.csr")]) == 0
    assert "nonzeros" in capsys.readouterr().out
    assert (read_matrix(tmp_path / "h.csr") != H).nnz == 0
    (tmp_path / "bad.csr").write_text("1 1 x\n")
    assert main(["convert", str(tmp_path / "bad.csr"), str(tmp_path / "out.npz")]) == 2
    assert not os.path.exists(tmp_path / "out.npz")
    assert sorted(os.listdir(tmp_path)) == ["bad.csr", "h.csr", "h.npz"]
