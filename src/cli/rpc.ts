// One RPC as a `km` command: options become the request in the contract's JSON form (the same
// JSON buf curl and the Connect protocol take), `--data` adds to or overrides it, the generated
// client sends it, and the answer is printed in the same JSON form.
import { type DescService, fromJson, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Command, type CommandInput, type CliContext, type CliOption, UsageError } from "./command.js";

export const DATA_OPTION: CliOption = {
  type: "string",
  value: "JSON",
  help: "the request (or part of it) in the contract's JSON form, merged over what the other options say",
};

export interface RpcCommand {
  summary: string;
  positionals?: string;
  details?: string;
  options?: Record<string, CliOption>;
  /** The request JSON from the options (before --data). */
  request?(input: CommandInput, context: CliContext): JsonObject | Promise<JsonObject>;
  /** What of the answer to print (all of it by default). */
  answer?(response: JsonObject): unknown;
}

export function rpcCommand(service: DescService, methodName: string, spec: RpcCommand): Command {
  const method = service.methods.find((m) => m.name === methodName);
  if (!method) throw new Error(`${service.typeName} has no ${methodName}`);
  return {
    summary: spec.summary,
    positionals: spec.positionals,
    details: `${spec.details ? `${spec.details}\n` : ""}Calls ${service.typeName}/${method.name}.`,
    options: { ...spec.options, data: DATA_OPTION },
    async run(input, context) {
      const fromOptions = (await spec.request?.(input, context)) ?? {};
      const data = typeof input.values.data === "string" ? parseData(input.values.data) : {};
      let request: ReturnType<typeof fromJson>;
      try {
        request = fromJson(method.input, merge(fromOptions, data) as JsonValue);
      } catch (err) {
        throw new UsageError(`not a ${method.input.typeName}: ${(err as Error).message}`);
      }
      const client = context.client(service) as unknown as Record<string, (req: unknown) => Promise<never>>;
      const call = client[method.localName];
      if (!call) throw new Error(`the client has no ${method.localName}`);
      const response = await call(request);
      const json = toJson(method.output, response) as JsonObject;
      return spec.answer ? spec.answer(json) : json;
    },
  };
}

function parseData(text: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--data is not JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new UsageError("--data must be a JSON object");
  return parsed as JsonObject;
}

/** `over` merged into `base`: objects member by member, anything else replaced. */
function merge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      value && typeof value === "object" && !Array.isArray(value) && current && typeof current === "object" && !Array.isArray(current)
        ? merge(current as JsonObject, value as JsonObject)
        : value;
  }
  return out;
}

/** The update mask (JSON form: camelCase paths, comma-separated) of the fields an update command was given. */
export function updateMask(fields: JsonObject): string {
  return Object.keys(fields).join(",");
}
