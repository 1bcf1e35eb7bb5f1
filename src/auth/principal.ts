import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { SCOPES } from "./scopes.js";

/** Who is calling: a system client's token, or a gateway's verified client certificate. */
export interface Principal {
  /** The system client's id, or "cert:<subject CN>" for a client certificate. */
  clientId: string;
  scopes: ReadonlySet<string>;
  /** The subscriber a store caller acts for: the token's end user, else the client's subscriber. */
  subscriber: string;
  /** Store application groups the caller may also see. */
  groups: readonly string[];
}

/** Set by the transports once a call is authenticated and its scope checked. */
export const PRINCIPAL = createContextKey<Principal | undefined>(undefined, { description: "authenticated caller" });

export function principalOf(ctx: Pick<HandlerContext, "values">): Principal | undefined {
  return ctx.values.get(PRINCIPAL);
}

/** Admins see every application; store callers only their own subscriber's and groups'. */
export function isRestricted(principal: Principal | undefined): principal is Principal {
  return principal !== undefined && !principal.scopes.has(SCOPES.admin);
}

/** Whether a restricted caller may see an application with this owner and group; one without an owner is for admins only. */
export function owns(principal: Principal, appOwner: string, groupId: string): boolean {
  if (appOwner !== "" && appOwner === principal.subscriber) return true;
  const groups = splitGroups(groupId);
  return groups.some((g) => principal.groups.includes(g));
}

/** The store's groupId may name several groups, comma separated. */
export function splitGroups(groupId: string): string[] {
  return groupId
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
}
