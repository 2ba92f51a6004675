// Server-rendered pages of the example. Every value that did not come from this file goes through `esc`.

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]);

function layout({ title, body, user }) {
  const nav = user
    ? `<nav><a href="/profile">Profile</a> <a href="/sessions">Devices</a>
        <form method="post" action="/oauth/logout" class="inline"><button type="submit" class="link">Log out</button></form></nav>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · express-oauth-client example</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header><a class="brand" href="/">express-oauth-client <span>example</span></a>${nav}</header>
<main>
${body}
</main>
<footer>Tokens stay on the server: the browser holds only an HttpOnly session cookie.</footer>
</body>
</html>`;
}

/** A definition list of an object's fields; nested values are shown as compact JSON. */
export function fields(obj, attrs = '') {
  const rows = Object.entries(obj ?? {})
    .slice(0, 20)
    .map(([k, v]) => {
      const text = v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
      return `<dt>${esc(k)}</dt><dd data-key="${esc(k)}">${esc(text)}</dd>`;
    })
    .join('');
  return `<dl class="fields"${attrs}>${rows || '<dt>(empty)</dt><dd></dd>'}</dl>`;
}

export function homePage({ user, providerName }) {
  const body = user
    ? `<section class="card hero">
  <h1>Welcome back${user.name ? `, ${esc(user.name)}` : ''}</h1>
  <p>You are logged in. Your profile page shows data fetched from the API with your access token.</p>
  <p><a class="button" href="/profile">Open your profile</a></p>
</section>`
    : `<section class="card hero">
  <h1>Sign in with ${esc(providerName)}</h1>
  <p>This app is a confidential OAuth 2.0 client. After you log in, it keeps your tokens encrypted on the
  server and calls the API for you; the browser never sees them.</p>
  <p><a class="button" href="/oauth/login?returnTo=%2Fprofile">Log in</a></p>
</section>`;
  return layout({ title: 'Home', body, user });
}

/** The connection's card: its API's data and Disconnect, or Connect. */
function connectionCard(c) {
  if (!c) return '';
  const label = esc(c.label);
  if (c.connected) {
    return `<section class="card wide" id="connection" data-provider="${esc(c.name)}" data-connected="true">
  <h2>Connected: ${label}</h2>
  <p class="muted">A second <code>oauth()</code> instance (<code>name: '${esc(c.name)}'</code>, <code>role: 'connect'</code>) holds this
  account's tokens, apart from your login's. Fetched on the server through <code>req.oauthClients.${esc(c.name)}</code>.</p>
  ${c.error ? `<p class="error" id="connection-error">${esc(c.error)}</p>` : fields(c.data, ' id="connection-data"')}
  <form method="post" action="${esc(c.disconnectUrl)}"><button type="submit" class="button secondary" id="disconnect">Disconnect ${label}</button></form>
</section>`;
  }
  return `<section class="card wide" id="connection" data-provider="${esc(c.name)}" data-connected="false">
  <h2>${label}</h2>
  <p class="muted">${
    c.lost
      ? `The connection to ${label} has ended (its tokens are gone). Connect again to see its data.`
      : `Link a ${label} account to your login: its tokens are kept on the server, apart from your login's.`
  }</p>
  <p><a class="button" id="connect" href="${esc(c.connectUrl)}">Connect ${label}</a></p>
</section>`;
}

export function profilePage({ user, tokenInfo, api, apiError, connection }) {
  const expires = tokenInfo?.expiresAt ? tokenInfo.expiresAt.toISOString() : '';
  const identity = Object.keys(user ?? {}).length
    ? fields(user)
    : '<p class="muted">This provider sent no identity claims (no ID token): see the API data below.</p>';
  const apiBlock = api !== undefined ? fields(api, ' id="api-data"') : `<dl class="fields" id="api-data"></dl>`;
  const body = `<h1>Your profile</h1>
<div class="grid">
<section class="card">
  <h2>Who you are</h2>
  <p class="muted">Identity claims kept in the session at login (never tokens).</p>
  ${identity}
