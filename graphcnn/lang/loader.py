"""Load spec files: parse, resolve ``import``s (next to the file, then in the zoo), bind names."""

from __future__ import annotations

import difflib
from pathlib import Path

from graphcnn import zoo
from graphcnn.errors import GraphcnnError, SpecError
from graphcnn.ir import SourceLoc
from graphcnn.lang import ast
from graphcnn.lang.builtins import FUNCTIONS, LAYERS
from graphcnn.lang.interp import evaluate_constants
from graphcnn.lang.parser import parse
from graphcnn.lang.values import Block, Model
from graphcnn.lang.values import LoadedModule as LoadedModule  # re-exported for graphcnn.api
from graphcnn.util import gc_paused

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
MAX_SPEC_BYTES = 16 * 1024 * 1024


class _Loader:
    def __init__(self) -> None:
        self.cache: dict[Path, LoadedModule] = {}
        self.loading: list[Path] = []
        self.displays: dict[str, Path] = {}

    def load_file(self, path: Path, display: str, loc: SourceLoc | None = None) -> LoadedModule:
        try:
            real = path.resolve()
        except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, a NUL byte...
            raise SpecError(f"cannot read {display}: {e.__class__.__name__}: {e}", loc) from None
        if real in self.cache:
            return self.cache[real]
        if real in self.loading:
            cycle = " -> ".join(p.name for p in self.loading[self.loading.index(real) :] + [real])
            raise SpecError(f"import cycle: {cycle}", loc)
        try:
            size = real.stat().st_size
            if size > MAX_SPEC_BYTES:
                raise SpecError(
                    f"{display} is {size:,} bytes; specs are limited to {MAX_SPEC_BYTES:,}", loc
                )
            text = real.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"cannot read {display}: {e.__class__.__name__}: {e}", loc) from None
        # NOTE: locations name files by their display name; two imports that share one
        # (x/common.gcnn and y/common.gcnn, both imported as "common.gcnn") would quote each
        # other's lines, so the second one is named by its full path.
        if self.displays.setdefault(display, real) != real:
            display = str(real)
        self.loading.append(real)
        try:
            module = self.load_text(text, display, real.parent)
        finally:
            self.loading.pop()
        self.cache[real] = module
        return module

    def load_text(self, text: str, display: str, folder: Path) -> LoadedModule:
        tree = parse(text, display)
        module = LoadedModule(display)
        g = module.globals
        for item in tree.items:
            if isinstance(item, ast.Import):
                imported = self.load_file(self._resolve(item, folder), item.path, item.loc)
                for k, v in imported.globals.items():
                    g.setdefault(k, v)
        consts: list[ast.ConstDef] = []
        defined: dict[str, ast.Item] = {}
        for item in tree.items:
            if isinstance(item, ast.Import):
                continue
            first = defined.setdefault(item.name, item)
            # NOTE: `model googlenet = googlenet()` may share its network's name (it replaces it).
            shares = isinstance(item, ast.ModelDef) and item.network == item.name
            if first is not item and not shares:
                raise SpecError(
                    f"{item.name!r} is defined twice in {display}",
                    item.loc,
                    f"the first definition is at {first.loc}",
                )
            if item.name in LAYERS or item.name in FUNCTIONS:
                raise SpecError(f"{item.name!r} is a built-in and cannot be redefined", item.loc)
            if isinstance(item, ast.BlockDef):
                g[item.name] = Block(item, g)
                if item.network:
                    module.targets.append(item.name)
            elif isinstance(item, ast.ConstDef):
                consts.append(item)
            elif isinstance(item, ast.ModelDef) and item.name not in module.targets:
                module.targets.append(item.name)
        evaluate_constants(consts, g)
        networks = {k: v for k, v in g.items() if isinstance(v, Block)}
        for item in tree.items:
            if isinstance(item, ast.ModelDef):
                net = networks.get(item.network)
                if not isinstance(net, Block) or not net.defn.network:
                    raise SpecError(
                        f"model {item.name!r}: {item.network!r} is not a network", item.loc
                    )
                g[item.name] = Model(item, net, g)
        return module

    @staticmethod
    def _resolve(item: ast.Import, folder: Path) -> Path:
        for base in (folder, ZOO_DIR):
            candidate = base / item.path
            try:
                if candidate.is_file():
                    return candidate
            except (OSError, ValueError) as e:  # a name too long, a NUL byte...
                why = e.strerror if isinstance(e, OSError) else str(e)
                raise SpecError(f"cannot import {item.path[:100]!r}: {why}", item.loc) from None
        raise SpecError(
            f"cannot find imported file {item.path!r}",
            item.loc,
            f"imports are looked up next to the importing file, then in {ZOO_DIR}",
        )


def load(path: str | Path, display: str | None = None) -> LoadedModule:
    """Load a spec file and its imports."""
    with gc_paused():
        return _Loader().load_file(Path(path), display or str(path))


def load_text(text: str, name: str = "<spec>", folder: str | Path = ".") -> LoadedModule:
    """Load spec source given as a string (imports resolve relative to ``folder``)."""
    with gc_paused():
        return _Loader().load_text(text, name, Path(folder))


def resolve(spec_or_model: str | Path) -> tuple[LoadedModule, str | None]:
    """A zoo model name or a spec path -> (loaded module, network name or None)."""
    text = str(spec_or_model)
    if text in zoo.models():
        path = zoo.spec_path(text)
        return load(path, path.name), text
    p = Path(text)
    try:
        is_file, is_dir, exists = p.is_file(), p.is_dir(), p.exists()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        why = e.strerror if isinstance(e, OSError) else str(e)
        raise GraphcnnError(f"cannot read spec file {text[:200]!r}: {why}") from None
    if is_file:
        return load(p, text), None
    if is_dir or exists:
        what = "a directory" if is_dir else "not a regular file"
        raise GraphcnnError(f"cannot read spec file {text!r}: it is {what}")
    if p.suffix == ".gcnn" or "/" in text or exists:
        raise GraphcnnError(f"cannot read spec file {text!r}: no such file")
    close = difflib.get_close_matches(text, zoo.names(), n=3, cutoff=0.5)
    raise GraphcnnError(
        f"{text!r} is neither a zoo model nor a spec file",
        f"did you mean {', '.join(close)}?" if close else "see `graphcnn list` for the zoo",
    )
