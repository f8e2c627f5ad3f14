"""Issue 14's targets for leaky_kernel.torch.LeakyReLU against torch.nn.LeakyReLU.

    python bench/torch_step.py                  # about two minutes on an idle 2-core machine
    python bench/torch_step.py --batches 512 --rounds 31 --control

1. Step time. Model Linear(1024, 2048), LeakyReLU, Linear(2048, 2048),
   LeakyReLU, Linear(2048, 10), float32; one SGD training step (zero_grad,
   forward, cross entropy, backward, SGD step) on --threads threads. Target:
   step time with leaky_kernel's activation / with torch's <= 1.0 at batch
   64 and 512, fastest of 7 (here, by default, 15) interleaved rounds.
2. Saved-tensor bytes. Linear(256, 256) and LeakyReLU four times, batch
   4096, in a training step (cross entropy over the 256 outputs): bytes the
   model's forward saves for the backward, counted with
   torch.autograd.graph.saved_tensors_hooks (the loss's own are not
   counted). Target: <= 0.6x torch's.

Both models of a pair start from the same weights and see the same batch.
Timing is examples/torch_mlp.py's time_steps: each round builds the models
afresh, in an order that rotates (the model built first in a process ran
1-3% slower), runs them step by step in turn, and each model's figure is
its fastest round's mean (the target's measure). Printed with it: the fastest single steps, and the
spread of the per-round ratios (each round times both models under the same
load, so a round's ratio is a paired measurement). With --control a second
model with torch's activation runs in the same rounds: its ratio to the
first is what the method reads for two equal models, the noise floor.
Run it several times: the ratio moves by more between runs than within one.
"""
import argparse
import os
import sys

import torch

from leaky_kernel._dispatch import kernels
from leaky_kernel._tuning import cpu_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from torch_mlp import (  # noqa: E402  (examples/ is not a package)
    ACTIVATIONS,
    make_model,
    make_step,
    saved_bytes,
    synthetic_batch,
    time_steps,
)

STEP_WIDTHS = [1024, 2048, 2048, 10]
MEMORY_WIDTHS, MEMORY_BATCH = [256] * 5, 4096
CONTROL = "torch, again"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round of steps")
    parser.add_argument("--control", action="store_true",
                        help="time a second torch.nn.LeakyReLU model alongside (the noise floor)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}")
    print(f"leaky_kernel SIMD: {kernels.SIMD}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    reference, ours = ACTIVATIONS

    contenders = dict(ACTIVATIONS)
    if args.control:
        contenders[CONTROL] = ACTIVATIONS[reference]
    print(f"1. step time, fastest of {args.rounds} interleaved rounds (target <= 1.0); "
          "the fastest single steps; each round's ratio (min / median / max)")
    print(f"{'batch':>6} {'model':<20} {'round ms':>9} {'/ torch':>8} {'step ms':>9} "
          f"{'/ torch':>8} {'rounds / torch':>22}")
    for batch in args.batches:
        inputs, targets = synthetic_batch(batch, STEP_WIDTHS[0], seed=batch)
        make_steps = {
            name: (lambda activation=activation:
                   make_step(make_model(activation, STEP_WIDTHS), inputs, targets))
            for name, activation in contenders.items()
        }
        best_round, best_step, round_means = time_steps(make_steps, args.rounds, args.seconds)
        for name in contenders:
            if name == reference:
                continue
            ratios = sorted(
                mine / torchs for mine, torchs in zip(round_means[name], round_means[reference])
            )
            print(f"{batch:>6} {name:<20} {best_round[name] * 1e3:>9.3f} "
                  f"{best_round[name] / best_round[reference]:>8.3f} "
                  f"{best_step[name] * 1e3:>9.3f} {best_step[name] / best_step[reference]:>8.3f} "
                  f"{ratios[0]:>8.3f} {ratios[len(ratios) // 2]:>6.3f} {ratios[-1]:>6.3f}")
        print(f"{batch:>6} {reference:<20} {best_round[reference] * 1e3:>9.3f} "
              f"{'':>8} {best_step[reference] * 1e3:>9.3f}")

    inputs, targets = synthetic_batch(MEMORY_BATCH, MEMORY_WIDTHS[0])
    saved = {
        name: saved_bytes(make_model(activation, MEMORY_WIDTHS, head=False), inputs, targets)
        for name, activation in ACTIVATIONS.items()
    }
    print(f"\n2. saved-tensor bytes, 4 x (Linear(256, 256), LeakyReLU), batch {MEMORY_BATCH} "
          f"(target <= 0.6)")
    print(f"torch {saved[reference]:,} B, lkt {saved[ours]:,} B, "
          f"lkt / torch {saved[ours] / saved[reference]:.3f}")


if __name__ == "__main__":
    main()
