"""Where a trained model's eigenvalue error comes from, on a labelled structure.

    python benchmarks/spectrum_error.py MODEL.pt DATASET [--out FILE.json]

Predicts H of DATASET (which needs S.npz) and reports, for H c = E S c (L1 as `hampart
evaluate`: ||e - e_ref||_1 / ||e_ref||_1):

* the L1 error as predicted, with the reference on-site blocks and predicted hoppings, with
  predicted on-site blocks and reference hoppings, and with only the on-site diagonal predicted;
* the least-squares scale k of the predicted hoppings against the reference (P ~ k R) over all
  atom pairs within r_cut and per distance shell: k < 1 is a spectrum too narrow;
* the L1 error with the predicted hoppings multiplied by a few gains;
* the L1 error of the reference itself with every element beyond r_cut removed (what a model of
  that r_cut cannot do better than);
* the slope of the eigenvalue error against the reference eigenvalue (meV per Hartree).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import scipy.sparse as sp
import torch

from hampart.blocks import edge_of_pairs, pair_keys
from hampart.evaluate.metrics import HARTREE_EV, eigenvalues
from hampart.evaluate.predict import predict_hamiltonian
from hampart.graph import minimum_image, radius_graph
from hampart.io.csr import read_matrix
from hampart.io.dataset import load_dataset
from hampart.model.io import load_model

SHELLS = [(0, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8)]  # Angstrom
GAINS = [1.0025, 1.005, 1.0075, 1.01]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("dataset")
    p.add_argument("--out")
    a = p.parse_args()
    model, _ = load_model(a.model)
    data = load_dataset(a.dataset)
    s = data.structure
    with torch.no_grad():
        P, _ = predict_hamiltonian(model, model.basis, s, n_layers=model.layers_n, rcut=model.rcut)
    P, R = sp.csr_matrix(P), sp.csr_matrix(data.hamiltonian)
    S = read_matrix(os.path.join(a.dataset, "S.npz"))
    ref = eigenvalues(R, S)
    atom = np.repeat(np.arange(len(s.numbers)), np.diff(model.basis.orbital_offsets(s.numbers)))

    def l1(H):
        err = eigenvalues(H, S) - ref
        return round(100 * float(np.abs(err).sum() / np.abs(ref).sum()), 4)

    def on_site(M):
        C = M.tocoo()
        keep = atom[C.row] == atom[C.col]
        return sp.csr_matrix((C.data * keep, (C.row, C.col)), shape=M.shape)

    PN, RN = on_site(P), on_site(R)
    PE, RE = P - PN, R - RN
    diag = sp.diags(P.diagonal() - R.diagonal())
    C = PE.tocoo()
    x = np.asarray(R[C.row, C.col]).ravel()
    dist = np.linalg.norm(minimum_image(s.positions[atom[C.col]] - s.positions[atom[C.row]],
                                        s.cell, s.pbc), axis=1)  # one image per pair (Gamma)
    shells = {f"{lo}-{hi}": round(float((x * C.data)[m].sum() / (x * x)[m].sum()), 5)
              for lo, hi in SHELLS if (m := (dist >= lo) & (dist < hi)).any()}
    graph = radius_graph(s.positions, s.cell, s.pbc, model.rcut)
    keys, order = pair_keys(np.asarray(graph.edge_index, dtype=np.int64), len(s.numbers), "graph")
    Rc = R.tocoo()
    ai, aj = atom[Rc.row], atom[Rc.col]
    inside = (ai == aj) | (edge_of_pairs(keys, order, ai * np.int64(len(s.numbers)) + aj) >= 0)
    truncated = sp.csr_matrix((Rc.data * inside, (Rc.row, Rc.col)), shape=R.shape)
    err = eigenvalues(P, S) - ref
    slope = np.polyfit(ref, err, 1)[0]
    record = {
        "model": a.model, "dataset": a.dataset,
        "l1_percent": {"predicted": l1(P), "reference_on_site": l1(RN + PE),
                       "reference_hoppings": l1(PN + RE), "on_site_diagonal_only": l1(R + diag)},
        "hopping_scale_k": round(float((x * C.data).sum() / (x * x).sum()), 5),
        "hopping_scale_k_by_shell_A": shells,
        "l1_percent_hoppings_times_gain": {str(g): l1(PN + g * PE) for g in GAINS},
        "l1_percent_reference_without_elements_beyond_rcut": l1(truncated),
        "eigenvalue_error_slope_meV_per_Ha": round(1e3 * HARTREE_EV * float(slope), 1),
    }
    print(json.dumps(record, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
