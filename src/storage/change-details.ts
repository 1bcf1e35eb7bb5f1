import type { ChangeDetail, LoggableChange } from "../domain/change-events.js";
import type { GatewayViewRepository } from "./gateway-view-repository.js";

/**
 * The state a change left, read in its own transaction (before the change log's head is locked):
 * what a gateway applies for it. `at` is the commit's time (epoch ms); `horizonMs` the longest a
 * token may be issued for (validity.max_token), which bounds how long a bulk revocation is kept.
 */
export async function describeChange(view: GatewayViewRepository, change: LoggableChange, at: number, horizonMs = 0): Promise<ChangeDetail> {
  switch (change.kind) {
    case "api":
    case "resources":
      return { kind: change.kind, apiId: change.apiId, api: await view.api(change.apiId) };
    case "application":
      return { kind: "application", consumerKey: change.consumerKey, mapping: await view.keyMapping(change.consumerKey) };
    case "subscription":
      return {
        kind: "subscription",
        applicationId: change.applicationId,
        apiId: change.apiId,
        subscription: await view.subscription(change.applicationId, change.apiId),
      };
    case "token":
      return { kind: "token", revoked: (await view.revokedToken(change.tokenHash)) ?? change.external };
    case "tokens": {
      const revoked = change.familyId ? await view.revokedInFamily(change.familyId, at) : [];
      // Kept while a token it refuses may live: the longest a token may be issued for from `at`,
      // or longer when a stored token of the client or user expires later.
      let keepUntil = revoked.reduce((until, t) => Math.max(until, t.expiresAt), at);
      if (change.consumerKey !== undefined || change.endUser !== undefined) {
        keepUntil = Math.max(keepUntil, at + horizonMs, (await view.latestExpiry({ consumerKey: change.consumerKey, endUser: change.endUser })) ?? 0);
      }
      return {
        kind: "tokens",
        at,
        ...(change.consumerKey !== undefined && { consumerKey: change.consumerKey }),
        ...(change.endUser !== undefined && { endUser: change.endUser }),
        revoked,
        keepUntil,
      };
    }
    case "signing-keys":
      return { kind: "signing-keys", keys: await view.signingKeys() };
    case "scope":
      return { kind: "scope", name: change.name, scope: await view.scope(change.name) };
    case "external-key-managers":
      return { kind: "external-key-managers" };
  }
}
