"""What a person reads after a fit: columns whose names are not identifiers (symbols, LaTeX with the
real names), predict on a CSV with other columns, attribution.json with the pruned inputs, and
report.md / report.html. One tiny fit (a [4, 1] network, seconds) serves every test here."""

import ast
import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kandisc.cli import app
from kandisc.io.names import column_symbols
from kandisc.knowledge.formula import parse_formula
from kandisc.knowledge.latex import formula_latex

runner = CliRunner()
COLUMNS = ["speed (m/s)", "x pos", "θ", "noise"]


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    x = np.random.default_rng(0).uniform(-1, 1, (200, 4))
    frame = pd.DataFrame(x, columns=COLUMNS)
    frame["f"] = 2 * x[:, 0] + x[:, 1] ** 2 + np.sin(3 * x[:, 2])
    data = folder / "odd.csv"
    frame.to_csv(data, index=False)
    config = (
        "model: {width: [4, 1]}\npipeline:\n  - fit: {steps: 15, lamb: 0.001}\n  - prune: {}\n"
        "  - fit: {steps: 10}\n  - symbolic: {rounds: 1, retrain_steps: 5}\n"
    )
    (folder / "run.yaml").write_text(config)
    result = runner.invoke(app, ["fit", str(data), "--config", str(folder / "run.yaml"), "--out", str(folder / "run")])
    assert result.exit_code == 0, result.stderr
    return folder / "run", data, frame, result.stdout


def test_column_symbols_keep_identifiers_and_sanitise_the_rest():
    got = column_symbols(["speed (m/s)", "x pos", "x_pos", "θ", "µ", "2nd", "class", "__x", "a-b"])
    assert got == {
        "speed (m/s)": "speed_m_s",
        "x pos": "x_pos_2",  # x_pos is another column's own name
        "x_pos": "x_pos",
        "θ": "θ",  # an identifier Python reads back unchanged
        "µ": "μ",  # the micro sign: Python would read it as the Greek letter, so that is its symbol
        "2nd": "c_2nd",
        "class": "class_",
        "__x": "x",
        "a-b": "a_b",
    }


def test_latex_uses_the_column_names():
    labels = {"speed_m_s": "speed (m/s)", "x_pos": "x pos"}
    latex = formula_latex("2*speed_m_s + x_pos**2 + sin(3*θ1)", ["speed_m_s", "x_pos", "θ1"], labels)
    assert latex == r"2 \text{speed (m/s)} + \text{x pos}^{2} + \sin{\left(3 \theta_{1} \right)}"
    assert formula_latex("a_b*100", ["a_b"], {"a_b": "50% & more_{x}"}) == r"100 \text{50\% \& more\_\{x\}}"


