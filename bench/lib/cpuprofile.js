/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): self and inclusive time per function, and self
 * time per area (this package's dist/ files, each node_modules package, node internals, GC, idle).
 */
import { readFileSync } from 'node:fs';

function areaOf(url) {
  if (!url) return '(native/vm)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1];
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `express-oauth-client: ${dist[1]}`;
  const bench = /\/bench\/(.+)$/.exec(url);
  if (bench) return `bench: ${bench[1]}`;
  return url.replace(/^file:\/\//, '');
}

const short = (url) => url.replace(/^file:\/\/.*?\/(node_modules|dist|bench)\//, '$1/');

export function summarizeProfile(file, { top = 30, focus } = {}) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
    totalUs += dt;
  }
  const key = (n) => `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const selfByFn = new Map();
  const inclByFn = new Map();
  const selfByArea = new Map();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    const fn = node.callFrame.functionName;
    if (fn === '(idle)') idleUs += us;
    const area = fn === '(garbage collector)' ? 'GC' : fn === '(idle)' ? 'idle' : fn === '(program)' ? '(program)' : areaOf(node.callFrame.url);
    selfByArea.set(area, (selfByArea.get(area) ?? 0) + us);
    selfByFn.set(key(node), (selfByFn.get(key(node)) ?? 0) + us);
    // Inclusive: charge every distinct function on the stack once.
    const seen = new Set();
    let cur = id;
    for (let depth = 0; cur !== undefined && depth < 2000; depth++) {
      const k = key(byId.get(cur));
      if (!seen.has(k)) {
        seen.add(k);
        inclByFn.set(k, (inclByFn.get(k) ?? 0) + us);
      }
      cur = parent.get(cur);
    }
  }
  const busyUs = totalUs - idleUs;
  const pct = (us) => `${((100 * us) / busyUs).toFixed(1).padStart(5)} %`;
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  const lines = [];
  lines.push(`${file}`);
  lines.push(`profiled ${(totalUs / 1e6).toFixed(1)} s, busy ${(busyUs / 1e6).toFixed(1)} s (percentages are of busy time)`);
  lines.push('', 'self time by area:');
  for (const [area, us] of sorted(selfByArea)) if (area !== 'idle') lines.push(`  ${pct(us)}  ${area}`);
  lines.push('', `top ${top} functions by self time:`);
  for (const [k, us] of sorted(selfByFn).filter(([k]) => !k.startsWith('(idle)')).slice(0, top)) lines.push(`  ${pct(us)}  ${k}`);
  lines.push('', `top ${top} functions by inclusive time:`);
  for (const [k, us] of sorted(inclByFn).filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(root)')).slice(0, top)) lines.push(`  ${pct(us)}  ${k}`);
  if (focus) {
    const re = new RegExp(focus);
    lines.push('', `inclusive time of functions matching /${focus}/:`);
    for (const [k, us] of sorted(inclByFn).filter(([k]) => re.test(k)).slice(0, top)) lines.push(`  ${pct(us)}  ${k}`);
  }
  return lines.join('\n');
}

/**
 * Summarizes a sampling heap profile (bench/lib/heap-sample.js): bytes allocated per area and per function
 * (self: allocated in the function itself; inclusive: anywhere below it), with a per-request figure when
 * the number of requests is known.
 */
export function summarizeHeapProfile(file, { top = 30, focus, requests } = {}) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const key = (n) => `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const selfByFn = new Map();
  const inclByFn = new Map();
  const selfByArea = new Map();
  let total = 0;
  const walk = (node, stack) => {
    const k = key(node);
    const self = (node.selfSize ?? 0) > 0 ? node.selfSize : 0;
    if (self) {
      total += self;
      selfByFn.set(k, (selfByFn.get(k) ?? 0) + self);
      const area = areaOf(node.callFrame.url);
      selfByArea.set(area, (selfByArea.get(area) ?? 0) + self);
      const seen = new Set([k, ...stack]);
      for (const s of seen) inclByFn.set(s, (inclByFn.get(s) ?? 0) + self);
    }
    for (const c of node.children ?? []) walk(c, [...stack, k]);
  };
  walk(profile.head, []);
  const fmt = (b) => (requests ? `${(b / requests).toFixed(0).padStart(7)} B/req` : `${(b / 1024).toFixed(0).padStart(9)} KiB`) + `  ${((100 * b) / total).toFixed(1).padStart(5)} %`;
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  const lines = [`${file}`, `sampled allocations: ${(total / 1048576).toFixed(1)} MiB${requests ? `, ${(total / requests).toFixed(0)} B per request over ${requests} requests` : ''}`];
  lines.push('', 'allocated by area:');
  for (const [a, b] of sorted(selfByArea)) lines.push(`  ${fmt(b)}  ${a}`);
  lines.push('', `top ${top} functions by self allocation:`);
  for (const [k, b] of sorted(selfByFn).slice(0, top)) lines.push(`  ${fmt(b)}  ${k}`);
  lines.push('', `top ${top} functions by inclusive allocation:`);
  for (const [k, b] of sorted(inclByFn).filter(([k]) => !k.startsWith('(root)')).slice(0, top)) lines.push(`  ${fmt(b)}  ${k}`);
  if (focus) {
    const re = new RegExp(focus);
    lines.push('', `inclusive allocation of functions matching /${focus}/:`);
    for (const [k, b] of sorted(inclByFn).filter(([k]) => re.test(k)).slice(0, top)) lines.push(`  ${fmt(b)}  ${k}`);
  }
  return lines.join('\n');
}
