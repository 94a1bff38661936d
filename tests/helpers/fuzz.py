"""Fuzzing the spec language: inputs from the grammar and from mutated zoo/docs specs, each run
through ``graphcnn check`` in a worker process with a time and a memory limit.

Every input is classified as one of :data:`OUTCOMES`:

- ``ok``: ``check`` exits 0;
- ``located``: exit 2 with one error that starts ``file:line:col: error:`` (line and column >= 1)
  and, when it quotes a source line, quotes the right one;
- ``unlocated``: exit 2 but the error has no usable location or quotes the wrong line;
- ``crash``: an exception escaped (a traceback), the internal-error guard fired (exit 1), or
  the worker died;
- ``hang``: the worker spent more than the time limit of CPU time on the input (or ten times
  that in wall time) without an answer: it is killed and replaced;
- ``memory``: ``MemoryError`` under the worker's address-space limit (``memory_mb`` above what
  the worker maps when it starts).

Generators take a ``choose(n) -> int`` callable (``0 <= result < n``), so the same code serves
hypothesis (``draw(st.integers(0, n - 1))``, shrinkable) and the long campaign
(``random.Random(seed).randrange``, reproducible): see :func:`grammar_program` and
:func:`mutate`. ``tools/fuzz_specs.py`` runs the long campaign; ``tests/test_fuzz_specs.py`` a
short one in the test suite.
"""

from __future__ import annotations

import contextlib
import functools
import io
import multiprocessing as mp
import os
import re
import resource
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import cast

Choose = Callable[[int], int]

OUTCOMES = ("ok", "located", "unlocated", "crash", "hang", "memory")
FAILURES = ("unlocated", "crash", "hang", "memory")

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "graphcnn" / "zoo"
DOCS = (ROOT / "docs" / "language.md", ROOT / "README.md")

_NAMES = (
    "x y z i j n c s k t net blk a b out planes stride width depth "
    "conv linear bn relu relu6 sigmoid maxpool avgpool adaptive_avgpool global_avgpool dropout "
    "add mul concat flatten reshape softmax identity split input lrn drop_path channel_shuffle "
    "range len min max sum zip enumerate round ceil floor int float abs sqrt make_divisible str "
    "channels height width shape"
).split()
_INTS = ("0", "1", "2", "3", "8", "16", "64", "224", "1000", "99999999999999999999", "1" * 5000)
_FLOATS = ("0.5", "1e-5", "2.0", "1e308", "1e999", "0.0", "." + "9" * 400)
_STRINGS = (
    '"a"',
    '"layer{i}"',
    '"{x}"',
    '"common.gcnn"',
    '"."',
    '"{"',
    '"float64"',
    '""',
    '"' + "1" * 5000 + '"',
    '"' + "a" * 300 + '"',
)


@dataclass(frozen=True)
class Outcome:
    kind: str
    detail: str = ""


@functools.cache
def _grammar() -> tuple[dict[str, list[list[str]]], dict[str, str], dict[str, int]]:
    """The compiled grammar: expansions per rule, literal text per terminal, min height per rule."""
    from lark import Lark

    from graphcnn.lang.parser import GRAMMAR

    lark = Lark(GRAMMAR.read_text(), parser="lalr", lexer="basic", maybe_placeholders=True)
    rules: dict[str, list[list[str]]] = {}
    for r in lark.rules:
        rules.setdefault(r.origin.name, []).append([s.name for s in r.expansion])
    literals = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
    height = {name: 10**9 for name in rules}
    changed = True
    while changed:
        changed = False
        for name, expansions in rules.items():
            best = min(1 + max((height.get(s, 0) for s in e), default=0) for e in expansions)
            if best < height[name]:
                height[name], changed = best, True
    return rules, literals, height


def _terminal(name: str, choose: Choose) -> str:
    _, literals, _ = _grammar()
    if name in literals:
        return literals[name]
    pool = {
        "NAME": _NAMES,
        "INT": _INTS,
        "FLOAT": _FLOATS,
        "STRING": _STRINGS,
        "_NL": ("\n",),
        "COMP": ("==", "!=", "<", "<=", ">", ">="),
    }.get(name, ("?",))
    return pool[choose(len(pool))]


def grammar_program(choose: Choose, symbol: str = "start", depth: int = 12) -> str:
    """A random sentence of the grammar from ``symbol`` (deeper than ``depth``: shortest rules)."""
    rules, _, height = _grammar()
    out: list[str] = []
    # NOTE: an explicit stack, so deep derivations cannot hit Python's recursion limit.
    stack: list[tuple[str, int]] = [(symbol, 0)]
    while stack:
        sym, d = stack.pop()
        if sym not in rules:
            out.append(_terminal(sym, choose))
            continue
        options = rules[sym]
        if d >= depth:
            cost = [max((height.get(s, 0) for s in e), default=0) for e in options]
            options = [e for e, c in zip(options, cost, strict=True) if c == min(cost)]
        expansion = options[choose(len(options))]
        stack.extend((s, d + 1) for s in reversed(expansion))
    return " ".join(out)


