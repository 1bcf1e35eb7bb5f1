import type { Clock } from "../domain/clock.js";
import { Validator } from "../domain/validator.js";
import type { Store } from "../storage/store.js";
import { hashPassword } from "./passwords.js";
import type { User } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";

const USERNAME = /^[A-Za-z0-9._@+-]{1,255}$/;

function checkCredentials(username: string, password: string | undefined): void {
  const v = new Validator();
  if (!USERNAME.test(username)) v.add("username", "must be 1 to 255 letters, digits or . _ @ + -");
  if (password !== undefined && (password.length < 8 || password.length > 1024)) v.add("password", "must be 8 to 1024 characters");
  v.throwIfInvalid();
}

/** Resource owners of the password grant; passwords kept only as scrypt hashes. */
export class UserManager {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(username: string, password: string): Promise<User> {
    checkCredentials(username, password);
    const now = this.clock.now();
    const user: User = { username, passwordHash: await hashPassword(password), createdAt: now, updatedAt: now };
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
