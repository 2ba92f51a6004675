// oidc-provider prints development notices on every start ("Unsupported runtime", dev interactions,
// default policies); they are expected in tests and would bury real output.
for (const level of ['warn', 'info', 'log'] as const) {
  const original = console[level].bind(console);
  console[level] = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && /^oidc-provider (WARNING|NOTICE)/.test(args[0])) return;
    original(...args);
  };
}
