"""Trend charts for repeated measures (HbA1c, eGFR, blood pressure, …) as inline SVG drawn on
the server: no script, readable without JavaScript, and a table of the same values beside it
for screen readers and for anyone who wants the numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup, escape

from carelight.apps.care.present import code_of, human_date, text

# LOINC code -> the short name shown; the measures charted on the summary, in this order
MEASURES = {
    "59261-8": "HbA1c",
    "4548-4": "HbA1c",
    "62238-1": "eGFR",
    "33914-3": "eGFR",
    "85354-9": "Blood pressure",
}
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
WIDTH, HEIGHT, PAD_X, PAD_Y = 560, 180, 48, 24


@dataclass
class Series:
    name: str
    unit: str
    points: list[tuple[str, float, str]] = field(default_factory=list)  # (date, value, source)
    second: list[tuple[str, float]] = field(default_factory=list)  # diastolic, for BP

    @property
    def latest(self) -> str:
        if not self.points:
            return ""
        date, value, _ = self.points[-1]
        if self.second:
            return f"{value:g}/{self.second[-1][1]:g} {self.unit} on {human_date(date)}"
        return f"{value:g} {self.unit} on {human_date(date)}"


def series_of(observations: list[dict], source_name) -> list[Series]:
    """A series per measured code with at least two numeric values, charted measures first."""
    found: dict[str, Series] = {}
    for obs in observations:
        code = code_of(obs.get("code"))
        when = obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start")
        if not when or obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        source = source_name((obs.get("meta") or {}).get("source"))
        if "valueQuantity" in obs and isinstance(obs["valueQuantity"].get("value"), int | float):
            q = obs["valueQuantity"]
            s = found.setdefault(
                code, Series(MEASURES.get(code) or text(obs.get("code")), q.get("unit", ""))
            )
            s.points.append((when, float(q["value"]), source))
        elif obs.get("component"):
            parts = {
                code_of(c.get("code")): (c.get("valueQuantity") or {}) for c in obs["component"]
            }
            sys_q, dia_q = parts.get(SYSTOLIC), parts.get(DIASTOLIC)
            if (
                sys_q
                and dia_q
                and sys_q.get("value") is not None
                and dia_q.get("value") is not None
            ):
                s = found.setdefault(
                    code, Series(MEASURES.get(code, "Blood pressure"), sys_q.get("unit", "mmHg"))
                )
                s.points.append((when, float(sys_q["value"]), source))
                s.second.append((when, float(dia_q["value"])))
    for s in found.values():
        order = sorted(range(len(s.points)), key=lambda i: s.points[i][0])
        s.points = [s.points[i] for i in order]
        if s.second:
            s.second = [s.second[i] for i in order]
    ranked = sorted(
        (c for c, s in found.items() if len(s.points) >= 2),
        key=lambda c: (c not in MEASURES, found[c].name),
    )
    return [found[c] for c in ranked]


def svg(series: Series, chart_id: str, last: int = 20) -> Markup:
    """The last ``last`` values of a series as a line chart (two lines for blood pressure)."""
    points = series.points[-last:]
    second = series.second[-last:]
    values = [v for _, v, _ in points] + [v for _, v in second]
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1
    span = high - low
    low, high = low - span * 0.1, high + span * 0.1
    n = len(points)

    def x(i: int) -> float:
        return PAD_X + (WIDTH - 2 * PAD_X) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return HEIGHT - PAD_Y - (HEIGHT - 2 * PAD_Y) * (v - low) / (high - low)

    title = f"{series.name} ({series.unit}), {n} values from {human_date(points[0][0])} to {human_date(points[-1][0])}"
    out = [
        f'<svg class="care-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title" focusable="false">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<line x1="{PAD_X}" y1="{HEIGHT - PAD_Y}" x2="{WIDTH - PAD_X}" y2="{HEIGHT - PAD_Y}" stroke="#768692"/>',
        f'<line x1="{PAD_X}" y1="{PAD_Y}" x2="{PAD_X}" y2="{HEIGHT - PAD_Y}" stroke="#768692"/>',
        f'<text x="{PAD_X - 6}" y="{y(high - span * 0.1) + 4:.1f}" text-anchor="end" font-size="12" fill="#212b32">{high - span * 0.1:.4g}</text>',
        f'<text x="{PAD_X - 6}" y="{y(low + span * 0.1) + 4:.1f}" text-anchor="end" font-size="12" fill="#212b32">{low + span * 0.1:.4g}</text>',
        f'<text x="{PAD_X}" y="{HEIGHT - 6}" font-size="12" fill="#212b32">{escape(human_date(points[0][0]))}</text>',
        f'<text x="{WIDTH - PAD_X}" y="{HEIGHT - 6}" text-anchor="end" font-size="12" fill="#212b32">{escape(human_date(points[-1][0]))}</text>',
    ]
    for line, colour in ((points, "#005eb8"), (second, "#330072")):
        if not line:
            continue
        coords = " ".join(f"{x(i):.1f},{y(p[1]):.1f}" for i, p in enumerate(line))
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [
            f'<circle cx="{x(i):.1f}" cy="{y(p[1]):.1f}" r="3" fill="{colour}"/>'
            for i, p in enumerate(line)
        ]
    out.append("</svg>")
    return Markup("".join(out))
