import { z } from "zod";
import { externalKeyManagersSection } from "./external-key-managers.js";

const port = z.coerce.number().int().min(0).max(65535);
const seconds = z.coerce
  .number()
  .int()
  .min(1)
  .max(10 * 365 * 24 * 3600);
const host = z.string().min(1);

/** The `[key_manager]` section of the deployment file, like WSO2's `[apim.key_manager]`. */
export const keyManagerSection = z
  .object({
    name: z.string().min(1).max(100).default("Resident Key Manager"),
    type: z.enum(["resident"]).default("resident"),
    token_type: z.enum(["opaque", "jwt"]).default("opaque"),
    /** Base URL of the OAuth2 endpoints; derived from the HTTP listener when empty. */
    issuer: z.url().optional(),
    data_dir: z.string().min(1).default("./data"),
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    validity: z
      .object({
        application_token: seconds.default(3600),
        user_token: seconds.default(3600),
        refresh_token: seconds.default(86400),
        /** No token, whatever its request asks, lives longer than this. */
        max_token: seconds.default(365 * 24 * 3600),
      })
      .strict()
      .prefault({}),
    jwt: z
      .object({ algorithm: z.enum(["ES256", "RS256"]).default("ES256") })
      .strict()
      .prefault({}),
    endpoints: z
      .object({
        token: z.url().optional(),
        revoke: z.url().optional(),
        introspect: z.url().optional(),
        jwks: z.url().optional(),
      })
      .strict()
      .prefault({}),
    grpc: z
      .object({ host: host.default("0.0.0.0"), port: port.default(50051) })
      .strict()
      .prefault({}),
    http: z
      .object({ host: host.default("0.0.0.0"), port: port.default(8080) })
      .strict()
      .prefault({}),
    database: z
      .object({
        /** sqlite:PATH, postgres://..., mysql://...; a SQLite file in data_dir when empty. */
        url: z.string().optional(),
        pool_max: z.coerce.number().int().min(1).max(200).default(10),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        cert_file: z.string().optional(),
        key_file: z.string().optional(),
        /** CA of gateways' client certificates: required on the gRPC port, optional on HTTP. */
        client_ca_file: z.string().optional(),
        /** Scopes a verified client certificate grants (its subject CN names the caller). */
        client_certificate_scopes: z.array(z.enum(["apim:subscribe", "km:gateway", "km:admin"])).default(["km:gateway"]),
      })
      .strict()
      .refine((t) => Boolean(t.cert_file) === Boolean(t.key_file), {
        message: "cert_file and key_file must be given together",
      })
      .refine((t) => !t.client_ca_file || Boolean(t.cert_file), {
        message: "client_ca_file needs cert_file and key_file",
      })
      .prefault({}),
    housekeeping: z
      .object({
        /** Seconds between purges of ended tokens; 0 turns the purge off. */
        purge_interval_seconds: z.coerce
          .number()
          .int()
          .min(0)
          .max(7 * 24 * 3600)
          .default(600),
        /** How long expired and revoked tokens are kept before the purge deletes them. */
        retain_seconds: z.coerce
          .number()
          .int()
          .min(0)
          .max(365 * 24 * 3600)
          .default(86400),
      })
      .strict()
      .prefault({}),
    cluster: z
      .object({
        /**
         * MySQL/MariaDB: milliseconds between each replica's reads of the other replicas' changes
         * (PostgreSQL is told at once by LISTEN/NOTIFY; SQLite serves one process).
         */
        poll_interval_ms: z.coerce.number().int().min(50).max(60_000).default(500),
      })
      .strict()
      .prefault({}),
    encryption: z
      .object({
        /** Base64 of 32 bytes. Generated into data_dir on first start when empty. */
        key: z.string().optional(),
      })
      .strict()
      .prefault({}),
    /** External OAuth2 servers acting as key managers beside the resident one (`[[key_manager.external]]`). */
    external: externalKeyManagersSection,
  })
  .strict()
  .refine((s) => !s.external.some((km) => km.name === s.name), { message: "an external key manager cannot take the resident key manager's name" });

// Other top-level tables may belong to other tools sharing the file; they are ignored.
export const deploymentFile = z.object({ key_manager: keyManagerSection.prefault({}) });

export type KeyManagerSection = z.infer<typeof keyManagerSection>;
