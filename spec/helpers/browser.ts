/**
 * A minimal HTTP "browser" for tests: a cookie jar per host:port, manual redirects, and a log of every
 * response it received (for the no-secret-in-any-response checks).
 */
export interface Seen {
  url: string;
  status: number;
  headers: Record<string, string>;
  setCookies: string[];
  body: string;
}

export interface BrowserResponse {
  status: number;
  headers: Headers;
  body: string;
  url: string;
  location: string | undefined;
  setCookies: string[];
}

export class TestBrowser {
  readonly jars = new Map<string, Map<string, string>>();
  readonly seen: Seen[] = [];

  cookies(url: string): Map<string, string> {
    const host = new URL(url).host;
    let jar = this.jars.get(host);
    if (!jar) this.jars.set(host, (jar = new Map()));
    return jar;
  }

  cookieHeader(url: string): string {
    return [...this.cookies(url)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Copies this browser's cookies for `url` into another browser (a stolen cookie, a second tab). */
  copyCookiesTo(other: TestBrowser, url: string): void {
    for (const [k, v] of this.cookies(url)) other.cookies(url).set(k, v);
  }

  async request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<BrowserResponse> {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { method: init.method ?? 'GET', headers, body: init.body, redirect: 'manual' });
    const body = await res.text();
    const setCookies = res.headers.getSetCookie();
    const jar = this.cookies(url);
    for (const sc of setCookies) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired =
        attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]!).getTime() < Date.now()) ||
        attrs.some((a) => /^\s*max-age=0/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location') ?? undefined;
    this.seen.push({ url, status: res.status, headers: Object.fromEntries(res.headers), setCookies, body });
    return { status: res.status, headers: res.headers, body, url, location: location ? new URL(location, url).href : undefined, setCookies };
  }

  /** Follows redirects from `url` until `stop(url)` is true for the next location (returned unfetched) or a non-redirect. */
  async follow(
    url: string,
    stop: (next: string) => boolean = () => false,
    max = 20,
  ): Promise<{ last: BrowserResponse; stoppedAt: string | undefined }> {
    let current = url;
    for (let i = 0; i < max; i++) {
      const res = await this.request(current);
      if (!res.location || res.status < 300 || res.status >= 400) return { last: res, stoppedAt: undefined };
      if (stop(res.location)) return { last: res, stoppedAt: res.location };
      current = res.location;
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Submits the first form of an HTML page, with `fields` overriding its inputs. */
  async submitForm(page: BrowserResponse, fields: Record<string, string>): Promise<BrowserResponse> {
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(page.body);
    if (!form) throw new Error(`no form on ${page.url}: ${page.body.slice(0, 300)}`);
    const values = new URLSearchParams();
    for (const input of form[2]!.matchAll(/<input[^>]*>/gi)) {
      const name = /name="([^"]+)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name) values.set(name, value);
    }
    for (const [k, v] of Object.entries(fields)) values.set(k, v);
    const action = new URL(form[1]!.replace(/&amp;/g, '&'), page.url).href;
    return this.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(action).origin },
      body: values.toString(),
    });
  }
}

/**
 * Drives oidc-provider's login and consent pages from an authorization URL and returns the callback URL
 * the provider redirects to (not fetched), so tests can use or tamper with it.
 */
export async function authorizeAtProvider(
  browser: TestBrowser,
  authorizationUrl: string,
  user = 'alice',
  isCallback: (u: string) => boolean,
): Promise<string> {
  let next = authorizationUrl;
  for (let step = 0; step < 10; step++) {
    const { last, stoppedAt } = await browser.follow(next, isCallback);
    if (stoppedAt) return stoppedAt;
    if (last.status !== 200) throw new Error(`provider answered ${last.status} at ${last.url}: ${last.body.slice(0, 300)}`);
    const isLogin = /name="login"/.test(last.body);
    const submitted = await browser.submitForm(last, isLogin ? { login: user, password: 'any-password' } : {});
    if (!submitted.location) throw new Error(`form at ${last.url} did not redirect (${submitted.status}): ${submitted.body.slice(0, 300)}`);
    if (isCallback(submitted.location)) return submitted.location;
    next = submitted.location;
  }
  throw new Error('login did not reach the callback');
}
