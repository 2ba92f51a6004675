// The SPA's front end: plain ES module, no build step. It never sees a token: it asks the server who is
// logged in (GET /oauth/session) and calls the API through the same-origin proxy (/bff/api/...).
const CSRF = { 'X-CSRF': '1' };
const root = document.getElementById('app');
const nav = document.getElementById('nav');
const apiPath = root.dataset.apiPath || '/me';

/** Creates an element with text content (never HTML from the network). */
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getSession() {
  const res = await fetch('/oauth/session', { headers: CSRF });
  if (!res.ok) throw new Error(`session endpoint answered ${res.status}`);
  return res.json();
}

function renderFields(id, obj) {
  const dl = el('dl', { class: 'fields', id });
  for (const [k, v] of Object.entries(obj ?? {})) {
    dl.append(el('dt', {}, k), el('dd', { 'data-key': k }, v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)));
  }
  return dl;
}

async function callApi(session) {
  const status = document.getElementById('api-status');
  status.textContent = 'Calling the API…';
  status.removeAttribute('data-refreshed');
  const res = await fetch(`/bff/api${apiPath}`, { headers: { ...CSRF, Accept: 'application/json' } });
  if (res.status === 401) return void render(await getSession());
  const data = await res.json().catch(() => ({}));
  const after = await getSession();
  const refreshed = after.expiresAt !== session.expiresAt;
  document.getElementById('api-data').replaceWith(renderFields('api-data', data));
  document.getElementById('expires').textContent = after.expiresAt ?? 'unknown';
  document.getElementById('expires').dataset.expiresAt = after.expiresAt ?? '';
  status.textContent = res.ok
    ? refreshed
      ? 'API answered; the server refreshed the access token first.'
      : 'API answered.'
    : `The API answered ${res.status}.`;
  status.dataset.refreshed = String(refreshed);
  session.expiresAt = after.expiresAt;
}

async function logout(session) {
  // A script-initiated logout: 204, then navigate where the app wants (here, back to the SPA).
  const res = await fetch(session.logoutUrl, { method: 'POST', headers: CSRF });
  if (res.status === 204) location.assign('/spa');
}

function render(session) {
  root.replaceChildren();
  nav.replaceChildren();
  if (!session.isAuthenticated) {
    root.append(el('h1', {}, 'Single-page app'), el('p', {}, 'You are not logged in.'));
    const login = el('a', { href: '/oauth/login?returnTo=%2Fspa', class: 'button', id: 'login' }, 'Log in');
    root.append(login);
    return;
  }
  const out = el('button', { type: 'button', class: 'link', id: 'logout' }, 'Log out');
  out.addEventListener('click', () => logout(session));
  nav.append(out);
  const user = session.user ?? {};
  root.append(el('h1', {}, `Hello, ${user.name ?? user.sub ?? 'user'}`));
  root.append(el('h2', {}, 'Session (from /oauth/session)'), renderFields('session', { sub: user.sub, email: user.email }));
  const expires = el('p', {}, 'Access token expires at ');
  const when = el('strong', { id: 'expires', 'data-expires-at': session.expiresAt ?? '' }, session.expiresAt ?? 'unknown');
  expires.append(when);
  root.append(expires);
  const call = el('button', { type: 'button', id: 'call' }, 'Call the API');
  call.addEventListener('click', () => callApi(session));
  root.append(el('h2', {}, 'API (through /bff/api)'), call, el('p', { id: 'api-status' }, ''), renderFields('api-data', {}));
}

getSession().then(render, (err) => {
  root.replaceChildren(el('p', { id: 'status' }, `Could not load the session: ${err.message}`));
});
