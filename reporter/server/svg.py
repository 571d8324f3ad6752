"""The occurrence chart of a bucket: a server-rendered SVG bar chart of reports per day."""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

DAY = 86400
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 720, 160, 40, 24, 8


def _date(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * DAY))


def occurrence_chart(days: Sequence[tuple[int, int]], *, span: int = 60, today: int | None = None) -> str:
    """SVG markup: one bar per day for the *span* days ending today (or at the last report).

    *days* are (unix day, count) pairs. Every text in the markup is escaped; the caller may
    insert it into a page unescaped (it contains no script and no external reference).
    """
    counts = dict(days)
    end = max([today if today is not None else int(time.time() // DAY)] + [d for d, _ in days])
    start = end - span + 1
    peak = max([c for d, c in counts.items() if start <= d <= end] + [1])
    plot_w = WIDTH - PAD_LEFT - 4
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    bar_w = plot_w / span
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="reports per day, last {span} days">',
             f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 4}" y2="{PAD_TOP + plot_h}" class="axis"/>',
             f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 10}" text-anchor="end" class="label">{peak}</text>',
             f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end" class="label">0</text>']
    for i in range(span):
        day = start + i
        count = counts.get(day, 0)
        if count:
            h = max(1.0, plot_h * count / peak)
            x = PAD_LEFT + i * bar_w
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                         f'height="{h:.1f}"><title>{escape(_date(day))}: {count}</title></rect>')
    for i in (0, span // 2, span - 1):
        x = PAD_LEFT + i * bar_w + bar_w / 2
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="label">'
                     f'{escape(_date(start + i))}</text>')
    parts.append("</svg>")
    return "".join(parts)
