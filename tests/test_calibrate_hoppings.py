"""benchmarks/calibrate_hoppings.py: least-squares gains of the hoppings on the edges across
partition cuts (a measured option, docs/model.md)."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hampart.basis import load_basis
from hampart.errors import InputError
from hampart.evaluate import predict_hamiltonian
from hampart.generate import generate
from hampart.io.csr import write_matrix
from hampart.io.dataset import load_dataset
from hampart.model import HamiltonianModel
from hampart.partition import slice_dataset

_spec = importlib.util.spec_from_file_location(
    "calibrate_hoppings", Path(__file__).parents[1] / "benchmarks" / "calibrate_hoppings.py")
calibrate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibrate)
cut_edge_gains, scale_hoppings = calibrate.cut_edge_gains, calibrate.scale_hoppings

KW = {"lmax": 4, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1, "layers": 1, "rcut": 4.0}
# labels = the model's own prediction with each species pair's hoppings times these
FACTORS = {(8, 8): 1.01, (8, 72): 0.98, (72, 72): 1.03}


def _predict(model, structure):
    with torch.no_grad():
        return predict_hamiltonian(model, model.basis, structure, 1, 4.0,
                                   dtype=torch.float64)[0].tocoo()


def _hopping_factor(model, structure, P, factors):
    """Per stored element of ``P``: its pair's factor for hoppings, 1 on the on-site blocks."""
    numbers = np.asarray(structure.numbers)
    atom = np.repeat(np.arange(len(numbers)), np.diff(model.basis.orbital_offsets(numbers)))
    i, j = atom[P.row], atom[P.col]
    lo, hi = np.minimum(numbers[i], numbers[j]), np.maximum(numbers[i], numbers[j])
    return np.array([1.0 if a == b else factors[(int(x), int(y))]
                     for a, b, x, y in zip(i, j, lo, hi)])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    generated = generate("hfo2", seed=0, out=root / "generated", size=(2, 2, 2),
                         interaction_radius=4.0)
    torch.manual_seed(0)
    model = HamiltonianModel(load_basis("SZV"), **KW).double()
    data = root / "data"
    shutil.copytree(generated, data)
    structure = load_dataset(data).structure
    P = _predict(model, structure)
    labels = sp.csr_matrix((P.data * _hopping_factor(model, structure, P, FACTORS),
                            (P.row, P.col)), shape=P.shape)
    write_matrix(data / "H.npz", labels)
    parts, _ = slice_dataset(data, 4.0, "metis", 2, 1, root / "parts")
    exact, _ = slice_dataset(data, 4.0, "metis", 2, 2, root / "exact")
    return root, data, parts, exact, model, structure


def test_gains_recover_the_labels_hopping_factors_and_leave_on_site_blocks(setup):
    root, data, parts, exact, model, structure = setup
    gains = cut_edge_gains(model, [str(parts)])
    assert set(gains) == {"8-8", "8-72", "72-72"}
    for key, entry in gains.items():
        assert entry["gain"] == pytest.approx(FACTORS[tuple(entry["pair"])], rel=1e-9), key
        assert entry["elements"] > 0
    calibrated = HamiltonianModel(load_basis("SZV"), **KW).double()
    calibrated.load_state_dict(model.state_dict())
    scale_hoppings(calibrated, gains)
    # the calibrated model predicts the labels: every hopping times its pair's gain, on-site
    # blocks as they were
    P0, P1 = _predict(model, structure), _predict(calibrated, structure)
    factor = _hopping_factor(model, structure, P0, FACTORS)
    assert np.allclose(sp.csr_matrix(P1)[P0.row, P0.col].A1, factor * P0.data, rtol=1e-9,
                       atol=1e-14)
    for entry in cut_edge_gains(calibrated, [str(parts)]).values():
        assert entry["gain"] == pytest.approx(1.0, abs=1e-9)


def test_partitions_without_held_out_edges_are_refused(setup):
    root, data, parts, exact, model, _ = setup
    with pytest.raises(InputError, match="none is held out.*halo 1"):
        cut_edge_gains(model, [str(exact)])
