// The app's segmint client, for client components. load() runs on first
// use in the browser, never during server rendering; a page has one
// client, and load() with the same options gives it back.
import { load } from "segmint";

export function segmint() {
  return load({ endpoint: process.env.NEXT_PUBLIC_SEGMINT_ENDPOINT || "/", flushIntervalMs: 100 });
}
