// A store backend's first steps with @keymanager/client: create an application's PRODUCTION keys,
// then get an access token for it. The store authenticates as a system client with the
// apim:subscribe scope (its token is fetched and renewed by the client).
//
//   KM_URL=http://127.0.0.1:8080 KM_CLIENT_ID=... KM_CLIENT_SECRET=... npx tsx examples/store/create-keys.ts [application name]
import { randomUUID } from "node:crypto";
import { createKeyManagerClient, KeyType } from "@keymanager/client";

const clientId = process.env.KM_CLIENT_ID;
const clientSecret = process.env.KM_CLIENT_SECRET;
if (!clientId || !clientSecret) {
  console.error("set KM_CLIENT_ID and KM_CLIENT_SECRET (a system client with the apim:subscribe scope)");
  process.exit(2);
}
const km = createKeyManagerClient({ baseUrl: process.env.KM_URL ?? "http://127.0.0.1:8080", credentials: { clientId, clientSecret } });

const name = process.argv[2] ?? "PizzaShackApp";
// The store's own id of the application; the key manager keeps one OAuth client per id and key type.
const applicationId = randomUUID();
const { application } = await km.keyManager.createApplication({
  application: { applicationId, keyType: KeyType.PRODUCTION, clientName: `${name}_PRODUCTION`, applicationName: name, grantTypes: ["client_credentials"] },
});
if (!application) throw new Error("CreateApplication answered no application");

// The store keeps the consumer secret (here: only used once, to get a token).
const { token } = await km.keyManager.getNewApplicationAccessToken({
  request: { clientId: application.consumerKey, clientSecret: application.consumerSecret, grantType: "client_credentials" },
});
console.log(
  JSON.stringify({
    applicationId,
    consumerKey: application.consumerKey,
    accessToken: token?.accessToken,
    expiresInSeconds: Number(token?.validityPeriodMs ?? 0n) / 1000,
  }),
);
