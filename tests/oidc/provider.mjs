// A real OpenID Provider for the sign-in tests: npm's oidc-provider (a
// certified implementation) with one client and two users. Its development
// login and consent pages accept any password.
// Usage: node provider.mjs <node_modules> <port> <client-id> <client-secret> <redirect-uri>
// (<node_modules> is where .ci/build-ui installed oidc-provider).
// Prints "oidc provider listening on <issuer>" once it serves.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const { default: Provider } = await import(
  pathToFileURL(path.join(modules, 'oidc-provider', 'lib', 'index.js')).href);

const issuer = `http://127.0.0.1:${port}`;
const groups = { alice: ['shop-admins'], bob: [] };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  // The claims of the granted scopes go in the id_token itself.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true, groups: groups[id] || [] }),
  }),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['lifeboat-tests-only'] },
});
provider.proxy = false;
provider.listen(Number(port), () => console.log(`oidc provider listening on ${issuer}`));
