import { execFileSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';

describe('package entry points (built dist/)', () => {
  it('a CommonJS app can require() the package (Node >= 20.19)', () => {
    const out = execFileSync(process.execPath, ['-e', "const m = require('express-oauth-client'); console.log(Object.keys(m).sort().join(','))"], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    for (const name of [
      'oauth',
      'requireAuth',
      'RedisTokenStore',
      'MemoryTokenStore',
      'OAuthError',
      'providers',
      'oauthErrorHandler',
      'boundedSessionStore',
    ]) {
      expect(out.trim().split(',')).toContain(name);
    }
  });

  it('an ES module imports the same names', () => {
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "import * as m from 'express-oauth-client'; console.log(typeof m.oauth, typeof m.requireAuth)"],
      {
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
      },
    );
    expect(out.trim()).toBe('function function');
  });
});
