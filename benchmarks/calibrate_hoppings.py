"""Hoppings calibrated on the cut edges: measured, not kept (docs/model.md, "Hoppings
calibrated on the cut edges").

    python benchmarks/calibrate_hoppings.py MODEL.pt --parts DIR [DIR ...] --test DIR [DIR ...] \
        [--label NAME] [--out FILE.jsonl]

Augmented partitions (halo L) never train an edge whose two atoms are owned by different parts,
but the training structures' Hamiltonians hold those elements: a held-out set inside the
training data. ``cut_edge_gains`` predicts each training structure whole and fits, per species
pair, the least-squares gain g of ``reference ~ g * prediction`` over the matrix elements of
atom pairs owned by different parts; ``scale_hoppings`` multiplies that pair's edge heads' fixed
output scale by g. The script fits the gains on the model's own training partitions and judges
each test structure with the model as trained and as calibrated (node / edge MAE, eigenvalue L1
of H c = E S c with and without the common shift, gap): one JSON line per test structure,
appended to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import scipy.sparse as sp
import torch

from hampart.errors import InputError
from hampart.evaluate.predict import predict_hamiltonian
from hampart.experiments import judge
from hampart.model.io import load_model

KEYS = ("node_mae_mEh", "edge_mae_mEh", "eig_l1_pct", "eig_l1_aligned_percent", "eig_shift_meV",
        "gap_eV", "gap_ref_eV")


def _owners(directory, manifest) -> dict[int, int]:
    """Global atom index -> the part that owns it."""
    from hampart.partition.store import load_partition

    owner = {}
    for k in range(len(manifest["parts"])):
        arrays = load_partition(directory, k, manifest=manifest)
        for atom in arrays["node_ids"][arrays["node_hop"] == 0]:
            owner[int(atom)] = k
    return owner


def _pair_sums(P, R, numbers, offsets, owner_of_atom) -> dict[tuple[int, int], np.ndarray]:
    """Per unordered species pair: [sum R P, sum P P, elements] over the elements of atom pairs
    owned by different parts."""
    atom_of = np.repeat(np.arange(len(numbers)), np.diff(offsets))
    coo = sp.coo_matrix(P)
    ai, aj = atom_of[coo.row], atom_of[coo.col]
    cross = owner_of_atom[ai] != owner_of_atom[aj]
    rows, cols, p = coo.row[cross], coo.col[cross], coo.data[cross].astype(np.float64)
    r = np.asarray(sp.csr_matrix(R)[rows, cols]).ravel().astype(np.float64)
    zi, zj = numbers[ai[cross]], numbers[aj[cross]]
    low, high = np.minimum(zi, zj), np.maximum(zi, zj)
    sums = {}
    for a, b in sorted(set(zip(low.tolist(), high.tolist()))):
        pick = (low == a) & (high == b)
        sums[(a, b)] = np.array([(r[pick] * p[pick]).sum(), (p[pick] ** 2).sum(), pick.sum()])
    return sums


def cut_edge_gains(model, parts_dirs, max_gib: float | None = 8.0) -> dict[str, dict]:
    """``{"Za-Zb": {"pair": [Za, Zb], "gain": g, "elements": n}}`` from the cut edges of the
    training structures partitioned in ``parts_dirs`` (augmented: halo = the model's layers;
    each directory's ``manifest.json`` names the labelled dataset it was sliced from)."""
    from hampart.io.dataset import load_dataset
    from hampart.partition.store import load_manifest

    totals: dict[tuple[int, int], np.ndarray] = {}
    for directory in [parts_dirs] if isinstance(parts_dirs, str) else parts_dirs:
        manifest = load_manifest(directory)
        params = manifest["params"]
        if params["halo"] != model.layers_n or len(manifest["parts"]) < 2:
            raise InputError(directory, f"{len(manifest['parts'])} part(s) at halo "
                             f"{params['halo']}: every edge was trained, none is held out",
                             f"calibrate on the model's own augmented partitions (2 or more "
                             f"parts, halo {model.layers_n})")
        dataset = load_dataset(manifest["source"]["file"])
        if dataset.hamiltonian is None:
            raise InputError(manifest["source"]["file"], "has no Hamiltonian to calibrate on",
                             "give the partitions of the labelled training structures")
        structure, numbers = dataset.structure, np.asarray(dataset.structure.numbers)
        owner = _owners(directory, manifest)
        owner_of_atom = np.array([owner[i] for i in range(len(numbers))])
        with torch.no_grad():
            P, _ = predict_hamiltonian(model, model.basis, structure, model.layers_n,
                                       params["rcut"], images=params["images"], max_gib=max_gib,
                                       dtype=next(model.parameters()).dtype)
        offsets = model.basis.orbital_offsets(numbers)
        for pair, s in _pair_sums(P, dataset.hamiltonian, numbers, offsets,
                                  owner_of_atom).items():
            totals[pair] = totals.get(pair, 0) + s
    gains = {}
    for (a, b), (rp, pp, n) in sorted(totals.items()):
        if n and pp > 0:
            gains[f"{a}-{b}"] = {"pair": [a, b], "gain": float(rp / pp), "elements": int(n)}
    if not gains:
        raise InputError(", ".join(map(str, parts_dirs)), "no predicted hopping across a cut",
                         "slice the training structures into 2 or more parts")
    return gains


@torch.no_grad()
def scale_hoppings(model, gains: dict[str, dict]) -> None:
    """Multiply the output scale of each calibrated pair's edge heads (both directions) by its
    gain."""
    for entry in gains.values():
        a, b = entry["pair"]
        for head in {f"{a}-{b}", f"{b}-{a}"}:
            if head in model.edge_heads:
                model.edge_heads[head].scale.mul_(float(entry["gain"]))


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--parts", nargs="+", required=True, help="the model's training partitions")
    p.add_argument("--test", nargs="+", required=True, help="unseen dataset directories")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse")
    p.add_argument("--label", default="", help="a name for the model in the records")
    p.add_argument("--out")
    a = p.parse_args(argv)
    model, _ = load_model(a.model)
    gains = cut_edge_gains(model, a.parts)
    calibrated = copy.deepcopy(model)
    scale_hoppings(calibrated, gains)
    records = []
    for test in a.test:
        before, after = judge(model, test, images=a.images), judge(calibrated, test, images=a.images)
        record = {"model": a.label or a.model, "parts": a.parts, "test": test, "gains": gains,
                  **{f"{k}": before.get(k) for k in KEYS},
                  **{f"calibrated_{k}": after.get(k) for k in KEYS}}
        print(json.dumps(record), flush=True)
        records.append(record)
        if a.out:
            with open(a.out, "a") as f:
                f.write(json.dumps(record) + "\n")
    return records


if __name__ == "__main__":
    main()
