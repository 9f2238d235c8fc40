import type { Me, Problem } from './types';

// The dashboard's credential: an API key (kept for the tab, or remembered on this browser), or a share token that
// opens one job read-only. Every request goes through authFetch, which sends it as a Bearer token; keys never go into
// a URL. Nothing here touches the DOM when imported, so the pure parts run under Node's test runner.

/** The subset of the Web Storage API used here (a Map-backed fake in the unit tests). */
export type KeyValueStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

export type Credential =
  | { kind: 'key'; token: string }
  | { kind: 'share'; token: string; jobId: string }
  | { kind: 'none' };

/** What a sign-in or share URL's fragment carried, and the fragment to show instead (the token taken out). */
export interface Fragment {
  key?: string;
  share?: { jobId: string; token: string };
  hash: string;
}

const jobRoute = /^\/jobs\/([0-9a-f-]{36})$/i;

/** The job a hash route shows (#/jobs/{id}), if any. */
export function jobOfRoute(hash: string): string | undefined {
  return jobRoute.exec(hash.replace(/^#/, '').split('?')[0])?.[1]?.toLowerCase();
}

/**
 * Reads `#key=…` (a sign-in URL) or `#/jobs/{id}?share=…` (a share URL). Null when the fragment carries no token;
 * otherwise the token and the fragment without it (`#/` for a sign-in URL, the job's route for a share URL).
 */
export function readFragment(hash: string): Fragment | null {
  const text = hash.replace(/^#/, '');
  if (text.startsWith('key=')) {
    const key = new URLSearchParams(text).get('key')?.trim();
    return { key: key || undefined, hash: '#/' };
  }
  const [path, query] = text.split('?');
  if (query === undefined) return null;
  const params = new URLSearchParams(query);
  if (!params.has('share')) return null;
  const token = params.get('share')?.trim();
  params.delete('share');
  const rest = params.toString();
  const clean = `#${path}${rest ? `?${rest}` : ''}`;
  const jobId = jobOfRoute(path);
  return { share: token && jobId ? { jobId, token } : undefined, hash: clean };
}

const keyName = 'auth.key';
const sharesName = 'auth.shares';

/**
 * Where the tokens are kept. The key: sessionStorage (this tab) or localStorage (this browser), never both; one key
 * per browser, so a new sign-in replaces a remembered key unless it is remembered itself. Share tokens: sessionStorage,
 * one per job.
 */
export class Credentials {
  constructor(private readonly session: KeyValueStore, private readonly local: KeyValueStore) {}

  get key(): string | null {
    return this.session.getItem(keyName) ?? this.local.getItem(keyName);
  }

  get remembered(): boolean {
    return this.session.getItem(keyName) === null && this.local.getItem(keyName) !== null;
  }

  /** Keeps the key for this tab, or on this browser when `remember`. */
  signIn(key: string, remember: boolean) {
    if (remember) {
      this.local.setItem(keyName, key);
      this.session.removeItem(keyName);
    } else {
      this.session.setItem(keyName, key);
      this.local.removeItem(keyName);
    }
  }

  /** A key from a sign-in URL: for this tab, unless this browser already remembers that very key. */
  signInFromUrl(key: string) {
    if (this.local.getItem(keyName) === key) this.session.removeItem(keyName);
    else this.signIn(key, false);
  }

  /** Moves the key between this tab and this browser. */
  remember(remember: boolean) {
    const key = this.key;
    if (key !== null) this.signIn(key, remember);
  }

  forgetKey() {
    this.session.removeItem(keyName);
    this.local.removeItem(keyName);
  }

  shares(): Record<string, string> {
    try {
      const shares = JSON.parse(this.session.getItem(sharesName) ?? '{}') as unknown;
      return shares && typeof shares === 'object' ? (shares as Record<string, string>) : {};
    } catch {
      return {};
    }
  }

  addShare(jobId: string, token: string) {
    this.session.setItem(sharesName, JSON.stringify({ ...this.shares(), [jobId.toLowerCase()]: token }));
  }

  forgetShare(jobId: string) {
    const shares = this.shares();
    delete shares[jobId.toLowerCase()];
    this.session.setItem(sharesName, JSON.stringify(shares));
  }

  signOut() {
    this.forgetKey();
    this.session.removeItem(sharesName);
  }

  /** A job page held by a share token uses it (and only there); everything else the key, if any. */
  for(hash: string): Credential {
    const job = jobOfRoute(hash);
    const share = job ? this.shares()[job] : undefined;
    if (job && share) return { kind: 'share', token: share, jobId: job };
    const key = this.key;
    return key ? { kind: 'key', token: key } : { kind: 'none' };
  }
}

export const sameCredential = (a: Credential, b: Credential) =>
  a.kind === b.kind && (a.kind === 'none' || a.token === (b as { token: string }).token);

// --- in the browser -------------------------------------------------------------------------------------------------

let s_credentials: Credentials | undefined;

/** The browser's credentials (sessionStorage and localStorage), made on first use. */
export function credentials(): Credentials {
  s_credentials ??= new Credentials(sessionStorage, localStorage);
  return s_credentials;
}

/** The credential requests made now use: the share token on its job's page, else the key. */
export const currentCredential = (): Credential => credentials().for(location.hash);

/** The token for the SignalR hub (sent as its access_token on the WebSocket, the one place a token is in a URL). */
export const hubToken = (): string => {
  const c = currentCredential();
  return c.kind === 'none' ? '' : c.token;
};

/**
 * Takes a token out of the address: stores it, then replaces the fragment so the token leaves the address bar and
 * the history. What it took, or null when the address carried none.
 */
export function takeTokenFromAddress(): Fragment | null {
  const fragment = readFragment(location.hash);
  if (!fragment) return null;
  if (fragment.key) credentials().signInFromUrl(fragment.key);
  if (fragment.share) credentials().addShare(fragment.share.jobId, fragment.share.token);
  history.replaceState(history.state, '', `${location.pathname}${location.search}${fragment.hash}`);
  return fragment;
}

type Refused = (detail: string, credential: Credential) => void;
const s_refusedHandlers: Refused[] = [];

/** Called when the server refuses the current credential (401), with its problem detail. */
export function onRefused(handler: Refused) {
  s_refusedHandlers.push(handler);
}

/** Reports a 401 for `credential`, unless the dashboard has moved on to another credential since it was sent. */
export function refused(detail: string, credential: Credential) {
  if (!sameCredential(credential, currentCredential())) return;
  if (credential.kind === 'share') credentials().forgetShare(credential.jobId);
  for (const handler of s_refusedHandlers) handler(detail, credential);
}

/** The problem details of a failed response, or one made from its status when the body is not JSON. */
export async function problemOf(response: Response): Promise<Problem> {
  const text = await response.text().catch(() => '');
  try {
    const problem = JSON.parse(text) as Problem;
    if (problem && typeof problem === 'object') return problem;
  } catch {
    // not JSON: below
  }
  return { status: response.status, title: text || response.statusText || `HTTP ${response.status}` };
}

export const describeProblem = (p: Problem, status: number) => p.detail ?? p.title ?? `HTTP ${status}`;

/**
 * fetch with the credential as `Authorization: Bearer`. A 401 for the current credential is reported (the sign-in
 * form appears); the caller still gets the response. `as` sends another credential and reports nothing (sign-in).
 */
export async function authFetch(path: string, init: RequestInit = {}, as?: Credential): Promise<Response> {
  const credential = as ?? currentCredential();
  const headers = new Headers(init.headers);
  if (credential.kind !== 'none') headers.set('Authorization', `Bearer ${credential.token}`);
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401 && !as) {
    const problem = await problemOf(response.clone());
    refused(describeProblem(problem, 401), credential);
  }
  return response;
}

/** GET /me with a credential: who it signs in as, or the server's problem details. */
export async function whoIs(credential: Credential): Promise<{ me: Me } | { status: number; problem: Problem }> {
  const response = await authFetch('me', {}, credential);
  if (response.ok) return { me: (await response.json()) as Me };
  return { status: response.status, problem: await problemOf(response) };
}
