"""Charts as inline SVG drawn on the server: no script, no library, readable without
JavaScript and printable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

W, H, PAD = 640, 220, 40


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # a class of console.css: the colour
    values: Sequence[float | None]


def _fmt(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def lines(title: str, starts: Sequence[datetime], series: Sequence[Series]) -> Markup:
    """Durations over time: one polyline per series, a gap where a bucket had none."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0) or 1.0
    n = max(len(starts) - 1, 1)

    def x(i: int) -> float:
        return PAD + i * (W - 2 * PAD) / n

    def y(v: float) -> float:
        return H - PAD - v / peak * (H - 2 * PAD)

    out = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>",
           f'<line class="axis" x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}"/>',
           f'<line class="axis" x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}"/>',
           f'<text class="tick" x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">'
           f"{_fmt(peak)}</text>",
           f'<text class="tick" x="{PAD - 4}" y="{H - PAD}" text-anchor="end">0</text>',
           ]  # fmt: skip
    for i, at in enumerate(starts):
        if i % max(len(starts) // 6, 1) == 0:
            out.append(f'<text class="tick" x="{x(i):.1f}" y="{H - PAD + 16}" '
                       f'text-anchor="middle">{at:%m-%d}</text>')  # fmt: skip
    for k, s in enumerate(series):
        run: list[str] = []
        for i, v in enumerate([*s.values, None]):
            if v is not None:
                run.append(f"{x(i):.1f},{y(v):.1f}")
                out.append(f'<circle class="{s.css}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3">'
                           f"<title>{escape(s.name)} {_fmt(v)}</title></circle>")  # fmt: skip
            elif run:
                out.append(f'<polyline class="{s.css}" points="{" ".join(run)}"/>')
                run = []
        out.append(f'<text class="legend {s.css}" x="{PAD + 60 * k + 8}" y="{PAD - 14}">'
                   f"{escape(s.name)}</text>")  # fmt: skip
    out.append("</svg>")
    return Markup("".join(out))


def bars(title: str, rows: Sequence[tuple[str, int]]) -> Markup:
    """Counts per key, largest first, as horizontal bars."""
    rows = sorted(rows, key=lambda r: -r[1])[:15]
    peak = max((c for _, c in rows), default=0) or 1
    bar, label = 20, 140
    height = max(len(rows), 1) * (bar + 6) + 10
    out = [f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" '
           f'aria-label="{escape(title)}"><title>{escape(title)}</title>']  # fmt: skip
    for i, (key, count) in enumerate(rows):
        top = 5 + i * (bar + 6)
        width = count / peak * (W - label - 60)
        out.append(f'<text class="tick" x="{label - 6}" y="{top + 15}" text-anchor="end">'
                   f"{escape(key)}</text>"
                   f'<rect class="bar" x="{label}" y="{top}" width="{width:.1f}" height="{bar}"/>'
                   f'<text class="tick" x="{label + width + 6:.1f}" y="{top + 15}">'
                   f"{count}</text>")  # fmt: skip
    if not rows:
        out.append(f'<text class="tick" x="{W / 2}" y="20" text-anchor="middle">'
                   "no incidents in this period</text>")  # fmt: skip
    out.append("</svg>")
    return Markup("".join(out))


def spark(title: str, values: Sequence[float | None], band: tuple[float, float] | None) -> Markup:
    """A series' last hours in a line of text height: its usual band shaded, a gap where
    no sample came, the last point marked."""
    seen = [v for v in values if v is not None]
    if not seen:
        return Markup("")
    w, h, pad = 160, 32, 3
    lo, hi = min(seen), max(seen)
    if band is not None:
        lo, hi = min(lo, band[0]), max(hi, band[1])
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)

    def y(v: float) -> float:
        return h - pad - (v - lo) / span * (h - 2 * pad)

    out = [f'<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
           f'aria-label="{escape(title)}"><title>{escape(title)}</title>']  # fmt: skip
    if band is not None:
        top, bottom = y(band[1]), y(band[0])
        out.append(f'<rect class="band" x="0" y="{top:.1f}" width="{w}" '
                   f'height="{max(bottom - top, 1):.1f}"/>')  # fmt: skip
    run: list[str] = []
    last = (0.0, 0.0)
    for i, v in enumerate([*values, None]):
        if v is not None:
            last = (i * (w - 2 * pad) / n + pad, y(v))
            run.append(f"{last[0]:.1f},{last[1]:.1f}")
        elif run:
            out.append(f'<polyline points="{" ".join(run)}"/>')
            run = []
    out.append(f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="2.5"/></svg>')
    return Markup("".join(out))
