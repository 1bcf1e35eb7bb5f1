import type { Clock } from "../domain/clock.js";
import { Validator } from "../domain/validator.js";
import type { Store } from "../storage/store.js";
import { LOCK } from "../storage/locks.js";
import { hashPassword } from "./passwords.js";
import type { User, UserAttributes } from "../domain/model/index.js";
import { hasControlCharacters } from "../domain/validator.js";
import type { Page, PageQuery } from "../domain/paging.js";

const USERNAME = /^[A-Za-z0-9._@+-]{1,255}$/;

function checkCredentials(username: string, password: string | undefined): void {
  const v = new Validator();
  if (!USERNAME.test(username)) v.add("username", "must be 1 to 255 letters, digits or . _ @ + -");
  if (password !== undefined && (password.length < 8 || password.length > 1024)) v.add("password", "must be 8 to 1024 characters");
  v.throwIfInvalid();
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;
/** Bounds of a user's attributes. */
export const USER_ATTRIBUTE_LIMITS = { email: 320, name: 255, roles: 50, role: 100 } as const;

export const NO_ATTRIBUTES: UserAttributes = { email: "", name: "", roles: [] };

function checkAttributes(v: Validator, a: UserAttributes): void {
  const l = USER_ATTRIBUTE_LIMITS;
  if (a.email !== "" && (a.email.length > l.email || !EMAIL.test(a.email))) v.add("user.email", `must be an email address of at most ${l.email} characters`);
  if (a.name.length > l.name || hasControlCharacters(a.name)) v.add("user.name", `must be at most ${l.name} printable characters`);
  if (a.roles.length > l.roles) {
    v.add("user.roles", `at most ${l.roles} roles`);
    return;
  }
  checkRoleNames(v, "user.roles", a.roles);
}

/** Role names, as users hold them and scopes bind them (the count is checked by the caller). */
export function checkRoleNames(v: Validator, field: string, roles: readonly string[]): void {
  const l = USER_ATTRIBUTE_LIMITS;
  roles.forEach((role, i) => {
    // Roles travel comma-separated in GetUserClaims: a comma would split one.
    if (role.length === 0 || role.length > l.role || hasControlCharacters(role) || role.includes(",")) {
      v.add(`${field}[${i}]`, `must be 1 to ${l.role} printable characters without commas`);
    }
  });
  if (new Set(roles).size !== roles.length) v.add(field, "must not repeat a role");
}

/** Resource owners of the password grant and the login page; passwords kept only as scrypt hashes. */
export class UserManager {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(username: string, password: string, attributes: UserAttributes = NO_ATTRIBUTES): Promise<User> {
    checkCredentials(username, password);
    const v = new Validator();
    checkAttributes(v, attributes);
    v.throwIfInvalid();
    const now = this.clock.now();
    const user: User = { username, passwordHash: await hashPassword(password), ...attributes, createdAt: now, updatedAt: now };
    await this.store.users.insert(user);
    return user;
  }

  get(username: string): Promise<User> {
    checkCredentials(username, undefined);
    return this.store.users.get(username);
  }

  list(page: PageQuery): Promise<Page<User>> {
    return this.store.users.list(page);
  }

  async setAttributes(username: string, attributes: UserAttributes): Promise<User> {
    checkCredentials(username, undefined);
    const v = new Validator();
    checkAttributes(v, attributes);
    v.throwIfInvalid();
    const now = this.clock.now();
    await this.store.transaction(async (s) => {
      const before = await s.users.find(username, LOCK);
      await s.users.setAttributes(username, attributes, now);
      // Role-based scopes: tokens granted by the old roles may hold scopes the new ones do not give.
      if (before && !sameRoles(before.roles, attributes.roles)) {
        await s.tokens.revokeUser(username, now);
        s.changed({ kind: "tokens", endUser: username });
      }
    });
    return this.store.users.get(username);
  }

  /** A new password ends every session of the old one: the user's tokens are revoked. */
  async setPassword(username: string, password: string): Promise<User> {
    checkCredentials(username, password);
    const now = this.clock.now();
    const hash = await hashPassword(password);
    await this.store.transaction(async (s) => {
      await s.users.setPassword(username, hash, now);
      await s.tokens.revokeUser(username, now);
      // And every login on the authorization pages.
      await s.loginSessions.deleteUser(username);
      s.changed({ kind: "tokens", endUser: username });
    });
    return this.store.users.get(username);
  }

  async delete(username: string): Promise<void> {
    checkCredentials(username, undefined);
    const now = this.clock.now();
    await this.store.transaction(async (s) => {
      await s.users.delete(username);
      await s.tokens.revokeUser(username, now);
      s.changed({ kind: "tokens", endUser: username });
    });
  }
}

function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((role) => b.includes(role));
}
