"""Fetch the TensorRT type stubs (PyPI ``tensorrt-stubs``), patch them so mypy can read them.

TensorRT's own Python package cannot be installed on our machines, but its API can still be
type-checked: ``tensorrt-stubs`` holds ``.pyi`` files generated (pybind11-stubgen) from the real
bindings. They do not parse as released, so this script

1. downloads the pinned wheel with ``pip download --no-deps`` (or takes ``--wheel FILE``),
2. extracts ``tensorrt/`` and ``tensorrt_bindings/`` (``.pyi`` only) into
   ``build/tensorrt-stubs/<version>/`` (``build/`` is git-ignored; ``make clean`` removes it),
3. patches what does not parse or resolve, on ``def`` lines only:
   - parameters named ``in`` (a keyword) become ``in_``;
   - a parameter without a default after one with a default gets ``= ...``;
   - ``typing_extensions`` (used in annotations, never imported) gets imported, and the
     undefined ``capsule`` type becomes an alias of ``typing.Any``;
4. checks that every file parses (``ast.parse``) and writes a marker, so later runs are instant.

It prints the stub folder (for ``MYPYPATH``) on stdout. With ``--mypy-config FILE`` it also writes
a mypy config: the ``[tool.mypy]`` settings of pyproject.toml plus what the TensorRT check needs
(stub path, only the checked file reported, the stubs' own errors ignored, and ``tensorrt`` *must*
resolve, so missing stubs fail the check instead of turning the API into ``Any``).

Exit status: 0 ok; 3 the stubs could not be fetched (offline, registry down); 1 anything else.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

VERSION = "10.13.0.35.1"
"""tensorrt-stubs release: TensorRT 10.13 (the ``.1`` is the stubs' own revision)."""
PACKAGES = ("tensorrt", "tensorrt_bindings")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / "build" / "tensorrt-stubs"
EXIT_UNAVAILABLE = 3
MARKER = ".patched"
PATCH_VERSION = "1"
"""Bump when the patching changes: existing stub folders are then extracted and patched again."""

_DEF = re.compile(r"^(\s*)def (\w+)\((.*)\)(\s*->.*?)?:(\s*(?:\.\.\.)?\s*(?:#.*)?)$")


def _split_params(text: str) -> list[str]:
    """Split a parameter list on top-level commas (``dict[str, int]`` stays whole)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _fix_def(line: str) -> tuple[str, list[str]]:
    """Patch one ``def`` line; returns the new line and what was changed."""
    m = _DEF.match(line)
    if not m:
        return line, []
    indent, name, params, ret = m.group(1), m.group(2), m.group(3), m.group(4) or ""
    body = m.group(5).rstrip()
    notes = []
    parts = _split_params(params)
    fixed = []
    seen_default = False
    for p in parts:
        if p == "/" or p.startswith("*"):
            if p.startswith("*"):
                seen_default = False  # keyword-only parameters may lack defaults
            fixed.append(p)
            continue
        pname = p.split(":", 1)[0].split("=", 1)[0].strip()
        if pname == "in":
            p = "in_" + p[2:]
            notes.append(f"{name}: parameter 'in' -> 'in_'")
        if "=" in p:
            seen_default = True
        elif seen_default:
            p += " = ..."
            notes.append(f"{name}: default '...' for {pname} (follows a defaulted parameter)")
        fixed.append(p)
    if not notes:
        return line, []
    return f"{indent}def {name}({', '.join(fixed)}){ret}:{body}", notes


def patch_source(text: str) -> tuple[str, list[str]]:
    """Patch one stub file's text; returns the new text and a list of changes."""
    notes: list[str] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith("def "):
            lines[i], changed = _fix_def(line)
            notes += changed
    out = "\n".join(lines)
    head = []
    if "typing_extensions." in out and not re.search(r"^import typing_extensions", out, re.M):
        head.append("import typing_extensions")
        notes.append("import typing_extensions")
    if re.search(r"\bcapsule\b", out) and not re.search(r"^capsule\b", out, re.M):
        head.append("import typing as _typing\ncapsule = _typing.Any")
        notes.append("capsule = typing.Any")
    if head:
        # after `from __future__ import annotations`, which must stay first
        future = "from __future__ import annotations\n"
        extra = "\n".join(head) + "\n"
        out = out.replace(future, future + extra, 1) if future in out else extra + out
    return out, notes


def _download(version: str, tmp: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "-q", "-d", str(tmp), f"tensorrt-stubs=={version}",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit(_unavailable(version, f"pip download failed: {e}")) from None
    files = sorted(tmp.glob("tensorrt_stubs-*")) + sorted(tmp.glob("tensorrt-stubs-*"))
    if proc.returncode != 0 or not files:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SystemExit(_unavailable(version, "pip download failed: " + " | ".join(tail)))
    return files[0]


def _unavailable(version: str, why: str) -> int:
    print(f"tensorrt_stubs: cannot fetch tensorrt-stubs=={version}: {why}", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _members(archive: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the ``.pyi`` files of :data:`PACKAGES` in a wheel/sdist."""
    out: dict[str, bytes] = {}

    def keep(name: str) -> str | None:
        parts = name.split("/")
        for i, part in enumerate(parts):
            if part in PACKAGES and name.endswith(".pyi"):
                return "/".join(parts[i:])
        return None

    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                rel = keep(name)
                if rel:
                    out[rel] = z.read(name)
    else:
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                rel = keep(member.name)
                f = t.extractfile(member) if rel and member.isfile() else None
                if rel and f is not None:
                    out[rel] = f.read()
    if not any(k.startswith("tensorrt/") for k in out):
        raise SystemExit(f"tensorrt_stubs: {archive.name} holds no tensorrt/*.pyi")
    return out


def install(dest: Path, version: str, wheel: Path | None, verbose: bool) -> Path:
    """The patched stub folder for ``version`` under ``dest`` (fetched and patched if needed)."""
    target = dest / version
    marker = target / MARKER
    if marker.is_file() and marker.read_text().strip() == PATCH_VERSION:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        archive = wheel if wheel is not None else _download(version, Path(tmp))
        files = _members(archive)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=_mkdir(dest)))
    report: list[str] = []
    for rel, data in sorted(files.items()):
        text, notes = patch_source(data.decode("utf-8"))
        try:
            ast.parse(text, filename=rel)
        except SyntaxError as e:
            raise SystemExit(
                f"tensorrt_stubs: {rel}:{e.lineno} still does not parse after patching: {e.msg}"
            ) from None
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        report += [f"{rel}: {n}" for n in notes]
    (staging / "PATCHES.txt").write_text("\n".join(report) + "\n")
    (staging / MARKER).write_text(PATCH_VERSION + "\n")
    if target.exists():
        import shutil

        shutil.rmtree(target)
    staging.rename(target)
    if verbose:
        print(
            f"tensorrt_stubs: {len(report)} patches, see {target / 'PATCHES.txt'}", file=sys.stderr
        )
    return target


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _ini_value(v: object) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    return str(v)


def mypy_config(stubs: Path, pyproject: Path = ROOT / "pyproject.toml") -> str:
    """An INI mypy config: pyproject's ``[tool.mypy]`` + the TensorRT check's settings."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: mypy itself depends on tomli there
        import tomli as tomllib
    base = tomllib.loads(pyproject.read_text()).get("tool", {}).get("mypy", {})
    lines = ["# generated by tools/tensorrt_stubs.py from pyproject.toml [tool.mypy]", "[mypy]"]
    for k, v in base.items():
        if k != "overrides":
            lines.append(f"{k} = {_ini_value(v)}")
    lines += [
        f"mypy_path = {stubs}",
        "# report the checked file only; imported modules (graphcnn, torch, the stubs) are",
        "# type-checked elsewhere or not ours",
        "follow_imports = silent",
        "",
        "[mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]",
        "# the stubs must be found (else the whole API would silently become Any) ...",
        "ignore_missing_imports = False",
        "# ... but their own inconsistencies are not ours to report",
        "ignore_errors = True",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="stub cache folder")
    ap.add_argument("--version", default=VERSION, help="tensorrt-stubs version")
    ap.add_argument("--wheel", type=Path, default=None, help="use this wheel/sdist (offline)")
    ap.add_argument("--mypy-config", type=Path, default=None, help="also write a mypy config")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    target = install(args.dest, args.version, args.wheel, args.verbose)
    if args.mypy_config is not None:
        args.mypy_config.write_text(mypy_config(target))
    print(target)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            sys.exit(1)
        raise
    except OSError as e:  # pragma: no cover - disk errors
        print(f"tensorrt_stubs: {e}", file=sys.stderr)
        sys.exit(1)
