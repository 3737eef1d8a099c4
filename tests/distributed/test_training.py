"""Training end to end on tiny partitions: one process, resume, and mpirun -n 2 against one rank."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from hampart.distributed.trainer import TrainConfig, train
from hampart.model.io import load_model
from hampart.errors import InputError
from hampart.generate import generate
from hampart.partition import slice_dataset

MODEL = {"lmax": 4, "mmax": 1, "channels": 4, "ff_hidden": 8, "heads": 1, "layers": 1}


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = generate("hfo2", seed=0, out=root / "data", size=(2, 2, 2), interaction_radius=4.0)
    out, _ = slice_dataset(data, rcut=4.0, method="metis", parts=3, halo=2, out=root / "parts")
    shallow, _ = slice_dataset(data, rcut=4.0, method="slab", parts=2, halo=1, axis="x",
                               out=root / "shallow")
    return root, out, shallow


def _config(parts_dir, out, **kw):
    parts_dir = [str(p) for p in parts_dir] if isinstance(parts_dir, list) else str(parts_dir)
    return TrainConfig(parts=parts_dir, out=str(out), model=MODEL, dtype="float64",
                       lr=1e-2, device="cpu", log_every=1, **kw)


def test_loss_falls_model_reloads_and_training_resumes(parts, capsys):
    root, parts_dir, _ = parts
    progress = []
    summary = train(_config(parts_dir, root / "run", epochs=12), progress=progress.append)
    # progress goes to the callback (hampart train passes print), nothing to stdout
    assert capsys.readouterr().out == ""
    assert progress[0].startswith("label statistics (mEh)")
    assert progress[1].startswith("on-site start: ridge per species and L")
    assert [x.split()[0] for x in progress[2:]] == [f"epoch={e}" for e in range(12)]
    assert summary["epochs_run"] == 12
    assert summary["last"]["mse"] < 0.5 * summary["first"]["mse"]
    model, payload = load_model(root / "run" / "model.pt", dtype=torch.float64)
    assert payload["model"]["rcut"] == 4.0 and sum(p.numel() for p in model.parameters()) > 0
    stats = summary["label_statistics"]  # every labelled atom of the structure once
    assert stats["atoms"] == {"O": 64, "Hf": 32}, stats["atoms"]
    # one cross-validated ridge per species and L of its on-site block (s, p, d: L <= 4)
    assert {k: len(v) for k, v in stats["onsite_ridge"].items()} == {"O": 3, "Hf": 5}
    assert 1e3 * float(model.node_heads["72"].scale) == pytest.approx(stats["node_scale_mEh"],
                                                                       rel=1e-3)
    assert set(stats["edge_rms_mEh"]) == {"O-O", "O-Hf", "Hf-O", "Hf-Hf"}
    progress.clear()
    again = train(_config(parts_dir, root / "run", epochs=15), progress=progress.append)
    assert again["epochs_run"] == 3 and again["first"]["epoch"] == 12  # resumed at epoch 12
    assert any(x.startswith(f"resuming {root / 'run' / 'checkpoint.pt'} after epoch 11")
               for x in progress)
    lines = (root / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(15))


def test_refuses_halo_shallower_than_layers(parts):
    root, _, shallow = parts
    deep = dict(MODEL, layers=2)
    with pytest.raises(InputError, match="halo"):
        train(TrainConfig(parts=str(shallow), out=str(root / "x"), model=deep, device="cpu"))


def test_model_file_that_is_not_ours_is_refused(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a hampart model"):
        load_model(tmp_path / "m.pt")


def test_two_ranks_match_one_rank(parts):
    """Gradient all-reduce over 2 MPI ranks gives the same steps as one process (float64)."""
    root, parts_dir, _ = parts
    mpirun = shutil.which("mpirun") or os.path.join(os.path.dirname(sys.executable), "mpirun")
    assert os.path.exists(mpirun), "mpirun not found: install the mpi extra (pip install mpich)"
    args = ["--parts", str(parts_dir), "--epochs", "3", "--lr", "1e-2", "--dtype", "float64",
            "--device", "cpu", "--model", json.dumps(MODEL)]
    one = subprocess.run([sys.executable, "-m", "hampart.cli", "train", *args,
                          "--out", str(root / "one")], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([mpirun, "-n", "2", sys.executable, "-m", "hampart.cli", "train", *args,
                          "--out", str(root / "two")], capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr + two.stdout
    s1 = json.loads((root / "one" / "summary.json").read_text())
    s2 = json.loads((root / "two" / "summary.json").read_text())
    assert s2["ranks"] == 2 and s1["ranks"] == 1
    assert abs(s1["last"]["mse"] - s2["last"]["mse"]) <= 1e-10 * s1["last"]["mse"]
    p1 = torch.load(root / "one" / "model.pt", weights_only=True)["state_dict"]
    p2 = torch.load(root / "two" / "model.pt", weights_only=True)["state_dict"]
    # to rounding, relative to each tensor's scale (a missed reduction: ~lr = 1e-2); the
    # least-squares start with a small cross-validated ridge gives rounding of the summed
    # normal equations ~1e-9 of the weights, and three Adam steps grow it to ~1e-7
    for k in p1:
        scale = float(p1[k].abs().max()) if p1[k].numel() else 0.0
        assert torch.allclose(p1[k], p2[k], rtol=1e-6, atol=1e-10 + 1e-6 * scale), k
    first = torch.load(root / "one" / "checkpoint.pt", weights_only=True)
    assert first["epoch"] == 2


def test_memory_budget_chunks_edges_without_changing_results(parts):
    """--max-gib below what a whole partition needs: edges go in chunks, the steps are the same."""
    from hampart.basis import Basis
    from hampart.model import HamiltonianModel
    from hampart.model.memory import GIB, measure_memory_law
    from hampart.partition import load_manifest

    root, parts_dir, _ = parts
    manifest = load_manifest(parts_dir)
    basis = Basis.from_dict(manifest["params"]["basis"])
    model = HamiltonianModel(basis, rcut=4.0, **MODEL).to(torch.float64)
    law = measure_memory_law(model)
    biggest = max(manifest["parts"], key=lambda p: p["n_edges"])
    whole = law.step_bytes(biggest["n_nodes"], biggest["n_edges"], None, biggest["n_owned_edges"])
    # room for the data and optimiser state plus 70 % of the largest part's whole step
    budget = (0.7 * whole + law.fixed_bytes() + 8e6) / GIB
    free = train(_config(parts_dir, root / "free", epochs=3))
    tight = train(_config(parts_dir, root / "tight", epochs=3, max_gib=budget))
    assert free["edge_chunks"] == [None] * 3
    assert any(c is not None for c in tight["edge_chunks"]), tight["edge_chunks"]
    assert all(c is None or c < biggest["n_edges"] for c in tight["edge_chunks"])
    assert abs(free["last"]["mse"] - tight["last"]["mse"]) <= 1e-10 * free["last"]["mse"]
    with pytest.raises(InputError, match="more parts"):
        train(_config(parts_dir, root / "tiny", epochs=1, max_gib=1e-4))


@pytest.mark.parametrize("extra, match", [
    (["--lr", "-1"], "lr = -1.0"),
    (["--epochs", "-3"], "epochs = -3"),
    (["--node-weight", "0"], "node_weight = 0.0"),
    (["--model", '{"lmaxx": 4}'], "unknown model hyperparameter"),
    (["--model", '{"lmax": 4'], "not valid JSON"),
    (["--model", "[4]"], "JSON object"),
])
def test_bad_settings_stop_before_anything_is_written(parts, tmp_path, capsys, extra, match):
    from hampart.cli import main

    _, parts_dir, _ = parts
    out = tmp_path / "run"
    try:
        rc = main(["train", "--parts", str(parts_dir), "--out", str(out), *extra])
    except SystemExit as stop:  # argparse refuses --model values itself
        rc = stop.code
    assert rc == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("text, match", [("parts: x\n  bad: [\n", "not valid YAML"),
                                         ("- a\n- b\n", "not a mapping"),
                                         ("parts: x\nfactor: 2\n", "factor = 2"),
                                         ("parts: x\nloss_weighting: per-L\n",
                                          "loss_weighting = 'per-L'")])
def test_bad_config_files_are_named(tmp_path, text, match):
    from hampart.distributed.trainer import config_from_yaml

    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(InputError, match=match) as err:
        config_from_yaml(tmp_path / "c.yaml")
    assert "c.yaml" in str(err.value)


def test_several_structures_train_together(parts, tmp_path):
    """Partitions of two structures: spread together, one loss over both, one set of label
    statistics; the first loss equals the joint MSE of the initial model computed here."""
    from hampart.basis import Basis
    from hampart.model import HamiltonianModel, block_loss
    from hampart.model.radial import envelope
    from hampart.model.statistics import LabelSums, label_sums
    from hampart.partition import load_batch, load_manifest

    root, parts_a, _ = parts
    data_b = generate("hfo2", seed=1, out=tmp_path / "b", size=(2, 2, 2), vacancies=0.05,
                      interaction_radius=4.0)
    parts_b, _ = slice_dataset(data_b, rcut=4.0, method="slab", parts=2, halo=2, axis="y",
                               out=tmp_path / "parts_b")
    summary = train(_config([str(parts_a), str(parts_b)], tmp_path / "run", epochs=1))
    assert summary["parts_per_rank"] == 5
    atoms = summary["label_statistics"]["atoms"]
    assert atoms["Hf"] + atoms["O"] == 96 + 96 - _ghosts(data_b)

    basis = Basis.from_dict(load_manifest(parts_a)["params"]["basis"])
    batches = [load_batch(d, k, 1, dtype=torch.float64)
               for d, n in ((parts_a, 3), (parts_b, 2)) for k in range(n)]
    torch.manual_seed(0)  # the trainer builds heads for the training data's species only
    model = HamiltonianModel(basis, rcut=4.0, elements=[8, 72], **MODEL).to(torch.float64)
    # the trainer's start, over both structures: mean degree, neighbour-sum standardisation,
    # label statistics, then the least-squares on-site fit
    degree = sum(float(envelope((b.positions[b.edge_index[0, :b.n_owned_edges]]
                                 + b.edge_shift[:b.n_owned_edges].double() @ b.cell
                                 - b.positions[b.edge_index[1, :b.n_owned_edges]]).norm(dim=-1),
                                4.0).sum()) for b in batches)
    model.set_mean_degree(round(degree / sum(b.n_owned for b in batches), 6))
    inputs = [(b.numbers, b.positions, b.cell, b.edge_index, b.edge_shift) for b in batches]
    model.set_neighbour_sum_statistics(sum(model.neighbour_sum_statistics(*x, n_atoms=b.n_owned)
                                           for x, b in zip(inputs, batches)))
    sums = LabelSums.zeros(basis)
    for b in batches:
        sums = sums + label_sums(basis, b.numbers, b.edge_index, b.node_blocks, b.edge_blocks)
    model.set_label_statistics(sums)
    model.set_onsite_fit(sum(model.onsite_normal_equations(*x, b.node_blocks, atoms=b.node_exact,
                                                           atom_ids=b.node_ids[:b.n_owned])
                             for x, b in zip(inputs, batches)))
    sse = count = 0.0
    with torch.no_grad():
        for b in batches:
            s, c = block_loss(*model(b.numbers, b.positions, b.cell, b.edge_index, b.edge_shift),
                              b.node_blocks, b.edge_blocks, b.numbers, b.edge_index, basis,
                              b.node_exact, b.edge_exact)
            sse, count = sse + float(s), count + float(c)
    assert summary["first"]["mse"] == pytest.approx(sse / count, rel=1e-10)


def test_structures_sliced_differently_are_refused(parts, tmp_path):
    root, parts_a, _ = parts
    data = root / "data"
    other, _ = slice_dataset(data, rcut=3.5, method="slab", parts=2, halo=2, axis="x",
                             out=tmp_path / "rc35")
    with pytest.raises(InputError, match="same --rcut") as err:
        train(_config([str(parts_a), str(other)], tmp_path / "run", epochs=1))
    assert "rc35" in str(err.value) and not (tmp_path / "run").exists()


def _ghosts(data) -> int:
    from hampart.io.dataset import load_dataset

    return int((load_dataset(data).structure.numbers == 0).sum())


def test_device_names_are_checked():
    from hampart.distributed.launch import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "gpu0", "mps"):
        with pytest.raises(InputError, match="--device"):
            resolve_device(bad)
    if torch.cuda.is_available():  # each rank on its own GPU
        count = torch.cuda.device_count()
        assert resolve_device("cuda", local_rank=count + 1).index == (count + 1) % count
        with pytest.raises(InputError, match="GPU"):
            resolve_device(f"cuda:{count}")
    else:
        with pytest.raises(InputError, match="sees no GPU"):
            resolve_device("cuda")


def test_resume_refuses_other_hyperparameters_and_unreadable_checkpoints(parts, tmp_path):
    root, parts_dir, _ = parts
    train(_config(parts_dir, tmp_path / "run", epochs=1))
    wider = TrainConfig(parts=str(parts_dir), out=str(tmp_path / "run"), device="cpu", epochs=2,
                        model=dict(MODEL, channels=8), dtype="float64")
    with pytest.raises(InputError, match="channels: 4 then, 8 now.*--no-resume"):
        train(wider)
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"truncated")
    with pytest.raises(InputError, match="unreadable checkpoint"):
        train(_config(parts_dir, tmp_path / "run", epochs=2))
    again = train(_config(parts_dir, tmp_path / "run", epochs=2, resume=False))  # starts over
    assert again["first"]["epoch"] == 0
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1]  # the old run's log is replaced


def test_cosine_schedule_reaches_min_lr_and_resumes_only_itself(parts, tmp_path):
    import math

    root, parts_dir, _ = parts
    lr, min_lr, epochs = 1e-2, 1e-4, 6
    cosine = dict(epochs=epochs, schedule="cosine", min_lr=min_lr)
    full = train(_config(parts_dir, tmp_path / "full", **cosine))
    logged = [json.loads(x)["lr"] for x in (tmp_path / "full" / "log.jsonl").open()]
    # epoch e steps with the lr of half a cosine from lr to min_lr over the epochs
    expected = [min_lr + (lr - min_lr) * (1 + math.cos(math.pi * e / (epochs - 1))) / 2
                for e in range(epochs)]
    assert logged == pytest.approx(expected, rel=1e-9)
    assert full["stop"] == "epochs" and full["epochs_run"] == epochs
    # a cosine run's checkpoint does not continue as a run of another length
    train(_config(parts_dir, tmp_path / "cut", **dict(cosine, epochs=4)))
    with pytest.raises(InputError, match="schedule.*--no-resume"):
        train(_config(parts_dir, tmp_path / "cut", **cosine))
    with pytest.raises(InputError, match="schedule"):  # another schedule
        train(_config(parts_dir, tmp_path / "full", epochs=8))
    with pytest.raises(InputError, match="final learning rate below"):
        train(_config(parts_dir, tmp_path / "x", epochs=3, schedule="cosine", min_lr=lr))
    with pytest.raises(InputError, match="plateau or cosine"):
        train(_config(parts_dir, tmp_path / "x", epochs=3, schedule="linear"))


def test_hold_cosine_schedule_holds_then_decays(parts, tmp_path):
    import math

    root, parts_dir, _ = parts
    lr, min_lr, epochs = 1e-2, 1e-4, 8
    hold = dict(epochs=epochs, schedule="hold-cosine", min_lr=min_lr, decay_fraction=0.5,
                checkpoint_every=1)
    train(_config(parts_dir, tmp_path / "full", **hold))
    logged = [json.loads(x)["lr"] for x in (tmp_path / "full" / "log.jsonl").open()]
    # four epochs at lr, then half a cosine over the last four, ending at min_lr
    expected = [lr] * 4 + [min_lr + (lr - min_lr) * (1 + math.cos(math.pi * k / 4)) / 2
                           for k in (1, 2, 3, 4)]
    assert logged == pytest.approx(expected, rel=1e-9)
    # its checkpoint (scheduler state included) reloads: nothing left to train
    again = train(_config(parts_dir, tmp_path / "full", **hold))
    assert again["epochs_run"] == 0
    train(_config(parts_dir, tmp_path / "cut", **dict(hold, epochs=6)))
    with pytest.raises(InputError, match="schedule"):  # its length is part of the schedule
        train(_config(parts_dir, tmp_path / "cut", **hold))
    with pytest.raises(InputError, match="decay_fraction"):
        train(_config(parts_dir, tmp_path / "x", **dict(hold, decay_fraction=0)))
    with pytest.raises(InputError, match="final learning rate below"):
        train(_config(parts_dir, tmp_path / "x", **dict(hold, min_lr=lr)))


def test_example_config_is_valid():
    """examples/hfo2_paper.yaml parses (1e-4 without a dot included) into the paper's recipe."""
    import pathlib

    from hampart.distributed.trainer import config_from_yaml
    from hampart.model import PAPER_HYPERPARAMETERS

    path = pathlib.Path(__file__).parents[2] / "examples" / "hfo2_paper.yaml"
    config = config_from_yaml(path)
    assert config.lr == 1e-4 and config.min_lr == 1e-5 and config.patience == 500
    assert dict(config.model) == PAPER_HYPERPARAMETERS and config.max_gib == 70


