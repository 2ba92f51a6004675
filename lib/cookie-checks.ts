import type { Request } from 'express';
import type { ResolvedConfig } from './config.js';

/**
 * Cookie checks (SECURITY.md, rule 10): setups that silently break security or logins are reported once, at the first
 * request that shows them (they cannot be seen before express-session has run).
 */
export function createCookieChecks(cfg: ResolvedConfig): (req: Request) => void {
  const warned = new Set<string>();
  const warn = (key: string, message: string) => {
    if (warned.has(key)) return;
    warned.add(key);
    cfg.logger.warn(message);
  };
  const httpsApp = cfg.appOrigin.startsWith('https:');
  let cookieChecked = false;
  return function checkCookies(req: Request): void {
    if (req.headers['x-forwarded-proto'] === 'https' && !req.secure && !req.app?.get('trust proxy')) {
      warn(
        'trust-proxy',
        "the app is served over https behind a proxy but Express 'trust proxy' is not set: express-session will not send Secure cookies and logins will fail. Call app.set('trust proxy', 1) (or the number of proxies).",
      );
    }
    type CookieView = { httpOnly?: boolean; sameSite?: unknown; secure?: unknown; domain?: string; path?: string };
    const cookie = (req as Request & { session?: { cookie?: CookieView } }).session?.cookie;
    if (!cookie || cookieChecked) return;
    cookieChecked = true;
    if (cookie.httpOnly === false) warn('httponly', 'the session cookie is not HttpOnly: set cookie.httpOnly to true in express-session.');
    if (cookie.sameSite === 'strict' || cookie.sameSite === true) {
      warn(
        'samesite',
        "the session cookie is SameSite=Strict: the provider's redirect back will arrive without it and logins will fail. Use sameSite: 'lax'.",
      );
    }
    // Left unset, the package sets `lax` on the sessions it creates or logs in; an explicit other choice is the app's.
    if (cookie.sameSite === false || cookie.sameSite === 'none') {
      warn('samesite-missing', "the session cookie is not SameSite=Lax: set cookie.sameSite to 'lax' in express-session (or leave it unset).");
    }
    // express-session leaves `secure` undefined by default: anything but true is a cookie sent over http.
    if (httpsApp && cookie.secure !== true)
      warn('secure', "the app is served over https but the session cookie is not Secure: set cookie.secure to true (or 'auto').");
    if (cookie.path !== undefined && cookie.path !== '/')
      warn('path', `the session cookie's Path is ${cookie.path}: use '/' so every route sees the login.`);
    if (cookie.domain) warn('domain', 'the session cookie has a Domain attribute: it is sent to every subdomain. Leave cookie.domain unset.');
  };
}
