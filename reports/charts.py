"""Small inline SVG pictures, drawn from aggregated figures only (a few KB each, whatever the data size).

No plotting library: nothing external to load, and every label goes through `escape`, so a chart
cannot carry markup from the data.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from clinassay.reports.context import Coverage, StageTable

# white -> amber -> deep red: readable in grey and by most colour-blind readers
_STOPS = ((0.0, (247, 247, 247)), (0.35, (254, 224, 139)), (0.7, (244, 109, 67)), (1.0, (165, 0, 38)))
_GOOD = ((0.0, (247, 247, 247)), (1.0, (26, 152, 80)))


def _mix(stops: Sequence[tuple[float, tuple[int, int, int]]], t: float) -> tuple[int, int, int]:
    t = min(1.0, max(0.0, t))
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            f = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
            return tuple(round(a + (b - a) * f) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return stops[-1][1]


def bad_colour(t: float | None) -> str:
    """Background for a rate where more is worse (reject rates): 0 white, 1 deep red."""
    if t is None:
        return "#eeeeee"
    r, g, b = _mix(_STOPS, t)
    return f"#{r:02x}{g:02x}{b:02x}"


def good_colour(t: float | None) -> str:
    """Background for a share where more is better (coverage): 0 white, 1 green."""
    if t is None:
        return "#eeeeee"
    r, g, b = _mix(_GOOD, t)
    return f"#{r:02x}{g:02x}{b:02x}"


def ink(background: str) -> str:
    """Black or white text, whichever reads on the background."""
    r, g, b = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


def _text(x: float, y: float, text: object, *, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def bar_chart(items: Sequence[tuple[str, int | float]], *, label: str, width: int = 560, limit: int = 15) -> Markup:
    """Horizontal bars, largest first: e.g. the reasons of one check."""
    items = sorted(((str(k), float(v)) for k, v in items), key=lambda kv: -kv[1])[:limit]
    if not items:
        return Markup("")
    row, left, right = 20, min(260, 12 + 7 * max(len(k) for k, _ in items)), 60
    height = row * len(items) + 6
    top = max(v for _, v in items) or 1.0
    span = width - left - right
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
    ]
    for i, (key, value) in enumerate(items):
        y = 3 + i * row
        w = max(1.0, span * value / top)
        parts.append(_text(left - 6, y + 13, key if len(key) <= 36 else key[:35] + "…", anchor="end"))
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" class="bar"/>')
        parts.append(_text(left + w + 4, y + 13, f"{value:g}"))
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(counts: Sequence[int], *, label: str, width: int = 150, height: int = 34) -> Markup:
    """A small column histogram over [0, 1] (e.g. misfit probabilities), the right half drawn as bad."""
    if not counts or not sum(counts):
        return Markup("")
    top, n = max(counts), len(counts)
    step = width / n
    parts = [f'<svg class="chart spark" role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>']
    for i, c in enumerate(counts):
        h = max(1.0 if c else 0.0, (height - 2) * c / top)
        colour = bad_colour(0.8) if i >= n // 2 else good_colour(0.6)
        parts.append(f'<rect x="{i * step + 1:.1f}" y="{height - h:.1f}" width="{step - 2:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{i / n:.1f}-{(i + 1) / n:.1f}: {c}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def coverage_heatmap(coverage: Coverage) -> Markup:
    """ICD-10 chapters x languages: accepted pairs against the plan, green where the plan is met."""
    if not coverage.rows or not coverage.languages:
        return Markup("")
    cell_w, cell_h, left, top = 64, 20, 300, 22
    width = left + cell_w * len(coverage.languages) + 4
    height = top + cell_h * len(coverage.rows) + 4
    parts = [
        f'<svg class="chart heatmap" role="img" aria-label="coverage of ICD-10 chapters per language" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for j, lang in enumerate(coverage.languages):
        parts.append(_text(left + cell_w * j + cell_w / 2, 15, lang, anchor="middle", cls="head"))
    for i, row in enumerate(coverage.rows):
        y = top + i * cell_h
        name = f"{row.chapter} {row.title or ''}".strip()
        parts.append(_text(left - 6, y + 14, name if len(name) <= 44 else name[:43] + "…", anchor="end"))
        for j, cell in enumerate(row.cells):
            x = left + cell_w * j
            if cell.planned and not cell.accepted:
                fill = bad_colour(0.55)  # planned, nothing accepted: a hole in the data
            elif cell.ratio is not None:
                fill = good_colour(cell.ratio)
            elif cell.accepted:
                fill = good_colour(1.0)  # accepted without a plan
            else:
                fill = bad_colour(None) if cell.planned is None else good_colour(0.0)
            label = f"{cell.accepted if cell.accepted is not None else '–'}/{cell.planned if cell.planned is not None else '–'}"
            tip = f"chapter {row.chapter} {row.title or ''} · {coverage.languages[j]}: {label} accepted/planned"
            parts.append(
                f'<g><title>{escape(tip)}</title><rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" fill="{fill}"/>'
                f'<text x="{x + cell_w / 2:.1f}" y="{y + 14}" text-anchor="middle" fill="{ink(fill)}">'
                f"{escape(label)}</text></g>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def ci_chart(table: StageTable, *, metric: str = "mrr@10", width: int = 460) -> Markup:
    """One metric per language as a dot with its 95% interval, on a shared 0..1 axis."""
    rows = []
    for row in table.rows:
        cell = next((c for c in row.cells if c.metric == metric), None)
        if cell is not None and cell.value is not None:
            rows.append((row.language, cell))
    if not rows:
        return Markup("")
    row_h, left, right, top = 20, 84, 20, 34
    height = top + row_h * len(rows) + 6
    span = width - left - right
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(metric)} per language with 95% intervals" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    parts.append(_text(2, 12, f"{metric}, 95% CI", cls="tick"))
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + span * tick
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height}" class="grid"/>')
        parts.append(_text(x, 26, f"{tick:g}", anchor="middle", cls="tick"))
    for i, (language, cell) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        parts.append(_text(left - 8, y + 4, language, anchor="end"))
        if cell.low is not None and cell.high is not None:
            parts.append(
                f'<line x1="{left + span * cell.low:.1f}" y1="{y:.1f}" x2="{left + span * cell.high:.1f}" '
                f'y2="{y:.1f}" class="whisker"/>'
            )
        cls = {"regression": "dot bad", "lift": "dot good"}.get(cell.status, "dot")
        parts.append(
            f'<circle cx="{left + span * min(1.0, max(0.0, cell.value)):.1f}" cy="{y:.1f}" r="4" class="{cls}">'
            f"<title>{escape(f'{language}: {cell.value:.3f}')}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
