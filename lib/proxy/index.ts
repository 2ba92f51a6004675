export { oauthProxy } from './proxy.js';
export type { OAuthProxyOptions } from './options.js';
export { DEFAULT_REQUEST_HEADERS, DEFAULT_RESPONSE_HEADERS } from './headers.js';
export { sessionEndpoint, type SessionEndpointOptions, type SessionInfo } from './session-endpoint.js';
