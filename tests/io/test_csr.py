import os

import numpy as np
import pytest
import scipy.sparse as sp

from hampart.cli import main
from hampart.errors import InputError
from hampart.io.csr import read_csr, read_matrix, write_csr, write_matrix


def _symmetric(n=40, seed=0):
    """A symmetric sparse matrix whose values need all 17 digits."""
    A = sp.random(n, n, density=0.2, random_state=seed, format="csr")
    rng = np.random.default_rng(seed)
    A.data = rng.normal(size=A.nnz) * 10.0 ** rng.integers(-8, 9, size=A.nnz)
    A = A + A.T + sp.diags(np.random.default_rng(seed + 1).normal(size=n) / 3.0)
    return A.tocsr()


def _same(A, B):
    """Same shape, same stored positions, bitwise equal values."""
    A, B = sp.csr_matrix(A), sp.csr_matrix(B)
    A.sort_indices()
    B.sort_indices()
    return (A.shape == B.shape and np.array_equal(A.indptr, B.indptr)
            and np.array_equal(A.indices, B.indices)
            and np.array_equal(A.data.view(np.int64), B.data.view(np.int64)))


def test_csr_npz_csr_round_trip_is_bitwise(tmp_path):
    H = _symmetric()
    write_matrix(tmp_path / "a.csr", H)
    A = read_matrix(tmp_path / "a.csr")
    write_matrix(tmp_path / "a.npz", A)
    B = read_matrix(tmp_path / "a.npz")
    write_matrix(tmp_path / "b.csr", B)
    assert _same(A, H) and _same(B, H)
    assert (tmp_path / "a.csr").read_text() == (tmp_path / "b.csr").read_text()
    assert A.dtype == np.float64 and A.has_canonical_format


def test_written_text_is_cp2k_style_upper_triangle(tmp_path):
    H = _symmetric(n=12)
    write_csr(tmp_path / "h.csr", H)
    table = np.loadtxt(tmp_path / "h.csr")
    rows, cols = table[:, 0].astype(int), table[:, 1].astype(int)
    assert rows.min() >= 1 and (rows <= cols).all()
    assert np.array_equal(np.lexsort((cols, rows)), np.arange(len(rows)))  # sorted by row, col
    assert len(rows) == sp.triu(H).nnz


def test_upper_lower_and_full_files_give_the_same_matrix(tmp_path):
    H = _symmetric()
    for tri in ("upper", "full", "lower"):
        write_csr(tmp_path / f"{tri}.csr", H, triangle=tri)
    U, F, L = (read_csr(tmp_path / f"{t}.csr") for t in ("upper", "full", "lower"))
    assert _same(U, H) and _same(F, H) and _same(L, H)
    assert _same(read_csr(tmp_path / "upper.csr", triangle="upper"), H)


def test_cp2k_spacing_blank_lines_and_size(tmp_path):
    (tmp_path / "h.csr").write_text("     1     1  -0.5000000000000000E+00\n\n"
                                    "     1     3   0.1250000000000000E+00\n   \n"
                                    "\t2\t2\t-0.2500000000000000E+00\n")
    H = read_csr(tmp_path / "h.csr", n_orbitals=4)
    assert H.shape == (4, 4)
    assert H[0, 2] == H[2, 0] == 0.125 and H[0, 0] == -0.5 and H[1, 1] == -0.25
    assert read_csr(tmp_path / "h.csr").shape == (3, 3)
    (tmp_path / "huge.csr").write_text("1 1 0.5\n1 4000000000 0.1\n")
    with pytest.raises(InputError, match="line 2 .* has index 4000000000"):
        read_csr(tmp_path / "huge.csr")


def test_identical_repeats_are_merged_not_summed(tmp_path):
    (tmp_path / "h.csr").write_text("1 1 0.5\n1 2 0.25\n1 1 0.5\n")
    H = read_csr(tmp_path / "h.csr")
    assert H[0, 0] == 0.5 and H[1, 0] == 0.25


@pytest.mark.parametrize("text, words", [
    ("1 1 0.5\n1 2\n", ["line 2", "3 fields"]),
    ("1 1 0.5\n1 2 0.1 7\n", ["line 2", "3 fields"]),
    ("1 1 1 0.5\n2 2 2 0.25\n", ["line 1", "3 fields"]),
    ("9 1 1 0.5\n", ["line 1", "3 fields"]),
    ("1 1 0.5\n\n2 x 0.1\n", ["line 3", "integer"]),
    ("1 1 0.5\n2 2 abc\n", ["line 2", "integer integer number"]),
    ("1 1 0.5\n0 1 0.1\n", ["line 2", "1-based"]),
    ("1 1 0.5\n-1 1 0.1\n", ["line 2", "1-based"]),
    ("1 1 nan\n", ["line 1", "NaN"]),
    ("1 1 0.5\n2 2 inf\n", ["line 2", "NaN or infinite"]),
    ("1 1 0.5\n1 9 0.1\n", ["line 2", "beyond the 4 orbitals"]),
    ("1 2 0.5\n2 1 0.7\n", ["not symmetric", "H[1,2] = 0.5", "H[2,1] = 0.7"]),
    ("1 1 0.5\n1 2 0.1\n\n1 1 0.6\n", ["line 1", "line 4", "different values"]),
    ("", ["empty"]),
    ("\n\n", ["empty"]),
])
def test_malformed_csr_names_file_and_line(tmp_path, text, words):
    path = tmp_path / "bad.csr"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        read_csr(path, n_orbitals=4)
    assert str(path) in str(e.value)
    for word in words:
        assert word in str(e.value)
    assert os.listdir(tmp_path) == ["bad.csr"]


