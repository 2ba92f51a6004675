// oidc-provider prints development notices (its dev login pages, default policies, "use Node.js 22") that
// are expected for the example's local stand-in provider, some as soon as it is imported. This module is
// imported first so they stay out of the example's output; set SHOW_PROVIDER_NOTICES=1 to see them.
if (!process.env.SHOW_PROVIDER_NOTICES) {
  for (const level of ['warn', 'info', 'log']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      if (typeof args[0] === 'string' && /^oidc-provider (WARNING|NOTICE)/.test(args[0])) return;
      original(...args);
    };
  }
}
