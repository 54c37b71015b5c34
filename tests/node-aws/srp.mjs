// SRP sign-in (USER_SRP_AUTH) with amazon-cognito-identity-js, the library Amplify builds on:
// `CognitoUser.authenticateUser` runs the whole PASSWORD_VERIFIER exchange against Portcullis
// (the pool's `endpoint` is the gateway), then a wrong password is tried once.
//
// Prints one JSON document on stdout: {"idToken", "accessToken", "username", "wrong"} (`wrong`:
// the error code of the wrong password). tests/python/test_cognito_srp.py runs it. By hand:
//
//   PORTCULLIS_URL=http://127.0.0.1:8080 USERNAME=alice PASSWORD=... node tests/node-aws/srp.mjs

import {
  AuthenticationDetails,
  CognitoUser,
  CognitoUserPool,
} from "amazon-cognito-identity-js";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const pool = new CognitoUserPool({
  UserPoolId: env("USER_POOL_ID", "us-east-1_main"),
  ClientId: env("CLIENT_ID", "web"),
  endpoint: `${env("PORTCULLIS_URL", "http://127.0.0.1:8080")}/`,
});

const signIn = (username, password) =>
  new Promise((resolve, reject) => {
    const user = new CognitoUser({ Username: username, Pool: pool });
    user.authenticateUser(
      new AuthenticationDetails({ Username: username, Password: password }),
      {
        onSuccess: (session) => resolve({ session, user }),
        onFailure: reject,
        newPasswordRequired: () => reject(new Error("NEW_PASSWORD_REQUIRED")),
      },
    );
  });

const username = env("USERNAME");
const { session, user } = await signIn(username, env("PASSWORD"));
let wrong = null;
try {
  await signIn(username, `${env("PASSWORD")}-wrong`);
} catch (err) {
  wrong = err.code ?? err.name ?? String(err);
}
console.log(
  JSON.stringify({
    idToken: session.getIdToken().getJwtToken(),
    accessToken: session.getAccessToken().getJwtToken(),
    username: user.getUsername(),
    wrong,
  }),
);
