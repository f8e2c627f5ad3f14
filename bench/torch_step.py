"""One SGD training step with leaky_kernel.torch.LeakyReLU against torch.nn.LeakyReLU.

    python bench/torch_step.py                  # batches 64 and 512, 7 rounds
    python bench/torch_step.py --batches 64 --rounds 15

Model (issue 14): Linear(1024, 2048), LeakyReLU, Linear(2048, 2048),
LeakyReLU, Linear(2048, 10), float32; a step is zero_grad, forward, cross
entropy, backward and torch.optim.SGD's step. Target: step time with
leaky_kernel's activation / step time with torch's <= 1.0 at batch 64 and 512.

Both models start from the same weights and see the same batch. A round times
a loop of steps of each model in turn, the order alternating between rounds;
each model's figure is its fastest round (load from other processes only ever
slows a loop down). The ratio is of those fastest rounds.
"""
import argparse
import time

import torch

import leaky_kernel.torch as lkt
from leaky_kernel._dispatch import kernels
from report import _cpu_model

SLOPE = 0.01


def make_model(activation, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(1024, 2048),
        activation(SLOPE),
        torch.nn.Linear(2048, 2048),
        activation(SLOPE),
        torch.nn.Linear(2048, 10),
    )


def make_step(model, inputs, targets):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()

    return step


def loop_seconds(step, steps):
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def time_steps(steps_by_name, rounds, seconds_per_loop):
    """Fastest mean step time of each contender over interleaved rounds."""
    for step in steps_by_name.values():
        for _ in range(3):
            step()
    first = next(iter(steps_by_name.values()))
    per_loop = max(1, round(seconds_per_loop / loop_seconds(first, 3)))
    best = dict.fromkeys(steps_by_name, float("inf"))
    names = list(steps_by_name)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            best[name] = min(best[name], loop_seconds(steps_by_name[name], per_loop))
    return best, per_loop


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.3, help="per loop of steps")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(f"CPU: {_cpu_model()}")
    print(f"leaky_kernel SIMD: {kernels.SIMD}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"fastest of {args.rounds} interleaved rounds\n")
    print(f"{'batch':>6} {'steps/loop':>10} {'torch ms':>9} {'lkt ms':>9} {'lkt / torch':>11}")
    for batch in args.batches:
        generator = torch.Generator().manual_seed(batch)
        inputs = torch.randn(batch, 1024, generator=generator)
        targets = torch.randint(0, 10, (batch,), generator=generator)
        steps = {
            "torch": make_step(make_model(torch.nn.LeakyReLU), inputs, targets),
            "lkt": make_step(make_model(lkt.LeakyReLU), inputs, targets),
        }
        best, per_loop = time_steps(steps, args.rounds, args.seconds)
        print(f"{batch:>6} {per_loop:>10} {best['torch'] * 1e3:>9.3f} {best['lkt'] * 1e3:>9.3f} "
              f"{best['lkt'] / best['torch']:>11.3f}")


if __name__ == "__main__":
    main()
