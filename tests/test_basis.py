import numpy as np
import pytest

from hampart.basis import Basis, builtin_basis, load_basis
from hampart.errors import InputError


def test_szv_counts_and_offsets():
    b = builtin_basis("SZV")
    assert b.n_orbitals(8) == 4 and b.n_orbitals(72) == 10 and b.n_orbitals(0) == 0
    assert b.orbital_offsets([72, 8, 0, 8]).tolist() == [0, 10, 14, 14, 18]


def test_union_basis_places_each_shell_in_its_slot():
    b = Basis({8: (0, 1), 72: (0, 0, 1, 2), 1: (0,)})
    assert b.union_shells == (0, 0, 1, 2)
    assert b.n_union == 10
    assert b.union_index(72).tolist() == list(range(10))
    assert b.union_index(8).tolist() == [0, 2, 3, 4]  # s -> first s slot, p -> the p slot
    assert b.union_index(1).tolist() == [0]
    assert b.union_mask(8).sum() == 4


def test_union_of_disjoint_multiplicities():
    b = Basis({8: (0, 1, 1), 14: (0, 0, 2)})
    assert b.union_shells == (0, 0, 1, 1, 2)
    assert b.union_index(14).tolist() == [0, 1, 8, 9, 10, 11, 12]


def test_yaml_round_trip(tmp_path):
    b = builtin_basis("DZVP")
    b.to_yaml(tmp_path / "b.yaml")
    assert load_basis(tmp_path / "b.yaml").shells == b.shells


@pytest.mark.parametrize("text, word", [
    ("shells: {Xx: [0]}", "unknown element"),
    ("shells: {O: [s, p]}", "not a list of integers"),
    ("other: 1", "no 'shells'"),
    ("shells: [", "not valid YAML"),
])
def test_bad_basis_files(tmp_path, text, word):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=word) as e:
        load_basis(path)
    assert str(path) in str(e.value)


def test_missing_element_named():
    with pytest.raises(InputError, match="Au") as e:
        builtin_basis("SZV").check(np.array([8, 79]), "x.xyz")
    assert "x.xyz" in str(e.value)
    with pytest.raises(InputError, match="built-in"):
        load_basis("TZV2P")
