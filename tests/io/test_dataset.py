import os

import numpy as np
import pytest
import scipy.sparse as sp

from hampart.basis import load_basis
from hampart.errors import InputError
from hampart.io.atomic import atomic_directory, atomic_file
from hampart.io.csr import write_matrix
from hampart.io.dataset import check_matrix, load_dataset, save_dataset
from hampart.io.structure import Structure, write_structure


def _dataset():
    """Hf, O, O and a ghost in a periodic cell; SZV gives 10 + 4 + 4 orbitals."""
    s = Structure([72, 8, 8, 0], np.eye(4, 3) * 2.0 + 1.0, np.eye(3) * 8.0, True)
    n = 10 + 4 + 4
    H = sp.random(n, n, density=0.3, random_state=0)
    return s, (H + H.T).tocsr(), load_basis("SZV")


def test_save_load_round_trip(tmp_path):
    s, H, basis = _dataset()
    save_dataset(tmp_path / "d", s, H, basis, meta={"seed": 3, "rcut": 8.0})
    assert sorted(os.listdir(tmp_path)) == ["d"]
    assert sorted(os.listdir(tmp_path / "d")) == ["H.npz", "basis.yaml", "meta.json",
                                                  "structure.xyz"]
    d = load_dataset(tmp_path / "d")
    assert (d.hamiltonian != H).nnz == 0 and np.array_equal(d.hamiltonian.data, H.data)
    assert d.basis.shells == basis.shells and d.meta == {"seed": 3, "rcut": 8.0}
    assert d.structure.numbers.tolist() == [72, 8, 8, 0]
    assert np.array_equal(d.structure.positions, s.positions) and d.path == str(tmp_path / "d")


def test_dataset_without_hamiltonian(tmp_path):
    s, _, basis = _dataset()
    save_dataset(tmp_path / "d", s, None, basis)
    d = load_dataset(tmp_path / "d")
    assert d.hamiltonian is None and d.meta == {}


def test_structure_file_with_csr_and_basis_name(tmp_path):
    s, H, _ = _dataset()
    write_structure(tmp_path / "s.xyz", s)
    write_matrix(tmp_path / "H.csr", H)
    d = load_dataset(tmp_path / "s.xyz", hamiltonian=tmp_path / "H.csr", basis="szv")
    assert (d.hamiltonian != H).nnz == 0 and d.basis.name == "SZV"
    with pytest.raises(InputError, match="no basis given"):
        load_dataset(tmp_path / "s.xyz", hamiltonian=tmp_path / "H.csr")


def test_orbital_count_mismatch_names_counts_and_the_basis_that_fits(tmp_path):
    s, H, _ = _dataset()
    with pytest.raises(InputError, match="18 orbitals but basis .DZVP. gives 52") as e:
        check_matrix(H, s, load_basis("DZVP"), source="H.csr")
    message = str(e.value)
    assert "H.csr" in message and "1 Hf x 26" in message and "2 O x 13" in message
    assert "--basis SZV" in message


def test_check_matrix_refusals(tmp_path):
    s, H, basis = _dataset()
    with pytest.raises(InputError, match="not square"):
        check_matrix(sp.csr_matrix((18, 17)), s, basis, source="H.npz")
    bad = H.copy()
    bad.data[0] = np.inf
    with pytest.raises(InputError, match="H.npz: contains NaN or infinite"):
        check_matrix(bad, s, basis, source="H.npz")
    silicon = Structure([14, 8], np.eye(2, 3), np.eye(3) * 5, True, source="si.xyz")
    with pytest.raises(InputError, match="si.xyz: element.s. Si not in basis"):
        check_matrix(sp.csr_matrix((8, 8)), silicon, _o_only_basis(tmp_path), source="H.npz")


def _o_only_basis(tmp_path):
    (tmp_path / "o.yaml").write_text("name: O-only\nshells:\n  O: [0, 1]\n")
    return load_basis(tmp_path / "o.yaml")


