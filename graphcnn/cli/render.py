"""Every rich table and summary line the CLI shows people.

Library modules return data (``Profile``, ``PassReport``, ``Analysis``, ``BenchResult``); this
module turns them into tables and lines, with units formatted by :mod:`graphcnn.units`.
``--json`` output never comes through here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from graphcnn.analysis.report import METRIC_LABELS, METRICS, TIME_MODEL, Analysis, Row
from graphcnn.bench import HALF_TYPES, TOLERANCES, BenchResult
from graphcnn.cost import CONVENTION, LayerCost, Profile
from graphcnn.passes import PassReport
from graphcnn.units import fmt_ms, fmt_time, shape, si

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from graphcnn.search.result import SearchResult


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr), 160 columns wide when not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(width=None if stream.isatty() else 160, stderr=stderr)


def zoo_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    """``graphcnn list``: one row per zoo model."""
    table = Table(title=f"graphcnn zoo ({len(rows)} models)", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("model", "left"),
        ("spec", "left"),
        ("input", "left"),
        ("params", "right"),
        ("MACs", "right"),
    )
    for col, just in columns:
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r["name"], r["spec"], shape(r["input"]), f"{r['params']:,}", si(r["macs"]))
    return table


def print_profile(out: Console, p: Profile, rows: Sequence[LayerCost]) -> None:
    """The per-layer cost table with totals, training-only costs and the convention."""
    t = p.totals
    title = (
        f"{p.model}: input {shape(p.input)}, batch {p.batch}"
        f"{', training graph' if p.training else ''}"
    )
    table = Table(title=title, title_justify="left", show_footer=True)
    cols = [
        ("layer", "total"),
        ("op", ""),
        ("output", ""),
        ("params", f"{t.params:,}"),
        ("MACs", si(t.macs)),
        ("FLOPs", si(t.flops)),
        ("act bytes", si(t.activation_bytes, "B")),
        ("FLOP/B", ""),
    ]
    for i, (name, foot) in enumerate(cols):
        table.add_column(name, footer=foot, justify="left" if i < 3 else "right")
    for r in rows:
        table.add_row(
            r.name + (" (training)" if r.training_only else ""),
            r.op,
            shape(r.output),
            f"{r.cost.params:,}",
            si(r.cost.macs),
            si(r.cost.flops),
            si(r.cost.activation_bytes, "B"),
            f"{r.intensity:.1f}",
        )
    out.print(table)
    out.print(
        f"params {t.params:,}  MACs {t.macs:,} ({t.macs / 1e9:.3f} G)  "
        f"FLOPs {t.flops:,}  weights {si(t.weight_bytes, 'B')}  "
        f"activations {si(t.activation_bytes, 'B')}"
    )
    tr = p.training_only
    if tr.params or tr.macs:
        out.print(f"training-only (not in totals): params {tr.params:,}  MACs {tr.macs:,}")
    out.print("convention: " + "; ".join(f"{k}: {v}" for k, v in CONVENTION.items()), style="dim")


def print_pass_reports(out: Console, pipeline: str, reports: Sequence[PassReport]) -> None:
    """What each pass of a pipeline changed, then the notes of the passes."""
    table = Table(title=f"passes ({pipeline})", title_justify="left")
    for col in ("pass", "removed", "rewritten", "nodes", "params", "MACs"):
        table.add_column(col, justify="left" if col == "pass" else "right")
    for r in reports:
        table.add_row(
            r.name,
            str(r.removed),
            str(r.rewritten),
            f"{r.nodes[0]} -> {r.nodes[1]}",
            f"{r.params[0]:,} -> {r.params[1]:,}",
            f"{si(r.macs[0])} -> {si(r.macs[1])}",
        )
    out.print(table)
    for r in reports:
        for note in r.notes:
            out.print(f"  {r.name}: {note}", style="dim")


def _union(table: dict[str, list[Row]]) -> tuple[list[Row], dict[tuple[str, str], int]]:
    """Rows in any ranking (by estimated time), and (metric, name) -> rank."""
    rank: dict[tuple[str, str], int] = {}
    rows: dict[str, Row] = {}
    for metric, ranked in table.items():
        for i, r in enumerate(ranked, 1):
            rank[metric, r.name] = i
            rows.setdefault(r.name, r)
    return sorted(rows.values(), key=lambda r: -r.time_s), rank


def _ranking_table(title: str, table: dict[str, list[Row]]) -> Table:
    rows, rank = _union(table)
    out = Table(title=title, title_justify="left")
    columns = ("name", "op", "output", "params", "MACs", "act mem", "est. time", "bound", "FLOP/B")
    for col in columns:
        out.add_column(col, justify="left" if col in ("name", "op", "output", "bound") else "right")

    def cell(metric: str, r: Row, text: str) -> str:
        i = rank.get((metric, r.name))
        return f"[bold]{text}[/bold] #{i}" if i else text

    for r in rows:
        out.add_row(
            r.name,
            r.op,
            shape(r.output),
            cell("params", r, f"{r.params:,}"),
            cell("macs", r, si(r.macs)),
            cell("activation_bytes", r, si(r.activation_bytes, "B")),
            cell("time_s", r, fmt_time(r.time_s)),
            r.bound,
            f"{r.intensity:.1f}",
        )
    return out


def _pair(v: tuple[Any, Any]) -> str:
    a, b = (f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return a if a == b else f"{a}x{b}"


def _advisor_table(a: Analysis) -> Table:
    table = Table(title="bottleneck advisor (advice only, nothing applied)", title_justify="left")
    for col in ("layer", "lesson", "layer params", "layer MACs", "model MACs", "rewrite"):
        table.add_column(
            col, justify="right" if "params" in col or "MACs" in col else "left", overflow="fold"
        )
    for s in a.suggestions:
        table.add_row(
            s.layer,
            s.lesson,
            f"{s.layer_before.params:,} -> {s.layer_after.params:,}",
            f"{si(s.layer_before.macs)} -> {si(s.layer_after.macs)} (x{s.mac_ratio:.2f})",
            f"{si(s.model_before.macs)} -> {si(s.model_after.macs)} "
            f"(x{s.model_after.macs / s.model_before.macs:.2f})",
            escape(s.snippet),
        )
    return table


def print_analysis(out: Console, a: Analysis) -> None:
    """Rich tables and summary lines for people (``graphcnn analyze`` without ``--json``)."""
    dev = a.device
    t = a.totals
    out.print(
        f"[bold]{escape(a.model)}[/bold]: input {shape(a.input)}, batch {a.batch}, "
        f"{a.nodes} nodes, pipeline {escape(a.pipeline)}, dtype {a.dtype}"
    )
    out.print(
        f"device {dev.name}: peak {dev.peak(a.dtype) / 1e12:.3g} TFLOP/s ({a.dtype}), "
        f"bandwidth {dev.mem_bandwidth / 1e9:.3g} GB/s, ridge {dev.ridge(a.dtype):.1f} FLOP/B"
        + (f"  [dim]{escape(dev.description)}[/dim]" if dev.description else "")
    )
    out.print(
        f"params {t.params:,}  MACs {si(t.macs)}  FLOPs {si(t.flops)}  "
        f"weights {si(t.weight_bytes, 'B')}  estimated time {fmt_time(t.time_s)} "
        f"(compute {fmt_time(t.compute_s)}, memory {fmt_time(t.memory_s)}; {t.bound}-bound)"
    )
    marks = ", ".join(METRIC_LABELS[m] for m in METRICS)
    out.print(_ranking_table(f"top {a.top} layers by {marks} (#rank)", a.top_layers))
    out.print(
        _ranking_table(f"top {a.top} blocks at depth {a.depth} by {marks} (#rank)", a.top_blocks)
    )
    if a.suggestions:
        out.print(_advisor_table(a))
        for s in a.suggestions:
            out.print(f"  {s.layer}: {escape(s.description)}", style="dim")
    else:
        out.print("bottleneck advisor: no k x k (k >= 3, groups 1) convolution to rewrite")
    if a.receptive_fields is not None:
        for name in dict.fromkeys((a.last_feature_map, a.output)):
            if name is None:
                continue
            rf = a.receptive_fields[name]
            gate = ""
            if rf.whole != (None, None):
                spans = [f"{w[0]}..{w[1]}" if w else "-" for w in rf.whole]
                gate = f"; through a gate every pixel also sees rows {spans[0]}, cols {spans[1]}"
            out.print(
                f"receptive field of {name}: {_pair(rf.size)} input pixels, jump "
                f"{_pair(rf.jump)}, centre of pixel 0 at {_pair(rf.start)}{gate}"
            )
    for label, m in (("inference", a.memory_inference), ("training", a.memory_training)):
        out.print(
            f"{label} activation memory (batch {m.batch}): peak {si(m.peak_bytes, 'B')} at "
            f"{m.peak_at} by liveness ({len(m.live_at_peak)} tensors alive) vs naive sum "
            f"{si(m.naive_bytes, 'B')} (x{m.peak_bytes / max(m.naive_bytes, 1):.2f}); "
            f"weights {si(m.weight_bytes, 'B')}"
        )
    for note in a.notes:
        out.print(f"note: {escape(note)}", style="dim")
    out.print(f"time model: {TIME_MODEL}", style="dim")


def bench_tables(result: BenchResult) -> list[RenderableType]:
    """The ``graphcnn bench`` table: one row per measured backend and batch (latency
    percentiles, throughput, speed-up, GFLOP/s, share of peak, error, top-1), then the skipped,
    failed and flagged backends with their reasons and notes on the method."""
    dtype = HALF_TYPES[result.half] if result.half else "float32"
    threads = (
        f"{result.threads} thread{'s' if result.threads > 1 else ''}"
        if result.threads
        else "default threads"
    )
    title = (
        f"{result.model}: input {'x'.join(map(str, result.input))}, {result.device} ({threads}), "
        f"{dtype}, pipeline {result.pipeline}"
    )
    table = Table(title=title, title_justify="left")
    cols = (
        "backend",
        "batch",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "img/s",
        "speed-up",
        "GFLOP/s",
        "% peak",
        "max error",
        "top-1",
    )
    for i, col in enumerate(cols):
        table.add_column(col, justify="left" if i == 0 else "right")
    for m in result.measurements:
        if m.latency is None:
            continue
        lat = m.latency
        acc = m.accuracy
        err: Text | str = "-"
        top1 = "-"
        if acc is not None:
            text = f"{acc.rel_error:.1e}" if math.isfinite(acc.rel_error) else "nan"
            err = Text(text + " FLAGGED", style="bold red") if m.flagged else Text(text)
            top1 = f"{100 * acc.top1_agreement:.0f}% of {acc.n}"
        name = m.backend + (" (eager fallback)" if m.status == "fallback" else "")
        table.add_row(
            Text(name + ("" if m.dtype in ("float32", "int8") else f" ({m.dtype})")),
            str(m.batch),
            fmt_ms(lat.p50),
            fmt_ms(lat.p90),
            fmt_ms(lat.p99),
            f"{m.throughput:,.1f}" if m.throughput else "-",
            f"{m.speedup:.2f}x" if m.speedup else "-",
            f"{m.gflops:,.1f}" if m.gflops else "-",
            f"{100 * m.peak_fraction:.1f}%" if m.peak_fraction else "-",
            err,
            top1,
        )
    out: list[RenderableType] = [table]
    for b in result.backends:
        if b.status in ("skipped", "failed", "fallback"):
            style = {"skipped": "yellow", "failed": "bold red", "fallback": "yellow"}[b.status]
            out.append(Text(f"{b.status} {b.name}: {b.reason}", style=style))
    for m in result.measurements:
        info = result.backend(m.backend)
        if m.status == "failed" and info is not None and info.status != "failed":
            out.append(Text(f"failed {m.backend} batch {m.batch}: {m.reason}", style="bold red"))
    for m in result.flagged:
        acc = m.accuracy
        assert acc is not None
        out.append(
            Text(
                f"FLAGGED {m.backend} batch {m.batch}: max |y - ref| / max |ref| = "
                f"{acc.rel_error:.3g} > tolerance {acc.tolerance:g} for {m.dtype}",
                style="bold red",
            )
        )
    peak = f"{result.peak_flops / 1e9:,.1f} GFLOP/s" if result.peak_flops else "unknown"
    env = result.environment
    notes = [
        f"reference: torch eager float32; error = max|y - ref| / max|ref| of the logits; "
        f"tolerances: {', '.join(f'{k} {v:g}' for k, v in TOLERANCES.items())}",
        f"FLOPs/sample {result.flops_per_sample:,} (graph as compiled); peak {peak} "
        f"({result.peak_source}); int8 rows are compared with the float32 peak too",
        f"timing: {result.warmup} warm-up calls, then >= {result.repeat} calls and "
        f">= {result.min_time:g} s per row; img/s = batch / p50; speed-up vs torch eager p50",
        f"load average before {env.get('loadavg_before')} after {env.get('loadavg_after')} "
        f"on {env.get('nproc')} CPUs: shared machines are noisy, compare rows of one run",
    ]
    if result.calibration and result.calibration != "not used":
        notes.insert(1, f"int8 calibration: {result.calibration}")
    out += [Text(n, style="dim") for n in notes]
    return out


def train_epoch_line(row: Mapping[str, float], epochs: int, best: bool) -> Text:
    """``graphcnn train``: one line per finished epoch."""
    text = (
        f"epoch {int(row['epoch'])}/{epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.2%}  val loss {row['val_loss']:.4f} "
        f"acc {row['val_accuracy']:.2%}  lr {row['lr']:.3g}  "
        f"{row['images_per_second']:,.0f} img/s  {fmt_time(row['seconds'])}"
    )
    return Text(text + ("  *best" if best else ""), style="bold" if best else "")


def train_summary(result: Mapping[str, Any]) -> list[RenderableType]:
    """``graphcnn train``: the run's outcome and where its files are."""
    table = Table(title=f"{result['model']}: training summary", title_justify="left")
    table.add_column("", justify="left")
    table.add_column("", justify="right")
    data = result["data"]
    rows = [
        ("best validation accuracy", f"{result['best_val_accuracy']:.2%}"),
        ("best epoch", str(result["best_epoch"])),
        (
            "epochs run",
            str(result["epochs_run"]) + (" (stopped early)" if result["stopped_early"] else ""),
        ),
        ("training speed", f"{result['images_per_second']:,.0f} images/s"),
        (
            "data",
            f"{data['source']}: {data['train_images']:,} train, "
            f"{data['val_images']:,} val, {data['classes']} classes",
        ),
        ("processes x device", f"{result['processes']} x {result['device']}"),
        ("initial weights", escape(str(result["transfer"]["source"]))),
    ]
    t = result["transfer"]
    if t["head_replaced"]:
        rows.append(("head replaced", ", ".join(t["head_replaced"])))
    if t["frozen_layers"]:
        rows.append(("frozen", f"{t['frozen_layers']} layers, {t['frozen_params']:,} params"))
    if result["out"]:
        rows.append(("written to", escape(str(result["out"]))))
    for k, v in rows:
        table.add_row(k, v)
    out: list[RenderableType] = [table]
    out += [Text(f"note: {n}", style="yellow") for n in result["notes"]]
    return out


