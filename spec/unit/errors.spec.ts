import { describe, expect, it } from '@jest/globals';
import { ERROR_SPECS, createOAuthError } from '../../lib/errors.js';
import {
  ConfigError,
  LoginRequiredError,
  OAuthError,
  OriginNotAllowedError,
  ProviderError,
  RefreshUnavailableError,
  StoreUnavailableError,
  UpstreamTimeoutError,
} from '../../lib/index.js';

describe('errors come from one table of code -> status / Retry-After / expose', () => {
  it('every class answers with the status and Retry-After of its code', () => {
    const errors: OAuthError[] = [
      new ConfigError('x'),
      new LoginRequiredError(),
      new ProviderError('token_endpoint_error', 'x'),
      new ProviderError('token_endpoint_timeout', 'x'),
      new ProviderError('id_token_invalid', 'x'),
      new ProviderError('provider_unavailable', 'x'),
      new StoreUnavailableError(),
      new RefreshUnavailableError(),
      new OriginNotAllowedError('https://evil.test'),
      new UpstreamTimeoutError(),
    ];
    for (const err of errors) {
      const spec = ERROR_SPECS[err.code];
      expect([err.code, err.status, err.statusCode, err.retryAfter]).toEqual([err.code, spec.status, spec.status, spec.retryAfter]);
      expect(err.expose).toBe(spec.expose ?? spec.status < 500);
    }
  });

  it('createOAuthError takes status, Retry-After and exposure from the table, and lets one error override them', () => {
    const busy = createOAuthError('login_busy', 'busy');
    expect([busy.status, busy.retryAfter, busy.expose]).toEqual([429, 60, true]);
    const config = createOAuthError('config_invalid', 'mount oauth() first');
    expect([config.status, config.expose]).toEqual([500, false]);
    expect(createOAuthError('provider_unavailable', 'x', { retryAfter: 30 }).retryAfter).toBe(30);
    expect(JSON.stringify(config)).toBe('{"error":"config_invalid"}');
  });
});
