// The rules document at start, fetched beside the wasm rather than after
// it: a first visit then pays one round trip before its banners are
// decided, not two. The core says which fetch it wants once it runs
// (rulesRequest); this request is used when it is that one.

import { fetchRules } from "./host.js";

/** The consent segmint starts with, as the core decides it: the choice
 * remembered in the sgm_consent cookie, the site's explicit option, Global
 * Privacy Control, the default. Only a granted start may make a request. */
function startsGranted(options, early) {
  const remembered = /(?:^|;\s*)sgm_consent=(granted|pending|denied)/.exec(document.cookie)?.[1];
  if (remembered) return remembered === "granted";
  const chosen = early ?? options.consent;
  if (chosen !== undefined) return chosen === "granted";
  return !(navigator.globalPrivacyControl && options.respectGpc !== false);
}

/** The rules cached by an earlier page view, if for `url`. */
function cached(url) {
  try {
    const c = JSON.parse(localStorage.getItem("sgm_rules") || "null");
    return c && c.url === url ? c : null;
  } catch {
    return null;
  }
}

/**
 * Starts fetching the rules the core will want, if it will want any:
 * `{url, etag, answer}`, or null (no rulesUrl, consent not granted, or
 * cached rules still fresh). `early`: a consent() call made before the
 * core runs, which holds from its start.
 */
export function prefetchRules(options, early) {
  const url = options.rulesUrl;
  if (typeof url !== "string" || !startsGranted(options, early)) return null;
  const cache = cached(url);
  const ttl = (options.rulesTtlSeconds ?? 300) * 1000;
  if (cache && Date.now() - cache.fetched < ttl) return null;
  const etag = cache?.etag;
  return { url, etag, answer: fetchRules(url, etag) };
}
