"""HTML pieces of the run report: plain strings, everything escaped, nothing external.

The page is one self-contained file: inline CSS, images as ``data:image/png;base64``
URIs, no scripts and no links out. Every function returns a string of HTML;
text goes through :func:`html.escape` here, so callers pass plain text.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from string import Template

import numpy as np

from ..errors import InputError

__all__ = [
    "cell",
    "definition_table",
    "details",
    "image",
    "not_available",
    "page",
    "paragraph",
    "preformatted",
    "section",
    "table",
]

CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d232a;
       margin: 0; background: #f4f5f7; }
main { max-width: 1280px; margin: 0 auto; padding: 12px 28px 48px; background: #fff; }
header h1 { margin: 16px 0 2px; font-size: 26px; }
header p.sub { margin: 0 0 8px; color: #555; }
nav { font-size: 13px; margin: 6px 0 14px; padding: 6px 10px; background: #f0f2f5; border-radius: 4px; }
nav a { margin-right: 14px; color: #2a5db0; text-decoration: none; }
section { border-top: 2px solid #dde1e6; margin-top: 22px; padding-top: 4px; }
h2 { font-size: 20px; margin: 10px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p.na { color: #8a4b00; background: #fff5e6; border-left: 4px solid #e69500; padding: 4px 10px; margin: 6px 0; }
p.caption, figcaption { color: #555; font-size: 12.5px; margin: 2px 0 10px; }
figure { margin: 8px 0 14px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #d7dbe0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
tr.group th { text-align: center; background: #e3e8ee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.summary td { font-weight: 600; background: #f7f8fa; border-top: 2px solid #b8bec6; }
tr.bad td { background: #fde8e8; }
span.ok { color: #1e7b34; font-weight: 600; }
span.bad { color: #b42318; font-weight: 600; }
span.warn { color: #8a4b00; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 8px 10px; font-size: 12px; overflow-x: auto;
      white-space: pre; }
details { margin: 6px 0 12px; }
summary { cursor: pointer; color: #2a5db0; }
.cols { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
"""

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
<header>
<h1>$title</h1>
<p class="sub">$subtitle</p>
</header>
<nav>$nav</nav>
$sections
</main>
</body>
</html>
""")


def esc(text) -> str:
    """``text`` as escaped HTML text (``str()`` of anything)."""
    return html.escape(str(text), quote=True)


def cell(value, *, digits: int = 4) -> str:
    """Plain-text rendering of a table value: floats to ``digits`` significant figures, NaN/None as '–'.

    Floats of ``10**digits`` or more (and below 1e9) are shown whole, without exponent.
    """
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "–"
        if v == 0:
            return "0"
        if 10**digits <= abs(v) < 1e9:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def table(
    header: Sequence[str],
    rows: Iterable[Sequence],
    *,
    row_classes: Sequence[str] | None = None,
    digits: int = 4,
    raw_html_columns: Sequence[int] = (),
    header_groups: Sequence[tuple[str, int]] | None = None,
) -> str:
    """An HTML table; numbers are right-aligned and rounded (see :func:`cell`).

    Parameters
    ----------
    header : sequence of str
    rows : iterable of sequences
        One value per column.
    row_classes : sequence of str, optional
        A CSS class per row ('' for none), e.g. ``'summary'`` or ``'bad'``.
    digits : int, optional
        Significant figures of floats.
    raw_html_columns : sequence of int, optional
        Columns whose values are already HTML (not escaped).
    header_groups : sequence of (str, int), optional
        A header row above ``header``: labels spanning that many columns each
        (the spans add up to the number of columns).
    """
    rows = [list(r) for r in rows]
    classes = list(row_classes) if row_classes is not None else [""] * len(rows)
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    if header_groups:
        if sum(n for _, n in header_groups) != len(header):
            raise InputError(f"header_groups span {sum(n for _, n in header_groups)} columns, header has {len(header)}")
        top = "".join(f'<th colspan="{int(n)}">{esc(g)}</th>' if n > 1 else f"<th>{esc(g)}</th>"
                      for g, n in header_groups)
        head = f'<tr class="group">{top}</tr>' + head
    body = []
    for row, cls in zip(rows, classes, strict=True):
        cells = []
        for j, value in enumerate(row):
            if j in raw_html_columns:
                cells.append(f"<td>{value}</td>")
            elif _is_number(value):
                cells.append(f'<td class="num">{esc(cell(value, digits=digits))}</td>')
            else:
                cells.append(f"<td>{esc(cell(value, digits=digits))}</td>")
        attr = f' class="{esc(cls)}"' if cls else ""
        body.append(f"<tr{attr}>{''.join(cells)}</tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def definition_table(items: Mapping[str, object], *, digits: int = 4) -> str:
    """A two-column table of ``name: value`` pairs (values as left-aligned text, see :func:`cell`)."""
    return table(["", ""], [[k, cell(v, digits=digits)] for k, v in items.items()]).replace(
        "<thead><tr><th></th><th></th></tr></thead>\n", ""
    )


def image(png: bytes, *, alt: str, caption: str | None = None, width_px: int | None = None) -> str:
    """A ``<figure>`` holding ``png`` as a base64 data URI, with an optional caption.

    Parameters
    ----------
    png : bytes
        A PNG file.
    alt : str
        Alternative text.
    caption : str, optional
        Plain text below the image.
    width_px : int, optional
        Display width (CSS pixels); the image never overflows the page.
    """
    data = base64.b64encode(png).decode("ascii")
    style = f' style="width:{int(width_px)}px"' if width_px else ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}"{style}>{cap}</figure>'


def not_available(why: str) -> str:
    """The one-line notice of a missing part: ``not available: <why>``."""
    return f'<p class="na">not available: {esc(why)}</p>'


def paragraph(text: str, *, css_class: str | None = None) -> str:
    """A ``<p>`` of plain text."""
    cls = f' class="{esc(css_class)}"' if css_class else ""
    return f"<p{cls}>{esc(text)}</p>"


def preformatted(text: str) -> str:
    """A ``<pre>`` block of plain text."""
    return f"<pre>{esc(text)}</pre>"


def details(summary: str, body_html: str) -> str:
    """A collapsed ``<details>`` block with plain-text ``summary`` and HTML ``body_html``."""
    return f"<details><summary>{esc(summary)}</summary>{body_html}</details>"


def heading(text: str, *, level: int = 3) -> str:
    """An ``<hN>`` of plain text."""
    return f"<h{level}>{esc(text)}</h{level}>"


def section(anchor: str, title: str, body_html: str) -> str:
    """A ``<section>`` with an ``<h2>`` heading and the anchor ``anchor``."""
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body_html}\n</section>'


def page(title: str, sections: Sequence[tuple[str, str, str]], *, subtitle: str = "") -> str:
    """The whole document.

    Parameters
    ----------
    title : str
        Page title and top heading.
    sections : sequence of (anchor, title, body_html)
        In order; each becomes a :func:`section` and an entry of the navigation line.
    subtitle : str, optional
        Plain text under the title.

    Returns
    -------
    str
        An HTML5 document with inline CSS and no external reference.
    """
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "\n".join(section(a, t, b) for a, t, b in sections)
    return _PAGE.substitute(title=esc(title), subtitle=esc(subtitle), css=CSS, nav=nav, sections=body)
