"""Model files keep the network they were trained as when a default changes."""

import numpy as np
import torch

from hampart.basis import Basis
from hampart.model import HamiltonianModel
from hampart.model.io import BEFORE_OPTIONS, default_option, load_model, save_model
from hampart.model.radial import RadialMLP, SpeciesRadialMLP
from hampart.testing import graph_tensors, random_structure

HF, O = 72, 8
RCUT = 4.0
SMALL = {"channels": 8, "ff_hidden": 16, "rcut": RCUT, "lmax": 4, "mmax": 2}


def _basis() -> Basis:
    return Basis({HF: (0, 0, 1, 2), O: (0, 1)}, name="SZV-HfO")


def _edge_blocks(model):
    """The model's edge blocks (float64) on a small random structure: they pass every radial."""
    numbers, positions, cell = random_structure(20, np.eye(3) * 9.0, seed=4)
    args, _ = graph_tensors(numbers, positions, cell, RCUT)
    with torch.no_grad():
        edges = model(*args)[1]
    assert edges.abs().max() > 1e-3
    return edges


def _radials(model):
    return [model.message[0].radial, model.edge_block.radial]


def test_a_file_that_does_not_name_radial_species_loads_with_the_distance_radial(tmp_path):
    """Files written before ``radial_species`` existed hold no such key; they were trained
    with radial MLPs of the distance only, and load as that network, whatever today's default."""
    torch.manual_seed(0)
    old = HamiltonianModel(_basis(), **SMALL, radial_species=False).double()
    path = tmp_path / "old.pt"
    save_model(path, old, SMALL, _basis())
    payload = torch.load(path, weights_only=True)
    assert payload["model"]["radial_species"] is False  # written as the model was built
    del payload["model"]["radial_species"]  # as a file of that time
    torch.save(payload, path)

    loaded, _ = load_model(path, dtype=torch.float64)
    assert BEFORE_OPTIONS["radial_species"] is False and not loaded.radial_species
    assert all(type(r) is RadialMLP for r in _radials(loaded))
    assert torch.equal(_edge_blocks(old), _edge_blocks(loaded))


def test_save_model_writes_the_radial_the_model_has_whatever_the_arguments_say(tmp_path):
    """A caller that leaves ``radial_species`` out of the saved arguments still gets a file
    that loads as the network it saved, species-aware or not."""
    for species_aware in (True, False):
        torch.manual_seed(1)
        model = HamiltonianModel(_basis(), **SMALL, radial_species=species_aware).double()
        path = tmp_path / f"model-{species_aware}.pt"
        save_model(path, model, SMALL, _basis())  # the option is not among the arguments
        loaded, payload = load_model(path, dtype=torch.float64)
        assert payload["model"]["radial_species"] is species_aware
        kind = SpeciesRadialMLP if species_aware else RadialMLP
        assert all(type(r) is kind for r in _radials(loaded))
        assert torch.equal(_edge_blocks(model), _edge_blocks(loaded))


def test_todays_default_radial_is_what_a_model_without_the_option_builds():
    model = HamiltonianModel(_basis(), **SMALL)
    assert model.radial_species is default_option("radial_species")
    kind = SpeciesRadialMLP if default_option("radial_species") else RadialMLP
    assert all(type(r) is kind for r in _radials(model))
