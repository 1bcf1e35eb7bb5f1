import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { UserService } from "../../gen/keymanager/v1/user_service_pb.js";
import type { Consent, User, UserAttributes } from "../domain/model/index.js";
import type { AuthorizationService } from "../oauth/authorization-service.js";
import type { UserManager } from "../oauth/user-manager.js";
import { listName, type Paging } from "./page-tokens.js";
import { Validator } from "../domain/validator.js";

type Impl = ServiceImpl<typeof UserService>;

/** keymanager.v1.UserService: resource owners of the password grant (hashes never leave). */
export class UserServiceImpl implements Impl {
  constructor(
    private readonly users: UserManager,
    private readonly paging: Paging,
    private readonly authorization: AuthorizationService,
  ) {}

  async createUser(req: Parameters<Impl["createUser"]>[0]) {
    return { user: userToPb(await this.users.create(req.user?.username ?? "", req.password, attributesOf(req.user))) };
  }

  async getUser(req: Parameters<Impl["getUser"]>[0]) {
    return { user: userToPb(await this.users.get(req.username)) };
  }

  async setUserPassword(req: Parameters<Impl["setUserPassword"]>[0]) {
    return { user: userToPb(await this.users.setPassword(req.username, req.password)) };
  }

  async setUserAttributes(req: Parameters<Impl["setUserAttributes"]>[0]) {
    return { user: userToPb(await this.users.setAttributes(req.user?.username ?? "", attributesOf(req.user))) };
  }

  async deleteUser(req: Parameters<Impl["deleteUser"]>[0]) {
    await this.users.delete(req.username);
    return {};
  }

  async listUsers(req: Parameters<Impl["listUsers"]>[0]) {
    const list = listName("ListUsers");
    const page = await this.users.list(this.paging.query(list, req));
    return { users: page.items.map(userToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }

  async listUserConsents(req: Parameters<Impl["listUserConsents"]>[0]) {
    const username = checkedUsername(req.username);
    const list = listName("ListUserConsents", username);
    const page = await this.authorization.consents(username, this.paging.query(list, req));
    return { consents: page.items.map(consentToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }

  async revokeUserConsent(req: Parameters<Impl["revokeUserConsent"]>[0]) {
    const v = new Validator();
    v.text("username", req.username, 255);
    v.text("consumer_key", req.consumerKey, 255);
    v.throwIfInvalid();
    await this.authorization.revokeConsent(req.username, req.consumerKey);
    return {};
  }
}

function consentToPb(c: Consent) {
  return {
    consumerKey: c.consumerKey,
    username: c.username,
    scopes: c.scopes,
    createTime: timestampFromDate(c.createdAt),
    updateTime: timestampFromDate(c.updatedAt),
  };
}

function attributesOf(u: { email: string; name: string; roles: string[] } | undefined): UserAttributes {
  return { email: u?.email ?? "", name: u?.name ?? "", roles: u?.roles ?? [] };
}

function userToPb(u: User) {
  return {
    username: u.username,
    email: u.email,
    name: u.name,
    roles: u.roles,
    createTime: timestampFromDate(u.createdAt),
    updateTime: timestampFromDate(u.updatedAt),
  };
}

function checkedUsername(username: string): string {
  const v = new Validator();
  v.text("username", username, 255);
  v.throwIfInvalid();
  return username;
}
