"""Train on several real a-Si cells, judge on asi216-b (accuracy_real's procedure, several training cells)."""
import json, sys, time
from pathlib import Path
import torch
from hampart.distributed.trainer import TrainConfig, train
from hampart.experiments import judge
from hampart.model.io import load_model
from hampart.partition import slice_dataset
name, seed, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
trains = sys.argv[4].split(',')
out = Path(sys.argv[5]); out.mkdir(parents=True, exist_ok=True)
MODELS = {"default": {}, "invariants": {"onsite_invariants": True}, "radial-species": {"radial_species": True}}
parts = []
for d in trains:
    p = out / ("parts-" + Path(d).name)
    if not (p / "manifest.json").exists():
        slice_dataset(d, rcut=8.0, method="metis", parts=2, halo=1, out=p)
    parts.append(str(p))
run = out / f"{name}-seed{seed}"
stages = [int(x) for x in sys.argv[6].split(',')] if len(sys.argv) > 6 else [epochs]
t0 = time.perf_counter()
for k, e in enumerate(stages):
    train(TrainConfig(parts=parts, out=str(run), model=dict(MODELS[name]), epochs=e, lr=3e-3,
                      patience=500, seed=seed, resume=k > 0, log_every=50, device="cpu"))
    model, _ = load_model(run / "model.pt")
    rec = {"model": name, "seed": seed, "epochs": e, "train": trains, "train_seconds": round(time.perf_counter() - t0, 1),
           "threads": torch.get_num_threads(), **judge(model, "/work/shared/data/cp2k-si/asi216-b")}
    print(json.dumps(rec), flush=True)
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