</section>
<section class="card">
  <h2>Access token</h2>
  <p class="muted">Held server-side, encrypted. Only its lifetime is shown here.</p>
  <dl class="fields">
    <dt>Expires</dt><dd><span id="expires" data-expires-at="${esc(expires)}" data-state="unknown">${expires ? esc(expires) : 'no expiry given by the provider'}</span></dd>
    <dt>Scope</dt><dd>${esc(tokenInfo?.scope ?? '(not stated)')}</dd>
    <dt>Refresh token</dt><dd>${tokenInfo?.refreshable ? 'held (refreshes automatically)' : 'none'}</dd>
  </dl>
</section>
<section class="card wide">
  <h2>Data from the API</h2>
  <p class="muted">Fetched on the server through <code>req.oauthClient</code>. The button calls it again through a small JSON route;
  when the access token has expired, it is refreshed first.</p>
  ${apiError ? `<p class="error" id="api-error">${esc(apiError)}</p>` : ''}
  ${apiBlock}
  <p><button type="button" id="call-api" class="button">Call the API again</button>
  <span id="api-status" role="status" aria-live="polite"></span></p>
</section>
${connectionCard(connection)}
<section class="card wide" id="devices-link">
  <h2>Your devices</h2>
  <p class="muted">Every browser where you are logged in to this app, and a button to sign out of all the others.</p>
  <p><a class="button secondary" href="/sessions">See your devices</a></p>
</section>
</div>
<script src="/static/profile.js" defer></script>`;
  return layout({ title: 'Profile', body, user: user ?? {} });
}

/** A readable name for a User-Agent string ("Chrome on Linux"), the full string in a tooltip. */
function browserName(ua) {
  if (!ua) return 'Unknown browser';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : 'Browser';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : '';
  return os ? `${browser} on ${os}` : browser;
}

/**
 * "Your devices": the user's logins in this app, from `auth.sessions.list()` (login time, browser, this one or not;
 * never a session id), and a same-origin POST form that signs out of all the others.
 */
export function sessionsPage({ user, devices, ended }) {
  const notice =
    ended !== undefined
      ? `<p class="notice" id="ended" role="status" data-ended="${esc(ended)}">Signed out of ${esc(ended)} other ${ended === 1 ? 'device' : 'devices'}.</p>`
      : '';
  if (!devices) {
    const body = `<h1>Your devices</h1>
<section class="card wide"><p class="muted">This provider gives no user id (no ID token): the app cannot list your logins.</p></section>`;
    return layout({ title: 'Your devices', body, user: user ?? {} });
  }
  const rows = devices
    .map(
      (d) => `<li class="device"${d.current ? ' data-current="true"' : ''}>
    <strong title="${esc(d.userAgent ?? '')}" class="device-name">${esc(browserName(d.userAgent))}</strong>${d.current ? ' <span class="badge" id="this-device">this device</span>' : ''}
    <span class="muted">logged in <time datetime="${esc(d.loginAt)}">${esc(d.loginAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</time></span>
    <span class="muted device-agent">${esc(d.userAgent ?? '(browser not recorded)')}</span>
  </li>`,
    )
    .join('\n  ');
  const others = devices.filter((d) => !d.current).length;
  const body = `<h1>Your devices</h1>
${notice}
<section class="card wide">
  <h2>Where you are logged in</h2>
  <p class="muted">From <code>auth.sessions.list()</code>: each login's time and browser, never its session id or tokens.</p>
  <ul class="devices" id="devices" data-count="${devices.length}">
  ${rows || '<li class="muted">No active login found.</li>'}
  </ul>
  ${
    others > 0
      ? `<form method="post" action="/sessions/end-others"><button type="submit" class="button" id="end-others">Sign out of all other devices</button></form>`
      : '<p class="muted" id="no-others">You are logged in on this device only.</p>'
  }
</section>`;
  return layout({ title: 'Your devices', body, user: user ?? {} });
}

export function errorPage({ title, message, user }) {
  return layout({
    title,
    body: `<section class="card"><h1>${esc(title)}</h1><p>${esc(message)}</p><p><a href="/">Back to the home page</a></p></section>`,
    user,
  });
}
