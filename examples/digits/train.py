#!/usr/bin/env python3
"""Train a small PyTorch MLP on scikit-learn's bundled digits data, reporting to runplane.

Needs python3-torch and python3-sklearn (Debian) or `pip install torch scikit-learn`. The
learner client (clients/python/runplane_client.py) is found relative to this file.

With RUNPLANE_CONTROLLER_URL, RUNPLANE_RUN_ID and RUNPLANE_RUN_TOKEN set (a runplane job
linked to a run gets them), it heartbeats, reports loss / val_loss / val_accuracy, and obeys
commands: tune (learning_rate changes the optimizer's lr), pause / resume (no steps while
paused, heartbeats go on with status "paused"), terminate (with final_checkpoint: writes a
last checkpoint and reports its version before exiting 0). Without them it just trains.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "clients" / "python"))

import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402

from runplane_client import Learner  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.05, help="initial learning rate (SGD, momentum 0.9)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=64, help="hidden units")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--checkpoint-dir", default="checkpoints")
    p.add_argument("--checkpoint-every", type=int, default=5, help="epochs between checkpoints (0: only at the end)")
    p.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep per step (to watch it live)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


_log_lock = threading.Lock()


def log(msg: str) -> None:
    # Handlers print from the learner's command thread: one write per line, so lines from the
    # two threads never interleave.
    with _log_lock:
        sys.stdout.write(msg + "\n")
        sys.stdout.flush()


def data(seed: int):
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    n_val = len(x) // 5
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], x[val], y[val]


class Checkpoints:
    def __init__(self, directory: str) -> None:
        self.dir = Path(directory)
        self.version = 0

    def save(self, model: nn.Module, opt: torch.optim.Optimizer, step: int, epoch: int) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        version = self.version + 1
        path = self.dir / f"ckpt-{version:04d}.pt"
        tmp = path.with_suffix(".tmp")
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "epoch": epoch}
        torch.save(state, tmp)
        os.replace(tmp, path)  # a checkpoint is either whole or absent
        self.version = version
        return path


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    x_train, y_train, x_val, y_val = data(args.seed)
    model = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    ckpt = Checkpoints(args.checkpoint_dir)

    reporting = bool(os.environ.get("RUNPLANE_RUN_ID"))
    learner = Learner() if reporting else None
    lr_lock = threading.Lock()

    if learner is not None:

        @learner.on_tune
        def tune(payload):
            lr = payload.get("learning_rate")
            if lr is not None:
                # Runs on the learner's command thread; the ack follows once this returns, so
                # an acknowledged tune is already in effect for the next step.
                with lr_lock:
                    for group in opt.param_groups:
                        group["lr"] = float(lr)
                log(f"tune: learning_rate={lr}")

        learner.on_pause(lambda _p: log("pause requested"))
        learner.on_resume(lambda _p: log("resume requested"))
        learner.on_terminate(lambda p: log(f"terminate requested: {p.get('reason')}"))
        learner.start()
        log(f"reporting to {learner.controller_url} as run {learner.run_id}")

    step = epoch = 0
    status = "completed"
    loss_value = float("nan")
    try:
        for epoch in range(1, args.epochs + 1):
            model.train()
            order = torch.randperm(len(x_train))
            seen, started = 0, time.monotonic()
            for i in range(0, len(order), args.batch_size):
                if learner is not None:
                    if learner.paused and not learner.should_stop:
                        log(f"paused at step {step}")
                        learner.wait_while_paused()
                        if not learner.should_stop:
                            log(f"resumed at step {step}")
                    if learner.should_stop:
                        break
                idx = order[i : i + args.batch_size]
                with lr_lock:
                    opt.zero_grad()
                    loss = loss_fn(model(x_train[idx]), y_train[idx])
                    loss.backward()
                    opt.step()
                step += 1
                seen += len(idx)
                loss_value = float(loss.item())
                if learner is not None:
                    rate = seen / max(time.monotonic() - started, 1e-9)
                    learner.update(step=step, loss=loss_value, samples_per_sec=rate)
                if args.step_delay > 0:
                    time.sleep(args.step_delay)
            if learner is not None and learner.should_stop:
                break

            model.eval()
            with torch.no_grad():
                logits = model(x_val)
                val_loss = float(loss_fn(logits, y_val).item())
                val_acc = float((logits.argmax(dim=1) == y_val).float().mean().item())
            lr_now = opt.param_groups[0]["lr"]
            log(
                f"epoch {epoch} step {step} loss {loss_value:.4f} val_loss {val_loss:.4f} "
                f"val_accuracy {val_acc:.4f} lr {lr_now:g}"
            )
            if learner is not None:
                learner.report_metrics(
                    step, {"loss": loss_value, "val_loss": val_loss, "val_accuracy": val_acc, "learning_rate": lr_now}
                )
            if args.checkpoint_every > 0 and epoch % args.checkpoint_every == 0:
                path = ckpt.save(model, opt, step, epoch)
                log(f"checkpoint {ckpt.version}: {path}")
                if learner is not None:
                    learner.update(checkpoint_version=ckpt.version)

        terminate = learner.terminate_request if learner is not None else None
        if terminate is not None:
            status = "terminated"
            if terminate.get("final_checkpoint"):
                path = ckpt.save(model, opt, step, epoch)
                log(f"final checkpoint {ckpt.version}: {path}")
                learner.update(checkpoint_version=ckpt.version)
        elif ckpt.version == 0 or args.checkpoint_every <= 0 or args.epochs % args.checkpoint_every != 0:
            path = ckpt.save(model, opt, step, args.epochs)
            log(f"checkpoint {ckpt.version}: {path}")
            if learner is not None:
                learner.update(checkpoint_version=ckpt.version)
    except BaseException as exc:
        if learner is not None:
            interrupted = isinstance(exc, KeyboardInterrupt)
            learner.close("terminated" if interrupted else "failed", f"{type(exc).__name__}: {exc}")
        raise
    if learner is not None:
        run = learner.close(status)
        log(f"run {learner.run_id} finished: {(run or {}).get('status', status)}")
    else:
        log("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
