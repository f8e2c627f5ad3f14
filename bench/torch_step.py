"""Step time of leaky_kernel.torch.LeakyReLU against torch.nn.LeakyReLU, eager and compiled.

    python bench/torch_step.py [--rounds 15] [--seconds 1.0] [--threads 2] [--only mlp]

Models (float32, one SGD training step: zero_grad, forward, loss, backward, step):
- mlp: Linear(1024, 2048), LeakyReLU(0.01), Linear(2048, 2048), LeakyReLU(0.01),
  Linear(2048, 10), batch 512, cross entropy;
- dcgan: a DCGAN-style discriminator on 64x64 RGB images, channels_last,
  batch 64: Conv(3->64, 4, 2, 1), LeakyReLU(0.2), then (Conv(4, 2, 1),
  BatchNorm, LeakyReLU(0.2)) to 128 and 256 channels, Conv(256->1, 8),
  binary cross entropy on logits.

Each model runs with torch's activation, leaky_kernel's, and torch's again
(the control: what the method reads for two equal models), eager and under
torch.compile(fullgraph=True) (inductor). Each round builds the three
eager models afresh from the same weights (compiled ones are built once),
in an order that rotates, and alternates their steps; the figure per round
is its mean step time. Printed: the median over rounds of each
contender's ratio to torch's in the same round, and the spread (min, max).
The load average is printed before and after: the machine may be shared.
"""
import argparse
import os
import time

import torch

import leaky_kernel.torch as lkt
from leaky_kernel._dispatch import kernels
from leaky_kernel._tuning import cpu_model

CONTENDERS = {"torch": torch.nn.LeakyReLU, "leaky_kernel": lkt.LeakyReLU,
              "torch, again": torch.nn.LeakyReLU}


def mlp(activation):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(1024, 2048), activation(0.01), torch.nn.Linear(2048, 2048),
        activation(0.01), torch.nn.Linear(2048, 10),
    )


def dcgan(activation):
    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(3, 64, 4, 2, 1, bias=False), activation(0.2)]
    for n_in, n_out in ((64, 128), (128, 256)):
        layers += [torch.nn.Conv2d(n_in, n_out, 4, 2, 1, bias=False),
                   torch.nn.BatchNorm2d(n_out), activation(0.2)]
    layers += [torch.nn.Conv2d(256, 1, 8, 1, 0, bias=False), torch.nn.Flatten()]
    return torch.nn.Sequential(*layers).to(memory_format=torch.channels_last)


def batch(name):
    generator = torch.Generator().manual_seed(1)
    if name == "mlp":
        return (torch.randn(512, 1024, generator=generator),
                torch.randint(0, 10, (512,), generator=generator), torch.nn.functional.cross_entropy)
    images = torch.randn(64, 3, 64, 64, generator=generator).contiguous(
        memory_format=torch.channels_last)
    return (images, torch.randint(0, 2, (64, 1), generator=generator).float(),
            torch.nn.functional.binary_cross_entropy_with_logits)


def make_step(model_name, activation, compiled):
    model = {"mlp": mlp, "dcgan": dcgan}[model_name](activation)
    run = torch.compile(model, fullgraph=True) if compiled else model
    inputs, targets, loss_fn = batch(model_name)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad()
        loss_fn(run(inputs), targets).backward()
        optimizer.step()

    return step


def measure(model_name, compiled, rounds, seconds):
    """{contender: [mean step time of each round]}. Eager models are built
    afresh each round; compiled ones once (compiling takes tens of seconds),
    then reused in every round."""
    names = list(CONTENDERS)
    per_round = {name: [] for name in names}
    built = {}
    if compiled:
        for name in names:
            built[name] = make_step(model_name, CONTENDERS[name], compiled=True)
    for r in range(rounds):
        order = names[r % 3:] + names[:r % 3]
        steps = {}
        for name in order:
            steps[name] = built.get(name) or make_step(model_name, CONTENDERS[name], False)
            for _ in range(3):
                steps[name]()
        start = time.perf_counter()
        steps[names[0]]()
        count = max(3, round(seconds / (time.perf_counter() - start) / 3))
        spent = dict.fromkeys(names, 0.0)
        for i in range(count):
            for name in names[i % 3:] + names[:i % 3]:
                start = time.perf_counter()
                steps[name]()
                spent[name] += time.perf_counter() - start
        for name in names:
            per_round[name].append(spent[name] / count)
    return per_round


def summary(per_round, name):
    ratios = sorted(a / b for a, b in zip(per_round[name], per_round["torch"]))
    return ratios[len(ratios) // 2], ratios[0], ratios[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round of steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["mlp", "dcgan"], nargs="+", default=["mlp", "dcgan"])
    parser.add_argument("--modes", choices=["eager", "compiled"], nargs="+",
                        default=["eager", "compiled"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}; leaky_kernel SIMD: {kernels.SIMD}; torch {torch.__version__}, "
          f"{args.threads} threads; {args.rounds} rounds")
    print(f"{'model':<6} {'mode':<9} {'torch ms':>9} {'lkt/torch median (min..max)':>30} "
          f"{'control/torch median (min..max)':>34}  load before -> after")
    for model_name in args.only:
        for mode in args.modes:
            before = os.getloadavg()[0]
            per_round = measure(model_name, mode == "compiled", args.rounds, args.seconds)
            after = os.getloadavg()[0]
            torch_ms = sorted(per_round["torch"])[args.rounds // 2] * 1e3
            ours, control = summary(per_round, "leaky_kernel"), summary(per_round, "torch, again")
            print(f"{model_name:<6} {mode:<9} {torch_ms:>9.2f} "
                  f"{ours[0]:>12.3f} ({ours[1]:.3f}..{ours[2]:.3f})      "
                  f"{control[0]:>12.3f} ({control[1]:.3f}..{control[2]:.3f})      "
                  f"{before:.2f} -> {after:.2f}", flush=True)


if __name__ == "__main__":
    main()
