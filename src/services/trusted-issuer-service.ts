import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { TrustedIssuerService } from "../../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { type TrustedIssuer as PbTrustedIssuer, TrustedIssuerSchema } from "../../gen/keymanager/v1/types_pb.js";
import type { TrustedIssuer } from "../domain/model/index.js";
import { requireField, Validator } from "../domain/validator.js";
import type { TrustedIssuerInput, TrustedIssuers } from "../oauth/trusted-issuers.js";
import { listName, type Paging } from "./page-tokens.js";
import { updatePaths } from "./update-mask.js";

type Impl = ServiceImpl<typeof TrustedIssuerService>;

/** The fields UpdateTrustedIssuer may change, by proto name, with their domain names. */
const UPDATABLE = {
  jwks_uri: "jwksUri",
  jwk: "jwk",
  allowed_subjects: "allowedSubjects",
  allowed_scopes: "allowedScopes",
  max_token_seconds: "maxTokenSeconds",
  max_assertion_seconds: "maxAssertionSeconds",
  audience: "audience",
  description: "description",
} as const satisfies Record<string, keyof TrustedIssuerInput>;
type UpdatablePath = keyof typeof UPDATABLE;
const UPDATABLE_PATHS = Object.keys(UPDATABLE) as UpdatablePath[];

/** keymanager.v1.TrustedIssuerService: outside issuers whose JWTs the token endpoint accepts (admin scope). */
export class TrustedIssuerServiceImpl implements Impl {
  constructor(
    private readonly issuers: TrustedIssuers,
    private readonly paging: Paging,
  ) {}

  async createTrustedIssuer(req: Parameters<Impl["createTrustedIssuer"]>[0]) {
    return { trustedIssuer: trustedIssuerToPb(await this.issuers.create(fromPb(req.trustedIssuer))) };
  }

  async getTrustedIssuer(req: Parameters<Impl["getTrustedIssuer"]>[0]) {
    return { trustedIssuer: trustedIssuerToPb(await this.issuers.get(requireField("issuer", req.issuer))) };
  }

  async updateTrustedIssuer(req: Parameters<Impl["updateTrustedIssuer"]>[0]) {
    const given = fromPb(req.trustedIssuer);
    const v = new Validator();
    v.required("trusted_issuer.issuer", given.issuer);
    const paths = updatePaths(v, req.updateMask, UPDATABLE_PATHS, (p) => isSet(given[UPDATABLE[p]]));
    if (v.ok && paths.length === 0) v.add("update_mask", "name a field to change, or set one");
    v.throwIfInvalid();
    const patch: Partial<TrustedIssuerInput> = {};
    for (const p of paths) Object.assign(patch, { [UPDATABLE[p]]: given[UPDATABLE[p]] });
    return { trustedIssuer: trustedIssuerToPb(await this.issuers.update(given.issuer, patch)) };
  }

  async deleteTrustedIssuer(req: Parameters<Impl["deleteTrustedIssuer"]>[0]) {
    await this.issuers.delete(requireField("issuer", req.issuer));
    return {};
  }

  async listTrustedIssuers(req: Parameters<Impl["listTrustedIssuers"]>[0]) {
    const list = listName("ListTrustedIssuers");
    const page = await this.issuers.list(this.paging.query(list, req));
    return { trustedIssuers: page.items.map(trustedIssuerToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }
}

function isSet(value: string | number | string[]): boolean {
  return Array.isArray(value) ? value.length > 0 : value !== "" && value !== 0;
}

function fromPb(pb: PbTrustedIssuer | undefined): TrustedIssuerInput {
  const i = pb ?? create(TrustedIssuerSchema);
  return {
    issuer: i.issuer,
    jwksUri: i.jwksUri,
    jwk: i.jwk,
    allowedSubjects: [...i.allowedSubjects],
    allowedScopes: [...i.allowedScopes],
    maxTokenSeconds: Number(i.maxTokenSeconds),
    maxAssertionSeconds: Number(i.maxAssertionSeconds),
    audience: i.audience,
    description: i.description,
  };
}

function trustedIssuerToPb(i: TrustedIssuer) {
  return {
    issuer: i.issuer,
    jwksUri: i.jwksUri,
    jwk: i.jwk,
    allowedSubjects: i.allowedSubjects,
    allowedScopes: i.allowedScopes,
    maxTokenSeconds: BigInt(i.maxTokenSeconds),
    maxAssertionSeconds: BigInt(i.maxAssertionSeconds),
    audience: i.audience,
    description: i.description,
    createTime: timestampFromDate(i.createdAt),
    updateTime: timestampFromDate(i.updatedAt),
  };
}
