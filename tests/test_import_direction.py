"""Data flows one way: the compiled modules import no Python module of the
package; what they need is pushed down to them (configure, configure_threads)."""
import glob
import os
import subprocess
import sys

import pytest

import leaky_kernel

PACKAGE_DIR = os.path.dirname(leaky_kernel.__file__)
COMPILED = sorted(
    os.path.basename(path).split(".")[0] for path in glob.glob(os.path.join(PACKAGE_DIR, "_*.so"))
    + glob.glob(os.path.join(PACKAGE_DIR, "_*.pyd"))
)

# Loads one compiled module under a package that holds nothing else: any
# import of a sibling fails, and the modules loaded are listed.
PROBE = """
import importlib.machinery, importlib.util, sys, types
package = types.ModuleType("leaky_kernel")
package.__path__ = []
sys.modules["leaky_kernel"] = package
name, path = sys.argv[1], sys.argv[2]
loader = importlib.machinery.ExtensionFileLoader("leaky_kernel." + name, path)
spec = importlib.util.spec_from_file_location("leaky_kernel." + name, path, loader=loader)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
print(sorted(m for m in sys.modules if m.startswith("leaky_kernel.") and m != spec.name))
"""


@pytest.mark.parametrize("name", COMPILED)
def test_a_compiled_module_loads_without_the_python_package(name):
    path = glob.glob(os.path.join(PACKAGE_DIR, name + ".*"))
    path = [p for p in path if p.endswith((".so", ".pyd"))][0]
    process = subprocess.run(
        [sys.executable, "-c", PROBE, name, path], capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip() == "[]"


def test_every_compiled_module_is_probed():
    assert {"_openmp", "_kernels_baseline"} <= set(COMPILED)
