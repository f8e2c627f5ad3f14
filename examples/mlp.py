"""A small NumPy MLP (dense -> LeakyReLU -> dense) trained with leaky_kernel's layer.

    python examples/mlp.py [--epochs 40] [--output mlp_loss.png] [--seed 0]

The task is a synthetic regression: 16 features uniform in [0, 1] (all
positive, like pixel intensities), a smooth nonlinear target plus noise.
The same network (same data, same initial weights, same mini-batches) is
trained twice with Adam on mean squared error: once with Leaky ReLU (slope
0.01), once with slope 0, plain ReLU. The script prints both loss curves per
epoch, then the fraction of dead hidden units of each: units whose output is
never positive on the training data. A dead ReLU unit gets no gradient and
stays dead; a leaky unit still gets slope times its gradient and can come
back. Adam's learning rate 0.01 is on the high side, which is what kills
ReLU units in practice.

The loss curves are also plotted to --output (needs matplotlib; without it
the plot is skipped with a message).
"""
import argparse
import sys

import numpy as np

import leaky_kernel as lk

FEATURES, HIDDEN, SAMPLES, BATCH = 16, 256, 4096, 64
LEARNING_RATE, BETAS, EPSILON = 0.01, (0.9, 0.999), 1e-8
SLOPES = {"leaky (slope 0.01)": 0.01, "relu (slope 0)": 0.0}


def make_data(rng):
    """(inputs, targets), float32: a smooth nonlinear function of the inputs plus noise."""
    inputs = rng.random((SAMPLES, FEATURES)).astype(np.float32)
    w = rng.standard_normal((FEATURES, 4))
    targets = np.sin(2 * (inputs - 0.5) @ w).sum(axis=1, keepdims=True)
    targets += 0.05 * rng.standard_normal((SAMPLES, 1))
    return inputs, targets.astype(np.float32)


class Dense:
    """y = x @ weight + bias, with the gradients of its parameters."""

    def __init__(self, rng, n_in, n_out):
        # He initialisation, for (leaky) ReLU inputs.
        self.weight = (rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in)).astype(np.float32)
        self.bias = np.zeros(n_out, np.float32)
        self._x = None

    def forward(self, x):
        self._x = x
        return x @ self.weight + self.bias

    def backward(self, grad_output):
        """Gradient with respect to the input; the parameters' go to .grads."""
        self.grads = [self._x.T @ grad_output, grad_output.sum(axis=0)]
        return grad_output @ self.weight.T

    @property
    def params(self):
        return [self.weight, self.bias]


class MLP:
    def __init__(self, rng, negative_slope):
        self.hidden = Dense(rng, FEATURES, HIDDEN)
        # In place: the pre-activation is a temporary; the layer keeps a
        # 1-bit mask of it for the backward, not the array.
        self.activation = lk.LeakyReLU(negative_slope, inplace=True)
        self.output = Dense(rng, HIDDEN, 1)

    def hidden_units(self, x):
        return self.activation(self.hidden.forward(x))

    def forward(self, x):
        return self.output.forward(self.hidden_units(x))

    def backward(self, grad_output):
        grad = self.output.backward(grad_output)
        self.hidden.backward(self.activation.backward(grad))

    @property
    def layers(self):
        return [self.hidden, self.output]


def train(model, inputs, targets, epochs, rng):
    """Adam on mean squared error; the loss on all the data after each epoch."""
    params = [p for layer in model.layers for p in layer.params]
    means = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    (beta1, beta2), step, losses = BETAS, 0, []
    for _ in range(epochs):
        order = rng.permutation(SAMPLES)
        for start in range(0, SAMPLES, BATCH):
            batch = order[start:start + BATCH]
            error = model.forward(inputs[batch]) - targets[batch]
            model.backward((2 / len(batch)) * error)
            grads = [g for layer in model.layers for g in layer.grads]
            step += 1
            for param, grad, mean, square in zip(params, grads, means, squares):
                mean += (1 - beta1) * (grad - mean)
                square += (1 - beta2) * (grad * grad - square)
                unbiased_mean = mean / (1 - beta1**step)
                unbiased_square = square / (1 - beta2**step)
                param -= LEARNING_RATE * unbiased_mean / (np.sqrt(unbiased_square) + EPSILON)
        losses.append(float(np.mean((model.forward(inputs) - targets) ** 2)))
    return losses


def dead_fraction(model, inputs):
    """Fraction of hidden units whose output is positive for no input."""
    alive = (model.hidden_units(inputs) > 0).any(axis=0)
    return 1 - alive.mean()


def plot(curves, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: no plot written to {path}")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=name)
    ax.set(xlabel="epoch", ylabel="training MSE", yscale="log",
           title="dense -> LeakyReLU -> dense, synthetic regression")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"loss curves plotted to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--output", default="mlp_loss.png", help="PNG of the loss curves")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    inputs, targets = make_data(np.random.default_rng(args.seed))
    print(f"baseline MSE (predicting the mean): {np.var(targets):.4f}")
    curves, dead = {}, {}
    for name, slope in SLOPES.items():
        # The same initial weights and batches for both runs.
        model = MLP(np.random.default_rng(args.seed + 1), slope)
        batches = np.random.default_rng(args.seed + 2)
        curves[name] = train(model, inputs, targets, args.epochs, batches)
        dead[name] = dead_fraction(model, inputs)

    print("epoch  " + "  ".join(f"{name:>20}" for name in curves))
    for epoch, losses in enumerate(zip(*curves.values()), start=1):
        print(f"{epoch:5d}  " + "  ".join(f"{loss:20.5f}" for loss in losses))
    for name in curves:
        print(f"dead hidden units, {name}: {dead[name]:.1%} of {HIDDEN}")
    plot(curves, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
