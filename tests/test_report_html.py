"""HTML pieces of the report: escaped text, numbers, tables, images as data URIs."""

import base64

import numpy as np
import pytest

from sinter4d import InputError
from sinter4d.report import html as hp


def test_text_is_escaped():
    assert hp.not_available("<x>") == '<p class="na">not available: &lt;x&gt;</p>'
    assert hp.paragraph("a & b") == "<p>a &amp; b</p>"
    assert hp.heading("<h>") == "<h3>&lt;h&gt;</h3>"


def test_cells_round_to_significant_figures():
    assert hp.cell(float("nan")) == "–" and hp.cell(None) == "–"
    assert hp.cell(0.0123456) == "0.01235" and hp.cell(3050.2) == "3050" and hp.cell(12345.6) == "12346"
    assert hp.cell(np.int64(7)) == "7" and hp.cell(True) == "yes" and hp.cell(0.0) == "0"


def test_table_aligns_numbers_and_checks_groups():
    html = hp.table(["a", "b"], [["x", 1.5]], row_classes=["summary"], header_groups=[("g", 2)])
    assert '<tr class="summary"><td>x</td><td class="num">1.5</td></tr>' in html
    assert '<th colspan="2">g</th>' in html
    with pytest.raises(InputError, match="header_groups"):
        hp.table(["a", "b"], [], header_groups=[("g", 3)])


def test_image_is_a_data_uri():
    data = b"\x89PNG-bytes"
    html = hp.image(data, alt="a", caption="c <d>", width_px=100)
    assert f'src="data:image/png;base64,{base64.b64encode(data).decode()}"' in html
    assert 'style="width:100px"' in html and "<figcaption>c &lt;d&gt;</figcaption>" in html


def test_page_has_a_section_and_a_link_per_part():
    text = hp.page("T <1>", [("a", "A", "<p>x</p>"), ("b", "B", "")], subtitle="s")
    assert text.startswith("<!DOCTYPE html>") and "<title>T &lt;1&gt;</title>" in text
    assert '<a href="#a">A</a><a href="#b">B</a>' in text
    assert '<section id="a">\n<h2>A</h2>\n<p>x</p>\n</section>' in text
