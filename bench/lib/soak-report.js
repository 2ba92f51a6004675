/** SVG and Markdown renderings of a soak run (bench/soak.js); hand-written SVG like bench/lib/report.js. */
import { fmt } from './stats.js';

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/** Least-squares slope of y over x. */
export function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? num / den : NaN;
}

const PANELS = [
  { key: 'rssMiB', title: 'App RSS (MiB)' },
  { key: 'heapUsedMiB', title: 'V8 heap used after a full GC (MiB)' },
  { key: 'liveMiB', title: 'Live memory: heap used + external, after a full GC (MiB)' },
  { key: 'eldP99Ms', title: 'Event-loop delay p99 (ms, per interval)' },
  { key: 'redisKeys', title: 'Redis keys: sessions + token records + refresh locks' },
  { key: 'txMarkers', title: 'Redis keys: consumed login-transaction markers (10 min TTL, by design)' },
];

/** Small line charts, one per panel (x: minutes since start), the warm-up shaded. */
export function renderSoakSvg(result) {
  const W = 900;
  const PH = 170;
  const top = 70;
  const left = 70;
  const right = 20;
  const gap = 40;
  const H = top + PANELS.length * (PH + gap) + 20;
  const s = result.samples;
  const xmax = Math.max(result.meta.minutes, s.length ? s[s.length - 1].min : 1);
  const px = (m) => left + ((W - left - right) * m) / xmax;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="22" font-size="16" font-weight="bold">${esc(result.meta.title)}</text>`);
  out.push(`<text x="${left}" y="42">${esc(result.meta.subtitle)}</text>`);
  out.push(`<text x="${left}" y="58" fill="#555">${esc(`${result.meta.date.slice(0, 16).replace('T', ' ')} UTC, ${result.meta.machine}; shaded: warm-up (${result.meta.warmupMin} min)`)}</text>`);
  PANELS.forEach((panel, i) => {
    const y0 = top + i * (PH + gap) + 20;
    const vals = s.map((x) => x[panel.key]).filter(Number.isFinite);
    const ymax = Math.max(1, ...vals) * 1.1;
    const py = (v) => y0 + PH - (PH * v) / ymax;
    out.push(`<text x="${left}" y="${y0 - 6}" font-weight="bold">${esc(panel.title)}</text>`);
    out.push(`<rect x="${left}" y="${y0}" width="${px(result.meta.warmupMin) - left}" height="${PH}" fill="#eee"/>`);
    out.push(`<line x1="${left}" y1="${y0 + PH}" x2="${W - right}" y2="${y0 + PH}" stroke="#999"/>`);
    out.push(`<line x1="${left}" y1="${y0}" x2="${left}" y2="${y0 + PH}" stroke="#999"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (ymax * k) / 4;
      out.push(`<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end" fill="#555">${fmt(v, v < 10 ? 1 : 0)}</text>`);
      if (k) out.push(`<line x1="${left}" y1="${py(v)}" x2="${W - right}" y2="${py(v)}" stroke="#eee"/>`);
    }
    const ticks = xmax <= 10 ? 1 : 5;
    for (let m = 0; m <= xmax + 1e-9; m += ticks) out.push(`<text x="${px(m)}" y="${y0 + PH + 14}" text-anchor="middle" fill="#555">${m}</text>`);
    const pts = s.filter((x) => Number.isFinite(x[panel.key])).map((x) => `${px(x.min).toFixed(1)},${py(x[panel.key]).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts.join(' ')}"/>`);
    const st = result.summary[panel.key];
    if (st) out.push(`<text x="${W - right}" y="${y0 - 6}" text-anchor="end" fill="#555">after warm-up: slope ${fmt(st.slopePerMin, 3)}/min, ${fmt(st.first, 1)} → ${fmt(st.last, 1)}</text>`);
  });
  out.push(`<text x="${(W + left) / 2}" y="${H - 6}" text-anchor="middle" fill="#555">minutes since start</text>`);
  out.push('</svg>');
  return out.join('\n');
}

export function renderSoakMarkdown(result) {
  const { meta, summary, totals } = result;
  const lines = [];
  lines.push(`Soak: ${meta.subtitle}. ${meta.date.slice(0, 16).replace('T', ' ')} UTC, ${meta.machine}. Command: \`${meta.command}\`.`, '');
  lines.push('| Series (after warm-up) | first third median | last third median | slope per minute | verdict |', '|---|---:|---:|---:|---|');
  for (const p of PANELS) {
    const st = summary[p.key];
    if (!st) continue;
    lines.push(`| ${p.title} | ${fmt(st.first, 1)} | ${fmt(st.last, 1)} | ${fmt(st.slopePerMin, 3)} | ${st.flat === undefined ? '-' : st.flat ? 'flat' : '**growing**'} |`);
  }
  lines.push('', `Requests by kind and status: ${Object.entries(totals).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join('; ')}.`);
  return lines.join('\n');
}
