#!/usr/bin/env python3
"""Writes a local PEP 503 index shaped like a real service's dependencies, for scripts/bench-create.sh.

    realistic_index.py OUT_DIR [--size-factor F] [--seed S]

The project names, versions, dependencies, markers, tags and file sizes are modelled on a real set
(numpy, pandas, cryptography, psycopg-binary, orjson, pydantic, aiohttp, sqlalchemy, lxml,
requests, ...); the contents are synthetic. Standard library only.

OUT_DIR/packages/   every wheel, each a valid zip with NAME-VER.dist-info/{METADATA,WHEEL,RECORD},
                    and its PEP 658 `<wheel>.metadata` beside it
OUT_DIR/simple/     simple/index.html and simple/<project>/index.html; links are
                    ../../packages/<file>#sha256=<hex> with data-requires-python and the PEP 658/714
                    data-dist-info-metadata / data-core-metadata attributes, as public indexes serve
OUT_DIR/requirements-api.txt, OUT_DIR/requirements-worker.txt   11 distinct top-level pins
OUT_DIR/summary.json  counts and bytes, of the index and of the 4-target set

Compiled projects have one wheel per CPython 3.10-3.13 for manylinux_2_17 x86_64, aarch64 and
ppc64le and for musllinux_1_2 x86_64; cryptography is one cp39-abi3 wheel per platform; the rest
are pure. The set the benchmark downloads for 4 targets (linux/amd64, linux/arm64 x 3.11, 3.12)
is about 90 files and 200 MB; the 12-target set (amd64, arm64, ppc64le x 3.10-3.13) adds the
Python 3.10-only backports (exceptiongroup, tomli, async-timeout).

Each wheel's bulk is one member stored uncompressed, cut from a pool of seeded random bytes: the
output is the same on every run (same seed, same bytes, same hashes), it is fast to write, and it
does not compress (real wheels are deflated already). The pool is larger than any compressor
window a client might use, so slices that share bytes do not make anything compressible.
"""

import argparse
import base64
import hashlib
import html
import io
import json
import os
import random
import re
import zipfile

KB = 1000
MB = 1000 * KB
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no clock in the output
PYTHONS = ["310", "311", "312", "313"]
# (platform tag set, .so machine name, size factor): aarch64 builds come out a little smaller.
PLATFORMS = [
    ("manylinux_2_17_x86_64.manylinux2014_x86_64", "x86_64-linux-gnu", 1.00),
    ("manylinux_2_17_aarch64.manylinux2014_aarch64", "aarch64-linux-gnu", 0.92),
    ("manylinux_2_17_ppc64le.manylinux2014_ppc64le", "powerpc64le-linux-gnu", 1.06),
    ("musllinux_1_2_x86_64", "x86_64-linux-musl", 1.02),
]
ABI3_PLATFORMS = [
    ("manylinux_2_28_x86_64", 1.00),
    ("manylinux_2_28_aarch64", 0.95),
    ("manylinux_2_17_ppc64le.manylinux2014_ppc64le", 1.05),
    ("musllinux_1_2_x86_64", 1.02),
]
WIN32 = 'sys_platform == "win32"'
PY310 = 'python_version < "3.11"'

