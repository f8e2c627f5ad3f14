"""Generate the kernel sources from one table of operations and one of dtypes.

Each ``src/leaky_kernel/<name>.tp`` is a Tempita template (the engine that
ships with Cython, as scikit-learn's ``_loss.pyx.tp`` uses it); expanding it
with OPS and DTYPES writes ``src/leaky_kernel/<name>``. setup.py runs this
before Cython, so the generated files are build products: git ignores them,
the sdist leaves them out, and each says so in its first line. Edit the
template, never its output.

C output carries ``#line`` directives that point every line back to the
template line it came from, as bottleneck's generator does: compiler
errors, warnings, vectorisation reports, debuggers and profilers then name
the template. Cython output (``.pxi``) has no such directive; Cython names
the generated file, whose lines read as the template's with one dtype or
operation filled in.

Adding an operation is a row of OPS and its point functions (``_ops.h.tp``),
plus its oracle and public function in Python. Adding a dtype is a row of
DTYPES, as far as C can compute in it.

Usage: python tools/generate_kernels.py   (setup.py calls generate())
"""
import os
import re
import sys
from dataclasses import dataclass

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src",
                           "leaky_kernel")


@dataclass(frozen=True)
class Dtype:
    name: str     # NumPy's name
    c: str        # the C type, and the suffix of per-dtype C functions
    typenum: str  # NumPy's type number, as cimported from numpy
    sfx: str      # the suffix of the x86 vector intrinsics, where there are any


@dataclass(frozen=True)
class Op:
    name: str         # the C and Cython functions' stem; the ufunc's name
    parameter: str    # the scalar every element gets besides its operands
    forward_doc: str  # the ufuncs' docstrings
    backward_doc: str
    # Its point functions have vector forms (_ops.h.tp), so that its
    # contiguous and every-other-column rows can stream their output.
    simd: bool


DTYPES = (
    Dtype("float32", "float", "NPY_FLOAT", "ps"),
    Dtype("float64", "double", "NPY_DOUBLE", "pd"),
)

OPS = (
    Op("leaky_relu", "slope", "x where x > 0, else slope * x",
       "grad_output where x > 0, else slope * grad_output", simd=True),
)

# The templates, in the package directory: each expands into its name without .tp.
TEMPLATES = ("_ops.h.tp", "_stream.h.tp", "_mask.h.tp", "_kernels.pxi.tp")

# A template line that is only a Tempita statement produces no output line.
_STATEMENT = re.compile(r"^\s*\{\{\s*(for|endfor|if|elif|else|endif|py|default)\b.*\}\}\s*$")
# Each output line's template line, carried through Tempita by a prefix.
_TAG = re.compile("^\x00(\\d+)\x00")


def _tagged(text):
    """The template with every line that is not a statement prefixed by its number."""
    return "".join(
        line if _STATEMENT.match(line) else f"\x00{number}\x00{line}"
        for number, line in enumerate(text.splitlines(keepends=True), start=1)
    )


def _with_line_directives(expanded, template_name):
    """Strip the tags, putting a #line before each line whose template line
    does not follow the previous one's (never inside a continued line)."""
    out, expected, continued = [], None, False
    for line in expanded.splitlines(keepends=True):
        match = _TAG.match(line)
        if match:
            number = int(match.group(1))
            line = line[match.end():]
            if number != expected and not continued:
                out.append(f'#line {number} "{template_name}"\n')
            expected = number + 1
        elif expected is not None:
            expected += 1  # a line a substitution spread over several
        out.append(line)
        continued = line.rstrip("\n").endswith("\\")
    return "".join(out)


def expand(template_path, ops=OPS, dtypes=DTYPES):
    """The generated text of one template."""
    from Cython import Tempita

    name = os.path.basename(template_path)
    with open(template_path) as f:
        text = f.read()
    is_c = name.endswith(".h.tp")
    expanded = Tempita.sub(_tagged(text) if is_c else text, ops=ops, dtypes=dtypes,
                           simd_ops=[op for op in ops if op.simd])
    notice = f"Generated from {name} by tools/generate_kernels.py: do not edit."
    if is_c:
        return f"/* {notice} */\n" + _with_line_directives(expanded, name)
    return f"# {notice}\n" + expanded


def generate(package_dir=PACKAGE_DIR, ops=OPS, dtypes=DTYPES):
    """Expand every template into the package directory; rewrite a file only
    when its text changes, so that builds do not see new timestamps."""
    for template in TEMPLATES:
        text = expand(os.path.join(package_dir, template), ops, dtypes)
        target = os.path.join(package_dir, template[: -len(".tp")])
        if os.path.exists(target):
            with open(target) as f:
                if f.read() == text:
                    continue
        with open(target, "w") as f:
            f.write(text)


if __name__ == "__main__":
    generate(*sys.argv[1:2])