def test_attention_degree_auto_is_the_mean_envelope_degree(parts, tmp_path):
    from hampart.model import HamiltonianModel
    from hampart.model.radial import envelope
    from hampart.partition import load_batch

    root, parts_dir, _ = parts
    model = dict(MODEL, attention_degree="auto")
    train(TrainConfig(parts=str(parts_dir), out=str(tmp_path / "run"), model=model,
                      device="cpu", epochs=1, dtype="float64"))
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["model"]
    total = count = 0.0
    for k in range(3):
        b = load_batch(parts_dir, k, 1, dtype=torch.float64)
        ei = b.edge_index[:, :b.n_owned_edges]
        vec = b.positions[ei[0]] + b.edge_shift[:b.n_owned_edges].double() @ b.cell \
            - b.positions[ei[1]]
        total, count = total + float(envelope(vec.norm(dim=-1), 4.0).sum()), count + b.n_owned
    assert saved["attention_degree"] == pytest.approx(total / count, rel=1e-5)
    assert 1.0 < saved["attention_degree"] < 100.0
    with pytest.raises(InputError, match="attention_degree"):
        HamiltonianModel(load_model(tmp_path / "run" / "model.pt")[0].basis, attention_degree=-1)


def test_neighbour_sums_are_normalised_saved_and_older_files_still_load(parts, tmp_path):
    """The on-site neighbour sums are divided by the training atoms' mean envelope degree (saved
    with the model); a file written before the option existed loads as the model it was."""
    from hampart.model.io import BEFORE_OPTIONS, save_model

    root, parts_dir, _ = parts
    train(TrainConfig(parts=str(parts_dir), out=str(tmp_path / "run"),
                      model=dict(MODEL, onsite_channels=4, degree_embedding=True), device="cpu",
                      epochs=1, dtype="float64"))
    model, payload = load_model(tmp_path / "run" / "model.pt", dtype=torch.float64)
    assert payload["model"]["onsite_channels"] == 4 and payload["model"]["degree_embedding"]
    norm = float(model.onsite.degree_norm)
    assert 1.0 < norm < 100.0 and float(model.message[0].degree_norm) == norm
    train(TrainConfig(parts=str(parts_dir), out=str(tmp_path / "plain"),
                      model=dict(MODEL, attention_degree="auto"), device="cpu", epochs=1))
    saved = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)
    assert saved["model"]["attention_degree"] == pytest.approx(norm, rel=1e-6)  # same measure

    old = dict(MODEL, rcut=4.0)  # what a file from before these options holds
    plain, _ = load_model(tmp_path / "plain" / "model.pt")
    assert saved["model"]["onsite_invariants"] is False  # written, as every changed option
    assert saved["model"]["onsite_products"] is True  # on by default, off in older files
    plain_kw = {k: v for k, v in saved["model"].items()
                if k not in (*BEFORE_OPTIONS, "attention_degree")}
    assert plain_kw == old and saved["model"]["elements"] == [8, 72]
    # every option added since is written into the file as the model was built (off here)
    kept = ("onsite_channels", "degree_embedding", "onsite_products", "elements")
    assert {k: saved["model"][k] for k in BEFORE_OPTIONS if k not in kept} == \
        {k: v for k, v in BEFORE_OPTIONS.items() if k not in kept}
    from hampart.model import HamiltonianModel

    before = HamiltonianModel(plain.basis, **old, degree_embedding=False, onsite_channels=0)
    save_model(tmp_path / "old.pt", before, old, plain.basis)
    loaded, _ = load_model(tmp_path / "old.pt")
    assert loaded.onsite is None and loaded.message[0].degree is None
    assert loaded.edge_block is not None and loaded.edge_embed is None  # the options are off
    assert loaded.radial_basis.width == pytest.approx(4.0 / 15)


