#!/usr/bin/env python3
"""Writes a synthetic, local PEP 503 package index for scripts/bench.sh. Standard library only.

    gen_index.py --out DIR [--scale N] [--seed S]

DIR/files/     every wheel, plus a PEP 658 `<wheel>.metadata` file beside each
DIR/simple/    PEP 503 pages: simple/index.html and simple/<project>/index.html, whose links are
               ../../files/<file>#sha256=<hex> (with data-requires-python and the PEP 658/714
               metadata attributes, as public indexes serve them)
DIR/requirements-api.txt, DIR/requirements-worker.txt   the top-level packages, pinned, split in two
DIR/summary.json   counts and bytes

At scale N there are 80*N pure `py3-none-any` projects (a 20-200 KB payload each, one older release
for every third one) and 60*N "compiled" projects with one wheel per target (cp311/cp312 x
manylinux2014 x86_64/aarch64, 0.8-1.6 MB each), plus stand-ins for pip, setuptools and wheel.
Scale 1 is about 300 MB; --payload-factor F makes every payload F times as big (the same projects and
files, F times the bytes). The payloads are os.urandom bytes stored uncompressed (real wheels are
deflated already, so they do not compress further); the small text members are deflated.
Dependencies form a DAG in which every project is reachable from a top-level requirement, so the
wheelhouse holds (nearly) the whole index.
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

PURE_PER_SCALE = 80
COMPILED_PER_SCALE = 60
PYTHONS = ["311", "312"]
ARCHES = ["x86_64", "aarch64"]
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
WORDS = (
    "http json yaml async cache crypto auth time data text image queue retry stream grpc proto "
    "sql orm config log metric trace serial parse schema vector graph mail cli color path".split()
)


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Project:
    def __init__(self, name, version, kind, payload_sizes):
        self.name = name  # as in Name:, mixed case and separators on purpose
        self.version = version
        self.kind = kind  # "pure" or "compiled" or "tool"
        self.payload_sizes = payload_sizes
        self.deps = []  # (Project, marker or None)
        self.older = None  # an older version string, pure projects only

    @property
    def module(self):
        return normalize(self.name).replace("-", "_")

    @property
    def wheel_name(self):
        return self.module  # the escaped name wheel file names use


def metadata_text(project, version):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project.name}",
        f"Version: {version}",
        f"Summary: Synthetic {project.kind} package for the xtask benchmark",
        "License: MIT",
        "Requires-Python: >=3.8",
    ]
    for dep, marker in project.deps:
        requirement = f"{dep.name}>={dep.version.split('.')[0]}.0"
        lines.append(f"Requires-Dist: {requirement}" + (f" ; {marker}" if marker else ""))
    return "\n".join(lines) + "\n\n" + f"{project.name} does nothing; it only has the size of a real one.\n"


def build_wheel(project, version, tags, payload_size, payload_name):
    """The wheel's bytes and its METADATA bytes."""
    dist_info = f"{project.wheel_name}-{version}.dist-info"
    metadata = metadata_text(project, version).encode()
    pure = tags == ["py3-none-any"]
    wheel = (
        "Wheel-Version: 1.0\nGenerator: xtask-bench (0.1)\n"
        + f"Root-Is-Purelib: {'true' if pure else 'false'}\n"
        + "".join(f"Tag: {tag}\n" for tag in tags)
    ).encode()
    members = [
        (f"{project.module}/__init__.py", f'"""{project.name} {version}"""\n__version__ = "{version}"\n'.encode(), True),
        (f"{project.module}/{payload_name}", os.urandom(payload_size), False),
        (f"{dist_info}/METADATA", metadata, True),
        (f"{dist_info}/WHEEL", wheel, True),
        (f"{dist_info}/top_level.txt", f"{project.module}\n".encode(), True),
    ]
    record = "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data, _ in members)
    record += f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode(), True))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, deflate in members:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue(), metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--payload-factor", type=float, default=1.0,
                        help="multiply every payload size (the same projects and files, more bytes)")
    args = parser.parse_args()
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    if args.payload_factor <= 0:
        parser.error("--payload-factor must be positive")
    rng = random.Random(args.seed)  # the structure is reproducible; the payload bytes are not
    kb = 1024

    projects = []
    for i in range(PURE_PER_SCALE * args.scale):
        name = f"{rng.choice(WORDS).capitalize()}_{rng.choice(WORDS)}-Kit.{i:03d}"
        project = Project(name, f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}", "pure",
                          [rng.randint(20 * kb, 200 * kb)])
        if i % 3 == 0:
            project.older = f"{project.version.split('.')[0]}.0.0"
            if project.older == project.version:
                project.older = None
        projects.append(project)
    for i in range(COMPILED_PER_SCALE * args.scale):
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-native{i:03d}"
        sizes = [rng.randint(800 * kb, 1600 * kb) for _ in range(len(PYTHONS) * len(ARCHES))]
        projects.append(Project(name, f"{rng.randint(0, 5)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}", "compiled", sizes))
    rng.shuffle(projects)

    # A DAG: project i may only depend on projects after it. The first quarter are top-level; every
    # other project gets at least one dependent, then a few random edges more. A few edges carry
    # markers, so targets differ (and a resolver that uses the host's markers gets them wrong).
    top = len(projects) // 4
    for j in range(1, len(projects)):
        if j >= top:
            projects[rng.randrange(0, j)].deps.append((projects[j], None))
    for i, project in enumerate(projects[:-1]):
        for _ in range(rng.randint(0, 2)):
            dep = projects[rng.randrange(i + 1, len(projects))]
            if all(dep is not d for d, _ in project.deps):
                marker = rng.choice([None, None, None, None, 'python_version < "3.12"',
                                     'platform_machine == "aarch64"', 'platform_machine == "x86_64"'])
                if marker and dep.kind != "pure":  # keep markers on cheap edges only
                    marker = None
                project.deps.append((dep, marker))
    tools = [Project("pip", "24.0", "tool", [1800 * kb]), Project("setuptools", "70.0.0", "tool", [1200 * kb]),
             Project("wheel", "0.43.0", "tool", [60 * kb])]

    files_dir = os.path.join(args.out, "files")
    simple_dir = os.path.join(args.out, "simple")
    os.makedirs(files_dir)
    os.makedirs(simple_dir)
    pages = {}  # normalized name -> [(file name, sha256, metadata sha256)]
    total_bytes = 0
    n_wheels = 0

    def write(project, version, tags, size, payload_name):
        nonlocal total_bytes, n_wheels
        data, metadata = build_wheel(project, version, tags, int(size * args.payload_factor), payload_name)
        # One tag, or a compressed tag set: cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64
        tag_set = tags[0] + "".join("." + tag.split("-")[2] for tag in tags[1:])
        filename = f"{project.wheel_name}-{version}-{tag_set}.whl"
        with open(os.path.join(files_dir, filename), "wb") as out:
            out.write(data)
        with open(os.path.join(files_dir, filename + ".metadata"), "wb") as out:
            out.write(metadata)
        pages.setdefault(normalize(project.name), []).append(
            (filename, hashlib.sha256(data).hexdigest(), hashlib.sha256(metadata).hexdigest()))
        total_bytes += len(data)
        n_wheels += 1

    for project in projects + tools:
        if project.kind == "compiled":
            sizes = iter(project.payload_sizes)
            for py in PYTHONS:
                for arch in ARCHES:
                    so = f"_core.cpython-{py}-{arch}-linux-gnu.so"
                    tags = [f"cp{py}-cp{py}-manylinux_2_17_{arch}", f"cp{py}-cp{py}-manylinux2014_{arch}"]
                    write(project, project.version, tags, next(sizes), so)
        else:
            write(project, project.version, ["py3-none-any"], project.payload_sizes[0], "_data.bin")
            if project.older:
                write(project, project.older, ["py3-none-any"], project.payload_sizes[0] // 2, "_data.bin")

    def page(title, body):
        return (f"<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n"
                f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n{body}  </body>\n</html>\n")

    root = "".join(f"    <a href=\"{name}/\">{name}</a><br/>\n" for name in sorted(pages))
    with open(os.path.join(simple_dir, "index.html"), "w") as out:
        out.write(page("Simple index", root))
    for name, files in pages.items():
        links = f"    <h1>Links for {name}</h1>\n"
        for filename, sha, meta_sha in sorted(files):
            links += (f"    <a href=\"../../files/{filename}#sha256={sha}\" data-requires-python=\"{html.escape('>=3.8')}\""
                      f" data-dist-info-metadata=\"sha256={meta_sha}\" data-core-metadata=\"sha256={meta_sha}\">"
                      f"{filename}</a><br/>\n")
        os.makedirs(os.path.join(simple_dir, name))
        with open(os.path.join(simple_dir, name, "index.html"), "w") as out:
            out.write(page(f"Links for {name}", links))

    # Top-level projects alternate between the two services; a few deps end up shared by both.
    for service, chosen in (("api", projects[:top:2]), ("worker", projects[1:top:2])):
        with open(os.path.join(args.out, f"requirements-{service}.txt"), "w") as out:
            out.write(f"# The `{service}` service (synthetic, generated by scripts/bench/gen_index.py)\n")
            out.writelines(f"{p.name}=={p.version}\n" for p in chosen)

    summary = {"scale": args.scale, "payload_factor": args.payload_factor, "projects": len(projects) + len(tools), "top_level": top,
               "wheels": n_wheels, "bytes": total_bytes}
    with open(os.path.join(args.out, "summary.json"), "w") as out:
        json.dump(summary, out)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
