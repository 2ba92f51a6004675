// `npm run example`: a local identity provider, a resource API and the client app, in one process.
// Every setting can be overridden from the environment (see README): set PROVIDER (github, google,
// microsoft, gitlab, nylas) or ISSUER to use a real provider instead of the local one.
// `npm run example -- --provider-only` starts only the local provider and API, registered for the README's
// Quick start (settings as in .env.example).
// The app also offers a second provider, with `role: 'connect'`: a local GitHub-style plain OAuth 2.0 provider
// and API (local-github.js), or the real GitHub with CONNECT_PROVIDER=github, CONNECT_CLIENT_ID and
// CONNECT_CLIENT_SECRET (CONNECT_PROVIDER=none: no connection).
import './provider-notices.js';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { MemoryTokenStore, RedisTokenStore, boundedSessionStore, oauth, providers } from 'express-oauth-client';
import { createApp } from './app.js';
import { startLocalGitHub } from './local-github.js';
import { closeServer, listen, startLocalProvider, startResourceApi } from './local-provider.js';

/** Defaults for the API path each preset's token is meant for (overridable with API_PATH). */
const PRESET_API_PATHS = {
  github: '/user',
  google: '/oauth2/v3/userinfo',
  microsoft: '/me',
  gitlab: '/user',
  nylas: '/v3/grants/me',
};

const PRESET_NAMES = { github: 'GitHub', google: 'Google', microsoft: 'Microsoft', gitlab: 'GitLab', nylas: 'Nylas' };

