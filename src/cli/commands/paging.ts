import type { JsonObject } from "@bufbuild/protobuf";
import { type CliOption, type CommandInput, defined, optional, UsageError } from "../command.js";

export const pagingOptions: Record<string, CliOption> = {
  "page-size": { type: "string", value: "N", help: "at most N items (the server's default page size otherwise)" },
  "page-token": { type: "string", value: "TOKEN", help: "the nextPageToken of the previous page" },
};

export function pagingRequest(input: CommandInput): JsonObject {
  const size = optional(input.values, "page-size");
  if (size !== undefined && !/^\d+$/.test(size)) throw new UsageError(`--page-size ${size}: not a number`);
  return defined({ pageSize: size === undefined ? undefined : Number(size), pageToken: optional(input.values, "page-token") });
}
