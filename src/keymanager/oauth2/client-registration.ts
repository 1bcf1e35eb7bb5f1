import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../../domain/errors.js";
import { NO_CLIENT } from "../key-manager.js";
import type { ClientSettings } from "../../domain/model/index.js";
import type { EndpointResolver } from "./endpoints.js";
import { fields, type HttpResponse, type OAuth2HttpClient, str, strings } from "./http-client.js";

/** What the server says of a client it holds (RFC 7591 section 3.2.1). */
export interface RegisteredClient {
  clientId: string;
  clientSecret: string;
  clientName: string;
  redirectUris: string[];
  grantTypes: string[];
  scopes: string[];
  /** RFC 7592: where and with what the client is read, updated and deleted. */
  registrationClientUri: string;
  registrationAccessToken: string;
}

export interface Registration {
  uri: string;
  accessToken: string;
}

/** RFC 7591 registration and RFC 7592 management of clients at one server. */
export class ClientRegistration {
  constructor(
    private readonly keyManager: string,
    private readonly http: OAuth2HttpClient,
    private readonly endpoints: EndpointResolver,
    private readonly initialAccessToken: string | undefined,
  ) {}

  /** Not retried: a second POST would register a second client. */
  async register(settings: ClientSettings): Promise<RegisteredClient> {
    const headers: Record<string, string> = this.initialAccessToken ? { authorization: `Bearer ${this.initialAccessToken}` } : {};
    const url = await this.endpoints.get("registration");
    const response = await this.http.send({ method: "POST", url, headers, json: clientMetadata(settings), idempotent: false });
    return this.registered(this.expect(response, [201, 200], "register"), undefined);
  }

  async read(reg: Registration): Promise<RegisteredClient> {
    const response = await this.http.send({ method: "GET", url: reg.uri, headers: bearer(reg.accessToken), idempotent: true });
    return this.registered(this.expect(response, [200], "read"), reg);
  }

  /** RFC 7592 section 2.2: the whole metadata, client_id included; the server may rotate the secret. */
  async update(reg: Registration, clientId: string, settings: ClientSettings): Promise<RegisteredClient> {
    const json = { ...clientMetadata(settings), client_id: clientId };
    const response = await this.http.send({ method: "PUT", url: reg.uri, headers: bearer(reg.accessToken), json, idempotent: true });
    return this.registered(this.expect(response, [200], "update"), reg);
  }

  /**
   * A client already gone is not an error: the wanted state is reached. 401 counts as gone: a
   * server drops the registration access token with the client (RFC 7592 section 2.3), so a
   * retried DELETE whose first answer was lost sees 401.
   */
  async delete(reg: Registration): Promise<void> {
    const response = await this.http.send({ method: "DELETE", url: reg.uri, headers: bearer(reg.accessToken), idempotent: true });
    if (response.status === 204 || response.status === 200 || response.status === 404 || response.status === 401) return;
    this.expect(response, [204], "delete");
  }

  private expect(response: HttpResponse, ok: number[], what: string): Record<string, unknown> {
    const body = fields(response.body);
    if (ok.includes(response.status)) return body;
    const error = str(body.error);
    const description = str(body.error_description);
    if (response.status === 400 && (error === "invalid_client_metadata" || error === "invalid_redirect_uri" || error === "invalid_request")) {
      throw InvalidArgumentError.field(
        error === "invalid_redirect_uri" ? "callback_urls" : "client",
        `refused by key manager "${this.keyManager}": ${description || error}`,
      );
    }
    if (response.status === 404) throw new NotFoundError(NO_CLIENT);
    throw new FailedPreconditionError(`key manager "${this.keyManager}" refused to ${what} the client: HTTP ${response.status}${error ? ` ${error}` : ""}`);
  }

  private registered(body: Record<string, unknown>, previous: Registration | undefined): RegisteredClient {
    const clientId = str(body.client_id);
    const registrationClientUri = str(body.registration_client_uri) || previous?.uri || "";
    const registrationAccessToken = str(body.registration_access_token) || previous?.accessToken || "";
    if (clientId === "" || registrationClientUri === "" || registrationAccessToken === "") {
      throw new FailedPreconditionError(`key manager "${this.keyManager}" answered without client_id, registration_client_uri or registration_access_token`);
    }
    return {
      clientId,
      clientSecret: str(body.client_secret),
      clientName: str(body.client_name),
      redirectUris: strings(body.redirect_uris),
      grantTypes: strings(body.grant_types),
      scopes: str(body.scope)
        .split(" ")
        .filter((s) => s !== ""),
      registrationClientUri,
      registrationAccessToken,
    };
  }
}

/** RFC 7591 section 2 metadata of a client's settings; validity and token type stay local. */
function clientMetadata(s: ClientSettings): Record<string, unknown> {
  const responseTypes = [...(s.grantTypes.includes("authorization_code") ? ["code"] : []), ...(s.grantTypes.includes("implicit") ? ["token"] : [])];
  return {
    client_name: s.clientName,
    redirect_uris: s.callbackUrls,
    grant_types: s.grantTypes,
    response_types: responseTypes,
    token_endpoint_auth_method: "client_secret_basic",
    ...(s.scopes.length > 0 ? { scope: s.scopes.join(" ") } : {}),
  };
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
