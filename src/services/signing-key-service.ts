import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { SigningKeyService } from "../../gen/keymanager/v1/signing_key_service_pb.js";
import type { PublishedKey, SigningKeys } from "../oauth/signing-keys.js";

type Impl = ServiceImpl<typeof SigningKeyService>;

/** keymanager.v1.SigningKeyService: rotation and listing of the JWT signing keys. */
export class SigningKeyServiceImpl implements Impl {
  constructor(private readonly keys: SigningKeys) {}

  async rotateSigningKey() {
    const kid = await this.keys.rotate();
    const key = this.keys.list().find((k) => k.kid === kid);
    return { key: key ? keyToPb(key) : undefined };
  }

  async listSigningKeys() {
    return { keys: this.keys.list().map(keyToPb) };
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
