"""graphcnn.draw.charts and ``graphcnn analyze --plot``: the roofline points are the numbers of
``analyze --json``, the bars are the per-block costs of ``profile --depth``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import graphcnn
from graphcnn.draw.charts import chart_data, plot

pytest.importorskip("matplotlib", reason="the charts are drawn with matplotlib")


def test_roofline_points_match_analyze_json(tmp_path: Path) -> None:
    from graphcnn.cli import main

    out = tmp_path / "roof.png"
    args = ["analyze", "resnet50", "--device", "h100-sxm", "--dtype", "float16", "--batch", "8"]
    result = CliRunner().invoke(main, [*args, "--top", "50", "--json", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one JSON object on stdout, "wrote" on stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    c = chart_data(graphcnn.compile("resnet50", batch=8), "h100-sxm", "float16", 1)
    points = {p.name: p for p in c.points}
    rows = [r for r in data["top_layers"]["time_s"] if r["flops"] > 0]
    assert len(rows) == 50
    for row in rows:
        p = points[row["name"]]
        assert round(p.intensity, 3) == row["intensity"]
        assert math.isclose(p.rate, row["flops"] / row["time_s"], rel_tol=1e-12)
        assert p.bound == row["bound"]
        # the roofline: a layer attains min(peak, bandwidth x intensity)
        assert math.isclose(p.rate, min(c.peak, c.bandwidth * p.intensity), rel_tol=1e-9)
    assert math.isclose(c.ridge, data["ridge_flop_per_byte"])


def test_bars_are_the_profile_at_depth(tmp_path: Path) -> None:
    g = graphcnn.compile("googlenet")
    c = chart_data(g, "h100-sxm", depth=1)
    rows = [r for r in graphcnn.profile(g).at_depth(1) if not r.training_only]
    assert [(b.name, b.macs, b.params) for b in c.bars] == [
        (r.name, r.cost.macs, r.cost.params) for r in rows
    ]
    assert {p.block for p in c.points} >= {"inception3a", "conv1", "fc"}
    assert not any(p.block.startswith("aux") for p in c.points)  # inference layers only
    out = plot(c, tmp_path / "bars.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_formats_and_bad_names(tmp_path: Path) -> None:
    from graphcnn.cli import main

    runner = CliRunner()
    args = ["analyze", "lenet5", "--device", "h100-sxm", "--plot"]
    svg = tmp_path / "roof.svg"
    result = runner.invoke(main, [*args, str(svg)])
    assert result.exit_code == 0, result.output
    assert svg.read_text().lstrip().startswith("<?xml") and f"wrote {svg}" in result.output
    bad = tmp_path / "roof.txt"
    result = runner.invoke(main, [*args, str(bad)])
    assert result.exit_code == 2 and "name it .png or .svg or .pdf" in result.output
    assert not bad.exists()
