"""Learn the Hamiltonian of amorphous HfO2 on MPI ranks, then test it on a structure it never saw.

The whole job through hampart's Python API, to copy and edit:

1. data: synthetic HfO2 structures with their Hamiltonians, or your own structures with CP2K
   matrices (``KS_CSR_WRITE``) and their basis (``--train``, ``--test``, ``--basis``);
2. slice the training structure into METIS partitions with halos (rank 0; written once and
   reused by later runs with the same settings);
3. train one model on the partitions, spread over the MPI ranks;
4. predict the Hamiltonian of the test structure;
5. evaluate it against the reference: node/edge MAE and eigenvalue errors, printed and written
   to ``OUT/evaluation.json``.

Small cells (96 atoms), r_cut 4.5 A and a small model, a few minutes on 2 CPU cores::

    mpirun -n 2 python examples/train_hfo2.py --out runs/example

The paper's setting (3,000-atom cells, r_cut 8 A, its model and schedule) on a GPU cluster,
on METIS parts (the paper cut Cartesian slabs instead: examples/hfo2_paper.yaml)::

    mpirun -n 8 python examples/train_hfo2.py --paper --out runs/hfo2-paper

Your own data: one structure to train on and one to test on, computed in one basis::

    mpirun -n 8 python examples/train_hfo2.py --paper --basis szv.yaml \\
        --train train.xyz H_train.csr --test test.xyz H_test.csr --out runs/mine

Running again with the same ``--out`` reuses the partitions and resumes from the checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hampart.command import json_object
from hampart.distributed import TrainConfig, finish, init, run_on_main, train
from hampart.evaluate import evaluate, predict_file
from hampart.generate import generate
from hampart.partition import slice_dataset

# What --paper switches between; any flag given on the command line wins over both.
# halo: layers + 1 hops trains every edge exactly; halo = layers is the paper's scheme (edges
# across a cut are not trained, but every edge is stored once).
SMALL = {"size": 2, "rcut": 4.5, "parts": 4, "halo": 2, "epochs": 100, "lr": 3e-3,
         "max_gib": None,
         "model": {"lmax": 4, "mmax": 2, "channels": 8, "ff_hidden": 16, "heads": 2, "layers": 1}}
PAPER = {"size": None, "rcut": 8.0, "parts": 8, "halo": 1, "epochs": 100000, "lr": 1e-4,
         "max_gib": 70.0,  # per rank: an 80 GB GPU; larger parts train in edge chunks
         "model": {"lmax": 4, "mmax": 4, "channels": 16, "ff_hidden": 64, "heads": 2, "layers": 1}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/example", help="directory for data, parts and model")
    p.add_argument("--paper", action="store_true",
                   help="the paper's 3,000-atom setting (for GPUs) instead of the small one")
    p.add_argument("--size", type=int, help="HfO2 unit cells per side (default 2; --paper: "
                   "the paper's cell)")
    p.add_argument("--rcut", type=float, help="graph cutoff in Angstrom (4.5; --paper 8)")
    p.add_argument("--parts", type=int, help="METIS partitions, at least the ranks (4; --paper 8)")
    p.add_argument("--halo", type=int, help="halo depth in hops, at least the model's layers "
                   "(2; --paper 1)")
    p.add_argument("--epochs", type=int, help="optimiser steps at most (100; --paper 100000)")
    p.add_argument("--lr", type=float, help="Adam learning rate (3e-3; --paper 1e-4)")
    p.add_argument("--max-gib", type=float, dest="max_gib",
                   help="memory per rank in GiB; larger parts train in edge chunks (--paper 70)")
    p.add_argument("--model", type=json_object, help="model hyperparameters as JSON")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="train from scratch instead of continuing OUT/model/checkpoint.pt")
    own = p.add_argument_group("your own data (instead of synthetic HfO2)")
    own.add_argument("--train", nargs=2, metavar=("STRUCTURE", "H"),
                     help="training structure (extxyz, CIF, POSCAR) and its H (.csr or .npz)")
    own.add_argument("--test", nargs=2, metavar=("STRUCTURE", "H"),
                     help="test structure and its reference H")
    own.add_argument("--basis", help="basis of both matrices: SZV, DZVP or a YAML file")
    args = p.parse_args(argv)
    if bool(args.train) != bool(args.test) or bool(args.train) != bool(args.basis):
        p.error("your own data needs --train, --test and --basis together")
    for key, value in (PAPER if args.paper else SMALL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def prepare_data(args) -> tuple[dict, dict, str]:
    """Rank 0's share: the training and test data, and the training partitions on disk.

    Each structure is ``{"path": ..., "hamiltonian": ..., "basis": ...}`` (the last two None for
    a dataset directory, which holds them), as ``slice_dataset`` and ``load_dataset`` take it.
    """
    out = Path(args.out)
    if args.train:
        train_data = {"path": args.train[0], "hamiltonian": args.train[1], "basis": args.basis}
        test_data = {"path": args.test[0], "hamiltonian": args.test[1], "basis": args.basis}
    else:
        # Same seed, same files: rewriting them each run keeps the partitions below reusable.
        synthetic = {"size": args.size, "vacancies": 0.05, "replace": True,
                     "interaction_radius": min(args.rcut, 6.0)}  # H vanishes beyond this
        train_data = {"path": generate("hfo2", seed=0, out=out / "data-train", **synthetic),
                      "hamiltonian": None, "basis": None}
        test_data = {"path": generate("hfo2", seed=1, out=out / "data-test", **synthetic),
                     "hamiltonian": None, "basis": None}
    parts, _ = slice_dataset(train_data["path"], args.rcut, "metis", args.parts, args.halo,
                             out / "parts-train", hamiltonian=train_data["hamiltonian"],
                             basis=train_data["basis"], replace=True, log=print)
    return train_data, test_data, str(parts)


def predict_and_evaluate(model_path, test_data, rcut: float, device: str, out: Path) -> dict:
    """Predict the test structure's H and compare it with the reference (``hampart evaluate``'s
    report: node/edge MAE, eigenvalue errors, the gap when the electron count is known)."""
    _, info = predict_file(model_path, test_data["path"], out=out / "H_pred.npz",
                                device=device)
    if test_data["hamiltonian"] is None:  # a dataset directory holds H, its basis (and S)
        reference = {"reference": test_data["path"]}
    else:
        reference = {"reference": test_data["hamiltonian"], "structure": test_data["path"],
                     "basis": test_data["basis"]}
    report = {"n_atoms": info["n_atoms"], "n_orbitals": info["n_orbitals"],
              "predict_seconds": info["seconds"]}
    # rcut: the pairs the model predicts. Eigenvalues: all of them up to 8,000 orbitals;
    # beyond, a dense solve is slow: the 100 nearest 0 Eh (sparse shift-invert)
    window = {} if info["n_orbitals"] <= 8000 else {"eigs": 100, "sigma": 0.0}
    report.update(evaluate(out / "H_pred.npz", rcut=rcut, **reference, **window))
    return report


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    ctx = init(args.device)  # every rank joins the process group
    train_data, test_data, parts = run_on_main(ctx, prepare_data, args)

    summary = train(TrainConfig(parts=parts, out=str(out / "model"), model=args.model,
                                lr=args.lr, epochs=args.epochs, device=args.device,
                                max_gib=args.max_gib, resume=args.resume), progress=print)
    finish(ctx)  # the process group init() made above; the rest is rank 0's alone
    if not ctx.is_main:
        return
    report = predict_and_evaluate(out / "model" / "model.pt", test_data, args.rcut, args.device, out)
    report = {"train": {"epochs": summary["epochs_run"], "ranks": summary["ranks"],
                        "mae_mEh": summary["last"]["mae_mEh"] if summary["last"] else None,
                        "seconds": summary["seconds"]},
              "test": report}
    (out / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    test = report["test"]
    print(f"test structure ({test['n_atoms']} atoms, {test['n_orbitals']} orbitals): "
          f"node MAE {test['node_mae_mEh']:.3f} mEh, edge MAE {test['edge_mae_mEh']:.3f} mEh, "
          f"total MAE {test['total_mae_meV']:.2f} meV, eigenvalue MAE "
          f"{test['eig_mae_meV']:.1f} meV -> {out / 'evaluation.json'}")


if __name__ == "__main__":
    main()
