// docs/api.md from the contract itself: `buf build` (with the .proto comments), then every RPC of
// every keymanager.v1 service with its request and response in the JSON form the Connect protocol,
// buf curl and `km --data` use, and every message and enum with its fields' comments.
//
//   npm run docs:api            rewrite docs/api.md
//   npm run docs:api -- --check fail (exit code 1) when docs/api.md is not what the contract gives (CI, npm run lint)
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import {
  createFileRegistry,
  type DescEnum,
  type DescEnumValue,
  type DescFile,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  ScalarType,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const OUT = "docs/api.md";
const PACKAGE = "keymanager.v1";

type Described = DescService | DescMethod | DescMessage | DescField | DescEnum | DescEnumValue;

/** The element's path in its file's source code info (descriptor.proto field numbers and indexes). */
function sourcePath(desc: Described): number[] {
  switch (desc.kind) {
    case "service":
      return [6, desc.file.proto.service.indexOf(desc.proto)];
    case "rpc":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.method.indexOf(desc.proto)];
    case "message":
      return desc.parent
        ? [...sourcePath(desc.parent), 3, desc.parent.proto.nestedType.indexOf(desc.proto)]
        : [4, desc.file.proto.messageType.indexOf(desc.proto)];
    case "field":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.field.indexOf(desc.proto)];
    case "enum":
      return desc.parent ? [...sourcePath(desc.parent), 4, desc.parent.proto.enumType.indexOf(desc.proto)] : [5, desc.file.proto.enumType.indexOf(desc.proto)];
    case "enum_value":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.value.indexOf(desc.proto)];
  }
}

function fileOf(desc: Described): DescFile {
  return desc.kind === "rpc" || desc.kind === "field" || desc.kind === "enum_value" ? fileOf(desc.parent) : desc.file;
}