def _param(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_search(out: Console, result: SearchResult, top: int) -> None:
    """``graphcnn search``: the best trials, the Pareto front, the counts."""
    counts = result.counts()
    maximize = result.direction == "maximize"
    done = [t for t in result.trials if t.state == "complete"]
    done.sort(key=lambda t: (-(t.value or 0.0) if maximize else (t.value or 0.0), t.number))
    front = set(result.pareto)
    others = [t for t in result.trials if t.state != "complete"]
    shown = done[:top] + others[: max(0, top - len(done))]
    names = list(dict.fromkeys(k for t in result.trials for k in t.params))
    title = (
        f"{result.model}: {counts['complete']} evaluated, {counts['rejected']} rejected by cost "
        f"before training, objective {result.objective} ({result.direction})"
    )
    table = Table(title=escape(title), title_justify="left")
    for col in ("#", *names, "params", "MACs"):
        table.add_column(escape(col), justify="left" if col in names else "right")
    latency = any(t.cost and "latency_s" in t.cost for t in result.trials)
    measured = any(t.cost and "measured_s" in t.cost for t in result.trials)
    law = result.compound is not None
    if latency:
        table.add_column("est. latency", justify="right")
    if measured:
        table.add_column("measured", justify="right")
    if law:
        table.add_column("law MACs", justify="right")
        table.add_column("law error", justify="right")
    table.add_column("objective", justify="right")
    table.add_column("state", justify="left")
    for t in shown:
        c = t.cost or {}
        row = [str(t.number), *(escape(_param(t.params.get(k, ""))) for k in names)]
        row += [f"{c['params']:,}" if c else "", si(c["macs"]) if c else ""]
        if latency:
            row.append(fmt_time(c["latency_s"]) if "latency_s" in c else "")
        if measured:
            row.append(fmt_time(c["measured_s"]) if "measured_s" in c else "")
        if law:
            row.append(si(t.extra["law_macs"]) if "law_macs" in t.extra else "")
            row.append(f"{t.extra['law_error']:+.1%}" if "law_error" in t.extra else "")
        row.append(f"{t.value:.6g}" if t.value is not None else "")
        state = t.state + (" *pareto" if t.number in front else "")
        if t.reason:
            state += f": {t.reason}"
        row.append(escape(state[:80]))
        table.add_row(*row)
    out.print(table)
    pareto = ", ".join(f"#{n}" for n in result.pareto) or "none"
    lines = [
        f"trials: {', '.join(f'{k} {v}' for k, v in counts.items() if v or k == 'total')}",
        f"best: #{result.best}" if result.best is not None else "best: none evaluated",
        f"Pareto front ({result.objective} vs MACs): {pareto}",
        f"study {result.study} in {result.storage}",
    ]
    if result.compound is not None:
        lines.append(
            f"compound: {result.compound.get('points', 0)} grid points, "
            f"{result.compound.get('off_constraint', 0)} off alpha*beta^2*gamma^2 = "
            f"{result.compound['target']:g} +- {result.compound['tolerance']:g} (never compiled); "
            f"base MACs {si(result.compound['base_macs'])}; law MACs = "
            "alpha*beta^2*gamma^2 x base; law error = law / exact - 1"
        )
    if result.png:
        lines.append(f"wrote {result.png}")
    for line in lines:
        out.print(Text(line))
