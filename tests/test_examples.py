"""The references' usage examples, written with leaky_kernel and run: scalar
calls with alpha=, a layer's forward and backward on small arrays, a 1-D
float32 array and its derivative, small dense models using the activation,
examples/mlp.py (NumPy) and examples/torch_mlp.py (PyTorch)."""
import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import leaky_kernel as lk

MLP_SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mlp.py"
TORCH_MLP_SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "torch_mlp.py"
PRELU_SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "prelu.py"


@pytest.mark.parametrize(
    "x, alpha, expected",
    [(-2, 0.1, -0.2), (3, 0.1, 3.0), (0, 0.1, 0.0), (-10, 0.2, -2.0), (-1.0, 0.3, -0.3)],
)
def test_scalar_calls_with_alpha(x, alpha, expected):
    # TensorFlow's leaky_relu(features, alpha=...) style; Python scalars compute in float64.
    assert lk.leaky_relu(x, alpha=alpha) == expected


def test_layer_forward_and_backward_on_a_small_array():
    # Keras: LeakyReLU(negative_slope=0.5) on [-3.0, -1.0, 0.0, 2.0].
    layer = lk.LeakyReLU(negative_slope=0.5)
    assert_array_equal(layer([-3.0, -1.0, 0.0, 2.0]), [-1.5, -0.5, 0.0, 2.0])
    assert_array_equal(layer.backward(np.ones(4)), [0.5, 0.5, 0.5, 1.0])


def test_float32_array_and_its_derivative():
    # JAX: leaky_relu(jnp.array([-2., -1., -0.5, 0, 0.5, 1., 2.]), negative_slope=0.1).
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)
    y = lk.leaky_relu(x, negative_slope=0.1)
    assert y.dtype == np.float32
    assert_array_equal(y, np.array([-0.2, -0.1, -0.05, 0.0, 0.5, 1.0, 2.0], dtype=np.float32))
    derivative = lk.leaky_relu_backward(np.ones_like(x), x, negative_slope=0.1)
    expected = np.array([0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 1.0], dtype=np.float32)
    assert_array_equal(derivative, expected, strict=True)
    # The same through the mask functions and the layer.
    y_masked, mask = lk.leaky_relu_forward_mask(x, 0.1)
    assert_array_equal(y_masked, y, strict=True)
    derivative = lk.leaky_relu_backward_mask(np.ones_like(x), mask, 0.1)
    assert_array_equal(derivative, expected, strict=True)


def test_small_dense_model_forward_and_backward():
    # Keras-style Sequential([Dense(3), LeakyReLU(0.25), Dense(1)]) with fixed
    # weights, worked by hand (0.25 keeps every product exact).
    w1 = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -1.0]])
    b1 = np.array([0.0, 0.5, -0.5])
    w2 = np.array([[1.0], [2.0], [-1.0]])
    x = np.array([[1.0, 1.0], [-1.0, 0.5]])
    activation = lk.LeakyReLU(0.25)
    hidden = x @ w1 + b1
    assert_array_equal(hidden, [[3.0, -0.5, -1.0], [0.0, 1.5, -1.5]])
    activated = activation(hidden)
    assert_array_equal(activated, [[3.0, -0.125, -0.25], [0.0, 1.5, -0.375]])
    assert_array_equal(activated @ w2, [[3.0], [3.375]])
    # dL/dy = 1: the gradient reaching the activation is w2.T per row; the
    # activation scales it by 1 where hidden > 0, else by the slope (at 0 too).
    grad_hidden = activation.backward(np.ones((2, 1)) @ w2.T)
    assert_array_equal(grad_hidden, [[1.0, 0.5, -0.25], [0.25, 2.0, -0.25]])


def test_pytorch_module_example():
    # PyTorch: m = nn.LeakyReLU(0.1); input = torch.randn(2); output = m(input).
    torch = pytest.importorskip("torch")
    import leaky_kernel.torch as lkt

    m = lkt.LeakyReLU(0.1)
    input = torch.randn(2)
    assert torch.equal(m(input), torch.nn.LeakyReLU(0.1)(input))


