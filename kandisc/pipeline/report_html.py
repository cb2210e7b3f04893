"""``report.html``: report.md as one self-contained page (figures and formulas embedded, nothing fetched).

A cluster's file browser opens a single HTML file but not a folder of PNGs and a markdown file,
so the page carries everything: figures as base64 ``data:`` images, each LaTeX formula typeset by
:func:`kandisc.plots.mathtext.latex_svg` as an embedded SVG (its LaTeX as the alt text and
tooltip; the LaTeX itself where mathtext cannot read it), no scripts, no web fonts, no links out.
It renders exactly the markdown :mod:`kandisc.pipeline.report` writes (headings, paragraphs,
``-`` lists, pipe tables, fenced code, ``$$ … $$`` display and ``$…$`` inline math, `code`,
**bold**, images), so the two files never say different things.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}
_CSS = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.55rem; text-align: left; vertical-align: middle; }
th { background: #f3f3f3; }
code, pre { background: #f6f6f6; font-family: ui-monospace, monospace; font-size: 0.85rem; }
pre { padding: 0.6rem; overflow-x: auto; }
img.figure { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
img.math { vertical-align: middle; }
div.display { margin: 0.8rem 0; overflow-x: auto; }
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _math(latex: str, display: bool) -> str:
    from kandisc.plots.mathtext import latex_svg

    svg = latex_svg(latex, 14.0 if display else 10.0)
    if svg is None:
        return f"<code>{html.escape(latex)}</code>"
    alt = html.escape(latex, quote=True)
    return f'<img class="math" alt="{alt}" title="{alt}" src="{_data_uri(svg, _MIME[".svg"])}">'


def _inline(text: str) -> str:
    """Code spans stay literal; outside them ``$…$`` is math and ``**…**`` bold."""
    out = []
    for k, part in enumerate(text.split("`")):
        if k % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        pieces = part.split("$")
        for m, piece in enumerate(pieces):
            if m % 2 and m < len(pieces) - 1:
                out.append(_math(piece, display=False))
            else:
                escaped = html.escape(piece if m % 2 == 0 else "$" + piece)
                out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped))
    return "".join(out)


def _cells(line: str) -> list[str]:
    """A pipe-table row's cells; ``\\|`` is a literal bar inside a cell."""
    text = line.strip()[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", text)]


def _table(rows: list[str]) -> str:
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    parts = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(parts + ["</table>"])


def _image(alt: str, target: str, base: Path) -> str:
    path = base / target
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return f"<p>(figure {html.escape(target)} not found)</p>"
    src = _data_uri(path.read_bytes(), mime)
    return f'<p><img class="figure" alt="{html.escape(alt, quote=True)}" src="{src}"></p>'


def _blocks(lines: list[str], base: Path) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1 : end])) + "</code></pre>")
            i = end + 1
            continue
        if line.startswith("|"):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))
            out.append(_table(lines[i:end]))
            i = end
            continue
        if line.startswith("- "):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("- ")), len(lines))
            out.append("<ul>" + "".join(f"<li>{_inline(item[2:])}</li>" for item in lines[i:end]) + "</ul>")
            i = end
            continue
        heading = re.match(r"(#{1,6}) (.*)", line)
        image = _IMAGE.fullmatch(line.strip())
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.startswith("$$") and line.rstrip().endswith("$$") and len(line.strip()) > 4:
            out.append(f'<div class="display">{_math(line.strip()[2:-2].strip(), display=True)}</div>')
        elif image:
            out.append(_image(image.group(1), image.group(2), base))
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return out


def render_html(markdown: str, base: Path, title: str) -> str:
    """report.md's text as a standalone HTML page; images are read from paths relative to ``base``."""
    body = "\n".join(_blocks(markdown.splitlines(), Path(base)))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
