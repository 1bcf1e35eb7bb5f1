import type { ApiResource, Decision } from "@keymanager/core";

/**
 * An unknown token's refusal is decided again on every call (it is not kept: anyone can make up
 * any number of tokens), but the refusal is the same each time for one API resource: the same
 * status, description and facts. Handing back the first such object for an equal one lets the
 * answer's message and its encoded bytes (kept per object) be reused instead of built again.
 * Nothing is answered from here: the decision was made; only its equal twin is returned. One
 * entry per resource object and refusal kind (a handful), dropped with the resource (a change of
 * the API or its resources makes new objects, and so new entries).
 */
export class SameRefusals {
  private readonly byResource = new WeakMap<ApiResource, Map<string, Decision>>();

  same(decision: Decision): Decision {
    const { resource, api } = decision;
    // Only refusals at the token check: their description names no user-supplied text.
    if (decision.authorized || !resource || !api || decision.token || decision.keyMapping || decision.subscription) return decision;
    let kinds = this.byResource.get(resource);
    if (!kinds) {
      kinds = new Map();
      this.byResource.set(resource, kinds);
    }
    const kind = `${decision.status.code}\u0000${decision.description}`;
    const kept = kinds.get(kind);
    if (kept && kept.api === api && kept.status === decision.status && kept.description === decision.description) return kept;
    kinds.set(kind, decision);
    return decision;
  }
}
