"""pytest-benchmark benchmarks: leaky_kernel and its contenders, grouped per case.

    python -m pytest bench/                       # time them
    python -m pytest bench/ --benchmark-disable   # only check each result, quickly

One group per (op, dtype, mode, size) holds every contender with a form for
it (harness.CONTENDERS), so pytest-benchmark's table compares them directly.
Each benchmark first checks its call's result against the np.where oracle
on fresh data. In-place benchmarks then keep transforming the same buffer,
as in run.py (see harness.time_interleaved). Calls use all threads.
"""

import pytest

import harness
from harness import ALL_THREADS, Cell

# In L1/L2; 16 or 32 MiB per array, beyond an 8 MiB L3.
SIZES = {"small": 1 << 12, "large": 1 << 22}

CASES = [
    pytest.param(
        size_name,
        Cell(size, dtype, op, mode),
        contender,
        id=f"{op}-{dtype}-{mode}-{size_name}-{contender.name}",
    )
    for size_name, size in SIZES.items()
    for dtype in harness.DTYPES
    for op in harness.OPS
    for mode in harness.MODES
    for contender in harness.CONTENDERS
    if contender.supports(Cell(size, dtype, op, mode))
]


@pytest.mark.parametrize("size_name, cell, contender", CASES)
def test_leaky_relu(benchmark, size_name, cell, contender):
    if contender.unavailable:
        pytest.skip(contender.unavailable)
    benchmark.group = f"{cell.op} {cell.dtype} {cell.mode} {size_name} (2^{cell.log2_size})"
    operands = harness.make_operands(cell, *harness.random_inputs(cell.size, cell.dtype))
    call = harness.bind_checked(contender, cell, operands, ALL_THREADS)
    benchmark(call)
