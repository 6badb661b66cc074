// Local OAuth 2.0 authorization server (oidc-provider) for tokenflight
// integration tests. Loopback only, plain HTTP, in-memory storage.
//
// Env:
//   PORT             port to listen on, 0 (default) = ephemeral
//   TOKEN_TTL        access token lifetime in seconds (default 2)
//   CLIENT_KEYS_DIR  where to write the private keys of the private_key_jwt clients (rsa.pem,
//                    ec.pem; PKCS#8 PEM), made fresh for each run; without it those clients are
//                    not registered
//   MTLS_DIR         mutual TLS (RFC 8705): a directory with ca.pem (the CA client certificates
//                    of tls_client_auth are checked against), server.pem / server.key (the
//                    HTTPS listener's certificate, for 127.0.0.1) and self.pem (the certificate
//                    of the self_signed_tls_client_auth client). With it, a second listener
//                    serves the same provider over HTTPS, asking for client certificates; the
//                    metadata names it in `mtls_endpoint_aliases`, and its GET /api/resource
//                    is a resource server that accepts a certificate-bound token only with
//                    the certificate it is bound to. Without it, no mTLS client is registered.
//
// stdout carries exactly one line, `READY http://127.0.0.1:<port>`, once the
// server accepts requests. Everything else (oidc-provider notices, logs) goes
// to stderr.

import { X509Certificate, createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import Provider from 'oidc-provider';

// oidc-provider prints its "you SHOULD change ..." notices with console.info,
// i.e. on stdout. Keep stdout reserved for the READY line.
console.info = (...args) => console.error(...args);

const HOST = '127.0.0.1';

function intFromEnv(name, fallback, min) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    console.error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const port = intFromEnv('PORT', 0, 0);
const tokenTtl = intFromEnv('TOKEN_TTL', 2, 1);

const clientKeysDir = process.env.CLIENT_KEYS_DIR || '';
const mtlsDir = process.env.MTLS_DIR || '';
const readMtls = (file) => readFileSync(path.join(mtlsDir, file), 'utf8');

const SCOPES = 'read write';
const AUTHENTICATED_ROUTES = new Set(['token', 'introspection', 'revocation']);

function ccClient(clientId, secret, authMethod) {
  return {
    client_id: clientId,
    client_secret: secret,
    token_endpoint_auth_method: authMethod,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES,
  };
}

// RFC 7523 clients: each private_key_jwt client's public key is registered as its `jwks`; the
// private halves go to CLIENT_KEYS_DIR for the test to sign with.
function assertionClients() {
  if (!clientKeysDir) return [];
  const makeKey = (file, type, options) => {
    const { publicKey, privateKey } = generateKeyPairSync(type, options);
    writeFileSync(path.join(clientKeysDir, file), privateKey.export({ format: 'pem', type: 'pkcs8' }),
      { mode: 0o600 });
    return publicKey.export({ format: 'jwk' });
  };
  const rsa = makeKey('rsa.pem', 'rsa', { modulusLength: 2048 });
  const ec = { ...makeKey('ec.pem', 'ec', { namedCurve: 'P-256' }), kid: 'tf-ec-1' };
  const jwtClient = (clientId, jwk, alg) => {
    const { client_secret: _, ...client } = ccClient(clientId, '', 'private_key_jwt');
    return { ...client, jwks: { keys: [jwk] }, token_endpoint_auth_signing_alg: alg };
  };
  return [
    jwtClient('tf-pkjwt-rs', rsa, 'RS256'),
    jwtClient('tf-pkjwt-ps', rsa, 'PS256'),
    jwtClient('tf-pkjwt-es', ec, 'ES256'),
    {
      ...ccClient('tf-secret-jwt', 'tf-secret-jwt-secret-0123456789abcdef0123456789', 'client_secret_jwt'),
      token_endpoint_auth_signing_alg: 'HS256',
    },
  ];
}

// RFC 8705 clients: one authenticated by a CA-issued certificate (its subject), one by a
// self-signed certificate registered in its jwks, one by a secret; the tokens of all three are
// bound to the certificate presented.
function mtlsClients() {
  if (!mtlsDir) return [];
  const bound = { tls_client_certificate_bound_access_tokens: true };
  const withoutSecret = (clientId, authMethod) => {
    const { client_secret: _, ...client } = ccClient(clientId, '', authMethod);
    return { ...client, ...bound };
  };
  const self = new X509Certificate(readMtls('self.pem'));
  const selfJwk = { ...self.publicKey.export({ format: 'jwk' }), x5c: [self.raw.toString('base64')] };
  return [
    { ...withoutSecret('tf-mtls', 'tls_client_auth'), tls_client_auth_subject_dn: 'CN=tf-mtls' },
    { ...withoutSecret('tf-mtls-self', 'self_signed_tls_client_auth'), jwks: { keys: [selfJwk] } },
    { ...ccClient('tf-mtls-bound', 'tf-mtls-bound-secret', 'client_secret_basic'), ...bound },
  ];
}

// The client certificate of the request's TLS connection (none over plain http).
function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate(false);
  return peer && peer.raw ? new X509Certificate(peer.raw) : undefined;
}

