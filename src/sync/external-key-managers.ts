import type { Config } from "../config/config.js";
import type { GatewayExternalKeyManager } from "./entities.js";

/** The external key managers of a configuration, as a gateway receives them. */
export function gatewayExternalKeyManagers(config: Config): GatewayExternalKeyManager[] {
  return config.externalKeyManagers.map((km) => ({
    name: km.name,
    issuer: km.issuer,
    jwksUri: km.endpoints.jwks ?? "",
    jwtValidation: km.jwtValidation,
    tokenPattern: km.tokenPattern?.source ?? "",
    validationCacheSeconds: km.validationCacheSeconds,
  }));
}
