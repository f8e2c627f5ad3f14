"""Add the licence notice of every library a wheel repair bundled to the wheel.

    python tools/add_licence_notices.py WHEEL_OR_DIRECTORY [...]

A directory stands for every wheel in it (Windows' shell does not expand *.whl).

auditwheel (Linux) and delvewheel (Windows) copy the shared libraries the
compiled modules need, libgomp or vcomp140, into leaky_kernel.libs/, and
delocate (macOS) into leaky_kernel/.dylibs/. Their licences must travel with
them. Each notice in tools/licenses/ goes into the wheel's
.dist-info/licenses/ and is listed as a License-File in its METADATA (PEP 639);
RECORD is rewritten to match. A bundled library with no notice here is an
error, as is a wheel that is given notices twice. Run it after the repair
(tools/check_wheel.sh, and cibuildwheel's repair-wheel-command).
"""
import base64
import fnmatch
import hashlib
import posixpath
import sys
import zipfile
from pathlib import Path

LICENSES = Path(__file__).resolve().parent / "licenses"

# Bundled library file name pattern -> notice file in tools/licenses/.
NOTICES = {
    "libgomp*.so*": "LICENSE-libgomp.txt",
    "vcomp140*.dll": "LICENSE-vcomp.txt",
}

# Where each repair tool puts the libraries it bundles.
BUNDLE_DIRS = ("leaky_kernel.libs/", "leaky_kernel/.dylibs/")


def bundled_libraries(names):
    return [
        posixpath.basename(name)
        for name in names
        if name.startswith(BUNDLE_DIRS) and not name.endswith("/")
    ]


def notices_for(libraries):
    notices = set()
    for library in libraries:
        matches = [notice for pattern, notice in NOTICES.items() if fnmatch.fnmatch(library, pattern)]
        if not matches:
            raise SystemExit(
                f"error: the wheel bundles {library}, which has no licence notice in "
                f"{LICENSES}; add one and its pattern to NOTICES"
            )
        notices.update(matches)
    return sorted(notices)


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def add_notices(wheel):
    with zipfile.ZipFile(wheel) as source:
        names = source.namelist()
        contents = {info.filename: (info, source.read(info)) for info in source.infolist()}
    dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
    notices = notices_for(bundled_libraries(names))
    if not notices:
        print(f"{wheel.name}: bundles no library; no notice added")
        return
    metadata_name, record_name = f"{dist_info}/METADATA", f"{dist_info}/RECORD"
    metadata = contents[metadata_name][1].decode()
    headers, _, body = metadata.partition("\n\n")
    for notice in notices:
        if f"{dist_info}/licenses/{notice}" in contents:
            raise SystemExit(f"error: {wheel.name} already has {notice}")
        headers += f"\nLicense-File: {notice}"
    added = {f"{dist_info}/licenses/{notice}": (LICENSES / notice).read_bytes() for notice in notices}

    temporary = wheel.with_suffix(".tmp")
    record = []
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target:
        for name, (info, data) in contents.items():
            if name == record_name:
                continue
            if name == metadata_name:
                data = f"{headers}\n\n{body}".encode()
            target.writestr(info, data)
            record.append(record_line(name, data))
        for name, data in added.items():
            target.writestr(name, data)
            record.append(record_line(name, data))
        record.append(f"{record_name},,")
        target.writestr(contents[record_name][0], "\n".join(record) + "\n")
    temporary.replace(wheel)
    print(f"{wheel.name}: added {', '.join(notices)}")


def main(arguments):
    wheels = []
    for argument in map(Path, arguments):
        wheels += sorted(argument.glob("*.whl")) if argument.is_dir() else [argument]
    if not wheels:
        raise SystemExit(__doc__)
    for wheel in wheels:
        add_notices(wheel)


if __name__ == "__main__":
    main(sys.argv[1:])
