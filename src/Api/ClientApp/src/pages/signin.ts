import { credentials, describeProblem, whoIs } from '../auth';
import { h, type Page } from '../dom';
import type { Me } from '../types';

/** Why the form is shown: the server's problem detail, and whether it refused a credential (else none was sent). */
export interface SignInReason {
  detail: string;
  refused: boolean;
}

export interface SignInPage extends Page {
  /** Shows why the service refused (a later 401 while the form is up): the form and what was typed stay. */
  refuse(reason: SignInReason): void;
}

/**
 * The sign-in form: an API key (a password field, so it is not shown or kept by the browser's form history), kept for
 * this tab or remembered on this browser. GET /me decides: the key is stored only once the service accepts it.
 */
export function signInPage(main: HTMLElement, reason: SignInReason | undefined, signedIn: (me: Me) => void, forgotten: () => void): SignInPage {
  let disposed = false;
  const key = h('input', {
    id: 'signin-key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'signin-help signin-server signin-error',
  });
  const remember = h('input', { id: 'signin-remember', type: 'checkbox', 'aria-describedby': 'signin-remember-help' });
  const error = h('p', { id: 'signin-error', class: 'error', role: 'alert' });
  const serverSays = h('p', { id: 'signin-server', class: 'small muted' });
  const submit = h('button', { type: 'submit', id: 'signin-submit', class: 'primary' }, 'Sign in');
  // A stored key the service refuses (revoked) stays until forgotten: open mode, for one, then needs none.
  const forget = credentials().key !== null && h('button', { type: 'button', id: 'signin-forget' }, 'Forget the stored key');
  if (forget) forget.addEventListener('click', () => { credentials().signOut(); forgotten(); });
  const form = h('form', { id: 'signin', class: 'signin', 'aria-labelledby': 'signin-h', novalidate: true },
    h('h1', { id: 'signin-h' }, 'Sign in'),
    h('p', { id: 'signin-help', class: 'small muted' },
      'Sign in with an API key (tsk_…). On its first start the service logs a sign-in address, http://…/#key=…, that signs in when opened; an admin can make you a key.'),
    serverSays,
    h('div', { class: 'field' }, h('label', { for: 'signin-key' }, 'API key'), key),
    h('label', { class: 'check', for: 'signin-remember' }, remember, ' Remember on this browser'),
    h('p', { id: 'signin-remember-help', class: 'small muted' }, 'Otherwise the key is kept for this tab only and forgotten when it closes.'),
    error,
    h('div', { class: 'controls' }, submit, forget));
  main.replaceChildren(form);
  if (reason?.refused) show(reason.detail);
  else serverSays.textContent = reason?.detail ?? ''; // no key sent yet: what the service asks for, not an error
  key.focus();

  function show(text: string | undefined) {
    error.textContent = text ?? '';
    if (text) key.setAttribute('aria-invalid', 'true');
    else key.removeAttribute('aria-invalid');
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const value = key.value.trim();
    if (!value) {
      show('Enter an API key.');
      key.focus();
      return;
    }
    submit.disabled = true;
    error.textContent = '';
    try {
      const answer = await whoIs({ kind: 'key', token: value });
      if (disposed) return;
      if ('me' in answer) {
        credentials().signIn(value, remember.checked);
        signedIn(answer.me);
        return;
      }
      show(describeProblem(answer.problem, answer.status));
      key.focus();
    } catch (err) {
      if (!disposed) show(`The service is unreachable (${String(err)}).`);
    } finally {
      submit.disabled = false;
    }
  });

  return {
    refuse: (r) => { if (r.refused) show(r.detail); },
    dispose: () => { disposed = true; },
  };
}