def test_bad_dataset_directories(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without structure.xyz"):
        load_dataset(tmp_path / "empty")
    s, H, basis = _dataset()
    save_dataset(tmp_path / "d", s, H, basis)
    (tmp_path / "d" / "meta.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="meta.json: is not a JSON object"):
        load_dataset(tmp_path / "d")
    (tmp_path / "d" / "meta.json").write_text("{broken")
    with pytest.raises(InputError, match="meta.json: unreadable"):
        load_dataset(tmp_path / "d")
    with pytest.raises(InputError, match="no such structure file"):
        load_dataset(tmp_path / "nothing.xyz", basis="SZV")


def test_nothing_half_written(tmp_path):
    s, H, basis = _dataset()
    bad = H.copy()
    bad.data[0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        save_dataset(tmp_path / "d", s, bad, basis)
    with pytest.raises(InputError, match="orbitals"):
        save_dataset(tmp_path / "d", s, H[:10, :10], basis)
    with pytest.raises(TypeError):
        save_dataset(tmp_path / "d", s, H, basis, meta={"f": object()})
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "e") as tmp:
            (tmp / "x").write_text("partial")
            raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "f.txt") as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_atomic_file_keeps_the_extension_a_writer_needs(tmp_path):
    """matplotlib and sisl choose the format by the file's extension: the temporary has it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    with atomic_file(tmp_path / "p.png", suffix=".png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        fig.savefig(tmp)
    plt.close(fig)
    assert os.listdir(tmp_path) == ["p.png"]
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_output_refused_unless_replace(tmp_path):
    s, H, basis = _dataset()
    save_dataset(tmp_path / "d", s, H, basis)
    with pytest.raises(InputError, match="not empty.*--force"):
        save_dataset(tmp_path / "d", s, H, basis)
    save_dataset(tmp_path / "d", s, 2 * H, basis, replace=True)
    assert np.allclose(load_dataset(tmp_path / "d").hamiltonian.toarray(), 2 * H.toarray())
    assert sorted(os.listdir(tmp_path)) == ["d"]  # the old copy is gone
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="f: exists and is a file"):
        save_dataset(tmp_path / "f", s, H, basis)
    (tmp_path / "empty").mkdir()
    save_dataset(tmp_path / "empty", s, H, basis)  # an empty directory is free to fill
    assert (tmp_path / "empty" / "H.npz").is_file()


def test_atomic_outputs_have_normal_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "y").write_text("y")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_overlap_passed_as_hamiltonian_is_flagged(tmp_path, capsys):
    from hampart.cli import main
    from hampart.errors import InputWarning

    s, H, basis = _dataset()
    S = H.tolil()
    S.setdiag(1.0)
    write_structure(tmp_path / "s.xyz", s)
    write_matrix(tmp_path / "S.npz", S.tocsr())
    with pytest.warns(InputWarning, match="overlap matrix"):
        load_dataset(tmp_path / "s.xyz", hamiltonian=tmp_path / "S.npz", basis="SZV")
    assert main(["slice", str(tmp_path / "s.xyz"), "--hamiltonian", str(tmp_path / "S.npz"),
                 "--basis", "SZV", "--rcut", "3", "--parts", "1", "--out",
                 str(tmp_path / "p")]) == 0  # valid input: a warning, not a refusal
    assert "warning: " + str(tmp_path / "S.npz") in capsys.readouterr().err


def test_an_overlap_checked_as_overlap_draws_no_warning():
    # the CP2K labeller checks the S it wrote with overlap=True: a unit diagonal is expected there
    import warnings

    from hampart.errors import InputWarning

    s, H, basis = _dataset()
    S = H.tolil()
    S.setdiag(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        check_matrix(S.tocsr(), s, basis, source="S", overlap=True)
    with pytest.warns(InputWarning, match="overlap matrix"):
        check_matrix(S.tocsr(), s, basis, source="S")