def test_node_weight_scales_the_on_site_gradient_and_logs_both_errors(parts, tmp_path):
    root, parts_dir, _ = parts
    base = train(_config(parts_dir, tmp_path / "w1", epochs=1))["first"]
    heavy = train(_config(parts_dir, tmp_path / "w10", epochs=1, node_weight=10.0))["first"]
    # the first epoch's errors are the start model's: the weight changes only the gradient
    for key in ("mse", "node_mae_mEh", "edge_mae_mEh"):
        assert heavy[key] == pytest.approx(base[key], rel=1e-12), key
    assert base["node_mae_mEh"] > 0 and base["edge_mae_mEh"] > 0
    # the overall MAE is the element-weighted mean of the node and edge MAE
    assert min(base["node_mae_mEh"], base["edge_mae_mEh"]) <= base["mae_mEh"] \
        <= max(base["node_mae_mEh"], base["edge_mae_mEh"])

    # the objective is w * SSE_nodes + SSE_edges: its value, and gradients affine in w
    from hampart.distributed.trainer import PartitionLoss
    from hampart.partition.loader import load_batch

    model, _ = load_model(tmp_path / "w1" / "model.pt", dtype=torch.float64)
    batch = load_batch(parts_dir, 0, n_layers=1, dtype=torch.float64)
    grads = {}
    for w in (1.0, 2.0, 10.0):
        loss = PartitionLoss(model.basis, node_weight=w)
        model.zero_grad()
        objective, sums = loss(model, batch, loss.masks(batch))
        assert float(objective.detach()) == pytest.approx(w * float(sums[0]) + float(sums[1]), rel=1e-12)
        objective.backward()
        grads[w] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    node_part = grads[2.0] - grads[1.0]
    assert node_part.abs().max() > 0
    torch.testing.assert_close(grads[10.0], grads[1.0] + 9 * node_part)