function buildProvider(issuer, mtlsBase) {
  // Fresh signing key per run so oidc-provider does not fall back to its
  // published development keys. Access tokens themselves are opaque.
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ format: 'jwk' });
  signingKey.kid = 'tf-test-rs256';
  signingKey.use = 'sig';
  signingKey.alg = 'RS256';

  const provider = new Provider(issuer, {
    clients: [
      ccClient('tf-basic', 'tf-basic-secret', 'client_secret_basic'),
      ccClient('tf-post', 'tf-post-secret', 'client_secret_post'),
      ccClient('tf-introspect', 'tf-introspect-secret', 'client_secret_basic'),
      ...assertionClients(),
      ...mtlsClients(),
    ],
    clientAuthMethods: [
      'client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'none',
      ...(mtlsDir ? ['tls_client_auth', 'self_signed_tls_client_auth'] : []),
    ],
    discovery: mtlsBase ? {
      mtls_endpoint_aliases: {
        token_endpoint: `${mtlsBase}/token`,
        introspection_endpoint: `${mtlsBase}/token/introspection`,
      },
    } : {},
    // Every scope a test may ask for must be known to the provider: scopes
    // that are unknown are silently dropped, known ones that are not in the
    // client's `scope` are rejected with invalid_scope (hence `admin`).
    scopes: ['openid', 'offline_access', 'read', 'write', 'admin'],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Any authenticated (confidential) client may introspect any token.
        allowedPolicy: async () => true,
      },
      revocation: { enabled: true, allowedPolicy: async () => true },
      mTLS: {
        enabled: Boolean(mtlsDir),
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: peerCertificate,
        // Node checked the chain against ca.pem (requestCert, rejectUnauthorized: false).
        certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) =>
          property === 'tls_client_auth_subject_dn' && peerCertificate(ctx)?.subject === expected,
      },
      // DPoP (RFC 9449) with server nonces always required: a client's first proof is answered
      // use_dpop_nonce, and the nonce it gets must be used from then on.
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
      // Without a `resource` parameter the token is a plain opaque
      // client-credentials token. With one (any absolute URI) it is still
      // opaque and carries the resource as `aud` (visible via introspection).
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        getResourceServerInfo: async () => ({
          scope: SCOPES,
          accessTokenFormat: 'opaque',
          accessTokenTTL: tokenTtl,
        }),
      },
    },
    ttl: {
      ClientCredentials: () => tokenTtl,
    },
    clientBasedCORS: () => false,
  });

  // oidc-provider accepts client_secret_basic and client_secret_post
  // interchangeably for any client registered with either of them. Tests want
  // to prove the SDK uses the configured method, so reject the other one the
  // same way oidc-provider rejects a bad secret.
  provider.use(async (ctx, next) => {
    await next();
    const { oidc } = ctx;
    if (ctx.status !== 200 || !oidc?.client || !AUTHENTICATED_ROUTES.has(oidc.route)) return;
    let used;
    if (oidc.params?.client_secret) used = 'client_secret_post';
    else if (ctx.headers.authorization) used = 'client_secret_basic';
    if (used === undefined || used === oidc.client.clientAuthMethod) return;

    console.error(`${oidc.client.clientId}: used ${used}, registered ${oidc.client.clientAuthMethod}`);
    await oidc.entities.ClientCredentials?.destroy();
    ctx.status = 401;
    ctx.body = { error: 'invalid_client', error_description: 'client authentication failed' };
    if (ctx.headers.authorization) {
      ctx.set('WWW-Authenticate', `Basic realm="${issuer}", error="invalid_client", `
        + 'error_description="client authentication failed"');
    }
  });

  provider.on('server_error', (ctx, err) => console.error('server_error:', err));
  return provider;
}

// The resource server of the mTLS listener (RFC 8705 section 3): a Bearer token that the provider
// knows, and whose `cnf` thumbprint (x5t#S256) is the certificate of this connection. 200 with
// the thumbprint seen, else 401 invalid_token saying why.
async function resource(provider, req, res) {
  const deny = (why) => {
    res.statusCode = 401;
    res.setHeader('WWW-Authenticate', `Bearer error="invalid_token", error_description="${why}"`);
    res.end();
  };
  const match = /^Bearer ([!-~]+)$/.exec(req.headers.authorization || '');
  if (!match) return deny('no bearer token');
  // Client-credentials tokens are their own model in oidc-provider.
  const token = await provider.ClientCredentials.find(match[1]);
  if (!token || token.isExpired) return deny('unknown or expired token');
  const peer = req.socket.getPeerCertificate(false);
  const presented = peer && peer.raw ? createHash('sha256').update(peer.raw).digest('base64url') : '';
  if (!token['x5t#S256']) return deny('token not certificate-bound');
  if (token['x5t#S256'] !== presented) return deny('certificate does not match the token');
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ client_id: token.clientId, 'x5t#S256': presented }));
}

let handler = (req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = http.createServer((req, res) => handler(req, res));
const mtlsServer = mtlsDir ? https.createServer({
  key: readMtls('server.key'),
  cert: readMtls('server.pem'),
  ca: [readMtls('ca.pem')],
  requestCert: true,
  rejectUnauthorized: false, // the provider decides, per client authentication method
}, (req, res) => handler(req, res)) : undefined;

for (const srv of [server, mtlsServer].filter(Boolean)) srv.on('error', (err) => {
  console.error(`listen failed: ${err.message}`);
  process.exit(1);
});

function listening(srv) {
  return new Promise((resolve) => { srv.listen(srv === server ? port : 0, HOST, resolve); });
}

Promise.all([server, mtlsServer].filter(Boolean).map(listening)).then(() => {
  const issuer = `http://${HOST}:${server.address().port}`;
  const mtlsBase = mtlsServer ? `https://${HOST}:${mtlsServer.address().port}` : undefined;
  const provider = buildProvider(issuer, mtlsBase);
  const app = provider.callback();
  handler = (req, res) => {
    if (req.socket.encrypted && req.method === 'GET' && req.url === '/api/resource') {
      resource(provider, req, res).catch((err) => {
        console.error('resource:', err);
        res.statusCode = 500;
        res.end();
      });
      return;
    }
    app(req, res);
  };
  process.stdout.write(`READY ${issuer}\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`received ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  mtlsServer?.close();
  mtlsServer?.closeAllConnections();
  // Never hang on shutdown.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
