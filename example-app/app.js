// The client app: what a user of express-oauth-client writes. Sessions in express-session, tokens in the
// package's token store, API calls through req.oauthClient.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import session from 'express-session';
import { OAuthError, asyncHandler, oauthErrorHandler, requireAuth } from 'express-oauth-client';
import { errorPage, homePage, profilePage, sessionsPage } from './pages.js';
import { mountSpa } from './spa.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** What the page may know about the access token: its lifetime, never the token. */
function tokenSummary(info) {
  if (!info) return null;
  return {
    expiresAt: info.expiresAt ? info.expiresAt.toISOString() : null,
    scope: info.scope ?? null,
    refreshable: info.refreshable,
  };
}

/** A short, safe description of a failed API call (no headers, no body: they could hold anything). */
function describeApiError(err) {
  const status = err?.response?.status;
  if (status) return `The API answered ${status}.`;
  if (err?.code === 'ECONNABORTED' || err?.code === 'ETIMEDOUT') return 'The API did not answer in time.';
  return 'The API could not be reached.';
}

/**
 * The connected account's data for the profile page: `{ data }`, `{ error }` (the API failed), `{ lost: true }`
 * (the connection's tokens are gone: connect again), or undefined (not connected). A login problem or a store
 * outage is thrown, for oauthErrorHandler.
 */
async function connectionData(req, connection, log) {
  if (!connection || !req.oauth.isConnected(connection.name)) return undefined;
  try {
    return { data: (await req.oauthClients[connection.name].get(connection.apiPath)).data };
  } catch (err) {
    if (err instanceof OAuthError) {
      if (err.code === 'connection_required') return { lost: true };
      throw err;
    }
    const error = describeApiError(err);
    log(`${connection.label} API call failed: ${error}`);
    return { error };
  }
}

/**
 * Cross-site request forgery: the same check as the package's logout. Browsers send `Sec-Fetch-Site` (or at least
 * `Origin`) on every POST; a request with neither must carry a header a cross-site form cannot set.
 */
