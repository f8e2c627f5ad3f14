"""The compiler vectorises the kernel loops.

Compiles the kernel source with the flags setup.py uses, asks the compiler
for its vectorisation report, and requires every unit-stride loop of
select_row (the loops both the serial and the parallel paths run) to be
reported vectorised, at every instruction-set level. GCC builds the package
by default; clang, where it is installed with OpenMP, is checked too. Without
-fno-trapping-math, GCC reports "control flow in loop" here instead
(bench/NOTES.md).
"""
import ast
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

pytestmark = pytest.mark.skipif(
    not (PACKAGE / "_kernels.pxi").exists(), reason="needs the source tree"
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
def kernel_c(tmp_path_factory):
    pytest.importorskip("Cython")
    out = tmp_path_factory.mktemp("vec") / "kernels.c"
    subprocess.run(
        [sys.executable, "-m", "cython", "-3", str(PACKAGE / "_kernels_baseline.pyx"), "-o", str(out)],
        check=True, capture_output=True,
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
             f"-I{sysconfig.get_paths()['include']}", f"-I{np.get_include()}", f"-I{PACKAGE}",
             "-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION",
             str(kernel_c), "-o", str(kernel_c.with_name(f"{level}.o"))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for level, flags in level_flags.items()
    }
    pattern = re.compile(rf"{re.escape(kernel_c.name)}:(\d+):\d+: {vectorised}")
    lines = {}
    for level, process in processes.items():
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr
        lines[level] = {int(m.group(1)) for m in pattern.finditer(stderr)}
    return lines


def unit_stride_loops(c_file):
    """Line numbers of the `for` of each unit-stride loop in select_row's
    specialisations, past the elements it takes one by one up to the
    output's line boundary (`head`, at most a line: not worth vectorising)."""
    lines = c_file.read_text().splitlines()
    loops, in_select_row, last_for = [], False, None
    for number, line in enumerate(lines, start=1):
        if re.match(r"static void __pyx_fuse_\d__pyx_f_\w+_select_row\(", line):
            in_select_row = True
        elif in_select_row and line.startswith("}"):
            in_select_row = False
        elif in_select_row and line.lstrip().startswith("for ("):
            last_for = number if "= __pyx_v_head;" in line else None
        elif in_select_row and last_for and re.search(r"\(__pyx_v_out\[__pyx_v_i\]\) = ", line):
            loops.append(last_for)
    return loops


@pytest.mark.parametrize("level", sorted(setup_py_flags()[1]))
def test_select_row_loops_are_vectorised(vectorised_lines, kernel_c, level):
    loops = unit_stride_loops(kernel_c)
    assert len(loops) == 4, "forward and backward loops, for float and double"
    vectorised = vectorised_lines[level]
    assert set(loops) <= vectorised, f"not vectorised: C lines {sorted(set(loops) - vectorised)}"
