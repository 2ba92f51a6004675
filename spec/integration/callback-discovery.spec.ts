import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createEnv();
});
afterAll(async () => {
  await env?.close();
});

describe('failure table: discovery not loaded at the callback', () => {
  it('J5: a restarted instance whose discovery is still failing answers 503 and keeps the login retryable', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    // The provider's metadata fails while a new instance (same stores) starts.
    env.provider.setPathFault('/.well-known/openid-configuration', { kind: 'status', status: 500, body: 'down', contentType: 'text/plain' });
    const restarted = await createEnv({ sharing: env, oauth: {}, skipReady: true });
    try {
      browser.cookies(restarted.appUrl).set('connect.sid', browser.cookies(env.appUrl).get('connect.sid')!);
      const callback = cb.replace(env.appUrl, restarted.appUrl);
      const during = await browser.request(callback);
      expect(during.status).toBe(503);
      expect(during.headers.get('retry-after')).toBeTruthy();
      env.provider.setPathFault('/.well-known/openid-configuration', undefined);
      await restarted.auth.ready(); // the background retry succeeds
      const after = await browser.request(callback);
      expect(after.status).toBe(302);
    } finally {
      env.provider.setPathFault('/.well-known/openid-configuration', undefined);
      await restarted.close();
    }
  });
});
