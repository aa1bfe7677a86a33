// Where the client keeps what must survive a reload: the outbox of unsent messages and,
// when asked, the resume cursors. Anything with getItem/setItem/removeItem will do
// (localStorage, sessionStorage, a file-backed object in Node).

/** @typedef {{getItem(key: string): string|null, setItem(key: string, value: string): void, removeItem(key: string): void}} KeyValueStorage */

/** A storage that lives as long as the page or process (shared by clients given the same one). */
export function memoryStorage() {
  const data = new Map();
  return {
    getItem: (key) => (data.has(key) ? data.get(key) : null),
    setItem: (key, value) => void data.set(key, String(value)),
    removeItem: (key) => void data.delete(key),
  };
}

/** localStorage when the page has one that works (not in private mode), else memory. */
export function defaultStorage() {
  try {
    const ls = globalThis.localStorage;
    if (ls) {
      const probe = "supporthub.probe";
      ls.setItem(probe, "1");
      ls.removeItem(probe);
      return ls;
    }
  } catch {
    /* no usable localStorage */
  }
  return memoryStorage();
}

/** Read JSON from storage; `fallback` when absent or unreadable. */
export function loadJson(storage, key, fallback) {
  try {
    const raw = storage.getItem(key);
    return raw == null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

/** Write JSON to storage; a full or refusing storage only loses the copy. */
export function saveJson(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    /* quota or private mode: the in-memory state still holds */
  }
}
