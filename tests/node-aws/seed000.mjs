// Seed 000 from Node.js with the AWS SDK for JavaScript v3, the way a browser app does it:
// sign in to the user pool (InitiateAuth, USER_PASSWORD_AUTH), exchange the ID token for
// temporary credentials at the identity pool (GetId, GetCredentialsForIdentity), presign the
// WebSocket URL with SigV4 (SignatureV4.presign, service execute-api), connect (`ws`: Node 20
// has no global WebSocket) and use a route the role allows and one it may deny.
//
// Prints one JSON document on stdout; tests/python/test_seed000.py starts Portcullis with
// examples/seeds/seed000.toml, creates the users and asserts on it. By hand:
//
//   PORTCULLIS_URL=http://127.0.0.1:8080 ADMIN_USER=alice ADMIN_PASSWORD=... \
//   MEMBER_USER=bob MEMBER_PASSWORD=... node tests/node-aws/seed000.mjs

import { Sha256 } from "@aws-crypto/sha256-js";
import {
  CognitoIdentityClient,
  GetCredentialsForIdentityCommand,
  GetIdCommand,
} from "@aws-sdk/client-cognito-identity";
import {
  CognitoIdentityProviderClient,
  InitiateAuthCommand,
} from "@aws-sdk/client-cognito-identity-provider";
import { SignatureV4 } from "@smithy/signature-v4";
import WebSocket from "ws";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const BASE = new URL(env("PORTCULLIS_URL", "http://127.0.0.1:8080"));
const REGION = env("AWS_REGION", "us-east-1");
const IDENTITY_POOL_ID = env("IDENTITY_POOL_ID", `${REGION}:app`);
const CLIENT_ID = env("CLIENT_ID", "web");
const WS_PATH = env("WS_PATH", "/chat");
// The Logins key of a built-in pool: its issuer without the scheme.
const LOGINS_KEY = `${BASE.host}/pools/${env("USER_POOL", "main")}`;
const WAIT_MS = Number(env("WAIT_MS", "10000"));

const endpoint = BASE.origin;
const idp = new CognitoIdentityProviderClient({ region: REGION, endpoint, maxAttempts: 1 });
const identity = new CognitoIdentityClient({ region: REGION, endpoint, maxAttempts: 1 });

async function signIn(username, password) {
  const auth = await idp.send(
    new InitiateAuthCommand({
      ClientId: CLIENT_ID,
      AuthFlow: "USER_PASSWORD_AUTH",
      AuthParameters: { USERNAME: username, PASSWORD: password },
    }),
  );
  const logins = { [LOGINS_KEY]: auth.AuthenticationResult.IdToken };
  const { IdentityId } = await identity.send(
    new GetIdCommand({ IdentityPoolId: IDENTITY_POOL_ID, Logins: logins }),
  );
  const { Credentials } = await identity.send(
    new GetCredentialsForIdentityCommand({ IdentityId, Logins: logins }),
  );
  return {
    identityId: IdentityId,
    credentials: {
      accessKeyId: Credentials.AccessKeyId,
      secretAccessKey: Credentials.SecretKey,
      sessionToken: Credentials.SessionToken,
    },
    expiration: Credentials.Expiration.toISOString(),
  };
}

// SigV4 query-string presign of the upgrade request, as the SDKs (and Amplify) sign
// `wss://{api}.execute-api.{region}.amazonaws.com/{stage}`.
async function presign(credentials, expiresIn = 300) {
  const signer = new SignatureV4({ credentials, region: REGION, service: "execute-api", sha256: Sha256 });
  const wsProtocol = BASE.protocol === "https:" ? "wss:" : "ws:";
  const request = {
    method: "GET",
    protocol: wsProtocol,
    hostname: BASE.hostname,
    port: BASE.port ? Number(BASE.port) : undefined,
    path: WS_PATH,
    query: {},
    headers: { host: BASE.host },
  };
  const signed = await signer.presign(request, { expiresIn });
  const query = Object.entries(signed.query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
  return `${wsProtocol}//${BASE.host}${signed.path}?${query}`;
}

// Opens a socket; resolves { ws, next } or { status } when the upgrade is refused.
function connect(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const inbox = [];
    const waiters = [];
    ws.on("message", (data) => {
      const text = data.toString();
      const waiter = waiters.shift();
      if (waiter) waiter(text);
      else inbox.push(text);
    });
    const next = () =>
      new Promise((res, rej) => {
        if (inbox.length) return res(inbox.shift());
        const timer = setTimeout(() => rej(new Error(`no frame within ${WAIT_MS} ms`)), WAIT_MS);
        waiters.push((text) => {
          clearTimeout(timer);
          res(text);
        });
      });
    ws.once("open", () => resolve({ ws, next }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode });
      res.resume();
      ws.terminate();
    });
    ws.once("error", (err) => reject(err));
  });
}

function close(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once("close", () => resolve());
    ws.close(1000);
  });
}

const parse = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

async function main() {
  const admin = await signIn(env("ADMIN_USER"), env("ADMIN_PASSWORD"));
  const member = await signIn(env("MEMBER_USER"), env("MEMBER_PASSWORD"));
  const result = {
    admin: { identityId: admin.identityId, accessKeyId: admin.credentials.accessKeyId },
    member: { identityId: member.identityId, accessKeyId: member.credentials.accessKeyId },
  };

  // Refused upgrades: unsigned, and a signature with one character changed.
  result.unsignedStatus = (await connect(`ws://${BASE.host}${WS_PATH}`)).status ?? 101;
  const good = await presign(member.credentials);
  const tampered = good.replace(/(X-Amz-Signature=)([0-9a-f])/, (_m, k, c) => k + (c === "0" ? "1" : "0"));
  result.tamperedStatus = (await connect(tampered)).status ?? 101;

  const a = await connect(await presign(admin.credentials));
  const m = await connect(await presign(member.credentials));
  if (!a.ws || !m.ws) throw new Error(`presigned upgrade refused: ${a.status ?? ""} ${m.status ?? ""}`);

  // The route the role may deny, checked per message.
  a.ws.send(JSON.stringify({ action: "secret" }));
  result.admin.secret = parse(await a.next());
  m.ws.send(JSON.stringify({ action: "secret" }));
  result.member.secret = parse(await m.next());

  // The socket stays open after the refusal: the member still chats, and everyone gets it.
  m.ws.send(JSON.stringify({ action: "sendmessage", data: "hello from node" }));
  result.member.received = await m.next();
  result.admin.received = await a.next();

  // $default answers with the caller's requestContext.identity.
  m.ws.send(JSON.stringify({ action: "whoami" }));
  result.member.whoami = parse(await m.next());

  await Promise.all([close(a.ws), close(m.ws)]);
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
