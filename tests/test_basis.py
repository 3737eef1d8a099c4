import numpy as np
import pytest

from hampart.basis import Basis, builtin_basis, load_basis, merge_bases, same_shells, species_name
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


def test_ghost_keeps_the_orbitals_of_its_element():
    b = builtin_basis("SZV")
    assert b.shells_of(-72) == (0, 0, 1, 2) and b.n_orbitals(-8) == 4
    assert b.union_index(-8).tolist() == b.union_index(8).tolist()
    assert b.orbital_offsets([72, -8, 0, 8, -72]).tolist() == [0, 10, 14, 14, 18, 28]
    assert b.table_rows() == 2 * 78 + 1 and b.table_rows([-118]) == 2 * 118 + 1
    assert [species_name(z) for z in (8, -8, 0)] == ["O", "O_ghost", "X"]


def test_ghost_species_come_from_the_data_and_files_record_them(tmp_path):
    b = builtin_basis("SZV")
    assert b.species == b.elements and b.ghosts == ()
    g = b.with_ghosts([72, -8, -8, 8, 0])
    assert g.ghosts == (8,) and g.species == b.elements + [-8]
    assert g.with_ghosts([-8]) is g and b.with_ghosts([8, 0]) is b
    assert g.to_dict()["ghosts"] == ["O"] and "ghosts" not in b.to_dict()
    g.to_yaml(tmp_path / "g.yaml")
    assert Basis.from_yaml(tmp_path / "g.yaml") == g
    assert Basis.from_dict(b.to_dict()) == b  # a record from before ghosts loads as before
    assert same_shells(g.to_dict(), b.to_dict()) and not same_shells(
        g.to_dict(), builtin_basis("DZVP").to_dict())


def test_ghost_of_an_unknown_element_is_named():
    b = Basis({8: (0, 1)}, name="O-only")
    with pytest.raises(InputError, match="Hf_ghost not in basis 'O-only'.*keeps its element"):
        b.check([8, -72], source="s.xyz")
    with pytest.raises(InputError, match="s.xyz.*Hf_ghost"):
        b.with_ghosts([-72], source="s.xyz")
    with pytest.raises(InputError, match="ghosts of element.*Hf without shells"):
        Basis({8: (0, 1)}, ghosts=(72,))
    with pytest.raises(InputError, match="not a list of element symbols"):
        Basis.from_dict({"shells": {"O": [0, 1]}, "ghosts": "O"})


def test_data_sets_listing_their_own_elements_or_a_whole_table_share_one_basis():
    # hampart label lists the elements a structure holds; a basis file may list a whole table
    table = builtin_basis("SZV")
    si_only = Basis({14: table.shells[14]}, name=table.name)
    o_ghost = Basis({8: table.shells[8]}, name=table.name, ghosts=(8,))
    merged = merge_bases([("a", table.to_dict()), ("b", si_only.to_dict()), ("c", o_ghost.to_dict())])
    assert merged.shells == table.shells and merged.ghosts == (8,) and merged.name == table.name
    assert merge_bases([("b", si_only.to_dict())]) == si_only
    other = Basis({14: (0, 0, 1, 1, 2)}, name=table.name)
    with pytest.raises(InputError, match="b: gives Si the shells \\[0, 0, 1, 1, 2\\], a gives "
                                         "it \\[0, 1\\]"):
        merge_bases([("a", table.to_dict()), ("b", other.to_dict())])
    with pytest.raises(InputError, match="b: was labelled in basis 'DZVP'"):
        merge_bases([("a", table.to_dict()), ("b", builtin_basis("DZVP").to_dict())])


def test_partitions_store_the_structures_elements_only():
    table = builtin_basis("SZV")
    si = table.for_structure([14, 14])
    assert list(si.shells) == [14] and si.n_union == 4 and si.name == table.name
    hf_o = table.for_structure([72, -8, 8, 0])
    assert sorted(hf_o.shells) == [8, 72] and hf_o.ghosts == (8,) and hf_o.n_union == 10
    with pytest.raises(InputError, match="Pt"):
        Basis({14: (0, 1)}, name="Si").for_structure([78])
