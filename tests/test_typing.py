"""Type stubs: mypy checks a user's script against the installed package, and
the stubs agree with the run-time signatures (mypy's stubtest).

mypy runs in a fresh directory, so it sees the installed leaky_kernel (its
py.typed and .pyi files), as a user's project would, not the source tree.
"""
import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mypy", reason="mypy comes with the test extra")

# Each line `reveal_type(...)  # <pattern>`: mypy must reveal a type matching
# the pattern. NumPy's stubs spell some dtypes by their bit width, e.g.
# numpy.floating[numpy._typing._nbit_base._32Bit] for float32.
def ndarray_of(name, kind, bits):
    dtype = rf"numpy\.({name}|{kind}\[numpy\._typing\.[\w.]*_{bits}Bit\])"
    return rf"numpy\.ndarray\[.*, numpy\.dtype\[{dtype}\]\]"


NDARRAY_F32 = ndarray_of("float32", "floating", 32)
NDARRAY_F64 = ndarray_of("float64", "floating", 64)
NDARRAY_UINT8 = ndarray_of("uint8", "unsignedinteger", 8)
NDARRAY_FLOATING = r"numpy\.ndarray\[.*, numpy\.dtype\[numpy\.floating\[Any\]\]\]"

NUMPY_SCRIPT = f"""
import numpy as np
import leaky_kernel as lk
from leaky_kernel import reference

x = np.linspace(-1, 1, 8, dtype=np.float32)
x64 = x.astype(np.float64)
reveal_type(lk.leaky_relu(x, 0.1))  # {NDARRAY_F32}
reveal_type(lk.leaky_relu(x64, alpha=0.1, num_threads=2))  # {NDARRAY_F64}
reveal_type(lk.leaky_relu([1.0, -2.0]))  # {NDARRAY_FLOATING}
reveal_type(lk.leaky_relu(x, out=x64))  # {NDARRAY_F64}
reveal_type(lk.leaky_relu_backward(np.ones_like(x), x, 0.1))  # {NDARRAY_F32}
y, mask = lk.leaky_relu_forward_mask(x)
reveal_type(y)  # {NDARRAY_F32}
reveal_type(mask)  # {NDARRAY_UINT8}
reveal_type(lk.leaky_relu_backward_mask(np.ones_like(x), mask))  # {NDARRAY_F32}
layer = lk.LeakyReLU(0.1, num_threads=1)
reveal_type(layer(x))  # {NDARRAY_F32}
reveal_type(layer.backward(np.ones_like(x)))  # {NDARRAY_F32}
reveal_type(lk.leaky_relu(x, np.full(8, 0.1), where=x > 0, out=x))  # {NDARRAY_F32}
reveal_type(lk.leaky_relu_backward(x, x, [0.1] * 8, where=x > 0))  # {NDARRAY_F32}
reveal_type(lk.leaky_relu(x, 0.1, casting="no", order="F", subok=False))  # {NDARRAY_F32}
reveal_type(lk.leaky_relu(x, 0.1, dtype=np.float64))  # {NDARRAY_FLOATING}
reveal_type(lk.leaky_relu_backward(x, x, dtype="float16", out=x64))  # {NDARRAY_F64}
reveal_type(lk.leaky_relu_slope_grad(x, x, (8,)))  # {NDARRAY_FLOATING}
prelu = lk.PReLU(np.full(8, 0.25))
reveal_type(prelu(x))  # {NDARRAY_F32}
reveal_type(prelu.backward(x))  # tuple\\[{NDARRAY_FLOATING}, {NDARRAY_FLOATING}\\]

class Container:
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return self

reveal_type(lk.leaky_relu(Container(), 0.1))  # user_script\\.Container
reveal_type(reference.leaky_relu(x64))  # {NDARRAY_F64}
reveal_type(lk.reference.leaky_relu_backward(x, x))  # {NDARRAY_F32}
reveal_type(lk.get_num_threads())  # (builtins\\.)?int
reveal_type(lk.openmp_enabled())  # (builtins\\.)?bool
reveal_type(lk.__version__)  # (builtins\\.)?str
lk.set_num_threads(None)
"""

DASK_SCRIPT = r"""
import dask.array as da
import leaky_kernel.dask as lkd

x = da.ones(8, chunks=4)
reveal_type(lkd.leaky_relu(x, 0.1))  # dask\.array\.core\.Array
reveal_type(lkd.leaky_relu_backward(x, x, alpha=0.1, num_threads=None))  # dask\.array\.core\.Array
"""

TORCH_SCRIPT = r"""
import torch
import leaky_kernel.torch as lkt

t = torch.ones(8)
reveal_type(lkt.leaky_relu(t, 0.1, inplace=False))  # torch\._tensor\.Tensor
reveal_type(lkt.LeakyReLU(0.1)(t))  # torch\._tensor\.Tensor|Any
"""


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    """One cache for the module's mypy runs: each would otherwise analyse
    NumPy's stubs (and torch's, dask's) again, most of the time taken."""
    return tmp_path_factory.mktemp("mypy_cache")