def test_heads_for_the_training_species_only_older_files_load_others_refused(parts, tmp_path):
    """The dataset's basis (SZV) has eight elements, the data Hf and O: partitions store the
    basis of those two, the model is built, saved and loaded with heads for them; predicting
    Si with it is refused naming the model file; a file from before (no ``elements``, the
    whole table as basis) loads with every element of its basis."""
    from hampart.basis import builtin_basis
    from hampart.distributed.trainer import save_model
    from hampart.evaluate.predict import predict_file
    from hampart.generate import make_structure
    from hampart.io.structure import write_structure
    from hampart.model import HamiltonianModel

    root, parts_dir, _ = parts
    train(_config(parts_dir, tmp_path / "run", epochs=1))
    path = tmp_path / "run" / "model.pt"
    model, payload = load_model(path, dtype=torch.float64)
    assert model.basis.elements == [8, 72]
    assert payload["model"]["elements"] == [8, 72] == model.elements
    assert set(model.node_heads) == {"8", "72"} and len(model.edge_heads) == 4
    write_structure(tmp_path / "si.xyz", make_structure("si", size=(3, 3, 3)))
    with pytest.raises(InputError, match=r"model\.pt: was trained on O, Hf only, not on Si"):
        predict_file(path, tmp_path / "si.xyz")
    assert not (tmp_path / "H.npz").exists()

    kwargs = {k: v for k, v in payload["model"].items() if k != "elements"}
    table = builtin_basis("SZV")
    older = HamiltonianModel(table, **kwargs)
    save_model(tmp_path / "old.pt", older, kwargs, table)
    old = torch.load(tmp_path / "old.pt", weights_only=True)
    del old["model"]["elements"]  # as written before the option existed
    torch.save(old, tmp_path / "old.pt")
    loaded, _ = load_model(tmp_path / "old.pt")
    assert loaded.elements == list(table.elements) and len(loaded.edge_heads) == 64


