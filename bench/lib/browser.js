/**
 * A minimal HTTP "browser" (same approach as spec/helpers/browser.ts): a cookie jar per host:port, manual
 * redirects, and a timing log of every request by host, so a login can be split into time spent at the
 * app and time spent at the provider.
 */
const REQUEST_TIMEOUT_MS = 15_000;

export class Browser {
  constructor() {
    this.jars = new Map();
    /** @type {Array<{ host: string, path: string, status: number, ms: number }>} */
    this.timings = [];
  }

  cookies(url) {
    const host = new URL(url).host;
    let jar = this.jars.get(host);
    if (!jar) this.jars.set(host, (jar = new Map()));
    return jar;
  }

  /** The Cookie header this browser sends to `url`. */
  cookieHeader(url) {
    return [...this.cookies(url)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    const started = performance.now();
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = await res.text();
    const ms = performance.now() - started;
    const u = new URL(url);
    this.timings.push({ host: u.host, path: u.pathname, status: res.status, ms });
    const setCookies = res.headers.getSetCookie();
    const jar = this.cookies(url);
    for (const sc of setCookies) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired =
        attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]).getTime() < Date.now()) || attrs.some((a) => /^\s*max-age=0/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location') ?? undefined;
    return { status: res.status, headers: res.headers, body, url, location: location ? new URL(location, url).href : undefined, setCookies };
  }

  /** Follows redirects until `stop(next)` is true (returned unfetched) or a non-redirect; at most `max` hops. */
  async follow(url, stop, max = 20) {
    let current = url;
    for (let i = 0; i < max; i++) {
      const res = await this.request(current);
      if (!res.location || res.status < 300 || res.status >= 400) return { last: res, stoppedAt: undefined };
      if (stop(res.location)) return { last: res, stoppedAt: res.location };
      current = res.location;
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Submits the first form of a page, with `fields` overriding its inputs. */
  async submitForm(page, fields) {
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(page.body);
    if (!form) throw new Error(`no form on ${page.url}: ${page.body.slice(0, 300)}`);
    const values = new URLSearchParams();
    for (const input of form[2].matchAll(/<input[^>]*>/gi)) {
      const name = /name="([^"]+)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name) values.set(name, value);
    }
    for (const [k, v] of Object.entries(fields)) values.set(k, v);
    const action = new URL(form[1].replace(/&amp;/g, '&'), page.url).href;
    return this.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(action).origin },
      body: values.toString(),
    });
  }
}

/**
 * Logs in through the app: `GET {app}/login`, then oidc-provider's login and consent pages, then the
 * app's callback (the code exchange happens there). Returns the callback response.
 */
export async function login(browser, appUrl, user = 'alice') {
  const isCallback = (u) => u.startsWith(`${appUrl}/callback`);
  const start = await browser.request(`${appUrl}/login`);
  if (start.status !== 302 || !start.location) throw new Error(`login did not redirect: ${start.status} ${start.body.slice(0, 200)}`);
  let next = start.location;
  let callbackUrl;
  for (let step = 0; step < 10 && !callbackUrl; step++) {
    const { last, stoppedAt } = await browser.follow(next, isCallback);
    if (stoppedAt) {
      callbackUrl = stoppedAt;
      break;
    }
    if (last.status !== 200) throw new Error(`provider answered ${last.status} at ${last.url}: ${last.body.slice(0, 300)}`);
    const isLogin = /name="login"/.test(last.body);
    const submitted = await browser.submitForm(last, isLogin ? { login: user, password: 'any-password' } : {});
    if (!submitted.location) throw new Error(`form at ${last.url} did not redirect (${submitted.status}): ${submitted.body.slice(0, 300)}`);
    if (isCallback(submitted.location)) callbackUrl = submitted.location;
    else next = submitted.location;
  }
  if (!callbackUrl) throw new Error('login did not reach the callback');
  const callback = await browser.request(callbackUrl);
  if (callback.status >= 400) throw new Error(`callback answered ${callback.status}: ${callback.body.slice(0, 300)}`);
  return callback;
}
