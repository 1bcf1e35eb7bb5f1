import type { ServiceImpl } from "@connectrpc/connect";
import type { TokenValidationService, ValidateTokenRequest } from "../../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../../gen/keymanager/v1/types_pb.js";
import { Validator } from "../domain/validator.js";
import type { TokenValidator, ValidationResult } from "../validation/token-validator.js";
import type { Metrics } from "../observability/metrics.js";
import { keyTypeToPb, optionalAuthLevelFromPb, tokenTypeToPb } from "./enums.js";

type Impl = ServiceImpl<typeof TokenValidationService>;

/** keymanager.v1.TokenValidationService: the gateway's per-call check. */
export class TokenValidationServiceImpl implements Impl {
  // Answers served from the decision cache are the same objects, so their messages (and, on the
  // gRPC port, their encoded bytes) are built once.
  private readonly messages = new WeakMap<ValidationResult, ReturnType<typeof validationToPb>>();

  constructor(
    private readonly validator: TokenValidator,
    private readonly metrics?: Metrics,
  ) {}

  // Not async: an answer from the cache goes back without a trip through the microtask queue.
  validateToken(req: Parameters<Impl["validateToken"]>[0]) {
    const requiredAuthLevel = req.requiredAuthLevel === AuthLevel.UNSPECIFIED && wellFormed(req) ? undefined : checkRequest(req);
    const result = this.validator.validate({
      context: req.context,
      version: req.version,
      accessToken: req.accessToken,
      requiredAuthLevel,
      matchingResource: req.matchingResource,
      requestPath: req.requestPath,
      httpVerb: req.httpVerb,
    });
    return result instanceof Promise ? result.then((r) => this.toMessage(r)) : this.toMessage(result);
  }

  private toMessage(result: ValidationResult) {
    this.metrics?.decision(result.status);
    let message = this.messages.get(result);
    if (!message) {
      message = validationToPb(result);
      this.messages.set(result, message);
    }
    return message;
  }
}

function wellFormed(req: ValidateTokenRequest): boolean {
  return req.context !== "" && req.version !== "" && (req.matchingResource !== "" || req.requestPath !== "") && req.httpVerb !== "";
}

/** The slow path: names every missing field, checks the auth level. */
function checkRequest(req: ValidateTokenRequest) {
  const v = new Validator();
  v.required("context", req.context);
  v.required("version", req.version);
  if (req.matchingResource === "" && req.requestPath === "") v.add("matching_resource", "is required (or request_path)");
  v.required("http_verb", req.httpVerb);
  const level = optionalAuthLevelFromPb(v, "required_auth_level", req.requiredAuthLevel);
  v.throwIfInvalid();
  return level;
}

function validationToPb(r: ValidationResult) {
  const t = r.token;
  return {
    authorized: r.authorized,
    statusCode: r.status.code,
    statusName: r.status.name,
    consumerKey: t?.consumerKey ?? "",
    applicationId: r.keyMapping?.applicationId ?? "",
    applicationName: r.keyMapping?.applicationName ?? "",
    applicationTier: r.keyMapping?.applicationTier ?? "",
    subscriber: r.keyMapping?.subscriber ?? "",
    subscriptionTier: r.subscription?.tier ?? "",
    keyType: r.keyMapping ? keyTypeToPb(r.keyMapping.keyType) : 0,
    endUserName: t?.endUser ?? "",
    scopes: t?.scopes ?? [],
    issuedTimeMs: t ? BigInt(t.issuedAt.getTime()) : 0n,
    validityPeriodMs: t ? BigInt(t.expiresAt.getTime() - t.issuedAt.getTime()) : 0n,
    apiName: r.api?.name ?? "",
    apiPublisher: r.api?.publisher ?? "",
    apiTier: r.api?.apiTier ?? "",
    keyManager: r.keyMapping?.keyManager ?? "",
    tokenType: t ? tokenTypeToPb(t.tokenType) : 0,
    isApplicationToken: t ? t.endUser === "" : false,
    resourceTier: r.resource?.throttlingTier ?? "",
    statusDescription: r.description,
    matchedResource: r.resource?.uriTemplate ?? "",
  };
}
