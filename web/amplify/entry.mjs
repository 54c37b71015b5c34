// What web/chat/app.js takes from AWS Amplify v6: the Cognito user-pool sign-in (`signIn`,
// USER_SRP_AUTH by default), its session (refreshed with GetTokensFromRefreshToken) and
// sign-out (RevokeToken), configured against the gateway with the tokens in memory only.
import { Amplify } from "aws-amplify";
import { cognitoUserPoolsTokenProvider } from "aws-amplify/auth/cognito";
import { sharedInMemoryStorage } from "aws-amplify/utils";

export { fetchAuthSession, signIn, signOut } from "aws-amplify/auth";

/** Amplify against the gateway at `endpoint`; tokens never reach localStorage. */
export function configure(endpoint, userPoolId, userPoolClientId) {
  Amplify.configure({ Auth: { Cognito: { userPoolId, userPoolClientId, userPoolEndpoint: endpoint } } });
  cognitoUserPoolsTokenProvider.setKeyValueStorage(sharedInMemoryStorage);
}