def test_explicit_triangle_is_enforced(tmp_path):
    (tmp_path / "h.csr").write_text("1 1 0.5\n1 2 0.1\n2 1 0.1\n")
    with pytest.raises(InputError, match="line 3 .* outside the upper triangle"):
        read_csr(tmp_path / "h.csr", triangle="upper")
    with pytest.raises(InputError, match="line 2 .* outside the lower triangle"):
        read_csr(tmp_path / "h.csr", triangle="lower")
    with pytest.raises(InputError, match="triangle='diagonal'"):
        read_csr(tmp_path / "h.csr", triangle="diagonal")
    assert read_csr(tmp_path / "h.csr", triangle="full")[1, 0] == 0.1


def test_write_refuses_what_it_cannot_write(tmp_path):
    A = sp.csr_matrix(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(InputError, match="not symmetric"):
        write_csr(tmp_path / "a.csr", A)
    write_csr(tmp_path / "a.csr", A, triangle="full")
    assert (tmp_path / "a.csr").read_text() == "1 1 1.0\n1 2 2.0\n2 2 1.0\n"
    bad = sp.csr_matrix(np.array([[np.nan]]))
    for name in ("b.csr", "b.npz"):
        with pytest.raises(InputError, match="NaN"):
            write_matrix(tmp_path / name, bad)
    assert os.listdir(tmp_path) == ["a.csr"]


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="extension"):
        read_matrix(tmp_path / "h.txt")
    with pytest.raises(InputError, match="extension"):
        write_matrix(tmp_path / "h.txt", _symmetric())
    with pytest.raises(InputError, match="no such"):
        read_matrix(tmp_path / "h.npz")
    with pytest.raises(InputError, match="no such"):
        read_matrix(tmp_path / "h.csr")
    assert os.listdir(tmp_path) == []


def test_npz_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="not a scipy sparse"):
        read_matrix(path)


def test_npz_with_out_of_range_indices_is_refused(tmp_path):
    path = tmp_path / "broken.npz"
    np.savez(path, format=np.array("csr"), shape=np.array([2, 2]), data=np.ones(2),
             indices=np.array([0, 7]), indptr=np.array([0, 1, 2]))
    with pytest.raises(InputError, match="broken.npz"):
        read_matrix(path)


def test_npz_size_and_values_checked(tmp_path):
    sp.save_npz(tmp_path / "r.npz", sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(InputError, match="not square"):
        read_matrix(tmp_path / "r.npz")
    sp.save_npz(tmp_path / "n.npz", sp.csr_matrix(np.array([[np.inf]])))
    with pytest.raises(InputError, match="NaN or infinite"):
        read_matrix(tmp_path / "n.npz")
    sp.save_npz(tmp_path / "ok.npz", _symmetric(n=5))
    with pytest.raises(InputError, match="expected 6"):
        read_matrix(tmp_path / "ok.npz", n_orbitals=6)


def test_convert_command(tmp_path, capsys):
    """``run_convert`` both ways and with a full triangle; the command line's exit status and
    messages for bad input at the end."""
    from hampart.io.commands import ConvertConfig, run_convert

    H = _symmetric()
    write_matrix(tmp_path / "h.npz", H)
    assert run_convert(ConvertConfig(str(tmp_path / "h.npz"), str(tmp_path / "h.csr"))) == 0
    out = capsys.readouterr().out
    assert "40 x 40" in out and f"{H.nnz} stored entries" in out and "H_ji| = 0" in out
    assert _same(read_matrix(tmp_path / "h.csr"), H)
    assert run_convert(ConvertConfig(str(tmp_path / "h.csr"), str(tmp_path / "back.npz"))) == 0
    assert _same(read_matrix(tmp_path / "back.npz"), H)
    assert run_convert(ConvertConfig(str(tmp_path / "h.npz"), str(tmp_path / "f.csr"),
                                     triangle="full")) == 0
    assert len((tmp_path / "f.csr").read_text().splitlines()) == H.nnz
    before = sorted(os.listdir(tmp_path))
    (tmp_path / "bad.csr").write_text("1 1 0.5\n1 1 x\n")
    assert main(["convert", str(tmp_path / "bad.csr"), str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err
    assert "bad.csr" in err and "line 2" in err
    assert main(["convert", str(tmp_path / "h.npz"), str(tmp_path / "h.txt")]) == 2
    assert main(["convert", str(tmp_path / "h.npz"), str(tmp_path / "h.npz")]) == 2
    assert sorted(os.listdir(tmp_path)) == sorted(before + ["bad.csr"])


def test_npz_triangles_are_completed_and_asymmetry_refused(tmp_path):
    A = _symmetric()
    for name, part in (("upper", sp.triu(A)), ("lower", sp.tril(A))):
        sp.save_npz(tmp_path / f"{name}.npz", part.tocsr())
        assert _same(read_matrix(tmp_path / f"{name}.npz"), A), name
    B = A.tolil()
    B[3, 7] = B[7, 3] + 1e-6 * abs(A).max()  # above the 1e-10 relative tolerance
    sp.save_npz(tmp_path / "asym.npz", B.tocsr())
    with pytest.raises(InputError, match=r"asym.npz: the full matrix is not symmetric: H\[3,7\]"):
        read_matrix(tmp_path / "asym.npz")