def run_mypy(tmp_path, mypy_cache, source):
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(source))
    process = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(mypy_cache), "--show-error-codes",
         "--no-error-summary", script.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    return script, process


def check_revealed_types(tmp_path, mypy_cache, source):
    script, process = run_mypy(tmp_path, mypy_cache, source)
    expected = {
        number: pattern
        for number, line in enumerate(script.read_text().splitlines(), start=1)
        if line.startswith("reveal_type(")
        for pattern in [line.partition("  # ")[2]]
    }
    revealed, errors = {}, []
    for line in process.stdout.splitlines():
        match = re.match(rf"{script.name}:(\d+): note: Revealed type is \"(.*)\"$", line)
        if match:
            revealed[int(match.group(1))] = match.group(2)
        elif ": error:" in line:
            errors.append(line)
    assert not errors, process.stdout
    assert sorted(revealed) == sorted(expected), process.stdout + process.stderr
    mismatches = {
        n: revealed[n] for n, pattern in expected.items() if not re.fullmatch(pattern, revealed[n])
    }
    assert not mismatches, mismatches


@pytest.mark.slow  # mypy
def test_numpy_api_types(tmp_path, mypy_cache):
    check_revealed_types(tmp_path, mypy_cache, NUMPY_SCRIPT)


@pytest.mark.slow  # mypy
def test_dask_api_types(tmp_path, mypy_cache):
    pytest.importorskip("dask.array")
    check_revealed_types(tmp_path, mypy_cache, DASK_SCRIPT)


@pytest.mark.slow  # mypy
def test_torch_api_types(tmp_path, mypy_cache):
    pytest.importorskip("torch")
    check_revealed_types(tmp_path, mypy_cache, TORCH_SCRIPT)


# Each line `call  # word`: mypy must report an error there that names `word`.
MISTAKES_SCRIPT = """
import numpy as np
import leaky_kernel as lk

x = np.ones(4, np.float32)
lk.leaky_relu(x, nthreads=2)  # "nthreads"
lk.leaky_relu_backward(x, x, slope=0.1)  # "slope"
lk.LeakyReLU(0.1, in_place=True)  # "in_place"
lk.leaky_relu_backward_mask(x, x)  # "leaky_relu_backward_mask"
lk.set_num_threads(2.5)  # "float"
lk.leaky_relu(x, casting="sometimes")  # "leaky_relu"
"""


@pytest.mark.slow  # mypy
def test_mistakes_are_errors(tmp_path, mypy_cache):
    script, process = run_mypy(tmp_path, mypy_cache, MISTAKES_SCRIPT)
    assert process.returncode == 1, process.stdout + process.stderr
    errors = {}
    for line in process.stdout.splitlines():
        match = re.match(rf"{script.name}:(\d+): error: (.*)$", line)
        if match:
            errors.setdefault(int(match.group(1)), []).append(match.group(2))
    expected = {
        number: line.partition("  # ")[2]
        for number, line in enumerate(script.read_text().splitlines(), start=1)
        if "  # " in line
    }
    assert sorted(errors) == sorted(expected), process.stdout
    for number, word in expected.items():
        assert word in errors[number][0], process.stdout


@pytest.mark.skipif(
    os.environ.get("LEAKY_KERNEL_STUBTEST") != "1",
    reason="stubtest takes half a minute: tools/check_wheel.sh (run by CI) sets "
    "LEAKY_KERNEL_STUBTEST=1 to run it against the repaired wheel",
)
def test_stubs_match_the_runtime(tmp_path, mypy_cache):
    # stubtest imports the installed package and compares every public name,
    # signature and default with its stub. The private modules that import
    # the compiled ones have no stubs, hence their errors are ignored.
    # A bridge whose library is not installed cannot be imported: its stub's
    # imports are let pass and its module is left out.
    missing = [extra for extra in ("dask", "torch") if importlib.util.find_spec(extra) is None]
    config = tmp_path / "mypy.ini"
    config.write_text(
        f"[mypy]\ncache_dir = {mypy_cache}\n"
        "[mypy-leaky_kernel._dispatch,leaky_kernel._rules,leaky_kernel._threads,"
        "leaky_kernel._validation]\n"
        "ignore_errors = True\n"
        + "".join(f"[mypy-{extra},{extra}.*]\nignore_missing_imports = True\n" for extra in missing)
    )
    allowlist = ["leaky_kernel._typing"]  # stub-only: the stubs' shared type names
    # The private module's source takes the ufunc keywords as **ufunc_keywords;
    # the functions' __signature__ and the public stubs name them, and the
    # public names are checked against the stubs.
    allowlist += ["leaky_kernel._api.leaky_relu", "leaky_kernel._api.leaky_relu_backward"]
    allowlist += [f"leaky_kernel.{extra}" for extra in missing]
    (tmp_path / "allowlist.txt").write_text("\n".join(allowlist) + "\n")
    process = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(config),
         "--allowlist", "allowlist.txt", "leaky_kernel"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr
