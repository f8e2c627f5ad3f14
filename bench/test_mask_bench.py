"""pytest-benchmark benchmarks of the sign-mask functions against the plain ones.

    python -m pytest bench/test_mask_bench.py                       # time them
    python -m pytest bench/test_mask_bench.py --benchmark-disable   # only check results

One group per (op, dtype, mode, size): leaky_relu against
leaky_relu_forward_mask, leaky_relu_backward against
leaky_relu_backward_mask; with torch, a forward + backward step of
leaky_kernel.torch.LeakyReLU against torch.nn.LeakyReLU. Each benchmark first
checks its call's result against the np.where oracle. Calls use all threads.
The issue's target ratios are measured by mask_bench.py.
"""
from functools import partial

import numpy as np
import pytest

import harness
import leaky_kernel as lk
from harness import ALL_THREADS, SLOPE

pytest.importorskip("pytest_benchmark")

SIZES = {"small": 1 << 12, "large": 1 << 22}
FUNCTIONS = {
    "forward": {
        "leaky_relu": lambda x, g, mask, out: lk.leaky_relu(
            x, SLOPE, out=out, num_threads=ALL_THREADS),
        "leaky_relu_forward_mask": lambda x, g, mask, out: lk.leaky_relu_forward_mask(
            x, SLOPE, out=out, num_threads=ALL_THREADS)[0],
    },
    "backward": {
        "leaky_relu_backward": lambda x, g, mask, out: lk.leaky_relu_backward(
            g, x, SLOPE, out=out, num_threads=ALL_THREADS),
        "leaky_relu_backward_mask": lambda x, g, mask, out: lk.leaky_relu_backward_mask(
            g, mask, SLOPE, out=out, num_threads=ALL_THREADS),
    },
}


@pytest.mark.parametrize("mode", ["alloc", "out"])
@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("dtype", harness.DTYPES)
@pytest.mark.parametrize(
    "op, name", [(op, name) for op, names in FUNCTIONS.items() for name in names]
)
def test_mask_functions(benchmark, op, name, dtype, size_name, mode):
    size = SIZES[size_name]
    benchmark.group = f"{op} {dtype} {mode} {size_name} (2^{size.bit_length() - 1})"
    x, g = harness.random_inputs(size, dtype)
    mask = lk.leaky_relu_forward_mask(x, SLOPE)[1]
    out = np.empty_like(x) if mode == "out" else None
    call = partial(FUNCTIONS[op][name], x, g, mask, out)
    a = x.dtype.type(SLOPE)
    expected = np.where(x > 0, x, a * x) if op == "forward" else np.where(x > 0, g, a * g)
    assert np.array_equal(call(), expected)
    benchmark(call)


@pytest.mark.parametrize("module_name", ["leaky_kernel.torch", "torch.nn"])
@pytest.mark.parametrize("size_name", SIZES)
def test_torch_forward_backward_step(benchmark, module_name, size_name):
    torch = pytest.importorskip("torch")
    import leaky_kernel.torch as lk_torch

    size = SIZES[size_name]
    benchmark.group = f"torch float32 forward+backward {size_name} (2^{size.bit_length() - 1})"
    torch.set_num_threads(ALL_THREADS)
    x_np, g_np = harness.random_inputs(size, "float32")
    x, g = torch.from_numpy(x_np).requires_grad_(True), torch.from_numpy(g_np)
    modules = {"leaky_kernel.torch": lk_torch.LeakyReLU, "torch.nn": torch.nn.LeakyReLU}
    module = modules[module_name](SLOPE)

    def step():
        y = module(x)
        (dx,) = torch.autograd.grad(y, x, g)
        return dx

    a = np.float32(SLOPE)
    assert np.array_equal(step().numpy(), np.where(x_np > 0, g_np, a * g_np))
    benchmark(step)
