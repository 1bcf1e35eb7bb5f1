import { type FieldViolation, InvalidArgumentError, MAX_VIOLATIONS, type OAuthErrorCode } from "./errors.js";

/**
 * Collects the field violations of a request, so one answer names the bad fields, then throws
 * them together as one InvalidArgumentError. Past MAX_VIOLATIONS it only counts them.
 */
export class Validator {
  private readonly violations: FieldViolation[] = [];
  private more = 0;

  add(field: string, description: string): void {
    if (this.violations.length < MAX_VIOLATIONS) this.violations.push({ field, description });
    else this.more++;
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }

  required(field: string, value: string): boolean {
    if (value.trim() === "") {
      this.add(field, "is required");
      return false;
    }
    return true;
  }

  maxLength(field: string, value: string, max: number): boolean {
    if (value.length > max) {
      this.add(field, `must be at most ${max} characters`);
      return false;
    }
    return true;
  }

  /** A required, trimmed, bounded text field without control characters. */
  text(field: string, value: string, max: number): boolean {
    if (!this.required(field, value) || !this.maxLength(field, value, max)) return false;
    if (hasControlCharacters(value)) {
      this.add(field, "must not contain control characters");
      return false;
    }
    return true;
  }

  /** An optional text field: empty is fine, otherwise bounded and printable. */
  optionalText(field: string, value: string, max: number): boolean {
    return value === "" || this.text(field, value, max);
  }

  nonNegativeInteger(field: string, value: bigint | number, max: number): boolean {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0 || n > max) {
      this.add(field, `must be an integer between 0 and ${max}`);
      return false;
    }
    return true;
  }

  throwIfInvalid(options: { oauth?: OAuthErrorCode } = {}): void {
    if (this.violations.length > 0) throw new InvalidArgumentError(this.violations, { ...options, more: this.more });
  }
}

/** A single required field: its value, or INVALID_ARGUMENT naming it. */
export function requireField(field: string, value: string): string {
  const v = new Validator();
  v.required(field, value);
  v.throwIfInvalid();
  return value;
}

// Control characters other than tab make identifiers ambiguous in logs and UIs.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

export function hasControlCharacters(value: string): boolean {
  return CONTROL.test(value);
}
