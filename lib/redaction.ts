/** What replaces a token reflected back by an API, in anything handed back to the app or the browser. */
export const REDACTED = '[REDACTED]';

/** The forms in which a reflected token shows up: raw, JSON-escaped (`\/`) and percent-encoded. */
export function tokenForms(token: string): string[] {
  return [...new Set([token, token.replaceAll('/', '\\/'), encodeURIComponent(token)])].filter((f) => f.length > 0);
}

const formsByRecord = new WeakMap<object, readonly string[]>();

/**
 * {@link tokenForms} of a token record's access token, computed once per record (a record is shared by
 * the API calls of its session while it is cached) and dropped with the record.
 */
export function recordTokenForms(record: { readonly access_token: string }): readonly string[] {
  let forms = formsByRecord.get(record);
  if (!forms) formsByRecord.set(record, (forms = Object.freeze(tokenForms(record.access_token))));
  return forms;
}

/** Replaces every token form in a text (a header value, a status text, a decoded body). */
export function redactText(value: string, forms: readonly string[]): string {
  for (const f of forms) if (value.includes(f)) value = value.replaceAll(f, REDACTED);
  return value;
}
