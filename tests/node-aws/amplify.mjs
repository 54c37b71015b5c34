// SRP sign-in with AWS Amplify v6 (`aws-amplify/auth`), as a web app signs in: Amplify is
// configured with the pool id, the app client and `userPoolEndpoint` (the gateway), and
// `signIn` runs its default flow, USER_SRP_AUTH → PASSWORD_VERIFIER. Then the session's tokens
// are read (`fetchAuthSession`) and refreshed (`forceRefresh`: GetTokensFromRefreshToken), the
// user signs out, and a wrong password is tried once.
//
// Prints one JSON document on stdout: {"signedIn", "nextStep", "idToken", "accessToken",
// "refreshedAccessToken", "username", "userId", "wrong"} (`wrong`: the error name of the wrong password).
// tests/python/test_cognito_srp.py runs it. By hand:
//
//   PORTCULLIS_URL=http://127.0.0.1:8080 USERNAME=alice PASSWORD=... node tests/node-aws/amplify.mjs

import { Amplify } from "aws-amplify";
import { fetchAuthSession, getCurrentUser, signIn, signOut } from "aws-amplify/auth";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

Amplify.configure({
  Auth: {
    Cognito: {
      userPoolId: env("USER_POOL_ID", "us-east-1_main"),
      userPoolClientId: env("CLIENT_ID", "web"),
      userPoolEndpoint: env("PORTCULLIS_URL", "http://127.0.0.1:8080"),
    },
  },
});

const username = env("USERNAME");
const password = env("PASSWORD");
const result = await signIn({ username, password });
const session = await fetchAuthSession();
// Amplify refreshes with GetTokensFromRefreshToken
const refreshed = await fetchAuthSession({ forceRefresh: true });
const user = await getCurrentUser();
await signOut();
let wrong = null;
try {
  await signIn({ username, password: `${password}-wrong` });
} catch (err) {
  wrong = err.name ?? String(err);
}
console.log(
  JSON.stringify({
    signedIn: result.isSignedIn,
    nextStep: result.nextStep?.signInStep,
    idToken: session.tokens?.idToken?.toString() ?? null,
    accessToken: session.tokens?.accessToken?.toString() ?? null,
    refreshedAccessToken: refreshed.tokens?.accessToken?.toString() ?? null,
    username: user.username,
    userId: user.userId,
    wrong,
  }),
);
