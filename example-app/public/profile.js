// The profile page's script: a countdown of the access token's lifetime and the "Call the API again"
// button. It never sees a token: it gets the API's data and the token's expiry time from /api/data.
const expires = document.getElementById('expires');
const button = document.getElementById('call-api');
const status = document.getElementById('api-status');
const data = document.getElementById('api-data');

function renderCountdown() {
  const at = Date.parse(expires.dataset.expiresAt || '');
  if (Number.isNaN(at)) return;
  const left = Math.round((at - Date.now()) / 1000);
  const clock = new Date(at).toLocaleTimeString();
  if (left > 0) {
    expires.dataset.state = 'valid';
    expires.textContent = `in ${left} s (${clock})`;
  } else {
    expires.dataset.state = 'expired';
    expires.textContent = `expired at ${clock}: the next API call refreshes it`;
  }
}

function renderFields(obj) {
  data.replaceChildren();
  for (const [key, value] of Object.entries(obj ?? {}).slice(0, 20)) {
    const dt = document.createElement('dt');
    dt.textContent = key;
    const dd = document.createElement('dd');
    dd.dataset.key = key;
    dd.textContent = value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value);
    data.append(dt, dd);
  }
}

async function callApi() {
  button.disabled = true;
  status.textContent = 'Calling the API…';
  delete status.dataset.error;
  try {
    const res = await fetch('/api/data', {
      headers: { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' },
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (res.status === 401) {
      window.location.assign('/oauth/login?returnTo=%2Fprofile');
      return;
    }
    const body = await res.json();
    if (!res.ok) throw new Error(body.message || `The app answered ${res.status}.`);
    renderFields(body.api);
    if (body.token?.expiresAt) expires.dataset.expiresAt = body.token.expiresAt;
    renderCountdown();
    const time = new Date().toLocaleTimeString();
    status.dataset.refreshed = String(body.refreshed);
    status.textContent = body.refreshed
      ? `Fresh data at ${time}; the access token had expired and was refreshed on the server.`
      : `Fresh data at ${time}; the access token was still valid.`;
  } catch (err) {
    status.dataset.error = 'true';
    status.textContent = err instanceof Error ? err.message : 'The call failed.';
  } finally {
    button.disabled = false;
  }
}

renderCountdown();
setInterval(renderCountdown, 1000);
button.addEventListener('click', callApi);
