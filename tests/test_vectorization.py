"""The compiler vectorises the kernel loops.

Generates the kernel sources from their templates (tools/generate_kernels.py),
has Cython emit #line directives that point the C code back at the Cython
source, compiles it with the flags setup.py uses and asks the compiler for
its vectorisation report. Every unit-stride loop of each operation's row
function (the loops both the serial and the parallel paths run) must be
reported vectorised, at every instruction-set level. The loops are found in
the Cython source by the row functions' names, which the template gives
them, so the test does not depend on how Cython names things in C. GCC builds
the package by default; clang, where it is installed with OpenMP, is checked
too. Without -fno-trapping-math, GCC reports "control flow in loop" here
instead (bench/NOTES.md).
"""
import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "leaky_kernel"

GENERATOR = REPO / "tools" / "generate_kernels.py"

pytestmark = pytest.mark.skipif(
    not (PACKAGE / "_kernels.pxi.tp").exists() or not GENERATOR.exists(),
    reason="needs the source tree",
)

# Each compiler's flag for its report of vectorised loops, and how that
# report names one (after "file:line:column: ").
VECTORISATION_REPORTS = {
    "gcc": ("-fopt-info-vec-optimized", "optimized: loop vectorized"),
    "clang": ("-Rpass=loop-vectorize", "remark: vectorized loop"),
}


def setup_py_flags():
    """KERNEL_FLAGS['unix'] and each level's unix flags, read from setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text())
    kernel_flags, level_flags = None, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id == "KERNEL_FLAGS":
                kernel_flags = ast.literal_eval(node.value)["unix"]
            elif isinstance(target, ast.Name) and target.id == "KERNEL_LEVELS":
                level_flags.update({k: v["unix"] for k, v in ast.literal_eval(node.value).items()})
            elif isinstance(target, ast.Subscript) and getattr(target.value, "id", "") == "KERNEL_LEVELS":
                level_flags[ast.literal_eval(target.slice)] = ast.literal_eval(node.value)["unix"]
    return kernel_flags, level_flags


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("generate_kernels", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sources(tmp_path_factory, generator):
    """A copy of the kernel sources, with the templates expanded in it."""
    pytest.importorskip("Cython")
    directory = tmp_path_factory.mktemp("sources")
    for pattern in ("*.pyx", "*.h", "*.tp"):
        for path in PACKAGE.glob(pattern):
            if not (PACKAGE / f"{path.name}.tp").exists():  # a generated file
                (directory / path.name).write_bytes(path.read_bytes())
    generator.generate(str(directory))
    return directory


@pytest.fixture(scope="module")
def kernel_c(sources):
    out = sources / "kernels.c"
    subprocess.run(
        [sys.executable, "-m", "cython", "-3", "--line-directives", "_kernels_baseline.pyx",
         "-o", out.name],
        check=True, capture_output=True, cwd=sources,
    )
    return out


@pytest.fixture(scope="module", params=sorted(VECTORISATION_REPORTS))
def compiler(request, tmp_path_factory):
    """Each compiler that is installed and compiles OpenMP code, as setup.py builds."""
    name = request.param
    probe = tmp_path_factory.mktemp(name) / "probe.c"
    probe.write_text("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
    if shutil.which(name) is None or subprocess.run(
        [name, "-fopenmp", "-c", str(probe), "-o", str(probe.with_suffix(".o"))],
        capture_output=True,
    ).returncode:
        pytest.skip(f"needs {name} with OpenMP")
    return name


@pytest.fixture(scope="module")
def vectorised_lines(compiler, kernel_c):
    """{level: C lines the compiler reports vectorised}, every level compiled
    at once: each compile takes seconds, and they use all the cores."""
    report_flag, vectorised = VECTORISATION_REPORTS[compiler]
    kernel_flags, level_flags = setup_py_flags()
    processes = {
        level: subprocess.Popen(
            [compiler, "-c", "-fPIC", *kernel_flags, *flags, "-fopenmp", report_flag,
             f"-I{sysconfig.get_paths()['include']}", f"-I{np.get_include()}", "-I.",
             "-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION",
             kernel_c.name, "-o", f"{level}.o"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=kernel_c.parent,
        )
        for level, flags in level_flags.items()
    }
    # The report names the Cython source the #line directives point at.
    pattern = re.compile(rf"(?:^|/)_kernels\.pxi:(\d+):\d+: {vectorised}", re.MULTILINE)
    lines = {}
    for level, process in processes.items():
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr
        lines[level] = {int(m.group(1)) for m in pattern.finditer(stderr)}
    return lines


def unit_stride_loops(pxi, operation):
    """Line numbers of the unit-stride loops of the operation's row function,
    past the elements it takes one by one up to the output's line boundary
    (`head`, at most a line: not worth vectorising)."""
    loops, inside = [], False
    for number, line in enumerate(pxi.read_text().splitlines(), start=1):
        if line.startswith(f"cdef void {operation}_row("):
            inside = True
        elif inside and re.match(r"[^\s)]", line):  # the next top-level statement
            break
        elif inside and line.strip() == "for i in range(head, n):":
            loops.append(number)
    return loops


@pytest.mark.slow  # compiles the kernels at every level
@pytest.mark.parametrize("level", sorted(setup_py_flags()[1]))
def test_row_loops_are_vectorised(vectorised_lines, sources, generator, level):
    vectorised = vectorised_lines[level]
    for operation in generator.OPS:
        loops = unit_stride_loops(sources / "_kernels.pxi", operation.name)
        assert len(loops) == 2, f"{operation.name}: a forward and a backward loop"
        missing = sorted(set(loops) - vectorised)
        assert not missing, f"{operation.name}: not vectorised: _kernels.pxi lines {missing}"
