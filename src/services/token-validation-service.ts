import { create } from "@bufbuild/protobuf";
import type { ConnectError, ServiceImpl } from "@connectrpc/connect";
import {
  type TokenValidationService,
  type ValidateTokenRequest,
  ValidateTokenRequestSchema,
  type ValidateTokensRequest,
  type ValidateTokensResponse,
} from "../../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../../gen/keymanager/v1/types_pb.js";
import { Validator } from "../domain/validator.js";
import type { TokenValidator, ValidationResult } from "../validation/token-validator.js";
import type { Metrics } from "../observability/metrics.js";
import { keyTypeToPb, optionalAuthLevelFromPb, tokenTypeToPb } from "./enums.js";
import { pipelined } from "./pipelined.js";

type Impl = ServiceImpl<typeof TokenValidationService>;
type Answer = ReturnType<typeof validationToPb>;
/** A ValidateTokens answer (the shape protobuf-es creates the message from). */
export type StreamAnswer = Pick<ValidateTokensResponse, "requestId"> & {
  result: { case: "response"; value: Answer } | { case: "error"; value: { code: number; message: string } };
};

export interface StreamOptions {
  /** Requests of one ValidateTokens stream worked on at once (validation.stream_max_in_flight). */
  maxInFlight: () => number;
  /** The status an error of one request maps to, as the transports map a failed call (error-mapping.ts). */
  describeError: (err: unknown) => ConnectError;
}

/** A stream request without its ValidateTokenRequest: refused as an empty one is. */
const EMPTY_REQUEST = create(ValidateTokenRequestSchema);

/** keymanager.v1.TokenValidationService: the gateway's per-call check. */
export class TokenValidationServiceImpl implements Impl {
  // Answers served from the decision cache are the same objects, so their messages (and, on the
  // gRPC port, their encoded bytes) are built once.
  private readonly messages = new WeakMap<ValidationResult, ReturnType<typeof validationToPb>>();

  constructor(
    private readonly validator: TokenValidator,
    private readonly stream: StreamOptions,
    private readonly metrics?: Metrics,
  ) {}

  /**
   * ValidateToken for each request of the stream, answered as each is decided (cached answers at
   * once, others when their facts arrive), at most stream.maxInFlight at a time.
   */
  validateTokens(requests: AsyncIterable<ValidateTokensRequest>): AsyncIterable<StreamAnswer> {
    return pipelined(requests, (r) => this.answer(r), this.stream.maxInFlight());
  }

  private answer(r: ValidateTokensRequest): StreamAnswer | Promise<StreamAnswer> {
    const requestId = r.requestId;
    try {
      const res = this.validateToken(r.request ?? EMPTY_REQUEST);
      if (res instanceof Promise)
        return res.then(
          (value): StreamAnswer => ({ requestId, result: { case: "response", value } }),
          (err: unknown) => this.failed(requestId, err),
        );
      return { requestId, result: { case: "response", value: res } };
    } catch (err) {
      return this.failed(requestId, err);
    }
  }

  private failed(requestId: bigint, err: unknown): StreamAnswer {
    const { code, rawMessage } = this.stream.describeError(err);
    return { requestId, result: { case: "error", value: { code, message: rawMessage } } };
  }

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
