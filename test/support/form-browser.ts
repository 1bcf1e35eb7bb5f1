/**
 * A user agent of plain HTTP requests for the authorization pages: keeps cookies, reads the
 * forms of a page (their hidden fields and action) and submits them, never following redirects
 * (each answer is looked at by the test).
 */
export class FormBrowser {
  readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  async get(url: string): Promise<Response> {
    return this.keep(await fetch(new URL(url, this.base), { redirect: "manual", headers: this.headers() }));
  }

  /** Posts a form of `html` (the one whose submit button has this value, else the first) with these fields added or replaced. */
  async submit(html: string, fields: Record<string, string | undefined>, options: { button?: string } = {}): Promise<Response> {
    const form = formOf(html, options.button);
    const body = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...form.fields, ...fields })) if (value !== undefined) body.set(name, value);
    return this.post(form.action, body);
  }

  async post(path: string, body: URLSearchParams): Promise<Response> {
    const res = await fetch(new URL(path, this.base), {
      method: "POST",
      redirect: "manual",
      headers: { ...this.headers(), "content-type": "application/x-www-form-urlencoded" },
      body,
    });
    return this.keep(res);
  }

  private headers(): Record<string, string> {
    return this.cookies.size > 0 ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } : {};
  }

  private keep(res: Response): Response {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
}

const ENTITIES: Record<string, string> = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e] ?? e);
}

/** The action and hidden fields of a form of the page, with the value of the submit button named `button`. */
export function formOf(html: string, button?: string): { action: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/g)];
  const form = forms.find((f) => button === undefined || (f[2] ?? "").includes(`value="${button}"`)) ?? forms[0];
  if (!form) throw new Error(`no form on the page:\n${html}`);
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? "").matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[input[1] as string] = decodeEntities(input[2] as string);
  }
  if (button !== undefined) fields.action = button;
  return { action: decodeEntities(form[1] as string), fields };
}
