// Seed 001 (dev.to, "Cookie authentication for AWS API Gateway WebSocket APIs"): the Lambda
// REQUEST authorizer of a WebSocket API's $connect route, for a web app whose back-end logs
// users in with two cookies: JWT (HttpOnly) and CSRF-TOKEN (double submit).
//
// The article describes this function without printing it; it is written here as the article
// says and in the shape of AWS's documented WebSocket REQUEST authorizer example:
// - Node.js with built-in modules only ('crypto'), so no package.json is needed;
// - clients and secrets initialised outside the handler, so a warm environment reuses them
//   (the article reads its secret from SSM; here it comes from the function's environment);
// - identity source route.request.header.Cookie: the Cookie header holds all the cookies at
//   once and is parsed for JWT and CSRF-TOKEN;
// - the page copies the CSRF-TOKEN cookie into the `csrf` query parameter (it can read that
//   cookie, a page of another site cannot);
// - callback style: callback("Unauthorized") refuses with 401, a Deny policy with 403, and the
//   Allow policy passes principalId and context to the $connect integration.

const crypto = require('crypto');

const SECRET = process.env.JWT_SECRET || '';
const MAX_COOKIE_HEADER = 8192;

function parseCookies(header) {
    const cookies = {};
    if (typeof header !== 'string' || header.length > MAX_COOKIE_HEADER) {
        return cookies;
    }
    for (const part of header.split(';')) {
        const eq = part.indexOf('=');
        if (eq < 0) continue;
        const name = part.slice(0, eq).trim();
        const value = part.slice(eq + 1).trim();
        if (!(name in cookies)) cookies[name] = value;
    }
    return cookies;
}

function base64url(buf) {
    return buf.toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function sameSecret(a, b) {
    const x = Buffer.from(String(a));
    const y = Buffer.from(String(b));
    return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// HS256 JWT as the back-end issues it; returns the claims, or null when it is not valid now.
function verifyJwt(token) {
    const parts = String(token).split('.');
    if (parts.length !== 3 || SECRET === '') return null;
    let header, claims;
    try {
        header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
        claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch (e) {
        return null;
    }
    if (!header || header.alg !== 'HS256' || !claims || typeof claims !== 'object') return null;
    const expected = base64url(
        crypto.createHmac('sha256', SECRET).update(parts[0] + '.' + parts[1]).digest()
    );
    if (!sameSecret(expected, parts[2])) return null;
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= now) return null;
    if (typeof claims.sub !== 'string' || claims.sub === '') return null;
    return claims;
}

function generatePolicy(principalId, effect, resource, context) {
    return {
        principalId: principalId,
        policyDocument: {
            Version: '2012-10-17',
            Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
        },
        context: context || {},
    };
}

exports.handler = function (event, context, callback) {
    const headers = event.headers || {};
    const cookies = parseCookies(headers.Cookie || headers.cookie);
    const claims = cookies.JWT ? verifyJwt(cookies.JWT) : null;
    if (!claims) {
        console.log('refused: no valid JWT cookie');
        callback('Unauthorized');
        return;
    }
    const query = event.queryStringParameters || {};
    if (!cookies['CSRF-TOKEN'] || !query.csrf || !sameSecret(cookies['CSRF-TOKEN'], query.csrf)) {
        console.log('denied ' + claims.sub + ': CSRF-TOKEN cookie and csrf parameter differ');
        callback(null, generatePolicy(claims.sub, 'Deny', event.methodArn));
        return;
    }
    callback(null, generatePolicy(claims.sub, 'Allow', event.methodArn, { userId: claims.sub }));
};
