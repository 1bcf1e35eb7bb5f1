import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { SigningKeyService } from "../../gen/keymanager/v1/signing_key_service_pb.js";
import { pageInMemory } from "../domain/paging.js";
import type { PublishedKey, SigningKeys } from "../oauth/signing-keys.js";
import { listName, type Paging } from "./page-tokens.js";

type Impl = ServiceImpl<typeof SigningKeyService>;

/**
 * SigningKeys' order: the active key first, then the most recently retired, then the newest;
 * the kid last, so every key has its own cursor. All descending.
 */
const NEWEST_FIRST = [true, true, true];
const keyOrder = (k: PublishedKey) => [k.retiredAt?.getTime() ?? Number.MAX_SAFE_INTEGER, k.createdAt.getTime(), k.kid];

/** keymanager.v1.SigningKeyService: rotation and listing of the JWT signing keys. */
export class SigningKeyServiceImpl implements Impl {
  constructor(
    private readonly keys: SigningKeys,
    private readonly paging: Paging,
  ) {}

  async rotateSigningKey() {
    const kid = await this.keys.rotate();
    const key = this.keys.list().find((k) => k.kid === kid);
    return { signingKey: key ? keyToPb(key) : undefined };
  }

  async listSigningKeys(req: Parameters<Impl["listSigningKeys"]>[0]) {
    const list = listName("ListSigningKeys");
    // The published keys are few and held in memory; a page is cut from them by the same cursor rule.
    const page = pageInMemory(this.keys.list(), this.paging.query(list, req), keyOrder, NEWEST_FIRST);
    return { signingKeys: page.items.map(keyToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }
}

function keyToPb(k: PublishedKey) {
  return {
    kid: k.kid,
    alg: k.alg,
    active: k.active,
    createTime: timestampFromDate(k.createdAt),
    retireTime: k.retiredAt ? timestampFromDate(k.retiredAt) : undefined,
  };
}
