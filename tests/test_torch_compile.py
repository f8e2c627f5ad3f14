"""leaky_kernel.torch under torch.compile(fullgraph=True) and
torch.library.opcheck: no graph break at any size, torch's values and
gradients to the bit, and PyTorch's own operator checks.

The compiled tests are slow (inductor compiles C++): the representative
eager-backend ones run by default, the rest with ``-m slow``."""
import pytest

torch = pytest.importorskip("torch")

import leaky_kernel.torch as lkt  # noqa: E402  (after the importorskip)
from leaky_kernel._testing import bits_equal  # noqa: E402

F = torch.nn.functional
OPS = lkt._ops
DTYPES = [torch.float32, torch.float64]
FORMATS = [torch.contiguous_format, torch.channels_last]
# The bridge's two paths: torch's operator below the line, the kernel's above.
PATHS = {"torch_path": 1 << 40, "kernel_path": 0}


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def graph_recorder():
    """A torch.compile backend that runs the graph as it is and keeps it."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm.graph)
        return gm.forward

    return backend, graphs


def calls(graph, name):
    """Whether the graph calls the operator `name` (an overload or its packet)."""
    targets = {str(node.target) for node in graph.nodes if node.op == "call_function"}
    return bool(targets & {name, f"{name}.default"})


def value_and_grad(function, x, g):
    x = x.detach().clone().requires_grad_(True)
    y = function(x)
    (dx,) = torch.autograd.grad(y, x, g)
    return y.detach(), dx


def assert_as_torch(function, dtype=torch.float32, memory_format=torch.contiguous_format):
    generator = torch.Generator().manual_seed(0)
    shape = (4, 3, 16, 16)
    x = torch.randn(shape, generator=generator, dtype=dtype).contiguous(memory_format=memory_format)
    x[0, 0, 0, :4] = torch.tensor([0.0, -0.0, float("nan"), float("-inf")])
    g = torch.randn(shape, generator=generator, dtype=dtype).contiguous(memory_format=memory_format)
    ours = value_and_grad(function, x, g)
    theirs = value_and_grad(lambda t: F.leaky_relu(t, 0.2), x, g)
    for a, b in zip(ours, theirs):
        assert a.stride() == b.stride()
        assert bits_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("path", PATHS)
def test_compile_fullgraph_eager_backend_at_both_sizes(monkeypatch, path):
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", PATHS[path])
    backend, graphs = graph_recorder()
    compiled = torch.compile(lambda t: lkt.leaky_relu(t, 0.2), backend=backend, fullgraph=True)
    assert_as_torch(compiled)
    (graph,) = graphs
    uses_kernel = calls(graph, "leaky_kernel.leaky_relu_forward_mask")
    assert uses_kernel == (path == "kernel_path")


def test_compile_fullgraph_at_the_default_line_without_grad():
    # 2^20 elements: the kernel's path at the default KERNEL_MIN_NUMEL.
    backend, graphs = graph_recorder()
    compiled = torch.compile(lambda t: lkt.leaky_relu(t, 0.2), backend=backend, fullgraph=True)
    x = torch.randn(1 << 20, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = compiled(x)
    assert bits_equal(y.numpy(), F.leaky_relu(x, 0.2).numpy())
    assert calls(graphs[0], "leaky_kernel.leaky_relu")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("memory_format", FORMATS, ids=str)
def test_compile_fullgraph_backends(monkeypatch, backend, path, memory_format):
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", PATHS[path])
    compiled = torch.compile(lambda t: lkt.leaky_relu(t, 0.2), backend=backend, fullgraph=True)
    assert_as_torch(compiled, memory_format=memory_format)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_model_trains_as_eager(monkeypatch, backend):
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", 0)

    def grads(activation, compile_it):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), activation(0.2), torch.nn.Conv2d(8, 4, 3)
        ).double().to(memory_format=torch.channels_last)
        run = torch.compile(model, backend=backend, fullgraph=True) if compile_it else model
        x = torch.randn(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        run(x.contiguous(memory_format=torch.channels_last)).square().sum().backward()
        return [p.grad for p in model.parameters()]

    # Against torch's activation compiled the same way: the backend's own
    # code for the convolutions is then the same on both sides.
    for ours, theirs in zip(grads(lkt.LeakyReLU, True), grads(torch.nn.LeakyReLU, True)):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("memory_format", FORMATS, ids=str)
def test_opcheck_passes_for_every_operator(dtype, memory_format):
    generator = torch.Generator().manual_seed(3)

    def make():
        t = torch.randn(2, 3, 4, 5, generator=generator, dtype=dtype)
        return t.contiguous(memory_format=memory_format)

    x, g = make(), make()
    _, mask = OPS.leaky_relu_forward_mask(x, 0.2)
    cases = {
        OPS.leaky_relu.default: (x.clone().requires_grad_(True), 0.2),
        OPS.leaky_relu_forward_mask.default: (x.clone().requires_grad_(True), 0.2),
        OPS.leaky_relu_backward_mask.default: (
            g.clone().requires_grad_(True), mask, 0.2, list(x.stride())
        ),
        OPS.leaky_relu_.default: (x.clone(), 0.2),
        OPS.leaky_relu_forward_mask_.default: (x.clone(), 0.2),
    }
    for op, args in cases.items():
        results = torch.library.opcheck(op, args)
        assert set(results.values()) == {"SUCCESS"}, (op, results)


def test_jit_script_refuses_with_a_pointer_to_torch_compile():
    with pytest.raises(RuntimeError, match="torch.compile"):
        torch.jit.script(lkt.LeakyReLU(0.2))


def test_jit_trace_and_export_record_the_operator(monkeypatch):
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", 0)
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(4))
    expected = F.leaky_relu(x, 0.2)
    with torch.no_grad():
        traced = torch.jit.trace(lkt.LeakyReLU(0.2), x)
    assert "leaky_kernel::leaky_relu" in str(traced.graph)
    assert bits_equal(traced(x).numpy(), expected.numpy())
    exported = torch.export.export(lkt.LeakyReLU(0.2), (x,))
    assert "leaky_kernel.leaky_relu_forward_mask" in str(exported.graph)
    assert bits_equal(exported.module()(x).numpy(), expected.numpy())


def test_compile_fullgraph_in_place(monkeypatch):
    # Compiled, in place is torch's in-place operator, with and without grad.
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", 0)
    backend, graphs = graph_recorder()
    compiled = torch.compile(
        lambda t: lkt.leaky_relu(t * 1, 0.2, inplace=True), backend=backend, fullgraph=True
    )
    assert_as_torch(compiled)
    x = torch.randn(64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = compiled(x)
    assert bits_equal(y.numpy(), F.leaky_relu(x, 0.2).numpy())


def test_compile_fullgraph_when_the_slope_becomes_symbolic(monkeypatch):
    # A second slope makes Dynamo recompile with the slope as a symbolic float.
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", 0)
    backend, graphs = graph_recorder()
    x = torch.randn(64, generator=torch.Generator().manual_seed(6))
    for slope in (0.01, 0.2, 0.3):
        compiled = torch.compile(lkt.LeakyReLU(slope), backend=backend, fullgraph=True)
        leaf = x.clone().requires_grad_(True)
        y = compiled(leaf)
        assert bits_equal(y.detach().numpy(), F.leaky_relu(x, slope).numpy())
        assert calls(graphs[-1], "leaky_kernel.leaky_relu_forward_mask")
