import type { PeerCertificate } from "node:tls";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { UnauthenticatedError } from "../domain/errors.js";
import { type CallerAuthenticator, NO_CREDENTIALS, requireScope } from "./caller-authenticator.js";
import type { Principal } from "./principal.js";
import { requiredScope } from "./scopes.js";

/** What a transport knows of a call's credentials. */
export interface CallCredentials {
  authorization: string | undefined;
  /** Only when the TLS handshake verified it against the configured client CA. */
  certificate: (() => PeerCertificate | undefined) | undefined;
}

/**
 * Authentication and the scope check, the same for both ports: a bearer token of a system
 * client, or else a verified client certificate (mTLS) with the configured scopes.
 */
export class CallAuthorizer {
  constructor(
    private readonly authenticator: CallerAuthenticator,
    private readonly certificateScopes: () => readonly string[],
  ) {}

  /** The scope check of one method, made once per method. */
  forMethod(service: DescService, method: DescMethod): (credentials: CallCredentials) => Principal | Promise<Principal> {
    return this.forScope(requiredScope(service, method), `/${service.typeName}/${method.name}`);
  }

  /** The check of an endpoint that is not an RPC (forward auth), named `procedure` in errors. */
  forScope(scope: string, procedure: string): (credentials: CallCredentials) => Principal | Promise<Principal> {
    return (credentials) => {
      const principal = credentials.authorization
        ? this.authenticator.authenticate(credentials.authorization)
        : this.fromCertificate(credentials.certificate?.());
      if (principal instanceof Promise) {
        return principal.then((p) => {
          requireScope(p, scope, procedure);
          return p;
        });
      }
      requireScope(principal, scope, procedure);
      return principal;
    };
  }

  private fromCertificate(certificate: PeerCertificate | undefined): Principal {
    const name = certificate?.subject?.CN;
    const cn = Array.isArray(name) ? name.join(",") : (name ?? "");
    if (!certificate) throw new UnauthenticatedError(NO_CREDENTIALS);
    if (cn === "") throw new UnauthenticatedError("the client certificate has no subject CN");
    return { clientId: `cert:${cn}`, scopes: new Set(this.certificateScopes()), subscriber: "", groups: [] };
  }
}