function isSameOrigin(req, appOrigin) {
  const site = req.get('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin';
  const origin = req.get('origin');
  if (origin !== undefined) return origin === appOrigin;
  return req.get('x-requested-with') !== undefined;
}

/** What the "Your devices" page shows of a login: when, which browser, whether it is this one. Never a session id. */
function deviceView(s) {
  return { loginAt: s.loginAt.toISOString(), userAgent: s.userAgent ?? null, current: s.current };
}

/**
 * Builds the Express app around an `oauth()` middleware (the login) and, optionally, a second one with
 * `role: 'connect'` (an API account linked to the login: GitHub).
 * @param {{ auth: import('express-oauth-client').OAuthMiddleware, sessionStore: import('express-session').Store,
 *   sessionSecret: string, secureCookies: boolean, appUrl: string, apiPath: string, providerName: string, log: (line: string) => void,
 *   apiBaseUrl?: string | string[],
 *   connection?: { auth: import('express-oauth-client').OAuthMiddleware, name: string, label: string, apiPath: string } }} options
 */
export function createApp({ auth, sessionStore, sessionSecret, secureCookies, appUrl, apiPath, providerName, log, apiBaseUrl, connection }) {
  const appOrigin = new URL(appUrl).origin;
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    res.set({
      'Content-Security-Policy':
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    next();
  });
  app.use('/static', express.static(path.join(here, 'public'), { index: false, maxAge: 0 }));

  app.use(
    session({
      store: sessionStore,
      secret: sessionSecret,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', secure: secureCookies, path: '/' },
    }),
  );
  app.use(auth);
  // The connection: /oauth/github/login, /oauth/github/callback, POST /oauth/github/disconnect.
  if (connection) app.use(connection.auth);

  // The single-page app (BFF): session endpoint, API proxy and page at /spa. See spa.js.
  if (apiBaseUrl) mountSpa(app, { apiBaseUrl, apiPath });

  app.get('/', (req, res) => {
    res.type('html').send(homePage({ user: req.oauth.isAuthenticated ? (req.oauth.user ?? {}) : undefined, providerName }));
  });

  app.get('/profile', requireAuth(), async (req, res, next) => {
    // Both APIs at once: the login's token goes to the identity provider's API, the connection's to GitHub's.
    const [main, connected] = await Promise.all([
      req.oauthClient.get(apiPath).then(
        (r) => ({ data: r.data }),
        (err) => ({ err }),
      ),
      connectionData(req, connection, log).catch((err) => ({ thrown: err })),
    ]);
    // Login problems (login_required, store down) go to oauthErrorHandler; an API fault is shown on the page.
    if (main.err instanceof OAuthError) return next(main.err);
    if (connected?.thrown) return next(connected.thrown);
    const api = main.data;
    const apiError = main.err ? describeApiError(main.err) : undefined;
    if (apiError) log(`API call failed: ${apiError}`);
    const tokenInfo = await req.oauth.tokenInfo();
    const connectionView = connection && {
      name: connection.name,
      label: connection.label,
      ...connected,
      connected: !!connected && !connected.lost,
      connectUrl: req.oauth.loginUrl({ provider: connection.name, returnTo: '/profile' }),
      disconnectUrl: `/oauth/${connection.name}/disconnect?returnTo=%2Fprofile`,
    };
    res
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(profilePage({ user: req.oauth.user, tokenInfo, api, apiError, connection: connectionView }));
  });

  // The page's button: the same API call, as JSON. The access token is refreshed first when it has expired.
  app.get('/api/data', requireAuth(), async (req, res, next) => {
    try {
      const before = await req.oauth.tokenInfo();
      const api = (await req.oauthClient.get(apiPath)).data;
      const after = await req.oauth.tokenInfo();
      const refreshed = before?.expiresAt?.getTime() !== after?.expiresAt?.getTime();
      res.set('Cache-Control', 'no-store').json({ api, token: tokenSummary(after), refreshed });
    } catch (err) {
      if (err instanceof OAuthError) return next(err);
      log(`API call failed: ${describeApiError(err)}`);
      res.status(502).json({ error: 'api_unavailable', message: describeApiError(err) });
    }
  });

  // "Your devices": the user's logins in this app (auth.sessions, issue 15), with "Sign out of all other devices".
  app.get(
    '/sessions',
    requireAuth(),
    asyncHandler(async (req, res) => {
      const sub = req.oauth.user?.sub;
      // Without a `sub` (a provider with no ID token) the package keeps no index of the user's logins.
      const devices = sub ? (await auth.sessions.list(sub, { current: req })).map(deviceView) : undefined;
      const ended = /^\d{1,4}$/.test(String(req.query.ended ?? '')) ? Number(req.query.ended) : undefined;
      res
        .set('Cache-Control', 'no-store')
        .type('html')
        .send(sessionsPage({ user: req.oauth.user, devices, ended }));
    }),
  );

  // Same-origin POST only (a cross-site form must not sign the user out of their other devices).
  app.post(
    '/sessions/end-others',
    requireAuth(),
    asyncHandler(async (req, res) => {
      if (!isSameOrigin(req, appOrigin)) {
        return void res
          .status(403)
          .type('html')
          .send(errorPage({ title: 'Request refused', message: 'Cross-site request refused.' }));
      }
      const sub = req.oauth.user?.sub;
      const ended = sub ? await auth.sessions.revokeAll(sub, { except: req }) : 0;
      log(`Signed out of ${ended} other device(s).`);
      res.redirect(303, `/sessions?ended=${ended}`);
    }),
  );

  // Renders the package's errors: login_required redirects pages to login and gives JSON callers a 401.
  app.use(oauthErrorHandler());
  app.use((err, req, res, _next) => {
    log(`unexpected error on ${req.method} ${req.path}: ${err?.name ?? 'Error'}`);
    if (res.headersSent) return;
    res.status(500);
    if (req.get('x-requested-with')) return void res.json({ error: 'internal_error' });
    res.type('html').send(errorPage({ title: 'Something went wrong', message: 'Please try again.' }));
  });
  return app;
}
