import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document read as JSON
type Doc = any;

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

/** A JSON pointer segment inside a URI fragment. */
function segment(s: string): string {
  return encodeURIComponent(s.replaceAll("~", "~0").replaceAll("/", "~1"));
}

/**
 * Real HTTP answers checked against an OpenAPI 3.1 document: the status must be documented for
 * the operation, the content type and body must match its schema (ajv, JSON Schema 2020-12),
 * documented headers must be present, and an answer documented without content has no body.
 * Remembers which (operation, status) pairs were seen.
 */
export class OpenApiChecker {
  readonly seen = new Set<string>();
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });

  private constructor(
    readonly name: string,
    readonly doc: Doc,
  ) {
    addFormats(this.ajv);
    this.ajv.addSchema(doc, name);
  }

  /** The document, after checking it against the OpenAPI 3.1 schema. */
  static async of(name: string, doc: Doc): Promise<OpenApiChecker> {
    const result = await new Validator().validate(structuredClone(doc));
    assert.ok(result.valid, `${name}: not a valid OpenAPI document: ${JSON.stringify(result.errors)}`);
    return new OpenApiChecker(name, doc);
  }

  /** Checks the answer to `method` `pathTemplate`; the parsed body (undefined when empty). */
  async check(pathTemplate: string, method: string, res: Response): Promise<unknown> {
    const operation = this.doc.paths?.[pathTemplate]?.[method];
    assert.ok(operation, `${this.name}: ${method.toUpperCase()} ${pathTemplate} is not documented`);
    const status = String(res.status);
    const documented = operation.responses[status];
    const text = await res.text();
    assert.ok(documented, `${this.name}: ${method.toUpperCase()} ${pathTemplate} answered ${status}, which is not documented: ${text.slice(0, 300)}`);
    this.seen.add(`${method} ${pathTemplate} ${status}`);
    for (const header of Object.keys(documented.headers ?? {})) {
      assert.ok(res.headers.has(header), `${method.toUpperCase()} ${pathTemplate} ${status}: no ${header} header`);
    }
    if (!documented.content) {
      assert.equal(text, "", `${method.toUpperCase()} ${pathTemplate} ${status}: documented without a body`);
      return undefined;
    }
    const type = (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    assert.ok(documented.content[type], `${method.toUpperCase()} ${pathTemplate} ${status}: content type "${type}" is not documented`);
    const body = type === "text/html" ? text : JSON.parse(text);
    const pointer = ["paths", pathTemplate, method, "responses", status, "content", type, "schema"].map(segment).join("/");
    const validate = this.ajv.compile({ $ref: `${this.name}#/${pointer}` });
    assert.ok(validate(body), `${method.toUpperCase()} ${pathTemplate} ${status}: ${this.ajv.errorsText(validate.errors)}\n${text.slice(0, 500)}`);
    return body;
  }

  /** Every (operation, status) the document lists that check() has not seen. */
  unseen(): string[] {
    const all: string[] = [];
    for (const [path, item] of Object.entries(this.doc.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>)) {
      for (const [method, operation] of Object.entries(item)) {
        if (!operation.responses) continue;
        for (const status of Object.keys(operation.responses)) all.push(`${method} ${path} ${status}`);
      }
    }
    return all.filter((key) => !this.seen.has(key));
  }
}
