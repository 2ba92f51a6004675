/** Markdown and SVG renderings of a benchmark result (no dependency: the SVG is written by hand). */
import { fmt } from './stats.js';
import { p6Markdown } from './p6.js';

const ratio = (r, lo, hi) => (Number.isFinite(r) ? `${fmt(r, 3)}x (${fmt(lo, 3)}-${fmt(hi, 3)})` : '-');

function header(result) {
  const { meta } = result;
  const m = meta.machine;
  const s = meta.settings;
  return [
    `Date: ${meta.date.slice(0, 16).replace('T', ' ')} UTC. Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}, Redis ${meta.redis}.`,
    `Command: \`${meta.command}\` (${s.rounds} round(s) x ${s.durationSec} s per scenario and variant${(s.slices ?? 1) > 1 ? `, taken in ${s.slices} slices of ${s.durationSec / s.slices} s interleaved with the other variants'` : ''}${(s.generations ?? 1) > 1 ? `, every variant's process started anew ${s.generations - 1} time(s) during the rounds (${s.generations} processes per variant)` : ''}, each slice's order of the variants shuffled, ${s.connections} connections, ${s.warmupSec} s warm-up, ${meta.durationSec} s in all). ` +
      `Load average during the run: median ${fmt(meta.loadAverage.median, 1)}, max ${fmt(meta.loadAverage.max, 1)}. ` +
      (s.pinning
        ? `P1/P2/P4: the app under test pinned to CPU ${s.pinning.appCpus}, the load generator, provider and API to CPU ${s.pinning.otherCpus}${s.pinning.redis ? " and the Redis server" : " (Redis unpinned)"}; the storm (P3) runs unpinned.`
        : 'No CPU pinning.'),
    outsideLine(meta.outsideLoad),
  ].filter(Boolean);
}

function outsideLine(o) {
  if (!o?.measured) return undefined;
  const quiet = `quiet rounds: P1 ${o.quietRounds.P1}, P2 ${o.quietRounds.P2}`;
  if (!o.disturbedRounds) return `Other work on the machine (outside load, from /proc) stayed under ${o.limitCores} cores in every round (max ${fmt(o.keptMaxCores, 2)}); ${quiet}.`;
  return (
    `Other work on the machine (outside load, from /proc) used more than ${o.limitCores} cores in ${o.disturbedRounds} scenario-round(s); ` +
    `extra rounds were run while the retry budget lasted; ${quiet}. ` +
    (o.disturbedRoundsUsed
      ? `**Too few quiet rounds: disturbed ones are included** (outside load median ${fmt(o.keptMedianCores, 2)}, max ${fmt(o.keptMaxCores, 2)} cores); treat these figures as rough.`
      : 'The medians use the quiet rounds only.')
  );
}

/** "DPoP cost on P2": the package with `dpop: true` against the package without, in the same rounds. */
export function dpopLine(d) {
  return (
    `**DPoP cost on P2** (the package with \`dpop: true\`, P2 only, same rounds): ${fmt(d.rps)} req/s vs ${fmt(d.pkgRps)} without DPoP, ` +
    `${ratio(d.ratio, d.ratioMin, d.ratioMax)}; app CPU ${fmt(d.cpuUs)} µs/req vs ${fmt(d.pkgCpuUs)} (${fmt(d.cpuRatio, 2)}x, ${d.cpuExtraUs >= 0 ? '+' : ''}${fmt(d.cpuExtraUs)} µs; ` +
    `the package signs a DPoP proof per API call); p99 ${fmt(d.p99, 1)} ms. The API also checks each proof (its own CPU, outside the app's).` +
    (d.failed ? ` **${d.failed} failed responses.**` : '')
  );
}

