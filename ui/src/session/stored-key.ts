/**
 * The API key the user entered, kept in sessionStorage: it survives reloads and navigation in the
 * tab, and is gone when the tab closes. Never in localStorage, a cookie or a URL the page shows.
 */
const STORAGE_KEY = 'taskstream.apiKey';

export function storedKey(): string | undefined {
  return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
}

export function storeKey(key: string | undefined): void {
  if (key === undefined) sessionStorage.removeItem(STORAGE_KEY);
  else sessionStorage.setItem(STORAGE_KEY, key);
}
