import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A live server that must never be contacted: it records every request (method, url, headers, body)
 * and answers 200 with a plausible body, so a client that follows a redirect to it would succeed and
 * the only way to tell is `requests`.
 */
export interface Recorder {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startRecorder(
  respond: (req: RecordedRequest, url: string) => { status?: number; contentType?: string; body: string } = () => ({
    body: JSON.stringify({ access_token: 'recorder-access-token', token_type: 'bearer', expires_in: 3600, ok: true }),
  }),
): Promise<Recorder> {
  const requests: RecordedRequest[] = [];
  let url = '';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      const out = respond(recorded, url);
      res.writeHead(out.status ?? 200, { 'content-type': out.contentType ?? 'application/json' }).end(out.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