export function renderMarkdown(result) {
  const { summary, variants, targets, meta } = result;
  const { P1, P2, P3, P4, P5 } = summary;
  const lines = [];
  lines.push('## Benchmark results', '');
  lines.push(...header(result).map((l) => `${l}  `), '');
  lines.push('### P1, P2: throughput and latency', '');
  lines.push(
    '| Variant | P1 req/s | P1 p99 ms | P1 vs baseline | P1 app CPU µs/req | P2 req/s | P2 p99 ms | P2 vs baseline | P2 app CPU µs/req |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const v of variants) {
    const a = P1[v.id];
    const b = P2[v.id];
    const isBase = v.id === 'baseline';
    lines.push(
      `| ${v.label} | ${fmt(a.rps)} | ${fmt(a.p99, 1)} | ${isBase ? '1' : ratio(a.ratio, a.ratioMin, a.ratioMax)} | ${fmt(a.cpuUs)}${isBase ? '' : ` (${fmt(a.cpuRatio, 2)}x)`} | ${fmt(b.rps)} | ${fmt(b.p99, 1)} | ${isBase ? '1' : ratio(b.ratio, b.ratioMin, b.ratioMax)} | ${fmt(b.cpuUs)}${isBase ? '' : ` (${fmt(b.cpuRatio, 2)}x)`} |`,
    );
  }
  lines.push('');
  lines.push(
    'Req/s and p99: medians over rounds. "vs baseline": median of the per-round ratios to the hand-written baseline, (min-max) over rounds. ' +
      `P2 of the package against express-openid-connect with the Redis store: ${ratio(summary.P2vsEocRedis.ratio, summary.P2vsEocRedis.ratioMin, summary.P2vsEocRedis.ratioMax)}. ` +
      'App CPU µs/req: CPU time of the app process (all threads) per request, median over rounds, (ratio to the baseline); it moves less than req/s when other work shares the machine.',
  );
  if (summary.dpop) lines.push('', dpopLine(summary.dpop));
  const failed = variants.filter((v) => P1[v.id].failed + P2[v.id].failed > 0);
  if (failed.length) lines.push('', `Failed responses during load: ${failed.map((v) => `${v.label} ${P1[v.id].failed + P2[v.id].failed}`).join(', ')}.`);
  if (summary.aa) {
    lines.push(
      '',
      `A/A check (a second process of the package against the first): P1 ${ratio(summary.aa.P1.ratio, summary.aa.P1.ratioMin, summary.aa.P1.ratioMax)}, P2 ${ratio(summary.aa.P2.ratio, summary.aa.P2.ratioMin, summary.aa.P2.ratioMax)}.`,
    );
  }
  lines.push('', '### P4, P5: login, cookie and memory', '');
  lines.push('| Variant | P4 full login ms | of which app ms | of which provider ms | P5 session cookie bytes | P5 peak RSS MiB |', '|---|---:|---:|---:|---:|---:|');
  for (const v of variants) {
    const l = P4[v.id];
    const f = P5[v.id];
    lines.push(`| ${v.label} | ${fmt(l.totalMs, 1)} | ${fmt(l.appMs, 1)} | ${fmt(l.providerMs, 1)} | ${f.cookieBytes} | ${fmt(f.peakRssMiB, 0)} |`);
  }
  lines.push(
    '',
    'P4: median wall time of a full login (the app\'s login route, the provider\'s login and consent pages, the callback with the code exchange), measured by an HTTP client; ' +
      'the app part is the time of the requests to the app minus the provider\'s own time serving the app\'s back-channel calls (token endpoint, JWKS) during them; the rest of the wall time is the client. ' +
      'P5: bytes of the Cookie header the browser sends to the app after login; peak RSS is getrusage maxrss of the app process after all the load.',
  );
  if (summary.P6) lines.push(...p6Markdown(summary.P6));
  lines.push('');
  const s = meta.settings;
  lines.push(`### P3: refresh storm (${s.stormProcesses} app processes x ${s.stormConcurrency} concurrent calls on an expired access token, ${s.storms} storm(s) of the package${s.otherStorms !== undefined && s.otherStorms < s.storms ? `, the first ${s.otherStorms} of them for the other variants` : ''})`, '');
  lines.push(
    '| Variant | Refresh requests at the provider, per storm | of which rejected | 200 responses, per storm | Storm p99 ms | Provider refresh ms | Same burst, fresh token: p99 ms | Added by the refresh: p99 ms | Storms within fresh + refresh + 20 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const v of variants) {
    const p = P3[v.id];
    if (!p) continue;
    // A control burst is "the same burst with a fresh token" only when the storm left one: a variant that lost the
    // grant answers its control with errors, and its control p99 and the figures drawn from it mean nothing.
    const failedControls = (result.raw?.storms ?? [])
      .filter((st) => st.variant === v.id && (st.controlStatuses?.['200'] ?? 0) !== p.requestsPerStorm)
      .map((st) => Object.entries(st.controlStatuses ?? {}).map(([code, n]) => `${n} x ${code}`).join(' + '));
    const control = failedControls.length
      ? [`n/a: no fresh token (grant lost; the bursts after the storms got ${[...new Set(failedControls)].join(', ')})`, 'n/a', 'n/a']
      : [fmt(p.controlP99, 1), fmt(p.addedMs ?? p.p99 - p.controlP99, 1), `${p.stormsWithinAllowance ?? 'n/a'} of ${p.storms}`];
    lines.push(
      `| ${v.label} | ${p.refreshRequests.join(', ')} | ${p.refreshErrors.join(', ')} | ${p.ok200.map((n) => `${n}/${p.requestsPerStorm}`).join(', ')} | ${fmt(p.p99, 1)} | ${fmt(p.refreshMs, 1)} | ${control.join(' | ')} |`,
    );
  }
  lines.push(
    '',
    'Every storm logs in anew with a 2 s access token and starts once it has expired; the provider rotates refresh tokens and revokes the grant when a rotated one is reused. ' +
      'Storm p99 and provider refresh ms: medians over storms; provider refresh ms is measured in the provider (request in to response out) for the successful refresh grants. ' +
      'The same burst is then sent again with the fresh token, and its p99 subtracted, storm by storm (added by the refresh: the median of those differences; the target: each storm within its own control p99 + its own refresh at the provider + 20 ms, met when the median storm is): on a small machine most of a 200-request burst is queueing for CPU, whoever refreshes.',
    '',
  );
  lines.push('### Targets (issue 14)', '', '| Target | Measured | Met |', '|---|---|---|');
  for (const t of targets) lines.push(`| ${t.text} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push('', '### Variants', '');
  for (const v of [...variants, ...(result.p2OnlyVariants ?? [])]) lines.push(`- **${v.label}**: ${v.note}.`);
  lines.push('', `Versions: ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`, '');
  return `${lines.join('\n')}\n`;
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COLORS = { pkg: '#1f6feb', 'pkg-aa': '#79a9f5', 'pkg-eager': '#0a3069', baseline: '#6e7781', 'eoc-cookie': '#bf8700', 'eoc-redis': '#8250df' };
const color = (id) => COLORS[id] ?? '#57606a';

/**
 * One horizontal bar panel. `rows`: [{ id, label, value, value2?, text }]; `value2` stacks a lighter bar.
 * `marker`: optional { value, text } vertical dashed line.
 */
function panel(x, y, w, title, rows, { marker, unit = '' } = {}) {
  const labelW = 190;
  const barH = 16;
  const gap = 6;
  const top = y + 22;
  const plotW = w - labelW - 150;
  const maxV = Math.max(...rows.map((r) => (r.value || 0) + (r.value2 || 0)), marker?.value ?? 0) || 1;
  const scale = (v) => (Math.max(0, v) / maxV) * plotW;
  const out = [`<text x="${x}" y="${y + 12}" class="t">${esc(title)}</text>`];
  if (marker && Number.isFinite(marker.value)) {
    const mx = x + labelW + scale(marker.value);
    const h = rows.length * (barH + gap);
    out.push(`<line x1="${mx.toFixed(1)}" y1="${top - 3}" x2="${mx.toFixed(1)}" y2="${top + h - gap + 3}" stroke="#cf222e" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${mx.toFixed(1)}" y="${top + h + 8}" class="m" text-anchor="middle">${esc(marker.text)}</text>`);
  }
  rows.forEach((r, i) => {
    const by = top + i * (barH + gap);
    out.push(`<text x="${x + labelW - 6}" y="${by + 12}" class="l" text-anchor="end">${esc(r.label)}</text>`);
    const w1 = Number.isFinite(r.value) ? scale(r.value) : 0;
    out.push(`<rect x="${x + labelW}" y="${by}" width="${w1.toFixed(1)}" height="${barH}" fill="${color(r.id)}"/>`);
    let end = w1;
    if (Number.isFinite(r.value2)) {
      const w2 = scale(r.value2);
      out.push(`<rect x="${(x + labelW + w1).toFixed(1)}" y="${by}" width="${w2.toFixed(1)}" height="${barH}" fill="${color(r.id)}" fill-opacity="0.35"/>`);
      end += w2;
    }
    out.push(`<text x="${(x + labelW + end + 4).toFixed(1)}" y="${by + 12}" class="v">${esc(r.text ?? `${fmt(r.value)}${unit}`)}</text>`);
  });
  return { svg: out.join('\n'), height: 22 + rows.length * (barH + gap) + (marker ? 16 : 4) };
}