def skeleton_program(choose: Choose) -> str:
    """A network whose body holds grammar-generated statements: reaches the interpreter."""
    body = "\n".join(grammar_program(choose, "_stmt", 6) for _ in range(1 + choose(4)))
    head = ("x = input(3, 16, 16)", "x = input(3, 8, 8)", "x = input(1, 28, 28)")[choose(3)]
    tail = ("return x", "return x -> flatten -> linear(10)", "return y")[choose(3)]
    return (
        f"block blk(x, c = 8) {{\n  return x -> conv(c, 3, pad: 1)\n}}\n"
        f"network net() {{\n  {head}\n{body}\n  {tail}\n}}\n"
    )


_TOKEN = re.compile(
    r'"(?:\\.|[^"\\\n])*"|#[^\n]*|[A-Za-z_][A-Za-z_0-9]*|[0-9][0-9_.eE+-]*|->|\*\*|//|[=!<>]=|\s+|.'
)


@functools.cache
def seed_corpus() -> tuple[tuple[str, str], ...]:
    """(name, text) of every zoo spec and every ``gcnn`` example of the docs."""
    seeds = [(p.name, p.read_text()) for p in sorted(ZOO.glob("*.gcnn"))]
    for doc in DOCS:
        for i, m in enumerate(re.finditer(r"```(?:gcnn)?\n(.*?)```", doc.read_text(), re.S)):
            if "network" in m.group(1) or "block" in m.group(1):
                seeds.append((f"{doc.name}#{i}", m.group(1)))
    return tuple(seeds)


_HUGE = (
    "1" + "0" * 5000,
    "1e308",
    "1e999",
    "99999999999999999999",
    "2 ** 4000",
    "-1",
    "0",
    '"' + "7" * 5000 + '"',
    "x" * 5000,
)


def mutate(text: str, choose: Choose, rounds: int = 3) -> str:
    """``text`` with 1..``rounds`` token-level mutations (delete, duplicate, swap, huge numbers,
    deep nesting, grammar-generated expressions, truncation)."""
    tokens = _TOKEN.findall(text)
    for _ in range(1 + choose(rounds)):
        if not tokens:
            tokens = [" "]
        i, j = choose(len(tokens)), choose(len(tokens))
        kind = choose(9)
        if kind == 0:
            del tokens[i]
        elif kind == 1:
            tokens.insert(i, tokens[i])
        elif kind == 2:
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == 3:
            nums = [k for k, t in enumerate(tokens) if t[:1].isdigit()] or [i]
            tokens[nums[choose(len(nums))]] = _HUGE[choose(len(_HUGE))]
        elif kind == 4:
            n = (10, 200, 3000)[choose(3)]
            opener, closer = (("(", ")"), ("[", "]"), ("f(", ")"), ("-", ""), ("not ", ""))[
                choose(5)
            ]
            tokens.insert(i, opener * n + "1" + closer * n)
        elif kind == 5:
            tokens.insert(i, " " + grammar_program(choose, "expr", 5) + " ")
        elif kind == 6:
            tokens = tokens[: max(i, 1)]
        elif kind == 7:
            tokens[i] = _NAMES[choose(len(_NAMES))]
        else:
            tokens.insert(i, " " + grammar_program(choose, "_stmt", 4) + "\n")
    return "".join(tokens)


def random_input(choose: Choose) -> tuple[str, str]:
    """(origin, text): a mutated seed, a skeleton program or a whole-grammar program."""
    seeds = seed_corpus()
    kind = choose(4)
    if kind <= 1:
        name, text = seeds[choose(len(seeds))]
        return f"mutate:{name}", mutate(text, choose)
    if kind == 2:
        return "skeleton", skeleton_program(choose)
    return "grammar", grammar_program(choose)


_HEAD = re.compile(r"^(?P<file>.+?):(?P<line>-?\d+):(?P<col>-?\d+): error: ", re.M)
_QUOTE = re.compile(r"^\s*(?P<line>\d+) \| (?P<text>.*)$", re.M)


def classify_output(code: int, err: str, text: str, file: str) -> Outcome:
    """Judge what ``graphcnn check FILE`` printed on stderr and returned."""
    if code == 0:
        return Outcome("ok")
    if code == 1 and err.startswith("internal error: MemoryError"):
        return Outcome("memory", err[:2000])
    if code != 2:
        return Outcome("crash", f"exit code {code}: {err[-2000:]}")
    if "Traceback" in err:
        return Outcome("crash", err[-2000:])
    head = _HEAD.match(err)
    if head is None or int(head["line"]) < 1 or int(head["col"]) < 1:
        return Outcome("unlocated", err[:2000])
    if head["file"] == file:
        quote = _QUOTE.search(err)
        lines = text.split("\n")
        if quote is not None:
            n = int(quote["line"])
            if n != int(head["line"]) or n > len(lines) or quote["text"] not in lines[n - 1]:
                return Outcome("unlocated", "quotes the wrong line: " + err[:2000])
    if len(err) > 20_000:
        return Outcome("unlocated", f"an error message of {len(err):,} characters")
    return Outcome("located", err.splitlines()[0][:300])


