import { PermissionDeniedError, UnauthenticatedError } from "../domain/errors.js";
import type { TokenRecord } from "../domain/model/index.js";
import type { UserRepository } from "../storage/user-repository.js";
import { type Claims, claimsFor } from "./user-claims.js";

/** OpenID Connect's UserInfo (Core 5.3): the claims an access token with the openid scope may read. */
export class UserInfo {
  constructor(
    private readonly tokens: { lookup(token: string): Promise<TokenRecord | undefined>; isActive(record: TokenRecord): boolean },
    private readonly users: Pick<UserRepository, "find">,
  ) {}

  /** UnauthenticatedError for a token that is not an active one of this server (RFC 6750 invalid_token); PermissionDenied without openid. */
  async claims(accessToken: string): Promise<Claims> {
    const record = accessToken ? await this.tokens.lookup(accessToken) : undefined;
    if (!record || !this.tokens.isActive(record)) throw new UnauthenticatedError("the access token is not active");
    if (record.endUser === "" || !record.scopes.includes("openid")) throw new PermissionDeniedError("the access token was not issued with the openid scope");
    const user = await this.users.find(record.endUser);
    if (!user) throw new UnauthenticatedError("the access token's user no longer exists");
    return claimsFor(user, record.scopes);
  }
}
