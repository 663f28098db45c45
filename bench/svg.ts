/**
 * A small SVG writer for the benchmark's two charts: a line chart (scaling)
 * and grouped horizontal bars on a log scale (throughput). No dependency.
 */

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  /** [x, y] pairs; NaN y values are skipped. */
  points: Array<[number, number]>;
}

const font = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function text(x: number, y: number, body: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${font} ${attrs}>${esc(body)}</text>`;
}

function frame(width: number, height: number, title: string, subtitle: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    text(16, 24, title, 'font-size="16" font-weight="600" fill="#111"'),
    text(16, 42, subtitle, 'font-size="11" fill="#555"'),
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function legend(x: number, y: number, series: Array<{ name: string; color: string; dashed?: boolean }>): string[] {
  return series.map((s, i) => {
    const ly = y + i * 16;
    const dash = s.dashed ? ' stroke-dasharray="5 4"' : '';
    return `<line x1="${x}" y1="${ly}" x2="${x + 18}" y2="${ly}" stroke="${s.color}" stroke-width="3"${dash}/>` + text(x + 24, ly + 4, s.name, 'font-size="11" fill="#222"');
  });
}

/** A line chart with linear axes starting at 0. */
export function lineChart(o: { title: string; subtitle: string; xLabel: string; yLabel: string; series: Series[] }): string {
  const [width, height] = [640, 400];
  const [left, right, top, bottom] = [56, 150, 60, 48];
  const pts = o.series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  const xMax = Math.max(1, ...pts.map(([x]) => x));
  const yMax = Math.ceil(Math.max(1, ...pts.map(([, y]) => y)) * 1.1 * 2) / 2;
  const sx = (x: number): number => left + (x / xMax) * (width - left - right);
  const sy = (y: number): number => height - bottom - (y / yMax) * (height - top - bottom);
  const body: string[] = [];
  const yStep = yMax <= 3 ? 0.5 : 1;
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    body.push(`<line x1="${left}" y1="${sy(y)}" x2="${width - right}" y2="${sy(y)}" stroke="#e5e5e5"/>`);
    body.push(text(left - 8, sy(y) + 4, y.toFixed(1), 'font-size="11" fill="#555" text-anchor="end"'));
  }
  for (let x = 1; x <= xMax; x++) body.push(text(sx(x), height - bottom + 16, String(x), 'font-size="11" fill="#555" text-anchor="middle"'));
  body.push(`<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#888"/>`);
  body.push(text((left + width - right) / 2, height - 12, o.xLabel, 'font-size="12" fill="#333" text-anchor="middle"'));
  body.push(text(14, (top + height - bottom) / 2, o.yLabel, `font-size="12" fill="#333" text-anchor="middle" transform="rotate(-90 14 ${(top + height - bottom) / 2})"`));
  for (const s of o.series) {
    const ok = s.points.filter(([, y]) => Number.isFinite(y));
    if (ok.length === 0) continue;
    const dash = s.dashed ? ' stroke-dasharray="5 4"' : '';
    body.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.5"${dash} points="${ok.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    if (!s.dashed) for (const [x, y] of ok) body.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
  }
  body.push(...legend(width - right + 16, top + 8, o.series));
  return frame(width, height, o.title, o.subtitle, body);
}

export interface BarGroup {
  label: string;
  /** One value per series (NaN: not measured). */
  values: number[];
}

function compact(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(value >= 1e4 ? 0 : 1)}k`;
  return value.toFixed(0);
}

function tick(exponent: number): string {
  if (exponent >= 6) return `${10 ** (exponent - 6)}M`;
  if (exponent >= 3) return `${10 ** (exponent - 3)}k`;
  return String(10 ** exponent);
}

/** Grouped horizontal bars on a log10 axis. */
export function barChart(o: { title: string; subtitle: string; unit: string; series: Array<{ name: string; color: string }>; groups: BarGroup[] }): string {
  const width = 720;
  const [left, right, top] = [230, 70, 60];
  const bar = 14;
  const groupHeight = o.series.length * (bar + 3) + 18;
  const height = top + o.groups.length * groupHeight + 44 + o.series.length * 16;
  const values = o.groups.flatMap((g) => g.values).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.floor(Math.log10(Math.min(...values, 1e3)));
  const hi = Math.ceil(Math.log10(Math.max(...values, 1e4)));
  const sx = (v: number): number => left + ((Math.log10(v) - lo) / (hi - lo)) * (width - left - right);
  const plotBottom = top + o.groups.length * groupHeight;
  const body: string[] = [];
  for (let e = lo; e <= hi; e++) {
    body.push(`<line x1="${sx(10 ** e)}" y1="${top - 6}" x2="${sx(10 ** e)}" y2="${plotBottom}" stroke="#e5e5e5"/>`);
    body.push(text(sx(10 ** e), plotBottom + 16, tick(e), 'font-size="11" fill="#555" text-anchor="middle"'));
  }
  body.push(text((left + width - right) / 2, plotBottom + 32, `${o.unit} (log scale)`, 'font-size="12" fill="#333" text-anchor="middle"'));
  o.groups.forEach((group, g) => {
    const gy = top + g * groupHeight;
    body.push(text(left - 10, gy + (o.series.length * (bar + 3)) / 2 + 4, group.label, 'font-size="12" fill="#222" text-anchor="end"'));
    o.series.forEach((s, i) => {
      const y = gy + i * (bar + 3);
      const v = group.values[i] ?? Number.NaN;
      if (!Number.isFinite(v) || v <= 0) {
        body.push(text(left + 4, y + bar - 3, 'n/a', 'font-size="10" fill="#999"'));
        return;
      }
      body.push(`<rect x="${left}" y="${y}" width="${Math.max(1, sx(v) - left).toFixed(1)}" height="${bar}" fill="${s.color}"/>`);
      body.push(text(sx(v) + 4, y + bar - 3, compact(v), 'font-size="10" fill="#333"'));
    });
  });
  body.push(...legend(left, plotBottom + 48, o.series));
  return frame(width, height, o.title, o.subtitle, body);
}