# name, version, kind (compiled: per CPython; abi3; pure), size per wheel (bytes), Requires-Python,
# Requires-Dist lines, older versions offered on the page (pure only; never chosen by the pins).
PROJECTS = [
    ("numpy", "2.1.3", "compiled", 16.0 * MB, ">=3.10", [], []),
    ("pandas", "2.2.3", "compiled", 12.4 * MB, ">=3.9",
     ["numpy>=1.26.0; python_version >= \"3.12\"", "numpy>=1.23.2; python_version == \"3.11\"",
      "numpy>=1.22.4; python_version < \"3.11\"", "python-dateutil>=2.8.2", "pytz>=2020.1", "tzdata>=2022.7"], []),
    ("lxml", "5.3.0", "compiled", 5.0 * MB, ">=3.6", [], []),
    ("psycopg-binary", "3.2.3", "compiled", 4.4 * MB, ">=3.8", [], []),
    ("SQLAlchemy", "2.0.36", "compiled", 3.2 * MB, ">=3.7",
     ['greenlet!=0.4.17; python_version < "3.13" and (platform_machine == "aarch64" or '
      'platform_machine == "ppc64le" or platform_machine == "x86_64" or platform_machine == "AMD64")',
      "typing-extensions>=4.6.0"], []),
    ("pydantic_core", "2.23.4", "compiled", 2.1 * MB, ">=3.8", ["typing-extensions!=4.7.0,>=4.6.0"], []),
    ("aiohttp", "3.10.10", "compiled", 1.3 * MB, ">=3.8",
     ["aiohappyeyeballs>=2.3.0", "aiosignal>=1.1.2", f"async-timeout<5.0,>=4.0; {PY310}", "attrs>=17.3.0",
      "frozenlist>=1.1.1", "multidict<7.0,>=4.5", "yarl<2.0,>=1.12.0"], []),
    ("greenlet", "3.1.1", "compiled", 0.60 * MB, ">=3.7", [], []),
    ("yarl", "1.16.0", "compiled", 0.50 * MB, ">=3.9", ["idna>=2.0", "multidict>=4.0", "propcache>=0.2.0"], []),
    ("cffi", "1.17.1", "compiled", 0.45 * MB, ">=3.8", ["pycparser"], []),
    ("msgpack", "1.1.0", "compiled", 0.38 * MB, ">=3.8", [], []),
    ("frozenlist", "1.5.0", "compiled", 0.28 * MB, ">=3.8", [], []),
    ("propcache", "0.2.0", "compiled", 0.24 * MB, ">=3.8", [], []),
    ("orjson", "3.10.11", "compiled", 0.14 * MB, ">=3.8", [], []),
    ("charset-normalizer", "3.4.0", "compiled", 0.14 * MB, ">=3.7.0", [], []),
    ("multidict", "6.1.0", "compiled", 0.13 * MB, ">=3.8", [f"typing-extensions>=4.1.0; {PY310}"], []),
    ("cryptography", "43.0.3", "abi3", 4.0 * MB, ">=3.7", ['cffi>=1.12; platform_python_implementation != "PyPy"'], []),
    ("pip", "24.3.1", "pure", 1.8 * MB, ">=3.8", [], ["24.2", "24.0"]),
    ("setuptools", "75.3.0", "pure", 1.25 * MB, ">=3.8", [], ["75.1.0", "74.1.2"]),
    ("pydantic", "2.9.2", "pure", 0.43 * MB, ">=3.8",
     ["annotated-types>=0.6.0", "pydantic-core==2.23.4", 'typing-extensions>=4.6.1; python_version < "3.13"',
      'typing-extensions>=4.12.2; python_version >= "3.13"', f"tomli>=1.1.0; {PY310}"], ["2.9.1", "2.8.2"]),
    ("pytz", "2024.2", "pure", 0.50 * MB, None, [], ["2024.1"]),
    ("tzdata", "2024.2", "pure", 0.35 * MB, ">=2", [], ["2024.1"]),
    ("redis", "5.2.0", "pure", 0.26 * MB, ">=3.8", ['async-timeout>=4.0.3; python_full_version < "3.11.3"'], ["5.1.1"]),
    ("python-dateutil", "2.9.0.post0", "pure", 0.23 * MB, "!=3.0.*,!=3.1.*,!=3.2.*,>=2.7", ["six>=1.5"], ["2.8.2"]),
    ("psycopg", "3.2.3", "pure", 0.20 * MB, ">=3.8",
     ['typing-extensions>=4.6; python_version < "3.13"', f"tzdata; {WIN32}",
      'psycopg-binary==3.2.3; implementation_name != "pypy" and extra == "binary"'], ["3.2.2"]),
    ("certifi", "2024.8.30", "pure", 0.17 * MB, ">=3.6", [], ["2024.7.4"]),
    ("urllib3", "2.2.3", "pure", 0.13 * MB, ">=3.8", [], ["2.2.2", "1.26.20"]),
    ("pycparser", "2.22", "pure", 0.12 * MB, ">=3.8", [], []),
    ("idna", "3.10", "pure", 0.07 * MB, ">=3.6", [], ["3.9"]),
    ("wheel", "0.45.0", "pure", 0.07 * MB, ">=3.8", [], ["0.44.0"]),
    ("requests", "2.32.3", "pure", 0.064 * MB, ">=3.8",
     ["charset-normalizer<4,>=2", "idna<4,>=2.5", "urllib3<3,>=1.21.1", "certifi>=2017.4.17"], ["2.32.2", "2.31.0"]),
    ("attrs", "24.2.0", "pure", 0.063 * MB, ">=3.7", [], []),
    ("six", "1.16.0", "pure", 0.05 * MB, ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*", [], []),
    ("typing_extensions", "4.12.2", "pure", 0.05 * MB, ">=3.8", [], ["4.12.1"]),
    ("aiohappyeyeballs", "2.4.3", "pure", 0.05 * MB, ">=3.8", [], []),
    ("aiosignal", "1.3.1", "pure", 0.05 * MB, ">=3.7", ["frozenlist>=1.1.0"], []),
    ("annotated-types", "0.7.0", "pure", 0.05 * MB, ">=3.8", [], []),
    ("async-timeout", "4.0.3", "pure", 0.05 * MB, ">=3.7", [], []),
    ("exceptiongroup", "1.2.2", "pure", 0.05 * MB, ">=3.7", [], []),
    ("tomli", "2.0.2", "pure", 0.05 * MB, ">=3.8", [], []),
]
EXTRAS = {"psycopg": ["binary"]}
REQUIREMENTS = {
    "api": ["pydantic==2.9.2", "orjson==3.10.11", "SQLAlchemy==2.0.36", "psycopg[binary]==3.2.3",
            "cryptography==43.0.3", "aiohttp==3.10.10", "requests==2.32.3"],
    "worker": ["numpy==2.1.3", "pandas==2.2.3", "requests==2.32.3", "redis==5.2.0", "lxml==5.3.0",
               "msgpack==1.1.0"],
}
PY310_ONLY = ("exceptiongroup", "tomli")  # pulled only for Python 3.10, so not in the 4-target set
POOL_SIZE = 48 * 1024 * 1024


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def metadata_text(name, version, requires_python, requires_dist):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             f"Summary: Synthetic stand-in for {name}, for the wheelgap benchmark", "License: MIT"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Provides-Extra: {extra}" for extra in EXTRAS.get(name, [])]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires_dist]
    return ("\n".join(lines) + f"\n\n{name} {version} holds no code; it only has the size of the real one.\n").encode()


def build_wheel(name, version, tag, payload, payload_path, metadata):
    module = normalize(name).replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    wheel = (f"Wheel-Version: 1.0\nGenerator: realistic_index.py\nRoot-Is-Purelib: {str(tag.endswith('-any')).lower()}\n"
             + "".join(f"Tag: {tag.split('-')[0]}-{tag.split('-')[1]}-{platform}\n" for platform in tag.split("-")[2].split(".")))
    members = [
        (f"{module}/__init__.py", f'__version__ = "{version}"\n'.encode(), True),
        (f"{module}/{payload_path}", payload, False),
        (f"{dist_info}/METADATA", metadata, True),
        (f"{dist_info}/WHEEL", wheel.encode(), True),
    ]
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data, _ in members) + f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode(), True))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data, deflate in members:
            info = zipfile.ZipInfo(path, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return f"{module}-{version}-{tag}.whl", buffer.getvalue()


def page(title, body):
    return (f'<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.1">\n'
            f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n{body}  </body>\n</html>\n")


def in_four_target_set(tag):
    """Whether the 4-target benchmark (amd64/arm64 x 3.11/3.12, glibc) downloads a file of this tag."""
    python, _, platform = tag.split("-")
    if platform == "any":
        return True
    if "musllinux" in platform or "ppc64le" in platform:
        return False
    return python in ("cp311", "cp312", "cp39")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--size-factor", type=float, default=1.0,
                        help="multiply every wheel's size (0.1 for a quick smoke run)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.size_factor <= 0:
        parser.error("--size-factor must be positive")
    rng = random.Random(args.seed)
    pool = rng.randbytes(POOL_SIZE)
    packages_dir = os.path.join(args.out_dir, "packages")
    simple_dir = os.path.join(args.out_dir, "simple")
    os.makedirs(packages_dir)
    os.makedirs(simple_dir)

    def payload(size):
        size = max(1, int(size * args.size_factor))
        start = rng.randrange(POOL_SIZE)
        data = pool[start:start + size]
        while len(data) < size:
            data += pool[:size - len(data)]
        return data

    pages = {}  # normalized name -> [(file name, sha256, metadata sha256, requires-python)]
    totals = {"index_files": 0, "index_bytes": 0, "set4_files": 0, "set4_bytes": 0}

    def write(name, version, tag, size, payload_path, requires_python, requires_dist):
        metadata = metadata_text(name, version, requires_python, requires_dist)
        filename, data = build_wheel(name, version, tag, payload(size), payload_path, metadata)
        with open(os.path.join(packages_dir, filename), "wb") as out:
            out.write(data)
        with open(os.path.join(packages_dir, filename + ".metadata"), "wb") as out:
            out.write(metadata)
        pages.setdefault(normalize(name), []).append(
            (filename, hashlib.sha256(data).hexdigest(), hashlib.sha256(metadata).hexdigest(), requires_python))
        totals["index_files"] += 1
        totals["index_bytes"] += len(data)
        if in_four_target_set(tag) and version == current_version and name not in PY310_ONLY:
            totals["set4_files"] += 1
            totals["set4_bytes"] += len(data)

    for name, version, kind, size, requires_python, requires_dist, older in PROJECTS:
        current_version = version
        module = normalize(name).replace("-", "_")
        if kind == "compiled":
            for python in PYTHONS:
                for platform, machine, factor in PLATFORMS:
                    so = f"_{module}.cpython-{python}-{machine}.so"
                    write(name, version, f"cp{python}-cp{python}-{platform}", size * factor, so,
                          requires_python, requires_dist)
        elif kind == "abi3":
            for platform, factor in ABI3_PLATFORMS:
                write(name, version, f"cp39-abi3-{platform}", size * factor, "_rust.abi3.so", requires_python, requires_dist)
        else:
            tag = "py2.py3-none-any" if name in ("six", "python-dateutil") else "py3-none-any"
            write(name, version, tag, size, "_data.bin", requires_python, requires_dist)
            for old in older:
                write(name, old, tag, size * 0.95, "_data.bin", requires_python, requires_dist)

    root = "".join(f'    <a href="{name}/">{name}</a><br/>\n' for name in sorted(pages))
    with open(os.path.join(simple_dir, "index.html"), "w") as out:
        out.write(page("Simple index", root))
    for name, files in pages.items():
        links = f"    <h1>Links for {name}</h1>\n"
        for filename, sha256, metadata_sha256, requires_python in sorted(files):
            python_attribute = f' data-requires-python="{html.escape(requires_python)}"' if requires_python else ""
            links += (f'    <a href="../../packages/{filename}#sha256={sha256}"{python_attribute}'
                      f' data-dist-info-metadata="sha256={metadata_sha256}" data-core-metadata="sha256={metadata_sha256}">'
                      f"{filename}</a><br/>\n")
        os.makedirs(os.path.join(simple_dir, name))
        with open(os.path.join(simple_dir, name, "index.html"), "w") as out:
            out.write(page(f"Links for {name}", links))

    for service, pins in REQUIREMENTS.items():
        with open(os.path.join(args.out_dir, f"requirements-{service}.txt"), "w") as out:
            out.write(f"# The `{service}` service (synthetic, from scripts/bench/realistic_index.py)\n")
            out.writelines(pin + "\n" for pin in pins)

    # The 4-target figures count the build tools, and async-timeout (redis pulls it on 3.11.0).
    summary = {"size_factor": args.size_factor, "projects": len(pages), **totals}
    with open(os.path.join(args.out_dir, "summary.json"), "w") as out:
        json.dump(summary, out)
    print(f"index: {totals['index_files']} wheels, {totals['index_bytes'] / MB:.1f} MB; "
          f"4-target set about {totals['set4_files']} files, {totals['set4_bytes'] / MB:.1f} MB")


if __name__ == "__main__":
    main()
