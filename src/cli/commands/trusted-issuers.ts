// km trusted-issuers ...: outside issuers whose JWTs the JWT bearer grant and token exchange accept.
import type { JsonObject } from "@bufbuild/protobuf";
import { TrustedIssuerService } from "../../../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { type CliOption, type CommandGroup, type CommandInput, defined, list, optional, required, UsageError } from "../command.js";
import { rpcCommand, updateMask } from "../rpc.js";
import { pagingOptions, pagingRequest } from "./paging.js";

const issuer: Record<string, CliOption> = { issuer: { type: "string", value: "URL", help: 'the issuer, its JWTs\' "iss" exactly' } };
const issuerFields: Record<string, CliOption> = {
  "jwks-uri": { type: "string", value: "URL", help: "where its JWKS is (or --jwk)" },
  jwk: { type: "string", value: "JSON", help: "one public key of it, a JWK as JSON (or --jwks-uri)" },
  subject: { type: "string", multiple: true, value: "SUB", help: 'a subject whose JWTs are accepted (repeat); "*": any' },
  scope: { type: "string", multiple: true, value: "SCOPE", help: "a scope a token issued from its JWTs may carry (repeat)" },
  "max-token-seconds": { type: "string", value: "S", help: "the longest a token issued from its JWTs lives" },
  "max-assertion-seconds": { type: "string", value: "S", help: "the longest its JWTs may live (default 3600)" },
  audience: { type: "string", value: "AUD", help: 'the "aud" its JWTs must name (default: this issuer or its token endpoint)' },
  description: { type: "string", value: "TEXT", help: "what it is" },
};

function seconds(input: CommandInput, name: string): string | undefined {
  const value = optional(input.values, name);
  if (value !== undefined && !/^\d+$/.test(value)) throw new UsageError(`--${name} "${value}": give a whole number of seconds`);
  return value;
}

/** The TrustedIssuer fields the options give, in the contract's JSON form. */
function issuerJson(input: CommandInput): JsonObject {
  return defined({
    jwksUri: optional(input.values, "jwks-uri"),
    jwk: optional(input.values, "jwk"),
    allowedSubjects: list(input.values, "subject"),
    allowedScopes: list(input.values, "scope"),
    maxTokenSeconds: seconds(input, "max-token-seconds"),
    maxAssertionSeconds: seconds(input, "max-assertion-seconds"),
    audience: optional(input.values, "audience"),
    description: optional(input.values, "description"),
  });
}

export const trustedIssuers: CommandGroup = {
  summary: "outside issuers of JWT bearer assertions and token exchange: create, get, list, update, delete",
  commands: {
    create: rpcCommand(TrustedIssuerService, "CreateTrustedIssuer", {
      summary: "trust an issuer's JWTs (give --subject and --jwks-uri or --jwk)",
      options: { ...issuer, ...issuerFields },
      request: (input) => ({ trustedIssuer: { issuer: required(input.values, "issuer"), ...issuerJson(input) } }),
    }),
    get: rpcCommand(TrustedIssuerService, "GetTrustedIssuer", {
      summary: "one trusted issuer",
      options: issuer,
      request: (input) => ({ issuer: required(input.values, "issuer") }),
    }),
    list: rpcCommand(TrustedIssuerService, "ListTrustedIssuers", {
      summary: "trusted issuers, a page at a time",
      options: pagingOptions,
      request: (input) => pagingRequest(input),
    }),
    update: rpcCommand(TrustedIssuerService, "UpdateTrustedIssuer", {
      summary: "change a trusted issuer's fields (only those given; --subject and --scope replace the lists)",
      options: { ...issuer, ...issuerFields },
      request: (input) => {
        const fields = issuerJson(input);
        if (Object.keys(fields).length === 0 && input.values.data === undefined) throw new UsageError("nothing to change: give at least one field");
        return { trustedIssuer: { issuer: required(input.values, "issuer"), ...fields }, updateMask: updateMask(fields) };
      },
    }),
    delete: rpcCommand(TrustedIssuerService, "DeleteTrustedIssuer", {
      summary: "stop trusting an issuer; tokens already issued from its JWTs stay valid",
      options: issuer,
      request: (input) => ({ issuer: required(input.values, "issuer") }),
    }),
  },
};
