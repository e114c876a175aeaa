// Calls the admin API with the session cookie. A 401 means the session ended: back to sign-in.
let csrf = '';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function signIn() {
  window.location.assign('/auth/login?return_to=%2F');
}

export async function session() {
  const res = await fetch('/auth/session', { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (res.status === 401) { signIn(); throw new ApiError(401, 'auth_required', 'Not signed in.'); }
  const body = await res.json();
  csrf = body.csrf_token;
  return body;
}

export async function get(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const url = `/api/v1/${path}${q.size ? `?${q}` : ''}`;
  const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (res.status === 401) { signIn(); throw new ApiError(401, 'auth_required', 'Not signed in.'); }
  const body = await res.json();
  if (!res.ok) throw new ApiError(res.status, body?.error?.code, body?.error?.message ?? `HTTP ${res.status}`);
  return body;
}

/** Ends the session; the page then offers to sign in again (the IdP may still have its own session). */
export async function signOut() {
  const res = await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-csrf-token': csrf } });
  return res.ok;
}