def test_a_fit_on_odd_column_names_gives_parseable_formulas_and_names_them_once(odd_run):
    out = odd_run[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["symbols"] == {"speed_m_s": "speed (m/s)", "x_pos": "x pos"}
    assert summary["inputs"] == ["speed_m_s", "x_pos", "θ", "noise"]
    formula = summary["formulas"]["f"]
    expr = parse_formula(formula, summary["inputs"])  # the printed formula reads back
    assert {s.name for s in expr.free_symbols} == {"speed_m_s", "x_pos", "θ"}
    tex = (out / "formulas" / "f.tex").read_text()
    assert r"\text{speed (m/s)}" in tex and r"\text{x pos}" in tex and r"\theta" in tex and "_m_s" not in tex
    rows = pd.read_csv(out / "formulas.csv")
    assert all("speed_m_s" not in latex for latex in rows["latex"])


def test_the_terminal_prints_the_mapping_once(odd_run):
    stdout = odd_run[3]
    assert stdout.count("symbols: speed_m_s = 'speed (m/s)', x_pos = 'x pos'") == 1
    assert stdout.index("symbols:") < stdout.index("2*speed_m_s")  # before the formulas that use them


def test_attribution_lists_every_input_and_the_pruned_ones_with_their_score(odd_run):
    out = odd_run[0]
    inputs = json.loads((out / "attribution.json").read_text())["inputs"]
    assert sorted(row["name"] for row in inputs) == sorted(["speed_m_s", "x_pos", "θ", "noise"])
    (noise,) = [row for row in inputs if row["name"] == "noise"]
    assert noise["pruned"] is True and 0 <= noise["score"] <= 0.01  # below prune's input_threshold
    kept = [row for row in inputs if not row["pruned"]]
    assert len(kept) == 3 and min(r["score"] for r in kept) > 0.05
    assert [row["rank"] for row in inputs] == [1, 2, 3, 4]


def test_predict_passes_other_columns_through_and_says_which_it_used(odd_run, tmp_path):
    out, _, frame, _ = odd_run
    new = frame.head(12).copy()
    new.insert(0, "sample id", [f"{k:03d}" for k in range(12)])  # zero-padded ids must stay text
    new["site"] = "north"
    new = new[["site", "θ", "sample id", "f", "x pos", "speed (m/s)", "noise"]]
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    result = runner.invoke(app, ["predict", str(out / "model.pt"), str(path)])  # no -o: CSV on stdout
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(io.StringIO(result.stdout), dtype={"sample id": str})
    assert list(pred.columns) == [*new.columns, "f_pred"]
    assert list(pred["sample id"]) == list(new["sample id"]) and set(pred["site"]) == {"north"}
    assert np.allclose(pred["f_pred"], new["f"], atol=0.05)
    assert "columns used: speed (m/s), x pos, θ; passed through unchanged: site, sample id, f, noise" in result.stderr
    assert not list(tmp_path.glob("*.predictions.csv"))  # nothing written beside the data
    target = tmp_path / "out.csv"
    result = runner.invoke(app, ["predict", str(out / "model.pt"), str(path), "-o", str(target)])
    assert result.exit_code == 0 and "columns used: speed (m/s), x pos, θ" in result.stdout
    assert pd.read_csv(target, dtype={"sample id": str}).equals(pred)


def test_explain_reads_the_original_column_names(odd_run, tmp_path):
    out, data = odd_run[:2]
    result = runner.invoke(
        app, ["explain", str(out / "model.pt"), "--data", str(data), "--out", str(tmp_path / "ex"), "--no-figures"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("symbols: speed_m_s = 'speed (m/s)', x_pos = 'x pos'") == 1
    assert re.search(r"^f = .*speed_m_s", result.stdout, re.M)  # the formula, in symbols
    report = json.loads((tmp_path / "ex" / "explain.json").read_text())
    assert report["symbols"] == {"speed_m_s": "speed (m/s)", "x_pos": "x pos"}


def test_report_md_has_math_data_edges_config_and_html_embeds_everything(odd_run):
    out = odd_run[0]
    report = (out / "report.md").read_text()
    assert re.search(r"^\$\$ f = .*\\text\{speed \(m/s\)\}.*\$\$$", report, re.M)
    assert "| speed_m_s | `speed (m/s)` |" in report  # the symbol table
    assert "200 rows; 160 for training, 40 held out for testing (test_fraction 0.2, seed 0)" in report
    assert re.search(r"^\| x_pos \(`x pos`\) \| input \| -0\.9\d* \| 0\.9\d* \| ", report, re.M)
    edges = re.findall(r"^\| \(0, (\d), 0\) \| (\S+) \| (\S+) \| `([^`]+)` \| (\d\.\d{6}) \|$", report, re.M)
    assert {e[1] for e in edges} == {"speed_m_s", "x_pos", "θ"} and all(float(e[4]) > 0.9 for e in edges)
    assert all(e[1] in e[3] for e in edges)  # each fitted form is written in its input's symbol
    assert next(e for e in edges if e[1] == "θ")[2] == "sin"
    assert re.search(r"^\| – \| noise \| \S+ when pruned \|$", report, re.M)
    assert "## Configuration" in report and "Seed 0; the resolved config" in report and "width: [4, 1]" in report
    html = (out / "report.html").read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert "<script" not in html and "<link" not in html
    figures = re.findall(r'class="figure" alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert [alt for alt, _ in figures] == json.loads((out / "summary.json").read_text())["figures"]
    assert all(base64.b64decode(data)[:4] == b"\x89PNG" for _, data in figures)
    assert html.count('class="math"') >= 2  # the formula typeset (display and candidates)
    assert "<h2>Symbolic edges</h2>" in html and "<td>θ</td>" in html


def test_readme_python_writes_nothing_into_the_repository():
    """Every path the README's Python snippets write is under runs/, which git ignores."""
    root = Path(__file__).resolve().parent.parent
    written = []
    for block in re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S):
        for node in ast.walk(ast.parse(block)):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name not in ("save", "fit_run", "predict", "to_csv", "savefig"):
                continue
            args = node.args[2:] if name in ("fit_run", "predict") else node.args  # after model/data, config
            args = [*args, *(k.value for k in node.keywords if k.arg in ("out", "out_path", "path", "run_dir"))]
            written += [a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    assert written and all(path.startswith("runs/") for path in written), written
    assert "runs/" in (root / ".gitignore").read_text().split()


def test_report_html_renders_the_markdown_it_is_given(tmp_path):
    from kandisc.pipeline.report_html import render_html

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    md = "\n".join(
        [
            "# run <script>alert(1)</script>",
            "",
            "| input | formula | |",
            "|---|---|---|",
            r"| x | $\left\|{x}\right\|$ `abs(x)` | **best** |",
            "",
            "$$ f = \\frac{1}{x} $$",
            "",
            "```yaml",
            "a: <b>",
            "```",
            "",
            "- one `1`",
            "![figures/a.png](figures/a.png)",
            "![figures/gone.png](figures/gone.png)",
        ]
    )
    html = render_html(md, tmp_path, "t")
    assert "<h1>run &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in html  # names are text, never markup
    row = re.search(r"<tr><td>x</td><td>(.*?)</td><td>(.*?)</td></tr>", html)
    assert row and 'class="math"' in row.group(1) and "<code>abs(x)</code>" in row.group(1)
    assert row.group(2) == "<strong>best</strong>"
    assert re.search(r'<div class="display"><img class="math" alt="f = \\frac\{1\}\{x\}"', html)
    assert "<pre><code>a: &lt;b&gt;</code></pre>" in html and "<li>one <code>1</code></li>" in html
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    assert f'src="data:image/png;base64,{png}"' in html and "(figure figures/gone.png not found)" in html


def test_edge_forms_read_like_formulas():
    from kandisc.symbolic.edge_form import edge_text, raw_params

    assert edge_text("sin", [np.pi, 1e-12, 1.0, 0.0], "x") == "sin(π*x)"
    assert edge_text("x^2", [1.0, 0.2, 0.5, -0.3], "θ") == "0.5*(θ + 0.2)^2 - 0.3"
    assert edge_text("x", [1.0, 0.0, 2.0, 0.0], "pipe") == "2*pipe"  # 'pi' inside a name stays
    # sin(2u) on u = (x - 1) / 2, the standardised input, is sin(x - 1) on the raw one
    assert edge_text("sin", raw_params([2.0, 0.0, 1.0, 0.0], 1.0, 2.0), "x") == "sin(x - 1)"
