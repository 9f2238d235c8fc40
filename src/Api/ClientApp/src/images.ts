import { authFetch, describeProblem, problemOf } from './auth';
import { h, type Attrs } from './dom';
import type { Problem } from './types';

/**
 * Pictures the API serves (dataset samples, filters, feature maps), fetched with the credential, since an <img src>
 * cannot send one, and shown through object URLs. A page holds one: an image's URL is revoked when the image is
 * replaced (sweep, after the images it shows are swapped) or the page leaves (dispose).
 */
export class AuthedImages {
  private readonly urls = new Map<HTMLImageElement, string>();
  private readonly abort = new AbortController();

  /**
   * An <img> whose picture comes from `path` (kept in data-src). When the server refuses it, `failed` gets its problem
   * details and the image an error event, as a failed src would.
   */
  img(path: string, attrs: Attrs = {}, failed?: (problem: Problem, status: number) => void): HTMLImageElement {
    const img = h('img', { ...attrs, 'data-src': path });
    void this.load(img, path, failed);
    return img;
  }

  /** Replaces what an <img> shows (a new probe image, a newer snapshot); the old picture's URL is revoked. */
  async load(img: HTMLImageElement, path: string, failed?: (problem: Problem, status: number) => void) {
    img.dataset.src = path;
    let response: Response;
    try {
      response = await authFetch(path, { signal: this.abort.signal });
    } catch {
      return; // the page left, or the network failed: the image stays as it was
    }
    if (img.dataset.src !== path || this.abort.signal.aborted) return; // replaced meanwhile
    if (!response.ok) {
      const problem = await problemOf(response);
      img.dataset.error = describeProblem(problem, response.status);
      failed?.(problem, response.status);
      img.dispatchEvent(new Event('error'));
      return;
    }
    const blob = await response.blob().catch(() => undefined);
    if (!blob || img.dataset.src !== path || !img.isConnected || this.abort.signal.aborted) return; // gone: no URL to revoke
    const url = URL.createObjectURL(blob);
    this.revoke(img);
    this.urls.set(img, url);
    img.src = url;
  }

  /** Revokes the URLs of images no longer on the page (replaced by newer ones). */
  sweep() {
    for (const img of [...this.urls.keys()]) if (!img.isConnected) this.revoke(img);
  }

  dispose() {
    this.abort.abort();
    for (const img of [...this.urls.keys()]) this.revoke(img);
  }

  /** How many object URLs are live (for the browser tests: none are left behind). */
  get count() {
    return this.urls.size;
  }

  private revoke(img: HTMLImageElement) {
    const url = this.urls.get(img);
    if (url === undefined) return;
    URL.revokeObjectURL(url);
    this.urls.delete(img);
  }
}

/** The file name a Content-Disposition header gives (filename* first, as RFC 6266 says), else `fallback`. */
export function fileNameFrom(disposition: string | null, fallback: string): string {
  if (!disposition) return fallback;
  let name: string | undefined;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  try {
    name = extended ? decodeURIComponent(extended[1].trim()) : undefined;
  } catch {
    // a malformed escape: the plain name below
  }
  if (!name) {
    const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/.exec(disposition);
    name = (plain?.[2] ?? plain?.[1])?.trim();
  }
  return name ? name.replace(/[/\\]/g, '_') : fallback;
}

/**
 * Downloads `path` with the credential (an <a href> cannot send it): the body is saved through an object URL, revoked
 * once the browser has taken it. Throws the server's problem details as an Error when refused.
 */
export async function download(path: string, fallbackName: string): Promise<string> {
  const response = await authFetch(path);
  if (!response.ok) throw new Error(describeProblem(await problemOf(response), response.status));
  const name = fileNameFrom(response.headers.get('Content-Disposition'), fallbackName);
  const url = URL.createObjectURL(await response.blob());
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  try {
    a.click();
  } finally {
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000); // the download has started by then
  }
  return name;
}
