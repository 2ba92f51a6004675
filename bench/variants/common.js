/** Pieces every variant shares, so that the variants differ only in how they handle login and tokens. */
import http from 'node:http';
import axios from 'axios';
import session from 'express-session';
import { RedisStore } from 'connect-redis';

/** express-session on connect-redis, as a team would set it up (no resave, no empty sessions). */
export function redisSession({ redis, prefix, sessionSecret, wrap = (store) => store }) {
  return session({
    store: wrap(new RedisStore({ client: redis, prefix: `${prefix}sess:` })),
    secret: sessionSecret,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: false, path: '/' },
  });
}

/** One shared keep-alive axios instance for the upstream API, with the settings a careful team sets. */
export function apiClient(apiUrl) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const client = axios.create({
    baseURL: apiUrl,
    httpAgent: agent,
    timeout: 10_000,
    maxRedirects: 0,
    proxy: false,
    maxContentLength: 1 << 20,
    maxBodyLength: 1 << 20,
  });
  return { client, close: () => agent.destroy() };
}

export function healthz(_req, res) {
  res.type('text').send('ok');
}

/** Last error handler: a status and a short JSON body, never the error's details (they may hold tokens). */
export function finalErrorHandler(err, _req, res, _next) {
  const status = err?.response?.status ?? err?.status ?? err?.statusCode ?? 500;
  if (status >= 500 && process.env.BENCH_VERBOSE) console.error(`app error: ${err?.name} ${err?.code ?? ''} ${status}`);
  if (res.headersSent) return void res.end();
  res.status(status).json({ error: 'failed', status });
}

export const logger = {
  warn: (m, meta) => process.env.BENCH_VERBOSE && console.warn(`warn ${m}`, meta ?? ''),
  error: (m, meta) => console.error(`error ${m}`, meta ?? ''),
};
