/** Options of {@link startExample}; each overrides the matching environment variable. */
export interface StartExampleOptions {
  /** Client app port (PORT, default 3000; 0 picks a free port). */
  port?: number;
  /** Local provider port (PROVIDER_PORT, default 3001). */
  providerPort?: number;
  /** Local API port (API_PORT, default 3002). */
  apiPort?: number;
  /** Local access token lifetime in seconds, of both local providers (ACCESS_TOKEN_TTL, default 60). */
  accessTokenTtl?: number;
  /** Local GitHub port (CONNECT_PROVIDER_PORT, default 3003). */
  connectProviderPort?: number;
  /** Local GitHub API port (CONNECT_API_PORT, default 3004). */
  connectApiPort?: number;
  /** Redis URL (REDIS_URL, default redis://127.0.0.1:6379). */
  redisUrl?: string;
  /** Collect output in `logs` instead of printing it. */
  quiet?: boolean;
  /** Environment to read instead of process.env. */
  env?: Record<string, string | undefined>;
}

export interface RunningExample {
  /** Where the client app is served (open this). */
  appUrl: string;
  /** The local provider's issuer (local mode only). */
  providerUrl: string | undefined;
  /** The local API's base URL (local mode only). */
  apiUrl: string | undefined;
  /** Which stores are in use. */
  storage: 'redis' | 'memory';
  /** Counts of the package's events. */
  stats: {
    logins: number;
    refreshes: number;
    refreshFailures: number;
    logouts: number;
    /** Logins ended from elsewhere (`session_ended`: back-channel logout, "sign out of other devices"). */
    sessionsEnded: number;
    /** Events of the connection (`oauth({ name: 'github', role: 'connect' })`). */
    connects: number;
    connectRefreshes: number;
    disconnects: number;
  };
  /** Every token the local provider issued (local mode only). */
  issued: { access: Set<string>; refresh: Set<string>; id: Set<string> };
  /** The local client's secret (local mode only). */
  clientSecret: string | undefined;
  /** The local GitHub (the connection, unless CONNECT_PROVIDER is set). */
  connectUrl: string | undefined;
  /** The local GitHub's API (`GET /user`). */
  connectApiUrl: string | undefined;
  /** Every token the local GitHub issued. */
  connectIssued: { access: Set<string>; refresh: Set<string> };
  /** The example's client secret at the local GitHub. */
  connectClientSecret: string | undefined;
  /** Every line the example printed (or would have, when quiet). */
  logs: string[];
  /** Stops everything the example started. */
  close(): Promise<void>;
}

/** Starts the local provider and API (unless PROVIDER or ISSUER is set) and the client app. */
export function startExample(options?: StartExampleOptions): Promise<RunningExample>;

/** Options of {@link startProviderOnly}; each overrides the matching environment variable. */
export interface StartProviderOnlyOptions {
  /** Local provider port (PROVIDER_PORT, default 3001; 0 picks a free port). */
  providerPort?: number;
  /** Local API port (API_PORT, default 3002). */
  apiPort?: number;
  /** Access token lifetime in seconds (ACCESS_TOKEN_TTL, default 60). */
  accessTokenTtl?: number;
  /** Local GitHub port (CONNECT_PROVIDER_PORT, default 3003). */
  connectProviderPort?: number;
  /** Local GitHub API port (CONNECT_API_PORT, default 3004). */
  connectApiPort?: number;
  /** Collect output in `logs` instead of printing it. */
  quiet?: boolean;
  /** Environment to read instead of process.env (PORT, APP_URL, CLIENT_ID, CLIENT_SECRET, ...). */
  env?: Record<string, string | undefined>;
}

export interface RunningProviderOnly {
  /** The app the client is registered for. */
  appUrl: string;
  providerUrl: string;
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** The local GitHub-style provider (client `example-app`, secret LOCAL_CONNECT_CLIENT_SECRET). */
  connectUrl: string;
  /** Its API (`GET /user`). */
  connectApiUrl: string;
  logs: string[];
  close(): Promise<void>;
}

/** The local client's secret in provider-only mode (the value in .env.example). */
export const LOCAL_CLIENT_SECRET: string;

/** The example's client secret at the local GitHub in provider-only mode. */
export const LOCAL_CONNECT_CLIENT_SECRET: string;

/** Starts only the local provider and API, with a client registered for the app at APP_URL (`npm run example -- --provider-only`). */
export function startProviderOnly(options?: StartProviderOnlyOptions): Promise<RunningProviderOnly>;