export function renderSvg(result) {
  const { summary, variants, targets, meta } = result;
  const { P1, P2, P3, P4, P5 } = summary;
  const W = 980;
  const colW = 470;
  const m = meta.machine;
  const lines = [
    `<text x="20" y="28" class="h">express-oauth-client benchmark (issue 6)</text>`,
    `<text x="20" y="48" class="s">${esc(`${meta.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cpu}, ${m.cores} cores, Node ${m.node} · Redis ${meta.redis} · load avg median ${fmt(meta.loadAverage.median, 1)}`)}</text>`,
    `<text x="20" y="66" class="s">${esc(`$ ${meta.command}  (${meta.settings.rounds} rounds x ${meta.settings.durationSec} s, ${meta.settings.connections} connections; medians, ratios are per-round vs the hand-written baseline)`)}</text>`,
  ];
  const base = (sc) => sc.baseline?.rps;
  const tput = (sc) =>
    variants.map((v) => ({
      id: v.id,
      label: v.label,
      value: sc[v.id].rps,
      text: v.id === 'baseline' ? `${fmt(sc[v.id].rps)} req/s` : `${fmt(sc[v.id].rps)} req/s · ${fmt(sc[v.id].ratio, 2)}x`,
    }));
  const stormRows = variants
    .filter((v) => P3[v.id])
    .map((v) => ({ id: v.id, label: v.label, value: Math.max(...P3[v.id].refreshRequests), text: `${Math.max(...P3[v.id].refreshRequests)} · p99 ${fmt(P3[v.id].p99)} ms` }));
  const cpu = (sc) =>
    variants.map((v) => ({ id: v.id, label: v.label, value: sc[v.id].cpuUs, text: v.id === 'baseline' ? `${fmt(sc[v.id].cpuUs)} µs` : `${fmt(sc[v.id].cpuUs)} µs · ${fmt(sc[v.id].cpuRatio, 2)}x` }));
  const panels = [
    ['P1 protected route, no API call (req/s)', tput(P1), { marker: { value: 0.97 * base(P1), text: '0.97 x baseline' } }],
    ['P2 route calling the API with the token (req/s)', tput(P2), { marker: { value: 0.97 * base(P2), text: '0.97 x baseline' } }],
    ['P1 app CPU per request (µs, all threads)', cpu(P1), {}],
    ['P2 app CPU per request (µs, all threads)', cpu(P2), {}],
    ['P3 refresh requests at the provider per storm (of 200 calls)', stormRows, { marker: { value: 1, text: 'target 1' } }],
    [
      'P4 full login ms (app dark + provider light)',
      variants.map((v) => ({ id: v.id, label: v.label, value: P4[v.id].appMs, value2: P4[v.id].providerMs, text: `${fmt(P4[v.id].totalMs, 1)} (app ${fmt(P4[v.id].appMs, 1)})` })),
      {},
    ],
    ['P5 session cookie after login (bytes)', variants.map((v) => ({ id: v.id, label: v.label, value: P5[v.id].cookieBytes, text: `${P5[v.id].cookieBytes} B` })), { marker: { value: 200, text: '200 B' } }],
    ['P5 peak RSS of the app process (MiB)', variants.map((v) => ({ id: v.id, label: v.label, value: P5[v.id].peakRssMiB, text: `${fmt(P5[v.id].peakRssMiB)} MiB` })), {}],
  ];
  let y = 86;
  for (let i = 0; i < panels.length; i += 2) {
    const left = panel(20, y, colW, ...panels[i]);
    const right = panels[i + 1] ? panel(20 + colW + 10, y, colW, ...panels[i + 1]) : { svg: '', height: 0 };
    lines.push(left.svg, right.svg);
    y += Math.max(left.height, right.height) + 18;
  }
  lines.push(`<text x="20" y="${y + 4}" class="t">Targets</text>`);
  y += 22;
  for (const t of targets) {
    lines.push(`<text x="20" y="${y}" class="l"><tspan fill="${t.met ? '#1a7f37' : '#cf222e'}" font-weight="bold">${t.met ? 'met' : 'missed'}</tspan>  ${esc(`${t.text}: ${t.measured}`)}</text>`);
    y += 18;
  }
  const H = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<style>.h{font-size:18px;font-weight:600;fill:#1f2328}.s{font-size:12px;fill:#57606a}.t{font-size:13px;font-weight:600;fill:#1f2328}.l{font-size:12px;fill:#1f2328}.v{font-size:11px;fill:#1f2328}.m{font-size:10px;fill:#cf222e}</style>
<rect width="100%" height="100%" fill="#ffffff"/>
${lines.join('\n')}
</svg>
`;
}
