"""A NumPy model that learns a slope per hidden unit (PReLU) with leaky_kernel.

    python examples/prelu.py [--epochs 30] [--seed 0]

A teacher network makes the targets: 8 inputs -> 32 hidden units, each
with its own negative slope between -0.5 and 0.5 -> 1 output. Two students
of the teacher's shape learn it from the same start by SGD with momentum
on mean squared error:

- "prelu": `lk.PReLU`, slopes learned from 0.25; the backward returns the
  slopes' gradient (`lk.leaky_relu_slope_grad`) with the input's;
- "fixed": `lk.LeakyReLU(0.25)`, whose slope stays.

The script prints both losses per epoch, then how far the learned slopes
moved (the students' hidden units need not line up with the teacher's, so
their slopes are not compared one by one).
"""
import argparse
import sys

import numpy as np

import leaky_kernel as lk

INPUTS, HIDDEN, SAMPLES, BATCH = 8, 32, 4096, 64
LEARNING_RATE, MOMENTUM, INITIAL_SLOPE = 0.02, 0.9, 0.25


def make_data(rng):
    """(inputs, targets, the teacher's slopes), float32 but the slopes."""
    inputs = rng.standard_normal((SAMPLES, INPUTS)).astype(np.float32)
    weight = rng.standard_normal((INPUTS, HIDDEN)) / np.sqrt(INPUTS)
    slopes = rng.uniform(-0.5, 0.5, HIDDEN)
    readout = rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN)
    targets = lk.leaky_relu(inputs @ weight, slopes) @ readout
    return inputs, targets.astype(np.float32), slopes


class Student:
    """inputs @ first -> activation -> @ second, with SGD-with-momentum steps."""

    def __init__(self, rng, activation):
        self.first = (rng.standard_normal((INPUTS, HIDDEN)) / np.sqrt(INPUTS)).astype(np.float32)
        self.second = (rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN)).astype(np.float32)
        self.activation = activation
        self.velocities = {}

    def forward(self, x):
        self._x = x
        self._hidden = self.activation(x @ self.first)
        return self._hidden @ self.second

    def step(self, grad_output):
        """One SGD step from the gradient of the loss with respect to the output."""
        grads = {"second": self._hidden.T @ grad_output}
        grad_hidden = grad_output @ self.second.T
        if isinstance(self.activation, lk.PReLU):
            grad_hidden, grads["slope"] = self.activation.backward(grad_hidden)
        else:
            grad_hidden = self.activation.backward(grad_hidden)
        grads["first"] = self._x.T @ grad_hidden
        for name, grad in grads.items():
            param = self.activation.slope if name == "slope" else getattr(self, name)
            velocity = self.velocities.setdefault(name, np.zeros_like(param))
            velocity *= MOMENTUM
            velocity -= LEARNING_RATE * grad
            param += velocity


def train(student, inputs, targets, epochs, rng):
    """The mean squared error on all the data after each epoch."""
    def mean_squared_error():
        return float(np.mean((student.forward(inputs) - targets) ** 2))

    losses = []
    while len(losses) < epochs:
        for batch in np.array_split(rng.permutation(SAMPLES), SAMPLES // BATCH):
            student.step((2 / len(batch)) * (student.forward(inputs[batch]) - targets[batch]))
        losses.append(mean_squared_error())
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    inputs, targets, teacher_slopes = make_data(np.random.default_rng(args.seed))
    print(f"baseline MSE (predicting the mean): {np.var(targets):.5f}")
    activations = {
        "prelu": lk.PReLU(np.full(HIDDEN, INITIAL_SLOPE, np.float32)),
        "fixed": lk.LeakyReLU(INITIAL_SLOPE),
    }
    curves = {}
    for name, activation in activations.items():
        # The same initial weights and batches for both students.
        student = Student(np.random.default_rng(args.seed + 1), activation)
        curves[name] = train(student, inputs, targets, args.epochs,
                             np.random.default_rng(args.seed + 2))

    print("epoch  " + "  ".join(f"{name:>12}" for name in curves))
    for epoch, losses in enumerate(zip(*curves.values()), start=1):
        print(f"{epoch:5d}  " + "  ".join(f"{loss:12.6f}" for loss in losses))
    learned = activations["prelu"].slope
    print(f"learned slopes: {learned.min():.3f} to {learned.max():.3f}, mean distance from "
          f"{INITIAL_SLOPE}: {np.mean(np.abs(learned - INITIAL_SLOPE)):.3f} "
          f"(teacher's: {teacher_slopes.min():.3f} to {teacher_slopes.max():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
