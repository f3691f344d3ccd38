#!/usr/bin/env python3
"""The digits trainer for population-based training: resumes from another trial's checkpoint.

A PBT trial that continues a better trial gets RUNPLANE_RESUME_FROM (that trial's checkpoint
directory) and RUNPLANE_START_STEP (the epoch PBT ranked it at), and starts from that epoch's
checkpoint with its own (perturbed) learning rate. Every
epoch it reports val_loss at step = epoch (PBT's perturbation interval counts epochs) and writes a
checkpoint into its own RUNPLANE_CHECKPOINT_DIR, which later trials may continue from. A
terminate command (PBT replacing this trial) ends it cleanly. Needs python3-torch and
python3-sklearn; the learner client is found relative to this file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "clients" / "python"))
sys.path.insert(0, str(HERE.parent / "digits"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from runplane_client import Learner  # noqa: E402
from train import data  # noqa: E402  (examples/digits/train.py: the same data split)


def checkpoint_at(directory: str | None, step: int) -> Path | None:
    """The donor's checkpoint at the step PBT chose it (the newest one not after it): the donor
    keeps training meanwhile, and its later checkpoints are not what was ranked."""
    if not directory:
        return None
    found = [p for p in sorted(Path(directory).glob("epoch-*.pt")) if int(p.stem.split("-")[1]) <= step]
    return found[-1] if found else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--epochs", type=int, default=15, help="train until this epoch (PBT's max_t)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epoch-delay", type=float, default=0.0, help="seconds to sleep per epoch (to watch it live)")
    args = p.parse_args(argv)

    ckpt_dir = Path(os.environ.get("RUNPLANE_CHECKPOINT_DIR", "checkpoints"))
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    x_train, y_train, x_val, y_val = data(args.seed)
    model = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    start_epoch = 0
    source = checkpoint_at(os.environ.get("RUNPLANE_RESUME_FROM"), int(os.environ.get("RUNPLANE_START_STEP", "0")))
    if source is not None:
        state = torch.load(source)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for group in opt.param_groups:  # explore: this trial's own learning rate
            group["lr"] = args.lr
        start_epoch = int(state["epoch"])
        print(f"resumed from {source} at epoch {start_epoch} with lr {args.lr}", flush=True)

    learner = Learner().start() if os.environ.get("RUNPLANE_RUN_ID") else None
    if source is not None and learner is not None:
        # The inherited model's standing, so the trial has a value even if stopped at once.
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(x_val), y_val).item())
        learner.report_metrics(start_epoch, {"val_loss": val_loss, "lr": args.lr})
    status = "completed"
    try:
        for epoch in range(start_epoch + 1, args.epochs + 1):
            if learner is not None and learner.should_stop:
                status = "terminated"
                break
            model.train()
            order = torch.randperm(len(x_train))
            for i in range(0, len(order), args.batch_size):
                idx = order[i : i + args.batch_size]
                opt.zero_grad()
                loss = loss_fn(model(x_train[idx]), y_train[idx])
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                logits = model(x_val)
                val_loss = float(loss_fn(logits, y_val).item())
                val_acc = float((logits.argmax(dim=1) == y_val).float().mean().item())
            path = ckpt_dir / f"epoch-{epoch:04d}.pt"
            tmp = path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch}, tmp)
            os.replace(tmp, path)  # whole or absent: a trial continuing from it never reads half
            print(f"epoch {epoch} val_loss {val_loss:.4f} val_accuracy {val_acc:.4f}", flush=True)
            if args.epoch_delay > 0:
                time.sleep(args.epoch_delay)
            if learner is not None:
                learner.update(step=epoch, loss=float(loss.item()), checkpoint_version=epoch)
                learner.report_metrics(epoch, {"val_loss": val_loss, "val_accuracy": val_acc, "lr": args.lr})
    except BaseException as exc:
        if learner is not None:
            learner.close("failed", f"{type(exc).__name__}: {exc}")
        raise
    if learner is not None:
        learner.close(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
