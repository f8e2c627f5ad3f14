"""Issue 14's targets for leaky_kernel.torch.LeakyReLU against torch.nn.LeakyReLU.

    python bench/torch_step.py                  # about a minute on an idle 2-core machine
    python bench/torch_step.py --batches 64 --rounds 15

1. Step time. Model Linear(1024, 2048), LeakyReLU, Linear(2048, 2048),
   LeakyReLU, Linear(2048, 10), float32; one SGD training step (zero_grad,
   forward, cross entropy, backward, SGD step) on --threads threads. Target:
   step time with leaky_kernel's activation / with torch's <= 1.0 at batch
   64 and 512, fastest of 7 interleaved rounds.
2. Saved-tensor bytes. Linear(256, 256) and LeakyReLU four times, batch
   4096, in a training step (cross entropy over the 256 outputs): bytes the
   model's forward saves for the backward, counted with
   torch.autograd.graph.saved_tensors_hooks (the loss's own are not
   counted). Target: <= 0.6x torch's.

Both models of a pair start from the same weights and see the same batch.
Timing is examples/torch_mlp.py's time_steps: each round alternates the two
models step by step, and each model's figure is its fastest round's mean
(the target's measure); the fastest single step of each is printed too.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.6, help="per round of steps")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}")
    print(f"leaky_kernel SIMD: {kernels.SIMD}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    reference, ours = ACTIVATIONS

    print(f"1. step time, fastest of {args.rounds} interleaved rounds (target <= 1.0); "
          "the fastest single steps too")
    print(f"{'batch':>6} {'torch ms':>9} {'lkt ms':>9} {'lkt / torch':>11}   "
          f"{'fastest steps: torch ms':>23} {'lkt ms':>9} {'lkt / torch':>11}")
    for batch in args.batches:
        inputs, targets = synthetic_batch(batch, STEP_WIDTHS[0], seed=batch)
        steps = {
            name: make_step(make_model(activation, STEP_WIDTHS), inputs, targets)
            for name, activation in ACTIVATIONS.items()
        }
        rounds, singles = time_steps(steps, args.rounds, args.seconds)
        print(f"{batch:>6}" + "   ".join(
            f" {best[reference] * 1e3:>{width}.3f} {best[ours] * 1e3:>9.3f} "
            f"{best[ours] / best[reference]:>11.3f}"
            for best, width in ((rounds, 9), (singles, 23))
        ))

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
