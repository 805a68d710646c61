"""A run's report card as files a learner keeps (lesson 9): Markdown and one self-contained HTML page, for one run
or two side by side, drawn from `engine.cost.report_tables`' tables and charts.

The Markdown carries its chart as a `data:` image; the HTML is self-contained (inline CSS and SVG, no script, no
link, no font to fetch), so both open offline. Everything from the run is escaped: samples are model output and
labels are learner text. In HTML every string goes through `html.escape`; in Markdown, text cells are
backslash-escaped and samples sit in fenced code blocks whose fence is longer than any run of backticks inside
them, so a sample can neither close its block nor inject markup.
"""

from __future__ import annotations

import html
import re
from typing import Any

from engine.cost.report import RunReport
from engine.cost.report_tables import Table, card_tables, compare_chart, compare_tables, loss_chart
from engine.cost.svg_chart import svg_data_uri
from engine.number_format import count

# ---------------------------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~&$])")  # what can format, link, open a tag or end a cell mid-line


def md_text(text: str) -> str:
    """Text shown literally in Markdown, also inside a table cell: punctuation that could format, link, open a
    tag or end a cell is backslash-escaped (a `#`, `+` or `!` only matters at a line's start or before `[`, which is
    escaped, so numbers like "8.8e+08 (880 MFLOP)" stay as they are), line breaks become spaces.

    >>> print(md_text("a|b <b>*x*</b> [l](u) (1+2)"))
    a\\|b \\<b\\>\\*x\\*\\</b\\> \\[l\\](u) (1+2)
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def md_code_block(text: str) -> str:
    """A fenced block that `text` cannot close: the fence is longer than its longest run of backticks.

    >>> md_code_block("a ``` b")
    '````text\\na ``` b\\n````'
    """
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _md_table(t: Table) -> list[str]:
    lines = [f"## {md_text(t.title)}", ""]
    if t.note:
        lines += [md_text(t.note), ""]
    if not t.rows:
        return [*lines, "(none recorded)", ""]
    lines.append("| " + " | ".join(md_text(c) or " " for c in t.columns) + " |")
    lines.append("|" + "---|" * len(t.columns))
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in t.rows]
    return [*lines, ""]


def _md_samples(samples: list[tuple[int, str]], heading: str) -> list[str]:
    lines = [f"## {md_text(heading)}", ""]
    if not samples:
        return [*lines, "(none recorded)", ""]
    for step, text in samples:
        lines += [f"Step {count(step)}:", "", md_code_block(text), ""]
    return lines


def _md_message(r: RunReport) -> list[str]:
    return [f"> {md_text(r.message)}", ""] if r.message else []


def to_markdown(r: RunReport) -> str:
    """The report card as one Markdown document, its chart embedded as a `data:` image."""
    lines = [f"# Run report card: {md_text(r.label)}", "", *_md_message(r),
             f"![Loss curves of {md_text(r.label)}]({svg_data_uri(loss_chart(r, standalone=True))})", ""]
    for t in card_tables(r):
        lines += _md_table(t)
    lines += _md_samples(r.samples, "Samples")
    return "\n".join(lines)


def compare_markdown(a: RunReport, b: RunReport) -> str:
    """Two runs side by side in one Markdown document."""
    lines = [f"# Two runs compared: A {md_text(a.label)}, B {md_text(b.label)}", "",
             f"![Loss curves of both runs]({svg_data_uri(compare_chart(a, b, standalone=True))})", ""]
    for t in compare_tables(a, b):
        lines += _md_table(t)
    lines += _md_samples(a.samples[-1:], f"Last sample of A: {a.label}")
    lines += _md_samples(b.samples[-1:], f"Last sample of B: {b.label}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { background: #ffffff; color: #1f2937; font-family: Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #e5e7eb; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border: 1px solid #e5e7eb; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f4f6; } td.num { font-variant-numeric: tabular-nums; }
pre { background: #f3f4f6; color: #111827; padding: 0.6rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.note { color: #4b5563; font-size: 0.85rem; } .message { border-left: 4px solid #ea580c; padding-left: 0.8rem; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
svg { max-width: 100%; height: auto; }
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_table(t: Table) -> str:
    parts = [f"<h2>{_h(t.title)}</h2>"]
    if t.note:
        parts.append(f'<p class="note">{_h(t.note)}</p>')
    if not t.rows:
        return "".join([*parts, "<p>(none recorded)</p>"])
    parts.append("<table><thead><tr>" + "".join(f"<th>{_h(c)}</th>" for c in t.columns) + "</tr></thead><tbody>")
    parts += ["<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in t.rows]
    return "".join([*parts, "</tbody></table>"])


def _html_samples(samples: list[tuple[int, str]], heading: str) -> str:
    if not samples:
        return f"<h2>{_h(heading)}</h2><p>(none recorded)</p>"
    return f"<h2>{_h(heading)}</h2>" + "".join(f"<p>Step {count(s)}:</p><pre>{_h(t)}</pre>" for s, t in samples)


def _html_page(title: str, body: list[str]) -> str:
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_h(title)}</title><style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n")


def to_html(r: RunReport) -> str:
    """The report card as one self-contained HTML file: inline CSS and SVG, no script, no external reference."""
    body = [f"<h1>Run report card: {_h(r.label)}</h1>"]
    if r.message:
        body.append(f'<p class="message">{_h(r.message)}</p>')
    body.append(loss_chart(r))
    body += [_html_table(t) for t in card_tables(r)]
    body.append(_html_samples(r.samples, "Samples"))
    return _html_page(f"Run report card: {r.label}", body)


def compare_html(a: RunReport, b: RunReport) -> str:
    """Two runs side by side in one self-contained HTML file."""
    body = [f"<h1>Two runs compared: A {_h(a.label)}, B {_h(b.label)}</h1>", compare_chart(a, b)]
    body += [_html_table(t) for t in compare_tables(a, b)]
    body.append('<div class="pair"><div>' + _html_samples(a.samples[-1:], f"Last sample of A: {a.label}")
                + "</div><div>" + _html_samples(b.samples[-1:], f"Last sample of B: {b.label}") + "</div></div>")
    return _html_page(f"Two runs compared: {a.label} and {b.label}", body)
