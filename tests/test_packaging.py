"""The installed distribution, as the wheel delivered it: its files, its
licences and its metadata. tools/check_wheel.sh runs these against the
repaired release wheel, where the bundled-library notice is checked too."""
import importlib.metadata
import json
import struct
import sys
from pathlib import Path

import pytest

DIST = importlib.metadata.distribution("leaky_kernel")
PACKAGE_FILES = {
    str(f) for f in DIST.files or () if str(f).startswith(("leaky_kernel/", "leaky_kernel.libs/"))
}


def _editable():
    direct_url = DIST.read_text("direct_url.json")
    return bool(direct_url) and json.loads(direct_url).get("dir_info", {}).get("editable", False)


installed_from_a_wheel = pytest.mark.skipif(
    _editable(), reason="an editable install lists no package files"
)


@installed_from_a_wheel
def test_no_c_or_cython_sources_are_installed():
    sources = [f for f in PACKAGE_FILES if f.endswith((".c", ".pyx", ".pxi", ".h", ".tp"))]
    assert PACKAGE_FILES and not sources


@installed_from_a_wheel
def test_type_stubs_are_installed():
    for name in ["py.typed", "__init__.pyi", "reference.pyi", "layer.pyi", "dask.pyi", "torch.pyi"]:
        assert f"leaky_kernel/{name}" in PACKAGE_FILES


def licence_files():
    return {Path(str(f)).name: f for f in DIST.files or () if "/licenses/" in str(f)}


def test_licence_is_installed_and_declared():
    assert DIST.metadata["License-Expression"] == "BSD-3-Clause"
    assert "LICENSE" in DIST.metadata.get_all("License-File", [])
    text = licence_files()["LICENSE"].read_text()
    assert "BSD 3-Clause License" in text
    assert "Copyright (c) 2026, The leaky_kernel developers" in text


def test_bundled_openmp_runtime_carries_its_licence():
    bundled = [f for f in PACKAGE_FILES if f.startswith("leaky_kernel.libs/libgomp")]
    if not bundled:
        pytest.skip("no bundled libgomp: not a repaired Linux wheel")
    assert "LICENSE-libgomp.txt" in DIST.metadata.get_all("License-File", [])
    text = licence_files()["LICENSE-libgomp.txt"].read_text()
    assert "GCC RUNTIME LIBRARY EXCEPTION" in text
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text


def test_metadata():
    metadata = DIST.metadata
    assert metadata["Requires-Python"] == ">=3.9"
    assert "numpy>=1.25" in metadata.get_all("Requires-Dist")
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    for minor in range(9, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert f"Programming Language :: Python :: 3.{sys.version_info.minor}" in classifiers


def elf_section_names(path):
    """Section names of a 64-bit little-endian ELF file."""
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "64-bit little-endian ELF"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strings_offset = sections[shstrndx][4]
    return [
        data[strings_offset + name:data.index(b"\0", strings_offset + name)].decode()
        for name, *_ in sections
    ]


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and sys.maxsize > 2**32 and sys.byteorder == "little"),
    reason="reads 64-bit little-endian Linux modules",
)
def test_compiled_modules_carry_no_debug_information():
    # setup.py links with --strip-debug: debug information was 4/5 of each module.
    import leaky_kernel

    modules = sorted(Path(leaky_kernel.__file__).parent.glob("*.so"))
    assert modules
    for module in modules:
        names = elf_section_names(module)
        assert ".dynsym" in names, module  # the parse found real sections
        assert not [n for n in names if n.startswith(".debug")], module