/** The element's leading comment in the .proto, on one line. */
function comment(desc: Described): string {
  const path = sourcePath(desc).join(",");
  const location = fileOf(desc).proto.sourceCodeInfo?.location.find((l) => l.path.join(",") === path);
  return (location?.leadingComments ?? "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join(" ");
}

/** A field's JSON value, as an example of its type. */
function scalarExample(type: ScalarType): string {
  switch (type) {
    case ScalarType.STRING:
      return '"string"';
    case ScalarType.BOOL:
      return "false";
    case ScalarType.BYTES:
      return '"base64"';
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return '"0"';
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return "0.0";
    default:
      return "0";
  }
}

const WELL_KNOWN: Record<string, string> = {
  "google.protobuf.Timestamp": '"2026-01-01T00:00:00Z"',
  "google.protobuf.FieldMask": '"field,otherField"',
};

function enumExample(e: DescEnum): string {
  return `"${e.values
    .filter((v) => v.number !== 0)
    .map((v) => v.name)
    .join(" | ")}"`;
}

/** The JSON shape of a message, its nested messages expanded (this contract has no recursion). */
function shape(message: DescMessage, indent: string, seen: Set<string>): string[] {
  if (message.fields.length === 0) return ["{}"];
  if (seen.has(message.typeName)) return [`{ … ${message.name} … }`];
  const inner = new Set(seen).add(message.typeName);
  const lines = ["{"];
  message.fields.forEach((field, i) => {
    const value = valueShape(field, `${indent}  `, inner);
    const oneof = field.oneof ? `  // oneof ${field.oneof.name}: one of ${field.oneof.fields.map((f) => f.jsonName).join(", ")}` : "";
    const last = i === message.fields.length - 1 ? "" : ",";
    lines.push(`${indent}  "${field.jsonName}": ${value[0]}${value.length === 1 ? `${last}${oneof}` : ""}`);
    if (value.length > 1) lines.push(...value.slice(1, -1), `${value[value.length - 1]}${last}${oneof}`);
  });
  lines.push(`${indent}}`);
  return lines;
}

function singleShape(field: DescField, indent: string, seen: Set<string>): string[] {
  switch (field.fieldKind) {
    case "scalar":
      return [scalarExample(field.scalar)];
    case "enum":
      return [enumExample(field.enum)];
    case "message":
      return WELL_KNOWN[field.message.typeName] ? [WELL_KNOWN[field.message.typeName] as string] : shape(field.message, indent, seen);
    case "list":
      return listItem(field, indent, seen);
    case "map": {
      const value =
        field.mapKind === "scalar"
          ? scalarExample(field.scalar)
          : field.mapKind === "enum"
            ? enumExample(field.enum)
            : shape(field.message, `${indent}  `, seen).join("\n");
      return [`{ "key": ${value} }`];
    }
  }
}

function listItem(field: DescField & { fieldKind: "list" }, indent: string, seen: Set<string>): string[] {
  if (field.listKind === "scalar") return [`[${scalarExample(field.scalar)}]`];
  if (field.listKind === "enum") return [`[${enumExample(field.enum)}]`];
  const inner = shape(field.message, `${indent}  `, seen);
  return [`[${inner[0]}`, ...inner.slice(1, -1), `${inner[inner.length - 1]}]`];
}

function valueShape(field: DescField, indent: string, seen: Set<string>): string[] {
  return singleShape(field, indent, seen);
}

function typeName(field: DescField): string {
  switch (field.fieldKind) {
    case "scalar":
      return ScalarType[field.scalar].toLowerCase();
    case "enum":
      return `[${field.enum.name}](#${field.enum.name.toLowerCase()})`;
    case "message":
      return WELL_KNOWN[field.message.typeName] ? field.message.typeName : `[${field.message.name}](#${field.message.name.toLowerCase()})`;
    case "list": {
      const item =
        field.listKind === "scalar"
          ? ScalarType[field.scalar].toLowerCase()
          : field.listKind === "enum"
            ? `[${field.enum.name}](#${field.enum.name.toLowerCase()})`
            : `[${field.message.name}](#${field.message.name.toLowerCase()})`;
      return `list of ${item}`;
    }
    case "map":
      return "map of string";
  }
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

function render(services: DescService[], messages: DescMessage[], enums: DescEnum[]): string {
  const out: string[] = [
    "# API reference",
    "",
    "<!-- Generated by scripts/api-reference.ts from proto/ (npm run docs:api); npm run lint fails when it is stale. Do not edit. -->",
    "",
    "Every RPC of the `keymanager.v1` services with its request and response in the JSON form of the",
    "Connect protocol (`POST /<service>/<method>` on the HTTP port), `buf curl -d` and `km --data`:",
    "fields in lowerCamelCase, 64-bit integers as strings, enums by name, timestamps in RFC 3339,",
    "field masks as comma-separated lowerCamelCase paths; fields left out take their zero value.",
    "Which scope each service needs: README, Security.",
    "",
  ];
  for (const service of services) {
    out.push(`## ${service.name}`, "", comment(service), "");
    for (const method of service.methods) {
      out.push(`### ${service.name}.${method.name}`, "");
      const text = comment(method);
      if (text) out.push(text, "");
      out.push(`\`POST /${service.typeName}/${method.name}\``, "");
      out.push(`Request [${method.input.name}](#${method.input.name.toLowerCase()}):`, "", "```jsonc", ...shape(method.input, "", new Set()), "```", "");
      out.push(`Response [${method.output.name}](#${method.output.name.toLowerCase()}):`, "", "```jsonc", ...shape(method.output, "", new Set()), "```", "");
    }
  }
  out.push("## Messages", "");
  for (const message of messages) {
    out.push(`### ${message.name}`, "");
    const text = comment(message);
    if (text) out.push(text, "");
    if (message.fields.length === 0) {
      out.push("No fields.", "");
      continue;
    }
    out.push("| field | type | description |", "| --- | --- | --- |");
    for (const field of message.fields) out.push(`| \`${field.jsonName}\` | ${typeName(field)} | ${cell(comment(field))} |`);
    out.push("");
  }
  out.push("## Enums", "");
  for (const e of enums) {
    out.push(`### ${e.name}`, "");
    const text = comment(e);
    if (text) out.push(text, "");
    out.push("| value | description |", "| --- | --- |");
    for (const value of e.values) out.push(`| \`${value.name}\` | ${cell(comment(value))} |`);
    out.push("");
  }
  return `${out
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trimEnd()}\n`;
}

const image = execFileSync("npx", ["buf", "build", "-o", "-"], { maxBuffer: 64 * 1024 * 1024 });
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, new Uint8Array(image)));
const services: DescService[] = [];
const messages: DescMessage[] = [];
const enums: DescEnum[] = [];
for (const file of registry.files) {
  if (file.proto.package !== PACKAGE) continue;
  services.push(...file.services);
  messages.push(...file.messages);
  enums.push(...file.enums);
}
const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
services.sort(byName);
messages.sort(byName);
enums.sort(byName);
const text = render(services, messages, enums);

if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(OUT, "utf8");
  } catch {}
  if (current !== text) {
    console.error(`${OUT} is stale: the contract changed. Run npm run docs:api and commit ${OUT}.`);
    process.exit(1);
  }
} else {
  writeFileSync(OUT, text);
  console.error(`wrote ${OUT}`);
}
