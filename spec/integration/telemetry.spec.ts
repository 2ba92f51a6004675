import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { callbackUrl } from '../helpers/assertions.js';
import { CLIENT_SECRET } from '../helpers/provider.js';
import { Telemetry } from '../../lib/telemetry.js';
import { sessionTag } from '../../lib/tokens.js';

/** A reader the test collects from by hand. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const reader = new TestReader();
const spans = new InMemorySpanExporter();
let env: TestEnv;

beforeAll(async () => {
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  env = await createEnv({ oauth: { tokenCacheMs: 0 } });
});
afterAll(async () => {
  await env?.close();
  metrics.disable();
  trace.disable();
});

interface Point {
  name: string;
  attributes: Record<string, unknown>;
  value: number;
}

async function points(): Promise<Point[]> {
  const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
  const out: Point[] = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      for (const dp of m.dataPoints as Array<{ attributes: Record<string, unknown>; value: number | { count: number } }>) {
        out.push({ name: m.descriptor.name, attributes: dp.attributes, value: typeof dp.value === 'number' ? dp.value : dp.value.count });
      }
    }
  }
  return out;
}

const sum = (ps: Point[], name: string, attrs: Record<string, unknown> = {}) =>
  ps.filter((p) => p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((a, p) => a + p.value, 0);

describe('metrics and traces through @opentelemetry/api (issue 17)', () => {
  it('counts logins, failures, refreshes, lock waits, store calls, API calls and logouts; spans the protocol calls; no token or session id anywhere', async () => {
    const json = { accept: 'application/json' };
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);

    // A refresh that first waits for a lock another process holds (released after 300 ms).
    await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, version: record.version + 1 });
    expect(await env.tokenStore.lock(sid, 'another-process', 5000)).toBe(true);
    setTimeout(() => void env.tokenStore.unlock(sid, 'another-process'), 300);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    const refreshed = (await env.readRecord(sid))!;

    // A failed callback.
    expect((await new TestBrowser().request(callbackUrl(env, 'state=forged&code=x'))).status).toBe(400);
    const logout = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl, ...json } });
    expect(logout.status).toBe(204);

    const ps = await points();
    const instance = { 'oauth.instance': 'default' };
    expect(sum(ps, 'oauth.logins', instance)).toBe(1);
    expect(sum(ps, 'oauth.login.duration')).toBe(1);
    expect(sum(ps, 'oauth.login.failures', { reason: 'unknown_or_expired_state' })).toBe(1);
    expect(sum(ps, 'oauth.refreshes', { outcome: 'success' })).toBe(1);
    expect(sum(ps, 'oauth.refresh.lock_wait', { outcome: 'took_over' })).toBe(1);
    expect(sum(ps, 'oauth.api.calls', { via: 'client', status_class: '2xx' })).toBe(2);
    expect(sum(ps, 'oauth.store.duration', { operation: 'lock' })).toBeGreaterThanOrEqual(2);
    expect(sum(ps, 'oauth.logouts', { revoked: true })).toBe(1);

    const names = spans.getFinishedSpans().map((s) => s.name);
    expect(names).toContain('oauth.code_exchange');
    expect(names).toContain('oauth.refresh');
    expect(names).toContain('oauth.revocation');

    const attributes = JSON.stringify([...ps.map((p) => p.attributes), ...spans.getFinishedSpans().map((s) => s.attributes)]);
    for (const secret of [
      record.access_token,
      record.refresh_token!,
      record.id_token!,
      refreshed.access_token,
      refreshed.refresh_token!,
      sid,
      sessionTag(sid),
      CLIENT_SECRET,
      'alice',
    ]) {
      expect(attributes.includes(secret) ? `leaked: ${secret.slice(0, 8)}` : 'clean').toBe('clean');
    }
  }, 30_000);

  it('is a no-op when @opentelemetry/api is not installed', async () => {
    const t = new Telemetry('x', () => Promise.reject(new Error('Cannot find package')));
    await t.loaded;
    expect(() => {
      t.login(1);
      t.loginFailed('r');
      t.refresh(1);
      t.refreshFailed('r', 1);
      t.lockWait(1, 'adopted');
      t.store('read', 1, false);
      t.apiCall('client', 200);
      t.logout(true);
    }).not.toThrow();
    await expect(t.span('refresh', async () => 42)).resolves.toBe(42);
    await expect(t.span('refresh', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });
});