@pytest.mark.slow  # a training run
def test_mlp_example_trains_and_compares_dead_units(run_python, tmp_path):
    png = tmp_path / "loss.png"
    process = run_python(str(MLP_SCRIPT), "--epochs", "6", "--output", str(png), timeout=120)
    assert process.returncode == 0, process.stderr
    rows = [line.split() for line in process.stdout.splitlines() if re.match(r"\s*\d+\s", line)]
    epochs = [int(row[0]) for row in rows]
    assert epochs == list(range(1, 7))
    leaky, relu = ([float(row[i]) for row in rows] for i in (1, 2))
    assert leaky[-1] < 0.9 * leaky[0]
    assert relu[-1] < 0.9 * relu[0]
    assert re.search(r"dead hidden units, leaky \(slope 0.01\): \d+\.\d% of 256", process.stdout)
    assert re.search(r"dead hidden units, relu \(slope 0\): \d+\.\d% of 256", process.stdout)
    assert_plot_written_unless_no_matplotlib(process, png)


@pytest.mark.slow  # a training run
def test_prelu_example_learns_its_slopes(run_python):
    process = run_python(str(PRELU_SCRIPT), "--epochs", "4", timeout=120)
    assert process.returncode == 0, process.stderr
    rows = [line.split() for line in process.stdout.splitlines() if re.match(r"\s*\d+\s", line)]
    assert [int(row[0]) for row in rows] == [1, 2, 3, 4]
    prelu, fixed = ([float(row[i]) for row in rows] for i in (1, 2))
    baseline = float(re.search(r"baseline MSE \(predicting the mean\): (\S+)", process.stdout)[1])
    assert prelu[-1] < 0.1 * baseline and fixed[-1] < 0.1 * baseline
    distance = float(re.search(r"mean distance from 0.25: (\S+)", process.stdout)[1])
    assert distance > 0.01  # the slopes were trained, not left at their start


def assert_plot_written_unless_no_matplotlib(process, png):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in process.stdout
    else:
        assert png.read_bytes().startswith(b"\x89PNG")


def assert_plot_skipped_without_matplotlib(run_python, script, args, png):
    # A None entry in sys.modules makes `import matplotlib` raise ImportError.
    code = (
        "import runpy, sys; sys.modules['matplotlib'] = None; "
        f"sys.argv = [{str(script)!r}, *{[*args, '--output', str(png)]!r}]; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    process = run_python("-c", code, timeout=120)
    assert process.returncode == 0, process.stderr
    assert f"matplotlib is not installed: no plot written to {png}" in process.stdout
    assert not png.exists()


def test_mlp_example_without_matplotlib_skips_the_plot(run_python, tmp_path):
    png = tmp_path / "loss.png"
    assert_plot_skipped_without_matplotlib(run_python, MLP_SCRIPT, ["--epochs", "1"], png)


@pytest.mark.slow  # a training run
def test_torch_mlp_example_reports_step_time_and_saved_memory(run_python, tmp_path):
    pytest.importorskip("torch")
    png = tmp_path / "torch_mlp.png"
    # Batch 4096 x width 256 reaches the kernel (KERNEL_MIN_NUMEL); two layers
    # and one short round keep it quick. Times are printed, not judged.
    args = ["--layers", "2", "--rounds", "1", "--seconds", "0.01", "--output", str(png)]
    process = run_python(str(TORCH_MLP_SCRIPT), *args, timeout=120)
    assert process.returncode == 0, process.stderr
    row = re.compile(r"(torch\.nn\.LeakyReLU|leaky_kernel)\s+(\d+\.\d+)\s+(\d+\.\d+)$")
    rows = dict(
        row.match(line).group(1, 3) for line in process.stdout.splitlines() if row.match(line)
    )
    assert set(rows) == {"torch.nn.LeakyReLU", "leaky_kernel"}
    ratio = re.search(r"step time (\d+\.\d+), saved bytes (\d+\.\d+)", process.stdout)
    assert ratio and float(ratio.group(1)) > 0
    # Per layer torch saves the Linear's input and weight and the activation's
    # input, leaky_kernel the first two and a 1-bit mask; the head's input is
    # saved by both.
    saved = float(ratio.group(2))
    ours, theirs = float(rows["leaky_kernel"]), float(rows["torch.nn.LeakyReLU"])
    assert saved == pytest.approx(ours / theirs, abs=2e-3)
    assert 0.5 < saved < 0.7
    assert_plot_written_unless_no_matplotlib(process, png)


def test_torch_mlp_example_without_matplotlib_skips_the_plot(run_python, tmp_path):
    pytest.importorskip("torch")
    args = ["--batch", "64", "--width", "32", "--layers", "1", "--rounds", "1", "--seconds", "0.01"]
    assert_plot_skipped_without_matplotlib(run_python, TORCH_MLP_SCRIPT, args, tmp_path / "t.png")
