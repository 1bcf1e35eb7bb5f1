import { type Decision, type GatewayError, gatewayError, noApiForPath } from "@keymanager/core";
import type { GatewaySettings } from "../config/config.js";
import type { TokenValidator, ValidationResult } from "../validation/token-validator.js";
import type { ApiDirectory } from "./api-directory.js";

/** What a gateway that asks by request tells: the request as its caller sent it. */
export interface GatewayRequest {
  /** The HTTP method ("GET"). */
  method: string;
  /** The raw request path, query allowed ("/pizzashack/1.0.0/menu?lang=en"). */
  path: string;
  /** A request header by lower-case name (undefined: absent). */
  header(name: string): string | undefined;
  /** The API version when the gateway's configuration names it (Envoy's context_extensions); else a header or the path. */
  version?: string;
}

/** The answer in HTTP terms, the same for every gateway protocol. */
export interface GatewayAnswer {
  decision: Decision;
  /** 200 when allowed, else the refusal's status (gatewayError). */
  status: number;
  /** Allowed: [lower-case name, value] for the upstream request; values never empty. */
  upstream: readonly (readonly [string, string])[];
  /**
   * Allowed: upstream header names to take off the request: each configured one without a value
   * here (a caller's own `x-end-user` must not reach the upstream as if it were the key
   * manager's), and the token header when so configured.
   */
  remove: readonly string[];
  /** Refused: WSO2's gateway error body, status and headers for the API caller, the code header included. */
  refusal: GatewayError | undefined;
  /** The decision as flat values, for Envoy's dynamic metadata (rate limiting) and logs. */
  facts: Readonly<Record<string, string | number | boolean>>;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/**
 * The gateway check of a request as Envoy's ext_authz and forward-auth gateways (nginx, Caddy,
 * Traefik) ask it: the token from the configured header, the API from the path (longest context,
 * core's ApiIndex), the resource by core's URI templates, and ValidateToken's decision (the same
 * TokenValidator and caches, so the same answer ValidateToken gives). Answers mapped from a
 * cached decision are kept with it.
 */
export class GatewayCheck {
  private readonly answers = new WeakMap<Decision, GatewayAnswer>();

  constructor(
    private readonly apis: ApiDirectory,
    private readonly validator: TokenValidator,
    private readonly settings: GatewaySettings,
  ) {}

  check(request: GatewayRequest): GatewayAnswer | Promise<GatewayAnswer> {
    const version = request.version || (this.settings.versionHeader ? request.header(this.settings.versionHeader) : undefined) || undefined;
    const found = this.apis.find(request.path, version);
    return found instanceof Promise ? found.then((match) => this.decide(request, match?.api)) : this.decide(request, found?.api);
  }

  private decide(request: GatewayRequest, api: { context: string; version: string } | undefined): GatewayAnswer | Promise<GatewayAnswer> {
    if (!api) return this.toAnswer(noApiForPath(request.path));
    const result = this.validator.validate({
      context: api.context,
      version: api.version,
      accessToken: this.token(request),
      requiredAuthLevel: undefined,
      matchingResource: "",
      requestPath: request.path,
      httpVerb: request.method,
    });
    return result instanceof Promise ? result.then((r) => this.answer(r)) : this.answer(result);
  }

  /** The caller's token: `Bearer <token>` in Authorization; in another header, with or without the scheme. */
  private token(request: GatewayRequest): string {
    const value = request.header(this.settings.tokenHeader)?.trim();
    if (!value) return "";
    const bearer = BEARER.exec(value);
    if (bearer?.[1]) return bearer[1];
    return this.settings.tokenHeader === "authorization" || /\s/.test(value) ? "" : value;
  }

  private answer(decision: ValidationResult): GatewayAnswer {
    let answer = this.answers.get(decision);
    if (!answer) {
      answer = this.toAnswer(decision);
      this.answers.set(decision, answer);
    }
    return answer;
  }

  private toAnswer(decision: Decision): GatewayAnswer {
    const facts = factsOf(decision);
    if (!decision.authorized) {
      const refusal = gatewayError(decision.status.code, decision.description);
      refusal.headers[this.settings.codeHeader] = String(decision.status.code);
      return { decision, status: refusal.status, upstream: [], remove: [], refusal, facts };
    }
    const names = this.settings.upstreamHeaders;
    const values: [string, string][] = [
      [names.consumerKey, decision.token?.consumerKey ?? ""],
      [names.applicationId, decision.keyMapping?.applicationId ?? ""],
      [names.applicationName, decision.keyMapping?.applicationName ?? ""],
      [names.subscriptionTier, decision.subscription?.tier ?? ""],
      [names.keyType, decision.keyMapping?.keyType ?? ""],
      [names.endUser, decision.token?.endUser ?? ""],
    ];
    const configured = values.filter(([name]) => name !== "");
    const upstream = configured.filter(([, value]) => value !== "").map(([name, value]) => [name, headerSafe(value)] as const);
    const remove = configured.filter(([, value]) => value === "").map(([name]) => name);
    if (this.settings.removeTokenHeader) remove.push(this.settings.tokenHeader);
    return { decision, status: 200, upstream, remove, refusal: undefined, facts };
  }
}

/**
 * A value as a header may carry it: "%" and every character outside printable ASCII (a name in
 * another script, a control character) percent-encoded as UTF-8, so the upstream reads every value
 * with one decodeURIComponent.
 */
export function headerSafe(value: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(value) ? value : value.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** The decision's facts, flat, empty ones left out. */
function factsOf(d: Decision): Record<string, string | number | boolean> {
  const facts: Record<string, string | number | boolean> = {
    authorized: d.authorized,
    status_code: d.status.code,
    status_name: d.status.name,
    api_name: d.api?.name ?? "",
    api_context: d.api?.context ?? "",
    api_version: d.api?.version ?? "",
    api_tier: d.api?.apiTier ?? "",
    matched_resource: d.resource?.uriTemplate ?? "",
    resource_tier: d.resource?.throttlingTier ?? "",
    consumer_key: d.token?.consumerKey ?? "",
    end_user: d.token?.endUser ?? "",
    application_id: d.keyMapping?.applicationId ?? "",
    application_name: d.keyMapping?.applicationName ?? "",
    application_tier: d.keyMapping?.applicationTier ?? "",
    key_type: d.keyMapping?.keyType ?? "",
    subscription_tier: d.subscription?.tier ?? "",
  };
  for (const [key, value] of Object.entries(facts)) if (value === "") delete facts[key];
  return facts;
}
