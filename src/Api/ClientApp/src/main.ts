import { credentials, currentCredential, describeProblem, jobOfRoute, onRefused, takeTokenFromAddress, whoIs } from './auth';
import { h, type Page } from './dom';
import { jobPage } from './pages/job';
import { jobsPage } from './pages/jobs';
import { comparePage } from './pages/compare';
import { sweepPage } from './pages/sweep';
import { sweepsPage } from './pages/sweeps';
import { keysPage } from './pages/keys';
import { newJobPage } from './pages/newjob';
import { signInPage, type SignInPage, type SignInReason } from './pages/signin';
import type { Me } from './types';
import './probe';

// Hash routes: #/ (jobs), #/new, #/keys, #/jobs/{id}, #/compare?ids=, #/sweeps, #/sweeps/{id}. The page is served at / by the API itself, so every URL is
// relative. A sign-in address (#key=…) or a share address (#/jobs/{id}?share=…) leaves its token in the tab's storage
// and the rest in the address bar. Who is signed in comes from GET /me; any 401 brings the sign-in form.
const main = document.getElementById('main')!;
const account = document.getElementById('account')!;
const nav = document.querySelector<HTMLElement>('header nav')!;
let page: Page | undefined;
let signIn: SignInPage | undefined;
let me: Me | undefined;
let routing = 0;

async function route() {
  const turn = ++routing;
  leavePage();
  if (takeTokenFromAddress()?.key) me = undefined; // a new key: ask who it is
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  const credential = currentCredential();
  if (credential.kind === 'share') {
    // No /me for a share token: it opens its job's page and nothing else.
    nav.hidden = true;
    showAccount(undefined, true);
    const jobId = credential.jobId;
    page = jobPage(main, jobId, {
      readOnly: true,
      shared: true,
      leaveShare: credentials().key === null ? undefined : () => { credentials().forgetShare(jobId); void route(); },
    });
    finishRoute(path);
    return;
  }
  nav.hidden = false;
  if (!me) {
    main.replaceChildren(h('p', {}, 'Loading…'));
    let answer: Awaited<ReturnType<typeof whoIs>>;
    try {
      answer = await whoIs(credential);
    } catch (err) {
      if (turn === routing) unreachable(String(err));
      return;
    }
    if (turn !== routing) return;
    if ('me' in answer) me = answer.me;
    else if (answer.status === 401) return showSignIn({ detail: describeProblem(answer.problem, 401), refused: credential.kind !== 'none' });
    else return unreachable(describeProblem(answer.problem, answer.status));
  }
  showAccount(me, false);
  const job = jobOfRoute(path);
  if (job) page = jobPage(main, job, { readOnly: me.role === 'viewer', shared: false });
  else if (path === '/new') page = newJobPage(main, (hash) => { location.hash = hash; });
  else if (path === '/keys') page = keysPage(main, me);
  else if (path === '/compare') page = comparePage(main, new URLSearchParams(query ?? ''));
  else if (path === '/sweeps' || path === '/sweeps/') page = sweepsPage(main);
  else if (path.startsWith('/sweeps/')) page = sweepPage(main, path.slice('/sweeps/'.length), { readOnly: me.role === 'viewer' });
  else page = jobsPage(main, new URLSearchParams(query ?? ''));
  finishRoute(path);
}

function finishRoute(path: string) {
  document.title = `${main.querySelector('h1')?.textContent ?? 'Jobs'} · TrainingService`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('header nav a')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === `#${path}`);
  }
}

function leavePage() {
  page?.dispose();
  page = undefined;
  signIn = undefined;
}

/** The sign-in form in place of the page; what was asked for is shown again once signed in. */
function showSignIn(reason?: SignInReason) {
  if (signIn) {
    if (reason) signIn.refuse(reason); // several requests refused at once: one form
    return;
  }
  ++routing;
  leavePage();
  me = undefined;
  nav.hidden = false;
  showAccount(undefined, false);
  page = signIn = signInPage(main, reason, (who) => {
    me = who;
    void route();
  }, () => void route());
  document.title = 'Sign in · TrainingService';
}

function unreachable(detail: string) {
  const retry = h('button', { type: 'button', id: 'retry' }, 'Try again');
  retry.addEventListener('click', () => void route());
  main.replaceChildren(h('h1', {}, 'The service is unreachable'), h('p', { role: 'alert' }, detail), retry);
}

/** The header's account area: who is signed in, keeping the key on this browser, signing out. */
function showAccount(who: Me | undefined, shared: boolean) {
  if (shared) {
    account.replaceChildren(h('span', { id: 'who' }, 'Guest: a read-only shared link'));
    return;
  }
  if (!who) {
    account.replaceChildren();
    return;
  }
  if (who.authMode === 'open' && !who.key) {
    account.replaceChildren(h('span', { id: 'who', title: 'Auth:Mode is Open: requests need no key (loopback only)' }, 'Open mode'));
    return;
  }
  const remember = h('input', { id: 'remember-key', type: 'checkbox', checked: credentials().remembered });
  remember.addEventListener('change', () => credentials().remember(remember.checked));
  const signOut = h('button', { type: 'button', id: 'sign-out' }, 'Sign out');
  signOut.addEventListener('click', () => {
    credentials().signOut();
    showSignIn();
  });
  account.replaceChildren(
    h('span', { id: 'who', title: who.key ? `key “${who.key.name}”` : null }, `Signed in as ${who.name} (${who.role})`),
    h('a', { href: '#/keys', id: 'keys-link' }, 'Keys'),
    h('label', { class: 'check', for: 'remember-key' }, remember, ' Remember on this browser'),
    signOut);
}

onRefused((detail, credential) => showSignIn({ detail, refused: credential.kind !== 'none' }));
window.addEventListener('hashchange', () => void route());
void route();
