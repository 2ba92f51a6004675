/**
 * Variant "hand-written proxy route" for P6: the baseline app plus the proxy route a team writes by hand
 * (http-proxy-middleware is not a dependency here, so it is written as that library does it: node:http,
 * a keep-alive agent, the request piped up and the response piped back), the token read from the session.
 * It checks the anti-CSRF header and login like the package does, and nothing more: no path
 * normalisation, no header allowlist, no caps, no redaction, no refresh.
 */
import http from 'node:http';
import { build as buildBaseline } from './baseline.js';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'trailer']);

export async function build(options) {
  const built = await buildBaseline(options);
  const target = new URL(options.apiUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  built.app.use('/p6', (req, res) => {
    if (req.headers['x-csrf'] !== '1') return void res.status(403).json({ error: 'csrf' });
    const tokens = req.session.tokens;
    if (!req.session.user || !tokens) return void res.status(401).json({ error: 'login_required' });
    const headers = { accept: req.headers.accept ?? '*/*', authorization: `Bearer ${tokens.access_token}` };
    if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
    if (req.headers['content-length']) headers['content-length'] = req.headers['content-length'];
    const upstream = http.request({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (up) => {
      const out = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP.has(k) && k !== 'set-cookie') out[k] = v;
      res.writeHead(up.statusCode, out);
      up.pipe(res);
    });
    upstream.on('error', () => (res.headersSent ? res.destroy() : res.status(502).json({ error: 'upstream' })));
    req.pipe(upstream);
  });
  const close = built.close;
  return { ...built, close: () => (agent.destroy(), close?.()) };
}