def test_options_from_the_papers_code_train_save_and_load(parts, tmp_path):
    """A model with every option of the paper's code trains, names them in its file and loads
    back as that network."""
    from hampart.model import OFFICIAL_OPTIONS
    from hampart.partition import load_batch

    _, parts_dir, _ = parts
    options = dict(OFFICIAL_OPTIONS, value_channels=2, att_channels=4)
    train(TrainConfig(parts=str(parts_dir), out=str(tmp_path / "run"),
                      model=dict(MODEL, **options), device="cpu", epochs=2, dtype="float64"))
    model, payload = load_model(tmp_path / "run" / "model.pt", dtype=torch.float64)
    assert {k: payload["model"][k] for k in options} == options
    assert model.edge_update is not None and model.message[0].values == 2
    b = load_batch(parts_dir, 0, 1, dtype=torch.float64)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["model"] == payload["model"]  # a resumed run checks the same options
    with torch.no_grad():
        nodes, edges = model(b.numbers, b.positions, b.cell, b.edge_index, b.edge_shift)
    assert torch.isfinite(nodes).all() and torch.isfinite(edges).all()


def test_parts_padded_for_a_whole_basis_table_are_refused_with_the_fix():
    # partitions sliced before stored the dataset's whole table: their blocks are padded wider
    from hampart.basis import Basis, builtin_basis
    from hampart.distributed.trainer import _one_basis

    table = builtin_basis("SZV")
    si_only = Basis({14: table.shells[14]}, name=table.name)
    records = [{"params": {"basis": b.to_dict()}} for b in (table, si_only)]
    with pytest.raises(InputError, match="new: stores blocks padded to 4 orbitals, old to 10.*slice both again"):
        _one_basis(["old", "new"], records)
    assert _one_basis(["new", "new2"], [records[1], records[1]]) == si_only


