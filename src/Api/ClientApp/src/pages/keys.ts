import { api, ApiError } from '../api';
import { copyField, fmt, h, type Page } from '../dom';
import type { ApiKeyView, Me } from '../types';

/** The signed-in user's API keys: make one (its secret shown this once, with Copy), see when each was last used, revoke. */
export function keysPage(main: HTMLElement, me: Me): Page {
  let disposed = false;
  const name = h('input', { id: 'key-name', type: 'text', maxlength: 100, required: true, autocomplete: 'off', 'data-field': 'name' });
  const make = h('button', { type: 'submit', id: 'key-create', class: 'primary' }, 'Make a key');
  const secret = h('input', { id: 'key-secret', type: 'text', readonly: true, spellcheck: 'false', 'aria-describedby': 'key-once' });
  const copy = h('button', { type: 'button', id: 'key-copy' }, 'Copy');
  const made = h('div', { id: 'key-made', hidden: true },
    h('div', { class: 'field' }, h('label', { for: 'key-secret' }, 'New key'), h('div', { class: 'share-url' }, secret, copy)),
    h('p', { id: 'key-once', class: 'small muted' }, 'Shown this once: the service keeps only its hash. Keep it like a password.'));
  const status = h('p', { id: 'key-status', class: 'small', role: 'status' });
  const rows = h('tbody');
  const form = h('form', { id: 'key-form', class: 'share-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'key-name' }, 'Name (where it is used)'), name), make);
  main.replaceChildren(
    h('h1', {}, 'API keys'),
    h('p', { class: 'small muted' }, `The keys of ${me.name}. Each signs in as you; revoke one and requests with it are refused at once.`),
    form, made, status,
    h('div', { class: 'table-wrap' },
      h('table', { id: 'keys', class: 'shares' },
        h('caption', { class: 'visually-hidden' }, 'Your API keys'),
        h('thead', {}, h('tr', {}, ['Name', 'Key', 'Created', 'Last used', 'State'].map((t) => h('th', { scope: 'col' }, t)),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Revoke')))),
        rows)));

  const failed = (err: unknown) => {
    status.className = 'small error';
    status.textContent = err instanceof ApiError ? err.describe().join('; ') : String(err);
  };

  async function list() {
    let keys: ApiKeyView[];
    try {
      keys = await api.keys();
    } catch (err) {
      return failed(err);
    }
    if (disposed) return;
    rows.replaceChildren(...keys.map((k) => {
      const inUse = me.key?.id === k.id;
      const revoke = !k.revokedAt && h('button', { type: 'button', class: 'danger', 'data-key': k.id, 'aria-label': `Revoke the key ${k.name}` }, 'Revoke');
      if (revoke) revoke.addEventListener('click', () => void revokeKey(k, inUse));
      return h('tr', { 'data-key': k.id, class: k.revokedAt ? 'muted' : '' },
        h('td', {}, k.name, inUse ? h('span', { class: 'small muted' }, ' (this tab)') : null),
        h('td', { class: 'small' }, h('code', {}, `${k.prefix}…`)),
        h('td', { class: 'small' }, fmt.time(k.createdAt)),
        h('td', { class: 'small' }, k.lastUsedAt ? fmt.time(k.lastUsedAt) : 'never'),
        h('td', { class: 'small' }, k.revokedAt ? `revoked ${fmt.time(k.revokedAt)}` : 'active'),
        h('td', {}, revoke));
    }));
  }

  async function revokeKey(key: ApiKeyView, inUse: boolean) {
    if (inUse && !confirm(`This tab signs in with “${key.name}”: revoking it signs you out. Revoke it?`)) return;
    try {
      await api.revokeKey(key.id);
      status.className = 'small';
      status.textContent = `Revoked “${key.name}”.`;
    } catch (err) {
      failed(err);
    }
    await list(); // with the key in use gone, this request brings the sign-in form
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    name.removeAttribute('aria-invalid');
    make.disabled = true;
    status.textContent = '';
    try {
      const key = await api.createKey(name.value);
      secret.value = key.secret;
      made.hidden = false;
      secret.focus();
      secret.select();
      name.value = '';
      status.className = 'small';
      status.textContent = `Made “${key.name}”.`;
    } catch (err) {
      failed(err);
      if (err instanceof ApiError && err.problem.errors?.name) name.setAttribute('aria-invalid', 'true');
    } finally {
      make.disabled = false;
    }
    await list();
  });
  copy.addEventListener('click', async () => {
    status.className = 'small';
    status.textContent = await copyField(secret);
  });

  void list();
  return { dispose: () => { disposed = true; } };
}
