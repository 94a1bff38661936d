"""graphcnn.draw and ``graphcnn draw``: the SVG is valid XML with one box per node or scope and a
legend, colours follow the cost's order, training-only parts are dashed, tooltips carry the spec
location, and a missing optional library is one clear error naming its install command."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import graphcnn
from graphcnn.draw import DrawError, colors, draw
from graphcnn.ir import Graph

pytest.importorskip("grandalf", reason="graphcnn.draw lays graphs out with grandalf")

SVG = "{http://www.w3.org/2000/svg}"


def invoke(*args: str, code: int = 0) -> Result:
    from graphcnn.cli import main

    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def node_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    return graphcnn.compile("resnet18")


def test_full_depth_svg_has_one_box_per_node_and_every_edge(resnet18: Graph) -> None:
    pic = draw(resnet18)
    root = parse(pic.svg)
    names = [g.get("data-name") for g in node_groups(root)]
    assert names == [n.name for n in resnet18]
    edges = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert len(edges) == sum(len(n.inputs) for n in resnet18)
    pairs = {(p.get("data-from"), p.get("data-to")) for p in edges}
    assert ("layer1.0.relu", "layer1.0.conv2") in pairs
    legend = [g for g in root.iter(f"{SVG}g") if g.get("class") == "legend"]
    assert len(legend) == 1
    ticks = [t for t in legend[0].iter(f"{SVG}text") if t.get("class") == "tick"]
    assert len(ticks) >= 2 and "MACs" in "".join(legend[0].itertext())


def test_boxes_are_laid_out_top_to_bottom_without_overlap(resnet18: Graph) -> None:
    lay = draw(resnet18).layout
    for src, dst in ((e[0], e[1]) for e in lay.edges):
        assert lay.boxes[src].y < lay.boxes[dst].y, (src, dst)
    boxes = list(lay.boxes.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart_x = abs(a.x - b.x) >= (a.w + b.w) / 2
            apart_y = abs(a.y - b.y) >= (a.h + b.h) / 2
            assert apart_x or apart_y


def test_depth_one_is_one_box_per_stage() -> None:
    g = graphcnn.compile("resnet152")
    root = parse(draw(g, depth=1).svg)
    names = [n.get("data-name") for n in node_groups(root)]
    expected = ["input"] + [r.name for r in graphcnn.profile(g).at_depth(1)]
    assert names == expected
    assert "layer3" in names and len(names) == 12
    boxes = {b.name: b for b in draw(g, depth=1).diagram.boxes}
    rows = {r.name: r for r in graphcnn.profile(g).at_depth(1)}
    assert boxes["layer3"].layers > 300
    for name in ("conv1", "layer3", "fc"):
        assert boxes[name].macs == rows[name].cost.macs
        assert boxes[name].params == rows[name].cost.params


def test_googlenet_depth_two_shows_branches_and_dashes_aux_heads() -> None:
    g = graphcnn.compile("googlenet")
    pic = draw(g, depth=2)
    root = parse(pic.svg)
    groups = {n.get("data-name"): n for n in node_groups(root)}
    for i in range(1, 5):
        assert f"inception4a.branch{i}" in groups
    edges = {(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path")}
    assert ("maxpool3", "inception4a.branch3") in edges
    for name, group in groups.items():
        rect = group.find(f"{SVG}rect")
        assert rect is not None
        dashed = rect.get("stroke-dasharray") is not None
        assert dashed == name.startswith(("aux1", "aux2")), name


def test_tooltips_carry_the_spec_location_and_costs(resnet18: Graph) -> None:
    root = parse(draw(resnet18).svg)
    conv = next(n for n in node_groups(root) if n.get("data-name") == "layer1.0.conv1")
    title = conv.find(f"{SVG}title")
    assert title is not None and title.text is not None
    loc = resnet18["layer1.0.conv1"].loc
    assert loc is not None and f"spec: {loc}" in title.text
    assert "MACs: 115,605,504" in title.text


@pytest.mark.parametrize("color", ["macs", "params", "memory", "time"])
def test_colours_follow_the_cost_order(resnet18: Graph, color: str) -> None:
    root = parse(draw(resnet18, depth=2, color=color, device="h100-sxm").svg)
    rows = [(float(n.get("data-value", "")), n.get("data-fill", "")) for n in node_groups(root)]
    positive = sorted((v, f) for v, f in rows if v > 0)
    assert len(positive) >= 5
    lum = [colors.luminance(f) for _, f in positive]
    for (v1, _), (v2, _), l1, l2 in zip(positive, positive[1:], lum, lum[1:], strict=False):
        assert l2 <= l1, (v1, v2)  # more is never lighter
        if v2 > 1.5 * v1:
            assert l2 < l1, (v1, v2)  # and visibly more is darker (8-bit colours round)
    assert positive[0][1] == colors.PALETTE[0] and positive[-1][1] == colors.PALETTE[-1]
    assert all(f == colors.ZERO for v, f in rows if v == 0)


def test_bound_and_time_colours_use_the_roofline(resnet18: Graph) -> None:
    pic = draw(resnet18, color="bound", device="h100-sxm", dtype="float16")
    root = parse(pic.svg)
    fills = {n.get("data-name"): n.get("data-fill") for n in node_groups(root)}
    bounds = {b.name: b.bound for b in pic.diagram.boxes}
    from graphcnn.analysis import roofline

    times = roofline.analyze(resnet18, "h100-sxm", "float16")
    for t in times:
        assert bounds[t.name] == (t.bound if t.time_s > 0 else None), t.name
    assert {"compute", "memory"} <= set(bounds.values())  # both colours in use
    assert bounds["flatten"] is None
    for name, bound in bounds.items():
        assert fills[name] == colors.BOUND_COLORS[bound]
    timed = {
        b.name: b.time_s for b in draw(resnet18, color="time", device="h100-sxm").diagram.boxes
    }
    for t in roofline.analyze(resnet18, "h100-sxm"):
        assert timed[t.name] == t.time_s


def test_png_is_a_png(resnet18: Graph, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "r18.png"
    draw(resnet18, out, depth=1)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_grandalf_is_one_clear_error(
    resnet18: Graph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "grandalf", None)
    with pytest.raises(DrawError) as err:
        draw(resnet18)
    assert "pip install grandalf" in err.value.format()
    out = tmp_path / "x.svg"
    result = invoke("draw", "resnet18", "-o", str(out), code=2)
    assert "pip install grandalf" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_missing_matplotlib_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out = tmp_path / "x.svg"
    result = invoke("draw", "resnet18", "-o", str(out), "--png", code=2)
    assert "pip install matplotlib" in result.output and not out.exists()
    result = invoke(
        "analyze", "resnet18", "--device", "h100-sxm", "--plot", str(tmp_path / "r.png"), code=2
    )
    assert "pip install matplotlib" in result.output
    assert not (tmp_path / "r.png").exists()


def test_cli_draw_writes_svg_and_png_and_prints_one_json_object(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "g.svg"
    result = invoke("draw", "googlenet", "-o", str(out), "--depth", "1", "--png", "--json")
    data: dict[str, Any] = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert data["boxes"] == len(node_groups(parse(out.read_text())))
    assert data["files"] == [str(out), str(tmp_path / "g.png")]
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_draw_bad_input_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "g.pdf"
    result = invoke("draw", "resnet18", "-o", str(out), code=2)
    assert "name it .svg or .png" in result.output and not out.exists()
    invoke("draw", "resnet18", "-o", str(tmp_path / "a.svg"), "--depth", "0", code=2)
    invoke("draw", "resnet18", "-o", str(tmp_path / "a.svg"), "--color", "flops", code=2)
    bad = invoke(
        "draw",
        "resnet18",
        "-o",
        str(tmp_path / "a.svg"),
        "--color",
        "time",
        "--device",
        "tpu",
        code=2,
    )
    assert "valid devices" in bad.output
    assert not list(tmp_path.iterdir())


def test_pipeline_changes_what_is_drawn(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    invoke("draw", "googlenet", "-o", str(out), "--pipeline", "inference")
    names = [n.get("data-name") for n in node_groups(parse(out.read_text()))]
    assert not any(n is not None and n.startswith("aux") for n in names)
    assert not any(n is not None and n.endswith(".bn") for n in names)  # folded into the convs


def test_unwritable_output_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = invoke("draw", "lenet5", "-o", str(blocker / "net.svg"), code=2)
    assert "cannot write" in result.output and "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("model", ["densenet264", "efficientnet_b7"])
def test_largest_zoo_models_draw_at_full_depth(model: str) -> None:
    g = graphcnn.compile(model)
    pic = draw(g)
    assert len(node_groups(parse(pic.svg))) == len(g)
    for src, dst, _ in pic.layout.edges:
        assert pic.layout.boxes[src].y < pic.layout.boxes[dst].y


def test_drawing_never_imports_torch(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys, graphcnn\n"
        "from graphcnn.draw import draw\n"
        "from graphcnn.draw.charts import chart_data, plot\n"
        "g = graphcnn.compile('googlenet')\n"
        f"draw(g, {str(tmp_path / 'g.svg')!r}, depth=2, color='bound', device='h100-sxm')\n"
        f"plot(chart_data(g, 'h100-sxm'), {str(tmp_path / 'c.png')!r})\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_legend_ticks_keep_both_ends_and_do_not_crowd() -> None:
    scale = colors.LogScale(256.0, 20.87e6)
    ticks = scale.ticks()
    assert ticks[0] == 256.0 and ticks[-1] == 20.87e6 and ticks == sorted(ticks)
    pos = [scale.position(v) for v in ticks]
    assert all(b - a >= 0.3 for a, b in zip(pos, pos[1:], strict=False))
    assert colors.LogScale(5.0, 5.0).ticks() == [5.0]
    assert colors.LogScale.of([0.0, 0.0]) is None
