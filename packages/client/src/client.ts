import type * as http2 from "node:http2";
import type * as https from "node:https";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { KeyManagerService } from "../../../gen/keymanager/v1/key_manager_service_pb.js";
import { SigningKeyService } from "../../../gen/keymanager/v1/signing_key_service_pb.js";
import { SubscriptionService } from "../../../gen/keymanager/v1/subscription_service_pb.js";
import { SystemClientService } from "../../../gen/keymanager/v1/system_client_service_pb.js";
import { TokenValidationService } from "../../../gen/keymanager/v1/token_validation_service_pb.js";
import { UserService } from "../../../gen/keymanager/v1/user_service_pb.js";
import { TrustedIssuerService } from "../../../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { ScopeService } from "../../../gen/keymanager/v1/scope_service_pb.js";
import { type ClientCredentials, TokenSource } from "./token-source.js";

export type { ClientCredentials };

export interface KeyManagerClientOptions {
  /** The service's HTTP port (Connect, gRPC-Web) or its gRPC port with protocol "grpc", for example http://127.0.0.1:8080. */
  baseUrl: string;
  /** A bearer token to send as is. */
  token?: string;
  /** Or a system client's credentials: tokens are got from tokenUrl and replaced before they expire. */
  credentials?: ClientCredentials;
  /** Default: baseUrl + /oauth2/token (give it when baseUrl is the gRPC port). */
  tokenUrl?: string;
  /** Default "connect". */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** Connect and gRPC-Web: "1.1" (default) or "2" (needed for ValidateTokens). gRPC is always HTTP/2. */
  httpVersion?: "1.1" | "2";
  /** Seconds before expiry a token is replaced (default 60, at most half its lifetime). */
  refreshBeforeSeconds?: number;
  /** More interceptors, run after the one adding the token. */
  interceptors?: Interceptor[];
  /**
   * Passed to Node's http2.connect (gRPC, and Connect or gRPC-Web over HTTP/2) or https.request
   * (HTTP/1.1): TLS options such as `ca`, and `cert` with `key` for a client certificate.
   */
  nodeOptions?: http2.SecureClientSessionOptions & https.RequestOptions;
}

export interface KeyManagerClient {
  keyManager: Client<typeof KeyManagerService>;
  tokenValidation: Client<typeof TokenValidationService>;
  subscriptions: Client<typeof SubscriptionService>;
  users: Client<typeof UserService>;
  signingKeys: Client<typeof SigningKeyService>;
  systemClients: Client<typeof SystemClientService>;
  trustedIssuers: Client<typeof TrustedIssuerService>;
  /** Scopes and role-based scopes, and the scopes of APIs' resources. */
  scopes: Client<typeof ScopeService>;
  /** A client of any service over the same transport and token. */
  client<S extends DescService>(service: S): Client<S>;
  transport: Transport;
  /** The token source, when created with credentials. */
  tokens: TokenSource | undefined;
}

/**
 * Clients of every keymanager service over one transport, each call with `Authorization: Bearer`:
 * the token given, or one got with the client's credentials and replaced before it expires (and
 * once more when the server refuses it as UNAUTHENTICATED, for a unary call).
 */
export function createKeyManagerClient(options: KeyManagerClientOptions): KeyManagerClient {
  if ((options.token === undefined) === (options.credentials === undefined)) throw new TypeError("createKeyManagerClient: give either token or credentials");
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const tokens = options.credentials
    ? new TokenSource({
        tokenUrl: options.tokenUrl ?? `${baseUrl}/oauth2/token`,
        credentials: options.credentials,
        refreshBeforeSeconds: options.refreshBeforeSeconds,
      })
    : undefined;
  const fixed = options.token;
  const bearer: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${tokens ? await tokens.token() : fixed}`);
    if (!tokens || req.stream) return next(req);
    try {
      return await next(req);
    } catch (err) {
      if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) throw err;
      // Revoked or otherwise refused: one more try with a new token.
      tokens.invalidate();
      req.header.set("authorization", `Bearer ${await tokens.token()}`);
      return next(req);
    }
  };
  const interceptors = [bearer, ...(options.interceptors ?? [])];
  const httpVersion = options.httpVersion ?? "1.1";
  const nodeOptions = options.nodeOptions;
  const transport =
    options.protocol === "grpc"
      ? createGrpcTransport({ baseUrl, interceptors, nodeOptions })
      : options.protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl, httpVersion, interceptors, nodeOptions })
        : createConnectTransport({ baseUrl, httpVersion, interceptors, nodeOptions });
  const client = <S extends DescService>(service: S) => createClient(service, transport);
  return {
    keyManager: client(KeyManagerService),
    tokenValidation: client(TokenValidationService),
    subscriptions: client(SubscriptionService),
    users: client(UserService),
    signingKeys: client(SigningKeyService),
    systemClients: client(SystemClientService),
    trustedIssuers: client(TrustedIssuerService),
    scopes: client(ScopeService),
    client,
    transport,
    tokens,
  };
}