def test_per_l_weighting_weighs_irreducible_components_by_their_size(parts, tmp_path):
    """``loss_weighting="per-l"``: the objective is the SSE of the irreducible components
    times 1 / (2L + 1); reported errors stay per element. On an s-only block it is the
    element SSE; an error of one Frobenius norm in an L = 2 part counts 1/5 of one in L = 0."""
    from hampart.basis import Basis
    from hampart.blocks import IrrepsLayout
    from hampart.distributed.trainer import PartitionLoss
    from hampart.model.loss import per_l_sse
    from hampart.partition.loader import load_batch

    layout = IrrepsLayout(Basis({14: (0, 1)}, name="sp"))
    U = layout.U.reshape(16, 4, 4)
    ls = layout.irreps_ls
    zero, mask = torch.zeros(1, 4, 4, dtype=torch.float64), torch.ones(1, 4, 4, dtype=torch.bool)
    for L, share in ((0, 1.0), (1, 1 / 3), (2, 1 / 5)):
        k = int(torch.nonzero(ls == L)[-1])  # a component of this L (of the p-p pair for 0, 2)
        err = 0.3 * U[k][None]  # unit rows: an error of norm 0.3 in that component alone
        assert float(per_l_sse(err, zero, mask, layout)) == pytest.approx(0.09 * share)
        assert float(err.square().sum()) == pytest.approx(0.09)  # elements: all alike
    s_only = IrrepsLayout(Basis({14: (0,)}, name="s"))
    err = torch.randn(5, 1, 1, dtype=torch.float64)
    assert float(per_l_sse(err, torch.zeros_like(err), err.abs() > 0, s_only)) == \
        pytest.approx(float(err.square().sum()))

    root, parts_dir, _ = parts
    base = train(_config(parts_dir, tmp_path / "el", epochs=2))
    per_l = train(_config(parts_dir, tmp_path / "pl", epochs=2, loss_weighting="per-l"))
    for key in ("mse", "node_mae_mEh", "edge_mae_mEh"):  # epoch 0: the same start model
        assert per_l["first"][key] == pytest.approx(base["first"][key], rel=1e-12), key
    assert per_l["last"]["mse"] != pytest.approx(base["last"]["mse"], rel=1e-9)  # other steps
    model, _ = load_model(tmp_path / "el" / "model.pt", dtype=torch.float64)
    batch = load_batch(parts_dir, 0, n_layers=1, dtype=torch.float64)
    plain, weighted = PartitionLoss(model.basis), PartitionLoss(model.basis, weighting="per-l")
    a, sums_a = plain(model, batch, plain.masks(batch))
    b, sums_b = weighted(model, batch, weighted.masks(batch))
    torch.testing.assert_close(sums_a, sums_b)  # what is reported: per element, unchanged
    assert 0 < float(b.detach()) < float(a.detach())  # weights <= 1; L > 0 parts carry error


