"""Charts drawn on the server as SVG (no JavaScript, nothing fetched): the units per class of each organization,
and a unit's score over the kept month ends. Pure: numbers and labels in, SVG text out."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

CLASS_COLOURS = {"tot": "#1b6e3a", "kha": "#2f6fa7", "trung_binh": "#a15c00", "yeu": "#b3261e"}


def bars(groups: Sequence[tuple[str, Sequence[tuple[str, str, int]]]], title: str) -> str:
    """Grouped bars: for each (label, [(class, class label, count), ...]) a group of bars, one per class,
    each with its count written above it. Scales to its container (viewBox)."""
    bar, gap, pad, height, top, bottom = 18, 26, 36, 160, 22, 40
    per_group = max((len(bars) for _, bars in groups), default=0)
    width = pad + len(groups) * (per_group * bar + gap) + pad
    largest = max((count for _, bars in groups for _, _, count in bars), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="chart-title" viewBox="0 0 {width} {top + height + bottom}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{escape(title)}</title>',
        f'<line x1="{pad}" y1="{top + height}" x2="{width - pad}" y2="{top + height}" stroke="#555"/>',
    ]
    x = pad + gap / 2
    for label, members in groups:
        start = x
        for key, name, count in members:
            tall = round(height * count / largest)
            colour = CLASS_COLOURS.get(key, "#555")
            parts.append(
                f'<rect x="{x}" y="{top + height - tall}" width="{bar - 2}" height="{tall}" fill="{colour}">'
                f"<title>{escape(label)} · {escape(name)}: {count}</title></rect>"
                f'<text x="{x + (bar - 2) / 2}" y="{top + height - tall - 4}" font-size="10" '
                f'text-anchor="middle">{count}</text>'
            )
            x += bar
        middle = (start + x) / 2
        parts.append(
            f'<text x="{middle}" y="{top + height + 16}" font-size="12" text-anchor="middle">{escape(label)}</text>'
        )
        x += gap
    parts.append("</svg>")
    return "".join(parts)


def line(points: Sequence[tuple[str, float, str]], title: str, most: float = 100.0) -> str:
    """A small line of scores (label, value, the value written out) from 0 to `most`, each point labelled."""
    width, pad, height, top, bottom = 640, 32, 120, 20, 30
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    at = [
        (pad + i * step, top + height - height * value / most, label, text)
        for i, (label, value, text) in enumerate(points)
    ]
    parts = [
        f'<svg class="spark" role="img" aria-labelledby="spark-title" viewBox="0 0 {width} {top + height + bottom}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="spark-title">{escape(title)}</title>',
        f'<line x1="{pad}" y1="{top + height}" x2="{width - pad}" y2="{top + height}" stroke="#999"/>',
    ]
    if len(at) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in at)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#2f6fa7" stroke-width="2"/>')
    every = -(-len(at) // 8)  # at most 8 points written out (and the last), so that labels never overlap
    last = len(at) - 1
    for i, (x, y, label, text) in enumerate(at):
        point = f"{escape(label)}: {escape(text)}"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#2f6fa7"><title>{point}</title></circle>')
        if i == last or (i % every == 0 and last - i >= every):
            parts.append(
                f'<text x="{x:.1f}" y="{y - 7:.1f}" font-size="13" text-anchor="middle">{escape(text)}</text>'
                f'<text x="{x:.1f}" y="{top + height + 18}" font-size="12" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
