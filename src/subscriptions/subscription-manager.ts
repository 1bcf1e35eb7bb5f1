import { randomUUID } from "node:crypto";
import { normaliseContext } from "@keymanager/core";
import type { Clock } from "../domain/clock.js";
import { Validator } from "../domain/validator.js";
import { checkIdentifier, LIMITS } from "../keymanager/validation.js";
import { LOCK } from "../storage/locks.js";
import type { Store } from "../storage/store.js";
import type { Api, Subscription, SubscriptionState } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";

export type ApiInput = Omit<Api, "createdAt" | "updatedAt">;

/** APIs and subscriptions; every change is published so validation caches drop it at once. */
export class SubscriptionManager {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async createApi(input: ApiInput): Promise<Api> {
    checkApi(input);
    const now = this.clock.now();
    const api: Api = { ...input, context: normaliseContext(input.context), createdAt: now, updatedAt: now };
    await this.store.transaction(async (s) => {
      await s.apis.insert(api);
      s.changed({ kind: "api", apiId: api.apiId });
    });
    return api;
  }

  getApi(apiId: string): Promise<Api> {
    return this.store.apis.get(apiId);
  }

  listApis(page: PageQuery): Promise<Page<Api>> {
    return this.store.apis.list(page);
  }

  async updateApi(apiId: string, patch: Partial<ApiInput>): Promise<Api> {
    return this.store.transaction(async (s) => {
      // Locked: concurrent updates of other fields take turns instead of overwriting this one.
      const current = await s.apis.get(apiId, LOCK);
      const next: Api = { ...current, ...patch, apiId, updatedAt: this.clock.now() };
      checkApi(next);
      next.context = normaliseContext(next.context);
      await s.apis.update(next);
      s.changed({ kind: "api", apiId });
      return next;
    });
  }

  async deleteApi(apiId: string): Promise<void> {
    await this.store.transaction(async (s) => {
      await s.apis.delete(apiId);
      s.changed({ kind: "api", apiId });
    });
  }

  async createSubscription(input: { applicationId: string; apiId: string; tier: string; state: SubscriptionState | undefined }): Promise<Subscription> {
    const v = new Validator();
    checkIdentifier(v, "application_id", input.applicationId);
    v.text("api_id", input.apiId, LIMITS.name);
    v.optionalText("tier", input.tier, LIMITS.tier);
    v.throwIfInvalid();
    const now = this.clock.now();
    const subscription: Subscription = {
      id: randomUUID(),
      applicationId: input.applicationId,
      apiId: input.apiId,
      tier: input.tier || "Unlimited",
      state: input.state ?? "UNBLOCKED",
      createdAt: now,
      updatedAt: now,
    };
    await this.store.transaction(async (s) => {
      await s.subscriptions.insert(subscription);
      s.changed({ kind: "subscription", applicationId: subscription.applicationId, apiId: subscription.apiId });
    });
    return subscription;
  }

  getSubscription(id: string): Promise<Subscription> {
    return this.store.subscriptions.get(id);
  }

  listSubscriptions(filter: { applicationId?: string; apiId?: string }, page: PageQuery): Promise<Page<Subscription>> {
    return this.store.subscriptions.list(filter, page);
  }

  async updateSubscription(id: string, change: { tier?: string; state?: SubscriptionState }): Promise<Subscription> {
    const v = new Validator();
    if (change.tier !== undefined) v.text("tier", change.tier, LIMITS.tier);
    v.throwIfInvalid();
    const updated = await this.store.transaction(async (s) => {
      const current = await s.subscriptions.get(id, LOCK);
      const next = { ...current, ...change, updatedAt: this.clock.now() };
      await s.subscriptions.update(next);
      s.changed({ kind: "subscription", applicationId: next.applicationId, apiId: next.apiId });
      return next;
    });
    return updated;
  }

  async deleteSubscription(id: string): Promise<void> {
    await this.store.transaction(async (s) => {
      const removed = await s.subscriptions.delete(id);
      s.changed({ kind: "subscription", applicationId: removed.applicationId, apiId: removed.apiId });
    });
  }
}

function checkApi(api: ApiInput): void {
  const v = new Validator();
  v.text("api.api_id", api.apiId, LIMITS.name);
  v.text("api.name", api.name, LIMITS.name);
  if (v.text("api.context", api.context, LIMITS.name) && (!api.context.startsWith("/") || /\s/.test(api.context))) {
    v.add("api.context", "must start with / and contain no spaces");
  }
  v.text("api.version", api.version, 100);
  v.optionalText("api.publisher", api.publisher, LIMITS.name);
  v.optionalText("api.api_tier", api.apiTier, LIMITS.tier);
  v.throwIfInvalid();
}