def check_in_process(text: str, folder: str) -> Outcome:
    """Run ``graphcnn check`` on ``text`` (written to a file in ``folder``) in this process."""
    import click

    from graphcnn.cli.app import main

    path = os.path.join(folder, "fuzz input.gcnn")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main.main(["check", path, "--json"], prog_name="graphcnn", standalone_mode=False)
    except MemoryError:
        return Outcome("memory", "MemoryError")
    except click.exceptions.ClickException as e:
        return Outcome("crash", f"click: {e.format_message()}")
    except BaseException as e:  # noqa: BLE001 - anything escaping the CLI is what we hunt
        import traceback

        return Outcome("crash", "".join(traceback.format_exception(e))[-3000:])
    return classify_output(int(code or 0), err.getvalue(), text, path)


def _worker(conn: Connection, memory_mb: int) -> None:
    # NOTE: the limit is above what the worker already maps: a fork of a process that imported
    # torch (a test session) starts with gigabytes of address space.
    limit = _address_space() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    parent = os.getppid()
    with tempfile.TemporaryDirectory() as folder:
        while True:
            # NOTE: a worker also holds its siblings' pipes (fork), so it cannot rely on EOF
            # to notice that the parent died; it watches the parent instead.
            while not conn.poll(1.0):
                if os.getppid() != parent:
                    return
            try:
                text = conn.recv()
            except EOFError:
                return
            outcome = check_in_process(text, folder)
            conn.send((outcome.kind, outcome.detail))


def _address_space() -> int:
    """Bytes of address space this process maps (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a live process (Linux ``/proc``; 0 elsewhere or when gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Pool:
    """Worker processes that each judge one input at a time, killed and replaced on a hang."""

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, memory_mb: int = 2048):
        self.ctx = mp.get_context("fork")
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self.procs: list[tuple[BaseProcess, Connection] | None] = [None] * workers
        self.cpu_at_start = [0.0] * workers

    def _spawn(self, k: int) -> tuple[BaseProcess, Connection]:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.memory_mb), daemon=True)
        proc.start()
        child.close()
        self.procs[k] = (proc, parent)
        return proc, parent

    def _kill(self, k: int) -> None:
        entry = self.procs[k]
        if entry is not None:
            proc, conn = entry
            proc.kill()
            proc.join()
            conn.close()
            self.procs[k] = None

    def run(self, inputs: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str, Outcome]]:
        """Yield (key, text, outcome) for every (key, text), in completion order."""
        pending = iter(inputs)
        busy: dict[int, tuple[int, str, float]] = {}

        def feed(k: int) -> None:
            item = next(pending, None)
            if item is None:
                return
            proc, conn = self.procs[k] or self._spawn(k)
            self.cpu_at_start[k] = _cpu_seconds(proc.pid)
            conn.send(item[1])
            busy[k] = (item[0], item[1], time.monotonic())

        for k in range(len(self.procs)):
            feed(k)
        while busy:
            conns = {self._conn(k): k for k in busy}
            for conn in wait(list(conns), timeout=0.2):
                k = conns[cast(Connection, conn)]
                key, text, _ = busy.pop(k)
                try:
                    kind, detail = cast(Connection, conn).recv()
                    outcome = Outcome(kind, detail)
                except (EOFError, OSError):
                    code = self._proc(k).exitcode
                    self._kill(k)
                    outcome = Outcome("crash", f"worker died (exit code {code})")
                yield key, text, outcome
                feed(k)
            now = time.monotonic()
            for k, (key, text, started) in list(busy.items()):
                # NOTE: CPU time, not wall time, so a loaded machine does not make hangs; the
                # wall-time cap catches a worker that waits without computing.
                cpu = _cpu_seconds(self._proc(k).pid) - self.cpu_at_start[k]
                if cpu > self.timeout_s or now - started > 10 * self.timeout_s:
                    busy.pop(k)
                    self._kill(k)
                    why = f"{cpu:.1f} s of CPU time, {now - started:.1f} s wall, no answer"
                    yield key, text, Outcome("hang", why)
                    feed(k)

    def _proc(self, k: int) -> BaseProcess:
        entry = self.procs[k]
        assert entry is not None
        return entry[0]

    def _conn(self, k: int) -> Connection:
        entry = self.procs[k]
        assert entry is not None
        return entry[1]

    def close(self) -> None:
        for k in range(len(self.procs)):
            self._kill(k)
