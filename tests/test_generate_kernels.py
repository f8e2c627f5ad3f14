"""The kernel sources generated from their templates (tools/generate_kernels.py).

C output must point every line back at its template line with #line, so that
compiler errors, vectorisation reports and profilers name the template; and
every generated file must say that it is generated.
"""
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "leaky_kernel"
GENERATOR = REPO / "tools" / "generate_kernels.py"

pytestmark = pytest.mark.skipif(not GENERATOR.exists(), reason="needs the source tree")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """{template name: generated text}, expanded into a temporary directory."""
    pytest.importorskip("Cython")
    spec = importlib.util.spec_from_file_location("generate_kernels", GENERATOR)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    directory = tmp_path_factory.mktemp("generated")
    for name in generator.TEMPLATES:
        (directory / name).write_text((PACKAGE / name).read_text())
    generator.generate(str(directory))
    return {name: (directory / name[: -len(".tp")]).read_text() for name in generator.TEMPLATES}


def test_generated_files_say_so(generated):
    for template, text in generated.items():
        first = text.splitlines()[0]
        assert f"Generated from {template} by tools/generate_kernels.py: do not edit." in first


def test_line_directives_point_at_the_template_lines(generated):
    checked = 0
    for template, text in generated.items():
        if not template.endswith(".h.tp"):
            continue
        source = (PACKAGE / template).read_text().splitlines()
        number = None
        for line in text.splitlines()[1:]:
            match = re.fullmatch(r'#line (\d+) "(.+)"', line)
            if match:
                assert match.group(2) == template
                number = int(match.group(1))
                continue
            assert number is not None, f"{template}: output before the first #line"
            if "{{" not in source[number - 1]:  # a line Tempita copies as it is
                assert line == source[number - 1], f"{template}:{number}"
                checked += 1
            number += 1
    assert checked > 500
