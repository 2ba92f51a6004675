import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Wraps an async route handler so a rejected promise reaches Express's error handling (`next(err)`).
 * Express 5 does this by itself; on Express 4 an async handler that throws (say `req.oauthClient` answering
 * `login_required`) is an unhandled rejection that crashes the process. Harmless on Express 5.
 *
 * @example
 * ```ts
 * app.get('/profile', requireAuth(), asyncHandler(async (req, res) => {
 *   res.json((await req.oauthClient.get('/me')).data);
 * }));
 * ```
 */
export function asyncHandler<Req extends Request = Request, Res extends Response = Response>(
  handler: (req: Req, res: Res, next: NextFunction) => unknown,
): RequestHandler {
  return function asyncRouteHandler(req, res, next) {
    try {
      Promise.resolve(handler(req as Req, res as Res, next)).catch(next);
    } catch (err) {
      next(err);
    }
  };
}