def test_prediction_warns_when_atoms_have_more_neighbours_than_any_training_atom(parts,
                                                                                 tmp_path):
    """The training atoms' smooth neighbour counts are kept with the model; the training
    structure predicts without a word; the same structure compressed by 10 % is predicted,
    and nearly all its atoms are named as beyond that range."""
    import dataclasses
    import warnings

    from hampart.errors import InputWarning
    from hampart.evaluate.predict import predict_file
    from hampart.io.dataset import load_dataset
    from hampart.io.structure import write_structure

    root, parts_dir, _ = parts
    summary = train(_config(parts_dir, tmp_path / "run", epochs=1))
    seen = summary["label_statistics"]["neighbour_count"]
    assert 0 < seen["min"] <= seen["mean"] <= seen["max"]
    s = load_dataset(root / "data").structure
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        _, info = predict_file(tmp_path / "run" / "model.pt", root / "data")
    assert info["atoms_outside_neighbour_range"] == 0
    assert info["neighbour_count"]["min"] == pytest.approx(seen["min"], rel=1e-3)
    assert 0 < info["neighbour_count_seconds"] < info["seconds"]
    dense = dataclasses.replace(s, positions=0.9 * s.positions, cell=0.9 * s.cell)
    write_structure(tmp_path / "dense.xyz", dense)
    with pytest.warns(InputWarning, match=r"9\d of 96 atoms .*dense.xyz .* outside the "
                                          r"training atoms'.*--images minimum"):
        _, info = predict_file(tmp_path / "run" / "model.pt", tmp_path / "dense.xyz")
    assert info["atoms_outside_neighbour_range"] >= 90
    assert info["neighbour_count"]["mean"] > seen["max"]
