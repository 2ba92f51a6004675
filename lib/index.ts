/**
 * express-oauth-client: a confidential OAuth 2.0 / OpenID Connect client for Express. The public surface
 * only; see the README for the quick start.
 *
 * @packageDocumentation
 */
export { oauth, type OAuthMiddleware } from './middleware.js';
export { requireAuth } from './require-auth.js';
export { requireConnection } from './require-connection.js';
export { oauthErrorHandler } from './error-handler.js';
export { asyncHandler } from './async-handler.js';
export { boundedSessionStore, type BoundedSessionStoreOptions } from './session-store.js';
export { RedisTokenStore, SCRIPTS, type RedisTokenStoreOptions, type RedisLikeClient } from './token-store/redis.js';
export { MemoryTokenStore, type MemoryTokenStoreOptions } from './token-store/memory.js';
export { recordKey, type TokenStore } from './token-store/types.js';
export {
  OAuthError,
  ConfigError,
  LoginRequiredError,
  CallbackError,
  ProviderError,
  StoreUnavailableError,
  RefreshUnavailableError,
  OriginNotAllowedError,
  UpstreamTimeoutError,
  ConnectionRequiredError,
  InsufficientScopeError,
  type OAuthErrorCode,
} from './errors.js';
export { OAuthEvents, type OAuthEventMap, type OAuthEventBase } from './events.js';
export type { OAuthOptions, OAuthPaths, Logger, OAuthUser, TokenInfo, OAuthRequestContext } from './types.js';
export { safeReturnTo } from './return-to.js';
export { providers } from './providers.js';
// Every option type of every preset (`GitHubOptions`, `GoogleOptions`, ...): a new preset needs no line here.
export type * from './providers.js';
export {
  oauthProxy,
  sessionEndpoint,
  DEFAULT_REQUEST_HEADERS,
  DEFAULT_RESPONSE_HEADERS,
  type OAuthProxyOptions,
  type SessionEndpointOptions,
  type SessionInfo,
} from './proxy/index.js';
