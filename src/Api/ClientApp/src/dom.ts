type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

/** Creates an element: attributes (on* become listeners, false/null are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'style') el.style.cssText = String(value); // CSSOM, which the CSP allows; a style attribute it blocks
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...nodes(...children));
  return el;
}

/** Children as append and replaceChildren take them: nested arrays flattened, false/null/undefined left out. */
export function nodes(...children: (Child | Child[])[]): (Node | string)[] {
  const out: (Node | string)[] = [];
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    out.push(child instanceof Node ? child : String(child));
  }
  return out;
}

export const fmt = {
  /** 4 significant digits, or – for a missing value. */
  num: (v: number | null | undefined, digits = 4) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v.toPrecision(digits)).toString()),
  pct: (v: number | null | undefined) => (v === null || v === undefined || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(1)}%`),
  int: (v: number) => v.toLocaleString('en-US'),
  duration: (seconds: number | null | undefined) => {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
    const s = Math.round(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  },
  time: (iso: string) => new Date(iso).toLocaleString(),
  shape: (s: number[] | null | undefined) => (s ? s.join('×') : '–'),
  short: (id: string) => id.slice(-8),
  /** An axis tick that fits 60 px: 1e-5 rather than 0.00001 (or 0), 120k rather than 120,000. */
  tick: (v: number): string => {
    const a = Math.abs(v);
    if (v === 0) return '0';
    if (a < 0.01) return v.toExponential(0);
    if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
    if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
    return String(Number(v.toPrecision(3)));
  },
};

/** Copies a read-only field's text (a link, a new key): what happened, to show in a status line. */
export async function copyField(input: HTMLInputElement): Promise<string> {
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    return 'Copied to the clipboard.';
  } catch {
    return 'Selected: press Ctrl+C (⌘C) to copy.'; // no clipboard here (permission, or not a secure context)
  }
}

/** A page of the dashboard: renders into main and cleans up (timers, connections) when the user leaves it. */
export interface Page {
  dispose(): void;
}
