// The single-page app (BFF pattern): the browser never holds a token. It reads its login state from the
// session endpoint and calls the API only through the same-origin proxy, both with the `X-CSRF: 1` header.
import { oauthProxy, sessionEndpoint } from 'express-oauth-client';
import { esc } from './pages.js';

/**
 * Mounts the SPA's server side: `GET /oauth/session`, the API proxy at `/bff/api` and the page at `/spa`.
 * Mount after `oauth()` and before any body parser.
 * @param {import('express').Express} app
 * @param {{ apiBaseUrl: string | string[], apiPath: string }} options
 */
export function mountSpa(app, { apiBaseUrl, apiPath }) {
  const target = Array.isArray(apiBaseUrl) ? apiBaseUrl[0] : apiBaseUrl;
  app.all('/oauth/session', sessionEndpoint());
  app.use('/bff/api', oauthProxy({ target }));
  app.get('/spa', (_req, res) => {
    res.set('Cache-Control', 'no-store').type('html').send(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Single-page app · express-oauth-client example</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
<script type="module" src="/static/spa.js"></script>
</head>
<body>
<header><a class="brand" href="/spa">express-oauth-client <span>SPA example</span></a><nav id="nav"></nav></header>
<main id="app" data-api-path="${esc(apiPath)}">
<p id="status">Loading…</p>
</main>
<footer>Tokens stay on the server: this page calls <code>/bff/api</code>, which calls the API with the user's token.</footer>
</body>
</html>`);
  });
}
