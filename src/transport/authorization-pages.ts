import escapeHtml from "escape-html";

/**
 * The server-rendered pages of the authorization endpoint: login, consent, errors, logout. Plain
 * HTML forms (no script), every value escaped by escape-html; readable without the stylesheet,
 * usable with the keyboard alone (native controls, labels bound to their inputs).
 */

/** Where the pages' stylesheet is served (the CSP allows style from this origin only). */
export const STYLESHEET_PATH = "/oauth2/static/pages.css";

export const STYLESHEET = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}
h1{font-size:1.5rem}label{display:block;margin-top:1rem;font-weight:600}
input{display:block;width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;margin-top:.25rem}
button{margin-top:1.25rem;margin-right:.5rem;padding:.5rem 1.25rem;font-size:1rem;cursor:pointer}
button:focus-visible,input:focus-visible{outline:3px solid #1d5bd6;outline-offset:2px}
.error{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecee}
.client{font-weight:600}
`;

/** Hidden fields every form of the flow carries: the anti-CSRF token and the authorization request. */
export interface FlowFields {
  csrfToken: string;
  /** The authorization request's query string, checked again on every step. */
  request: string;
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function hidden(fields: FlowFields): string {
  return `<input type="hidden" name="csrf_token" value="${escapeHtml(fields.csrfToken)}">
<input type="hidden" name="request" value="${escapeHtml(fields.request)}">`;
}

function alert(message: string | undefined): string {
  return message ? `<p class="error" role="alert" id="form-error">${escapeHtml(message)}</p>` : "";
}

export function loginPage(options: { clientName: string; fields: FlowFields; username?: string; error?: string }): string {
  const described = options.error ? ' aria-describedby="form-error"' : "";
  return page(
    "Sign in",
    `<h1>Sign in</h1>
<p>Sign in to continue to <span class="client">${escapeHtml(options.clientName)}</span>.</p>
${alert(options.error)}
<form method="post" action="/oauth2/authorize">
${hidden(options.fields)}
<input type="hidden" name="action" value="login">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" required autofocus value="${escapeHtml(options.username ?? "")}"${described}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${described}>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** The requested scopes the user's roles do not allow: said apart, so nobody consents to them. */
function notGranted(scopes: readonly string[]): string {
  if (scopes.length === 0) return "";
  return `<p id="not-granted-heading">Not granted: your roles do not allow these requested scopes, so the application will not get them:</p>
<ul id="not-granted" aria-labelledby="not-granted-heading">
${scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join("\n")}
</ul>
`;
}

/** `scopes`: those the token will carry; `notGranted`: those requested that the user's roles do not allow. */
export function consentPage(options: {
  clientName: string;
  username: string;
  scopes: readonly string[];
  notGranted: readonly string[];
  fields: FlowFields;
}): string {
  const scopes = options.scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join("\n");
  return page(
    "Allow access",
    `<h1>Allow access</h1>
<p><span class="client">${escapeHtml(options.clientName)}</span> asks to act for you, ${escapeHtml(options.username)}, with these scopes:</p>
<ul id="scopes">
${scopes}
</ul>
${notGranted(options.notGranted)}<p>You can withdraw this later; the application's tokens end with it.</p>
<form method="post" action="/oauth2/authorize">
${hidden(options.fields)}
<button type="submit" name="action" value="consent">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>
<p><a href="/oauth2/logout">Not ${escapeHtml(options.username)}? Sign out</a></p>`,
  );
}

export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p role="alert">${escapeHtml(message)}</p>`);
}

export function logoutPage(options: { csrfToken: string; username: string | undefined }): string {
  if (!options.username) return page("Signed out", "<h1>Signed out</h1>\n<p>You are not signed in.</p>");
  return page(
    "Sign out",
    `<h1>Sign out</h1>
<p>You are signed in as ${escapeHtml(options.username)}.</p>
<form method="post" action="/oauth2/logout">
<input type="hidden" name="csrf_token" value="${escapeHtml(options.csrfToken)}">
<button type="submit">Sign out</button>
</form>`,
  );
}