function numberFrom(value, name, fallback) {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (got ${JSON.stringify(value)}).`);
  return n;
}

/** A random secret for this run only (sessions and token records then do not survive a restart). */
const ephemeral = () => randomBytes(32).toString('base64url');

/**
 * Connects to Redis within about a second, or returns undefined. Once connected, the client reconnects
 * on its own; commands fail fast while it is down instead of queueing.
 */
async function connectRedis(url, log) {
  let connected = false;
  let warned = false;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 1000,
      reconnectStrategy: (retries) => (connected ? Math.min(100 * 2 ** retries, 3000) : false),
    },
  });
  client.on('error', (err) => {
    if (connected && !warned) {
      warned = true;
      log(`Redis connection problem (${err?.code ?? err?.message ?? 'error'}); retrying in the background.`);
    }
  });
  client.on('ready', () => {
    warned = false;
  });
  let timer;
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), 1200);
      }),
    ]);
    connected = true;
    return client;
  } catch {
    client.destroy?.();
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The local client's secret in `--provider-only` mode, the same as in .env.example (a loopback-only demo). */
export const LOCAL_CLIENT_SECRET = 'local-provider-demo-secret';

/** The local GitHub's client secret in `--provider-only` mode (a loopback-only demo, like LOCAL_CLIENT_SECRET). */
export const LOCAL_CONNECT_CLIENT_SECRET = 'local-github-demo-secret';

/** The connection's instance name: its routes are /oauth/github/login, /oauth/github/callback, /oauth/github/disconnect. */
const CONNECTION_NAME = 'github';

/** CONNECT_PROVIDER: '' (the local GitHub), 'github' or 'none'. */
function connectProviderFrom(env) {
  const value = (env.CONNECT_PROVIDER ?? '').toLowerCase();
  if (value !== '' && value !== 'github' && value !== 'none') {
    throw new Error(`CONNECT_PROVIDER must be github or none (got ${JSON.stringify(env.CONNECT_PROVIDER)}); unset it for the local GitHub.`);
  }
  return value;
}

/** Starts the local GitHub-style provider and its API, for a client registered with `client`. */
function startConnectProvider(env, options, client, onTokens) {
  return startLocalGitHub({
    port: options.connectProviderPort ?? numberFrom(env.CONNECT_PROVIDER_PORT, 'CONNECT_PROVIDER_PORT', 3003),
    apiPort: options.connectApiPort ?? numberFrom(env.CONNECT_API_PORT, 'CONNECT_API_PORT', 3004),
    accessTokenTtl: options.accessTokenTtl ?? numberFrom(env.ACCESS_TOKEN_TTL, 'ACCESS_TOKEN_TTL', 60),
    client,
    onTokens,
  });
}

/**
 * Starts only the local identity provider and API, with one client registered for an app at APP_URL
 * (default http://localhost:$PORT, PORT default 3000): redirect URI `$APP_URL/oauth/callback`, post-logout
 * redirect URI `$APP_URL/`, grant types authorization_code and refresh_token, scopes openid profile email
 * offline_access. For the README's Quick start, or any app of your own, on a machine with no account anywhere.
 *
 * @param {object} [options]
 * @param {number} [options.providerPort] local provider port (PROVIDER_PORT, default 3001; 0 picks a free port)
 * @param {number} [options.apiPort] local API port (API_PORT, default 3002)
 * @param {number} [options.accessTokenTtl] access token lifetime in seconds (ACCESS_TOKEN_TTL, default 60)
 * @param {boolean} [options.quiet] collect output in `logs` instead of printing it
 * @param {Record<string, string | undefined>} [options.env] environment to read (default process.env)
 */
export async function startProviderOnly(options = {}) {
  const env = options.env ?? process.env;
  const logs = [];
  const log = (line) => {
    logs.push(line);
    if (!options.quiet) console.log(line);
  };
  if (env.PROVIDER || env.ISSUER) throw new Error('--provider-only starts the local provider: unset PROVIDER and ISSUER.');
  const port = numberFrom(env.PORT, 'PORT', 3000);
  const appUrl = (env.APP_URL ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const client = {
    id: env.CLIENT_ID ?? 'example-app',
    secret: env.CLIENT_SECRET ?? LOCAL_CLIENT_SECRET,
    redirectUri: `${appUrl}/oauth/callback`,
    postLogoutRedirectUri: `${appUrl}/`,
  };
  const apiClient = { id: 'example-api', secret: ephemeral() };
  const closers = [];
  const close = async () => {
    while (closers.length)
      await closers
        .pop()()
        .catch(() => {});
  };
  try {
    const op = await startLocalProvider({
      port: options.providerPort ?? numberFrom(env.PROVIDER_PORT, 'PROVIDER_PORT', 3001),
      accessTokenTtl: options.accessTokenTtl ?? numberFrom(env.ACCESS_TOKEN_TTL, 'ACCESS_TOKEN_TTL', 60),
      client,
      apiClient,
    });
    closers.push(op.close);
    const api = await startResourceApi({
      port: options.apiPort ?? numberFrom(env.API_PORT, 'API_PORT', 3002),
      issuer: op.issuer,
      apiClient,
      exampleClientId: client.id,
    });
    closers.push(api.close);
    const ghClient = { id: 'example-app', secret: LOCAL_CONNECT_CLIENT_SECRET, redirectUri: `${appUrl}/oauth/${CONNECTION_NAME}/callback` };
    const gh = await startConnectProvider(env, options, ghClient);
    closers.push(gh.close);
    log(`Local identity provider at ${op.issuer} (log in with any name and password), API at ${api.url} (GET /me).`);
    log(`Registered client for an app at ${appUrl}:`);
    log(`  redirect URI ${client.redirectUri}, post-logout redirect URI ${client.postLogoutRedirectUri}`);
    log('  grant types authorization_code refresh_token, scopes openid profile email offline_access');
    log('Settings for your app (.env):');
    log(`  ISSUER=${op.issuer}`);
    log(`  CLIENT_ID=${client.id}`);
    log(`  CLIENT_SECRET=${client.secret}`);
    log(`  API_BASE_URL=${api.url}`);
    log(`Local GitHub at ${gh.url} (plain OAuth 2.0, authorize with any login), its API at ${gh.apiUrl} (GET /user),`);
    log(`  for a connection: oauth({ name: 'github', role: 'connect', ...providers.github({ baseUrl, apiBaseUrl, clientId, clientSecret }) })`);
    log(`  callback URL ${ghClient.redirectUri}; revocation (RFC 7009) at ${gh.url}/applications/revoke`);
    log(`  GITHUB_BASE_URL=${gh.url}`);
    log(`  GITHUB_API_URL=${gh.apiUrl}`);
    log(`  GITHUB_CLIENT_ID=${ghClient.id}`);
    log(`  GITHUB_CLIENT_SECRET=${ghClient.secret}`);
    return {
      appUrl,
      providerUrl: op.issuer,
      apiUrl: api.url,
      clientId: client.id,
      clientSecret: client.secret,
      connectUrl: gh.url,
      connectApiUrl: gh.apiUrl,
      logs,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Starts the example. Options override the environment; the environment overrides the defaults.
 *
 * @param {object} [options]
 * @param {number} [options.port] client app port (PORT, default 3000; 0 picks a free port)
 * @param {number} [options.providerPort] local provider port (PROVIDER_PORT, default 3001)
 * @param {number} [options.apiPort] local API port (API_PORT, default 3002)
 * @param {number} [options.accessTokenTtl] local access token lifetime in seconds (ACCESS_TOKEN_TTL, default 60)
 * @param {string} [options.redisUrl] Redis URL (REDIS_URL, default redis://127.0.0.1:6379)
 * @param {boolean} [options.quiet] collect output in `logs` instead of printing it
 * @param {Record<string, string | undefined>} [options.env] environment to read (default process.env)
 */
/**
 * `OTEL_EXPORTER=console`: the package's OpenTelemetry metrics (every 10 s) and spans printed to the console,
 * through the OpenTelemetry SDK (dev dependencies here; in an app, the SDK and exporter of your choice).
 */
async function startTelemetry(exporter, log) {
  if (!exporter) return;
  if (exporter !== 'console') throw new Error(`OTEL_EXPORTER must be 'console' (got ${JSON.stringify(exporter)}).`);
  const [{ metrics, trace }, sdkMetrics, sdkTrace] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/sdk-trace-base'),
  ]);
  const reader = new sdkMetrics.PeriodicExportingMetricReader({ exporter: new sdkMetrics.ConsoleMetricExporter(), exportIntervalMillis: 10_000 });
  metrics.setGlobalMeterProvider(new sdkMetrics.MeterProvider({ readers: [reader] }));
  trace.setGlobalTracerProvider(
    new sdkTrace.BasicTracerProvider({ spanProcessors: [new sdkTrace.SimpleSpanProcessor(new sdkTrace.ConsoleSpanExporter())] }),
  );
  log('OpenTelemetry: metrics every 10 s and spans go to the console (OTEL_EXPORTER=console).');
}

export async function startExample(options = {}) {
  const env = options.env ?? process.env;
  const logs = [];
  const log = (line) => {
    logs.push(line);
    if (!options.quiet) console.log(line);
  };
  const stats = { logins: 0, refreshes: 0, refreshFailures: 0, logouts: 0, sessionsEnded: 0, connects: 0, connectRefreshes: 0, disconnects: 0 };
  const issued = { access: new Set(), refresh: new Set(), id: new Set() };
  const connectIssued = { access: new Set(), refresh: new Set() };
  const closers = [];
  const close = async () => {
    while (closers.length)
      await closers
        .pop()()
        .catch(() => {});
  };

  try {
    await startTelemetry(env.OTEL_EXPORTER, log);
    const port = options.port ?? numberFrom(env.PORT, 'PORT', 3000);
    const presetName = env.PROVIDER?.toLowerCase();
    if (presetName && !Object.hasOwn(providers, presetName)) {
      throw new Error(`PROVIDER must be one of ${Object.keys(providers).join(', ')} (got ${JSON.stringify(env.PROVIDER)}).`);
    }
    const local = !presetName && !env.ISSUER;
    const connectProvider = connectProviderFrom(env);

    // The client app's server is bound first: its URL is part of the provider's client registration.
    const appServer = http.createServer();
    const appPort = await listen(appServer, port);
    closers.push(() => closeServer(appServer));
    const appUrl = (env.APP_URL ?? `http://localhost:${appPort}`).replace(/\/+$/, '');
    const redirectUri = `${appUrl}/oauth/callback`;

    let providerOptions;
    let apiPath = env.API_PATH;
    let providerName;
    let localUrls;
    if (local) {
      const client = {
        id: env.CLIENT_ID ?? 'example-app',
        secret: env.CLIENT_SECRET ?? ephemeral(),
        redirectUri,
        postLogoutRedirectUri: `${appUrl}/`,
        backchannelLogoutUri: `${appUrl}/oauth/backchannel-logout`,
      };
      const apiClient = { id: 'example-api', secret: ephemeral() };
      const accessTokenTtl = options.accessTokenTtl ?? numberFrom(env.ACCESS_TOKEN_TTL, 'ACCESS_TOKEN_TTL', 60);
      const op = await startLocalProvider({
        port: options.providerPort ?? numberFrom(env.PROVIDER_PORT, 'PROVIDER_PORT', 3001),
        accessTokenTtl,
        client,
        apiClient,
        onTokens: ({ access_token, refresh_token, id_token }) => {
          if (access_token) issued.access.add(access_token);
          if (refresh_token) issued.refresh.add(refresh_token);
          if (id_token) issued.id.add(id_token);
        },
      });
      closers.push(op.close);
      const api = await startResourceApi({
        port: options.apiPort ?? numberFrom(env.API_PORT, 'API_PORT', 3002),
        issuer: op.issuer,
        apiClient,
        exampleClientId: client.id,
      });
      closers.push(api.close);
      providerOptions = {
        issuer: op.issuer,
        clientId: client.id,
        clientSecret: client.secret,
        scope: env.SCOPE ?? 'openid profile email',
        apiBaseUrl: env.API_BASE_URL ?? api.url,
      };
      apiPath ??= '/me';
      providerName = 'the local identity provider';
      localUrls = { providerUrl: op.issuer, apiUrl: api.url, clientSecret: client.secret };
    } else {
      if (!env.CLIENT_ID || !env.CLIENT_SECRET) {
        throw new Error(`Set CLIENT_ID and CLIENT_SECRET of the app you registered at ${presetName ?? env.ISSUER} (redirect URI ${redirectUri}).`);
      }
      const creds = { clientId: env.CLIENT_ID, clientSecret: env.CLIENT_SECRET };
      if (presetName) {
        const extra =
          presetName === 'microsoft' ? { tenant: env.TENANT ?? '' } : presetName === 'nylas' && env.NYLAS_REGION ? { region: env.NYLAS_REGION } : {};
        providerOptions = providers[presetName]({ ...creds, ...extra });
        apiPath ??= PRESET_API_PATHS[presetName];
        providerName = PRESET_NAMES[presetName];
      } else {
        if (!env.API_BASE_URL || !env.API_PATH) {
          throw new Error('With ISSUER, also set API_BASE_URL and API_PATH: the API your access tokens are for (e.g. the userinfo endpoint).');
        }
        providerOptions = { issuer: env.ISSUER, ...creds };
        providerName = new URL(env.ISSUER).host;
      }
      if (env.SCOPE) providerOptions.scope = env.SCOPE;
      if (env.API_BASE_URL) providerOptions.apiBaseUrl = env.API_BASE_URL;
    }

    // The connection (role: 'connect'): the local GitHub, or the real one.
    let connectOptions;
    let connectLabel;
    let connectLocal;
    const connectRedirectUri = `${appUrl}/oauth/${CONNECTION_NAME}/callback`;
    if (connectProvider === 'github') {
      if (!env.CONNECT_CLIENT_ID || !env.CONNECT_CLIENT_SECRET) {
        throw new Error(
          `Set CONNECT_CLIENT_ID and CONNECT_CLIENT_SECRET of the OAuth app you registered at GitHub (callback URL ${connectRedirectUri}).`,
        );
      }
      connectOptions = providers.github({
        clientId: env.CONNECT_CLIENT_ID,
        clientSecret: env.CONNECT_CLIENT_SECRET,
        ...(env.CONNECT_SCOPE ? { scope: env.CONNECT_SCOPE } : {}),
      });
      connectLabel = 'GitHub';
    } else if (connectProvider === '') {
      const ghClient = { id: 'example-app', secret: ephemeral(), redirectUri: connectRedirectUri };
      const gh = await startConnectProvider(env, options, ghClient, ({ access_token, refresh_token }) => {
        if (access_token) connectIssued.access.add(access_token);
        if (refresh_token) connectIssued.refresh.add(refresh_token);
      });
      closers.push(gh.close);
      // The GitHub preset, pointed at the local stand-in as at a GitHub Enterprise Server; plus its RFC 7009 revocation.
      connectOptions = {
        ...providers.github({ clientId: ghClient.id, clientSecret: ghClient.secret, baseUrl: gh.url, apiBaseUrl: gh.apiUrl }),
        revocationEndpoint: `${gh.url}/applications/revoke`,
      };
      connectLabel = 'GitHub (local)';
      connectLocal = { url: gh.url, apiUrl: gh.apiUrl, clientSecret: ghClient.secret };
    }

    // Redis when it answers; the memory stores otherwise.
    const redisUrl = options.redisUrl ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const redis = await connectRedis(redisUrl, log);
    let sessionStore;
    let tokenStore;
    if (redis) {
      closers.push(() => redis.close());
      // As the README recommends: a slow or dead Redis gives 503 within 2 s, never a hanging page.
      sessionStore = boundedSessionStore(new RedisStore({ client: redis, prefix: 'example:sess:' }));
      tokenStore = new RedisTokenStore({ client: redis, prefix: 'example:oauth:' });
    } else {
      log(`No Redis at ${new URL(redisUrl).host}: using in-memory session and token stores (logins are lost on restart).`);
      sessionStore = new session.MemoryStore();
      tokenStore = new MemoryTokenStore();
    }

    const encryptionKey = env.TOKEN_KEY ?? ephemeral();
    // The package's log lines never hold a token, a code or the secret; print them with their details.
    const logger = {
      warn: (message, meta) => log(`express-oauth-client: ${message}${meta ? ` ${JSON.stringify(meta)}` : ''}`),
      error: (message, meta) => log(`express-oauth-client: ${message}${meta ? ` ${JSON.stringify(meta)}` : ''}`),
    };
    // Back-channel logout needs an OpenID provider that knows our backchannel_logout_uri: the local one registers
    // it; with another provider, set BACKCHANNEL_LOGOUT=1 once you have registered `${appUrl}/oauth/backchannel-logout`.
    const scopes = providerOptions.scope === undefined ? ['openid'] : [providerOptions.scope].flat().join(' ').split(/\s+/);
    const backchannelLogout = scopes.includes('openid') && (local || env.BACKCHANNEL_LOGOUT === '1');
    const auth = oauth({
      ...providerOptions,
      redirectUri,
      postLogoutRedirectUri: `${appUrl}/`,
      tokenStore,
      encryptionKey,
      logger,
      backchannelLogout,
      // The "Your devices" page shows each login's browser.
      sessionUserAgent: true,
    });
    closers.push(async () => auth.close());
    auth.events.on('login', () => stats.logins++);
    auth.events.on('refresh', () => stats.refreshes++);
    auth.events.on('refresh_failed', () => stats.refreshFailures++);
    auth.events.on('logout', () => stats.logouts++);
    auth.events.on('session_ended', ({ reason }) => {
      stats.sessionsEnded++;
      log(`A session ended (${reason}).`);
    });
    await auth.ready();

    let connection;
    if (connectOptions) {
      // A second instance: its own routes (/oauth/github/...), session data, token record and lock, in the same stores.
      const connectAuth = oauth({
        ...connectOptions,
        name: CONNECTION_NAME,
        role: 'connect',
        requireLogin: true, // connect only once logged in
        redirectUri: connectRedirectUri,
        tokenStore,
        encryptionKey,
        logger,
      });
      closers.push(async () => connectAuth.close());
      connectAuth.events.on('login', () => stats.connects++);
      connectAuth.events.on('refresh', () => stats.connectRefreshes++);
      connectAuth.events.on('disconnect', () => stats.disconnects++);
      await connectAuth.ready();
      connection = { auth: connectAuth, name: CONNECTION_NAME, label: connectLabel, apiPath: '/user' };
    }

    const app = createApp({
      auth,
      sessionStore,
      sessionSecret: env.SESSION_SECRET ?? ephemeral(),
      secureCookies: appUrl.startsWith('https:'),
      appUrl,
      apiPath,
      providerName,
      log,
      // The single-page app's API proxy targets the same API (see spa.js).
      apiBaseUrl: providerOptions.apiBaseUrl,
      connection,
    });
    appServer.on('request', app);

    log(`Example app: open ${appUrl}/`);
    if (providerOptions.apiBaseUrl) log(`Single-page app (BFF): open ${appUrl}/spa`);
    if (local) log(`Local identity provider at ${localUrls.providerUrl} (log in with any name and password), API at ${localUrls.apiUrl}.`);
    if (connectLocal) log(`Local GitHub (for Connect) at ${connectLocal.url}, its API at ${connectLocal.apiUrl}.`);
    else if (connection) log(`Connect: GitHub (callback URL ${connectRedirectUri}).`);

    return {
      appUrl,
      providerUrl: localUrls?.providerUrl,
      apiUrl: localUrls?.apiUrl,
      /** The stores in use: 'redis' or 'memory'. */
      storage: redis ? 'redis' : 'memory',
      /** Counts of the package's events. */
      stats,
      /** Every token the local provider issued (local mode only), for the test that checks none reaches the browser. */
      issued,
      /** The local client's secret (local mode only), for the same check. */
      clientSecret: localUrls?.clientSecret,
      /** The local GitHub and its API (when the connection is local). */
      connectUrl: connectLocal?.url,
      connectApiUrl: connectLocal?.apiUrl,
      /** Every token the local GitHub issued, and its client secret, for the same check. */
      connectIssued,
      connectClientSecret: connectLocal?.clientSecret,
      logs,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

// Run directly (`node example-app/start.js`): start, print, stop on Ctrl-C.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const example = process.argv.includes('--provider-only') ? await startProviderOnly() : await startExample();
    let stopping = false;
    const stop = async () => {
      if (stopping) return process.exit(1);
      stopping = true;
      console.log('\nStopping…');
      await example.close();
      process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  } catch (err) {
    console.error(`Could not start the example: ${err?.message ?? err}`);
    if (err?.code === 'EADDRINUSE')
      console.error('A port is in use: set PORT, PROVIDER_PORT, API_PORT, CONNECT_PROVIDER_PORT and CONNECT_API_PORT to free ones.');
    process.exit(1);
  }
}
