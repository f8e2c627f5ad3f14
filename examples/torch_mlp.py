"""leaky_kernel.torch.LeakyReLU against torch.nn.LeakyReLU in a PyTorch MLP.

    python examples/torch_mlp.py [--batch 4096] [--width 256] [--layers 4]
                                 [--rounds 5] [--output torch_mlp.png]

(The NumPy-layer example is examples/mlp.py.) Two copies of one MLP, Linear
and LeakyReLU `--layers` times then a Linear to 10 classes, start from the
same weights; one uses torch's activation, the other leaky_kernel's. The
script prints, for one SGD training step of each:

- the step time (zero_grad, forward, cross entropy, backward, SGD step): the
  fastest mean of `--rounds` rounds, each building both models afresh and
  alternating them step by step;
- the bytes of the tensors the model's forward saves for the backward,
  counted with torch.autograd.graph.saved_tensors_hooks: torch's activation saves its
  input, leaky_kernel's a 1-bit mask of it (for tensors of at least
  leaky_kernel.torch.KERNEL_MIN_NUMEL elements; smaller ones go to torch).

and plots both to --output (needs matplotlib; without it the plot is skipped
with a message).
"""
import argparse
import sys
import time

import torch

import leaky_kernel.torch as lkt

SLOPE = 0.01
CLASSES = 10
ACTIVATIONS = {"torch.nn.LeakyReLU": torch.nn.LeakyReLU, "leaky_kernel": lkt.LeakyReLU}


def make_model(activation, widths, head=True, seed=0):
    """Linear(widths[i], widths[i + 1]), each followed by the activation but
    the last when `head`, the weights drawn from `seed` whatever the activation."""
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(n_in, n_out), activation(SLOPE)]
    return torch.nn.Sequential(*(layers[:-1] if head else layers))


def make_step(model, inputs, targets, lr=1e-3):
    """One SGD training step of `model` on (inputs, targets), as a function."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def saved_bytes(model, inputs, targets):
    """Bytes of the tensors the model's forward saves for the backward in a
    training step (the loss's own, the same whatever the activation, are
    not counted)."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        outputs = model(inputs)
    torch.nn.functional.cross_entropy(outputs, targets).backward()
    return total


def time_steps(make_steps, rounds, seconds_per_round):
    """({name: fastest round's mean step time}, {name: fastest single step},
    {name: [each round's mean step time]}), in seconds, over `rounds` rounds.

    `make_steps` maps each contender's name to a function that builds its
    model and returns its step. Every round builds the models afresh, in an
    order that rotates from round to round, then runs their steps in turn,
    step by step (that order rotating too), so that load from other
    processes falls on all of them alike; noise only ever slows a step down.
    Rebuilding matters: in one process the model built first ran 1-3%
    slower than identical ones built after it (bench/NOTES.md section 32)."""
    names = list(make_steps)
    best_round = dict.fromkeys(names, float("inf"))
    best_step = dict.fromkeys(names, float("inf"))
    round_means = {name: [] for name in names}
    per_round = None
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        steps = {}
        for name in order:
            steps[name] = make_steps[name]()
            for _ in range(2):
                steps[name]()
        if per_round is None:
            start = time.perf_counter()
            for step in steps.values():
                step()
            per_round = max(1, round(seconds_per_round / (time.perf_counter() - start)))
        spent = dict.fromkeys(names, 0.0)
        for i in range(per_round):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                steps[name]()
                elapsed = time.perf_counter() - start
                spent[name] += elapsed
                best_step[name] = min(best_step[name], elapsed)
        for name in names:
            round_means[name].append(spent[name] / per_round)
            best_round[name] = min(best_round[name], spent[name] / per_round)
        del steps
    return best_round, best_step, round_means


def synthetic_batch(batch, features, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, features, generator=generator)
    return inputs, torch.randint(0, CLASSES, (batch,), generator=generator)


def plot(output, times, memory):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: no plot written to {output}")
        return
    names = list(times)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.bar(names, [times[n] * 1e3 for n in names], color=["tab:gray", "tab:blue"])
    left.set_ylabel("training step (ms)")
    right.bar(names, [memory[n] / 2**20 for n in names], color=["tab:gray", "tab:blue"])
    right.set_ylabel("saved for backward (MiB)")
    fig.tight_layout()
    fig.savefig(output)
    print(f"plot written to {output}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per round of steps")
    parser.add_argument("--output", default="torch_mlp.png")
    args = parser.parse_args(argv)

    widths = [args.width] * (args.layers + 1) + [CLASSES]
    inputs, targets = synthetic_batch(args.batch, args.width)
    memory = {name: saved_bytes(make_model(act, widths), inputs, targets)
              for name, act in ACTIVATIONS.items()}
    times, _, _ = time_steps(
        {name: (lambda act=act: make_step(make_model(act, widths), inputs, targets))
         for name, act in ACTIVATIONS.items()},
        args.rounds, args.seconds,
    )

    print(f"MLP {' -> '.join(map(str, widths))}, batch {args.batch}, "
          f"{torch.get_num_threads()} threads, fastest of {args.rounds} rounds")
    print(f"{'activation':<20} {'step ms':>9} {'saved MiB':>10}")
    for name in ACTIVATIONS:
        print(f"{name:<20} {times[name] * 1e3:>9.3f} {memory[name] / 2**20:>10.3f}")
    reference, ours = ACTIVATIONS
    print(f"leaky_kernel / torch: step time {times[ours] / times[reference]:.3f}, "
          f"saved bytes {memory[ours] / memory[reference]:.3f}")
    plot(args.output, times, memory)


if __name__ == "__main__":
    sys.exit(main())
