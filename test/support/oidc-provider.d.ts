// oidc-provider ships no type declarations; the little the tests use of it.
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http";

  interface PolicyContext {
    method: string;
  }

  export interface Configuration {
    clients?: Array<Record<string, unknown>>;
    scopes?: string[];
    cookies?: { keys: string[] };
    formats?: Record<string, unknown>;
    features?: Record<string, unknown> & {
      registration?: {
        enabled: boolean;
        initialAccessToken?: boolean | string;
        policies?: Record<string, (ctx: PolicyContext, properties: Record<string, unknown>) => void | Promise<void>>;
      };
    };
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    on(event: string, listener: (...args: unknown[]) => void): this;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    InitialAccessToken: new (options: {
      policies?: string[];
    }) => { save(): Promise<string> };
    Client: { find(clientId: string): Promise<{ clientId: string; clientSecret?: string; metadata(): Record<string, unknown> } | undefined> };
    ClientCredentials: { find(token: string): Promise<{ destroy(): Promise<void> } | undefined> };
  }
}
