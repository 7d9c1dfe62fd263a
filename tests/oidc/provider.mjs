// A real OpenID Connect provider on loopback, for tests only (the npm package oidc-provider).
//
//   node tests/oidc/provider.mjs --port 5001 --client-id kiosk --client-secret s3cret \
//     --redirect-uri http://127.0.0.1:8000/login/oidc/callback \
//     --accounts '[{"email": "dana@district.test", "email_verified": true}]'
//
// Its sign-in page (/interaction/<uid>) is a plain form: an "Email" field and a "Continue"
// button (or "Cancel", which answers the app with error=access_denied). A test posts the form
// (or a browser fills it); no password is asked. Consent is taken as given (a first-party
// client), so the provider goes straight back to the app. ID tokens carry `email` and
// `email_verified` (as the account says, or not at all when the account leaves it out), and
// are signed with an RS256 key made at start, published at /jwks. With
// --email-in-userinfo-only, the email is given at the userinfo endpoint only.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

// The package is installed in tests/js (npm ci --prefix tests/js), beside this folder.
const requireFromTools = createRequire(new URL('../js/package.json', import.meta.url));
const { default: Provider } = await import(requireFromTools.resolve('oidc-provider'));

const { values: options } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string', default: 'kiosk' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    accounts: { type: 'string', default: '[]' },
    // Keep the email out of the ID token, for the userinfo endpoint only (the specification's
    // default for the code flow, which some providers follow).
    'email-in-userinfo-only': { type: 'boolean', default: false },
  },
});

const port = Number(options.port);
const issuer = `http://127.0.0.1:${port}`;
// Each account: {"email": ..., "email_verified": true|false (or absent), "name": ...}.
const accounts = JSON.parse(options.accounts).map((account, index) => ({
  sub: `account-${index + 1}`,
  ...account,
}));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

function claimsOf(account) {
  const claims = { sub: account.sub };
  for (const name of ['email', 'email_verified', 'name', 'preferred_username']) {
    if (account[name] !== undefined) claims[name] = account[name];
  }
  return claims;
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: options['client-id'],
      client_secret: options['client-secret'],
      redirect_uris: options['redirect-uri'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // The claims of the scopes asked for go into the ID token, as Google and Entra ID do.
  conformIdTokenClaims: options['email-in-userinfo-only'],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['test-cookie-key'] },
  async findAccount(ctx, id) {
    const account = accounts.find((candidate) => candidate.sub === id);
    if (!account) return undefined;
    return { accountId: id, claims: async () => claimsOf(account) };
  },
  // A first-party client: the district's own app needs no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Test identity provider</title></head>
<body><main>${body}</main></body></html>`);
}

async function readForm(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return new URLSearchParams(raw);
}

async function interaction(req, res) {
  const [, , uid, action] = req.url.split('?')[0].split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, '<p>Unknown sign-in.</p>');
  if (req.method === 'GET') {
    return page(res, 200, `<h1>Test identity provider</h1>
<form method="post" action="/interaction/${escape(uid)}/login">
  <label for="email">Email</label> <input id="email" name="email" type="email" autocomplete="off">
  <button type="submit">Continue</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/cancel"><button type="submit">Cancel</button></form>`);
  }
  if (action === 'cancel') {
    const result = { error: 'access_denied', error_description: 'The person cancelled.' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  const email = (await readForm(req)).get('email') || '';
  const account = accounts.find((candidate) => candidate.email === email);
  if (!account) return page(res, 200, '<p>No such account at this provider.</p>');
  return provider.interactionFinished(
    req,
    res,
    { login: { accountId: account.sub } },
    { mergeWithLastSubmission: false },
  );
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => page(res, 500, `<p>${escape(error.message)}</p>`));
    return;
  }
  callback(req, res);
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on ${issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
