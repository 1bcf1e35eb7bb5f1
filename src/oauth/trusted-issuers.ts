import type { Clock } from "../domain/clock.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { Validator } from "../domain/validator.js";
import { ANY_SUBJECT, type TrustedIssuer } from "../domain/model/index.js";
import { checkScopes, LIMITS } from "../keymanager/validation.js";
import { LOCK } from "../storage/locks.js";
import type { Store } from "../storage/store.js";
import { checkJwk } from "./issuer-keys.js";

export type TrustedIssuerInput = Omit<TrustedIssuer, "createdAt" | "updatedAt">;

/** Bounds of a trusted issuer's settings. */
export const ISSUER_LIMITS = {
  issuer: 255,
  subjects: 1000,
  subject: 255,
  jwk: 16 * 1024,
  description: 1024,
  /** Ten years: longer than any token validity the configuration allows. */
  seconds: 10 * 365 * 24 * 3600,
} as const;

/** TrustedIssuerService's domain: outside issuers whose JWTs the token endpoint accepts. */
export class TrustedIssuers {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(input: TrustedIssuerInput): Promise<TrustedIssuer> {
    const now = this.clock.now();
    const issuer: TrustedIssuer = { ...normalise(input), createdAt: now, updatedAt: now };
    checkTrustedIssuer(issuer);
    await this.store.trustedIssuers.insert(issuer);
    return issuer;
  }

  get(issuer: string): Promise<TrustedIssuer> {
    return this.store.trustedIssuers.get(withoutTrailingSlashes(issuer));
  }

  list(page: PageQuery): Promise<Page<TrustedIssuer>> {
    return this.store.trustedIssuers.list(page);
  }

  /** Applies `patch` to the stored issuer, locked, so concurrent updates of other fields are kept. */
  async update(issuer: string, patch: Partial<Omit<TrustedIssuerInput, "issuer">>): Promise<TrustedIssuer> {
    return this.store.transaction(async (s) => {
      const current = await s.trustedIssuers.get(withoutTrailingSlashes(issuer), LOCK);
      const next: TrustedIssuer = { ...current, ...patch, issuer: current.issuer, updatedAt: this.clock.now() };
      checkTrustedIssuer(next);
      await s.trustedIssuers.update(next);
      return next;
    });
  }

  delete(issuer: string): Promise<void> {
    return this.store.trustedIssuers.delete(withoutTrailingSlashes(issuer));
  }
}

/** Issuers compare without trailing slashes, as external key managers' do. */
export function withoutTrailingSlashes(issuer: string): string {
  return issuer.replace(/\/+$/, "");
}

function normalise(input: TrustedIssuerInput): TrustedIssuerInput {
  return { ...input, issuer: withoutTrailingSlashes(input.issuer) };
}

/** Every rule of a trusted issuer's settings, so one answer names every bad field. */
export function checkTrustedIssuer(i: TrustedIssuer, prefix = "trusted_issuer."): void {
  const v = new Validator();
  const f = (name: string) => `${prefix}${name}`;
  if (v.text(f("issuer"), i.issuer, ISSUER_LIMITS.issuer)) {
    // RFC 7519's StringOrURI, as issuers spell it: printable ASCII, no spaces.
    if (!/^[\x21-\x7e]+$/.test(i.issuer)) v.add(f("issuer"), "must be printable ASCII without spaces");
  }
  if ((i.jwksUri === "") === (i.jwk === "")) v.add(f("jwks_uri"), "give exactly one of jwks_uri and jwk");
  if (i.jwksUri !== "" && v.text(f("jwks_uri"), i.jwksUri, LIMITS.url)) {
    const protocol = URL.canParse(i.jwksUri) ? new URL(i.jwksUri).protocol : "";
    if (protocol !== "https:" && protocol !== "http:") v.add(f("jwks_uri"), "must be an http or https URL");
  }
  if (i.jwk !== "" && v.maxLength(f("jwk"), i.jwk, ISSUER_LIMITS.jwk)) {
    const problem = checkJwk(i.jwk);
    if (problem) v.add(f("jwk"), problem);
  }
  if (i.allowedSubjects.length === 0) v.add(f("allowed_subjects"), `name at least one subject, or "${ANY_SUBJECT}" for any`);
  if (i.allowedSubjects.length > ISSUER_LIMITS.subjects) v.add(f("allowed_subjects"), `at most ${ISSUER_LIMITS.subjects}`);
  else {
    i.allowedSubjects.forEach((s, n) => {
      v.text(f(`allowed_subjects[${n}]`), s, ISSUER_LIMITS.subject);
    });
  }
  checkScopes(v, f("allowed_scopes"), i.allowedScopes);
  v.nonNegativeInteger(f("max_token_seconds"), i.maxTokenSeconds, ISSUER_LIMITS.seconds);
  v.nonNegativeInteger(f("max_assertion_seconds"), i.maxAssertionSeconds, ISSUER_LIMITS.seconds);
  v.optionalText(f("audience"), i.audience, LIMITS.url);
  v.optionalText(f("description"), i.description, ISSUER_LIMITS.description);
  v.throwIfInvalid();
}
