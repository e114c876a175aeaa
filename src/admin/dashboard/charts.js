// Small SVG charts drawn with the DOM (no library): a stacked bar chart of spend per day and a
// horizontal usage bar for budgets.
import { s } from './dom.js';
import { usd } from './format.js';

export const PALETTE = ['#2563eb', '#16a34a', '#ea580c', '#9333ea', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d', '#dc2626'];
export const OTHER_COLOR = '#a3a3a3';

/** A "nice" step for about `n` ticks up to `max`. */
function niceStep(max, n) {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/**
 * days: ['2026-05-01', …]; series: [{ key, label, color, values: [micros per day] }], stacked in order.
 * Returns an <svg>; every bar segment is a <rect class="bar"> with a <title>.
 */
export function stackedBarChart(days, series, { width = 960, height = 300 } = {}) {
  const m = { top: 12, right: 12, bottom: 42, left: 64 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const totals = days.map((_, i) => series.reduce((a, sr) => a + (sr.values[i] ?? 0), 0));
  const maxTotal = Math.max(...totals, 0);
  const step = maxTotal > 0 ? niceStep(maxTotal, 4) : 1;
  const top = maxTotal > 0 ? Math.ceil(maxTotal / step) * step : 4;
  const y = (v) => m.top + ph - (v / top) * ph;
  const slot = pw / Math.max(days.length, 1);
  const barW = Math.max(2, slot * 0.72);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': 'Spend per day', class: 'stacked' });
  for (let v = 0; v <= top + 1e-9; v += step) {
    svg.append(s('line', { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: m.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, usd(v)));
  }
  const every = Math.ceil(days.length / 12);
  days.forEach((day, i) => {
    const x = m.left + i * slot + (slot - barW) / 2;
    let base = 0;
    for (const sr of series) {
      const v = sr.values[i] ?? 0;
      if (v <= 0) continue;
      const y0 = y(base);
      const y1 = y(base + v);
      svg.append(s('rect', { x: x.toFixed(1), y: y1.toFixed(1), width: barW.toFixed(1), height: Math.max(0.5, y0 - y1).toFixed(1), fill: sr.color, class: 'bar', 'data-key': sr.label, 'data-day': day },
        s('title', {}, `${day} · ${sr.label}: ${usd(v)}`)));
      base += v;
    }
    if (i % every === 0 || i === days.length - 1) {
      svg.append(s('text', { x: (x + barW / 2).toFixed(1), y: height - m.bottom + 16, class: 'axis', 'text-anchor': 'middle' }, day.slice(5)));
    }
  });
  svg.append(s('line', { x1: m.left, x2: width - m.right, y1: y(0), y2: y(0), class: 'baseline' }));
  if (maxTotal === 0) svg.append(s('text', { x: m.left + pw / 2, y: m.top + ph / 2, class: 'axis', 'text-anchor': 'middle' }, 'No metered spend in this window'));
  return svg;
}

/** A usage bar: spent (solid), reserved (hatched), against the limit; red once exhausted. */
export function usageBar(spent, reserved, limit, exhausted) {
  const w = 400;
  const hgt = 18;
  // any spend at all stays visible (at least one unit wide)
  const f = (v) => (v > 0 ? Math.max(1, (limit > 0 ? Math.min(1, v / limit) : 1) * w) : 0);
  const svg = s('svg', { viewBox: `0 0 ${w} ${hgt}`, width: '100%', height: hgt, class: 'usage', preserveAspectRatio: 'none' });
  svg.append(s('rect', { x: 0, y: 0, width: w, height: hgt, class: 'track' }));
  svg.append(s('rect', { x: 0, y: 0, width: f(spent).toFixed(1), height: hgt, class: exhausted ? 'spent exhausted' : f(spent) / w >= 0.8 ? 'spent warn' : 'spent' }));
  svg.append(s('rect', { x: f(spent).toFixed(1), y: 0, width: Math.max(0, f(spent + reserved) - f(spent)).toFixed(1), height: hgt, class: 'reserved' }));
  return svg;
}
