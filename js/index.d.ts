// Types for segmint's JavaScript API (see README).

/** Options of {@link load}. Unknown options fail `ready` with `invalid_option`. */
export interface LoadOptions {
  /** Collector base URL; batches go to `{endpoint}/v1/batch`. */
  endpoint: string;
  /** Sent as `writeKey` in every batch. */
  writeKey?: string;
  /** Where the rules document is fetched from (with `If-None-Match`). */
  rulesUrl?: string;
  /** An inline rules document (used until `rulesUrl` answers). */
  rules?: RulesDocument;
  /** Rules older than this are revalidated, at start and while the page stays open. Default 300. */
  rulesTtlSeconds?: number;
  /**
   * A batch goes out when this many events are queued. Default 500. Once
   * the endpoint accepts gzip, batches fill to this; uncompressed,
   * `maxBytes` usually stops them first (~85 typical events).
   */
  maxEvents?: number;
  /**
   * A batch never puts more than this many bytes on the wire (compressed,
   * when gzip is on; the JSON then goes up to Segment's 500 KB). Default
   * 61440.
   */
  maxBytes?: number;
  /** A batch goes out this long after the first queued event. Default 2000. */
  flushIntervalMs?: number;
  /** The queue's bound; overflow drops the oldest. Default 10000. */
  maxQueueEvents?: number;
  /** Exponential backoff with full jitter. Defaults: 1000 and 300000. */
  retry?: { baseMs?: number; capMs?: number };
  /** The anonymous-id cookie. `domain` overrides probing. */
  cookie?: { name?: string; domain?: string; maxAgeDays?: number };
  /** Initial consent. Default "granted" (or "denied" under Global Privacy Control). */
  consent?: Consent;
  /** Treat `navigator.globalPrivacyControl` as "denied" unless granted. Default true. */
  respectGpc?: boolean;
  /** Declarative capture of data-segmint-track clicks and data-segmint-search forms. Default true. */
  autocapture?: boolean | { clicks?: boolean; search?: boolean };
  /** Log events, batches, retries, rules and segment changes. Default false. */
  debug?: boolean;
  /** gzip batches once the endpoint says it accepts them. Default true. */
  compress?: boolean;
  /** An uncached slot stays hidden at most this long. Default 400. */
  antiFlickerTimeoutMs?: number;
  /** Keep each slot's banner for the whole page view. Default true. */
  sticky?: boolean;
  /** A new session starts after this much inactivity. Default 30. */
  sessionTimeoutMinutes?: number;
  /**
   * URL parameters left out of the page's URL, query and referrer in every
   * event (and in the context segments see), compared decoded and ignoring
   * case: in the query, and in a fragment that holds parameters
   * (`#access_token=…`, `#/cart?email=…`). Such as `["email", "token"]`.
   * Default none.
   */
  stripUrlParams?: string[];
  /** Where the .wasm is, when a bundler does not resolve it. */
  wasmUrl?: string | URL;
}

export type Consent = "granted" | "pending" | "denied";

/** JSON values the SDK sends. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue | undefined };
export type Properties = { [key: string]: JsonValue | Date | undefined };

/**
 * A price, quantity or total: a number, or a string in plain decimal
 * notation such as "9.99" (as templates print prices), which is sent as
 * that number. Other text ("$9.99", "1,234.56") gives `missing_field`.
 */
export type Amount = number | string;

/** Segment e-commerce v2 product. */
export interface Product {
  product_id: string | number;
  sku?: string;
  name?: string;
  category?: string;
  price?: Amount;
  quantity?: Amount;
  [key: string]: JsonValue | undefined;
}

/** Segment e-commerce v2 `Order Completed`. */
export interface Order {
  order_id: string | number;
  products: Product[];
  total?: Amount;
  revenue?: Amount;
  subtotal?: Amount;
  tax?: Amount;
  shipping?: Amount;
  discount?: Amount;
  currency?: string;
  [key: string]: JsonValue | Product[] | undefined;
}

/** What `on("segments")` hears. */
export interface SegmentChange {
  segments: string[];
  entered: string[];
  exited: string[];
}

/** Error codes (README "Errors"). */
export type ErrorCode =
  | "invalid_option" | "invalid_argument" | "unserializable_value" | "event_too_large" | "missing_field"
  | "queue_overflow" | "batch_rejected" | "event_rejected" | "endpoint_redirected" | "storage_unavailable"
  | "storage_corrupt" | "invalid_rules" | "rules_fetch_failed" | "load_failed" | "already_loaded";

/** Every error segmint reports. */
export declare class SegmintError extends Error {
  name: "SegmintError";
  code: ErrorCode;
  option?: string;
  argument?: string;
  path?: string;
  field?: string;
  status?: number;
  events?: number;
  dropped?: number;
  skipped?: number;
  bytes?: number;
  messageId?: string;
  /** `endpoint_redirected`: where the redirects ended. */
  url?: string;
}

/** A variant of a personalized element. */
export type Variant = HTMLTemplateElement | string | ((element: Element, info: { segment: string | null; variation: Variation }) => void);
export type Variation = "personalized" | "holdout" | "default";

/** The rules document (DESIGN.md "Rules document"). */
export interface RulesDocument {
  version: string;
  traits?: Record<string, TraitDefinition>;
  segments: SegmentDefinition[];
  savedGroups?: Record<string, unknown>;
}
export type TraitDefinition =
  | { event: string; aggregate: "count" | "sum" | "avg" | "min" | "max" | "distinct" | "top_share" | "top_value" | "last"; property?: string; window_days: number }
  | { builtin: "days_since_first_seen" }
  | { builtin: "sessions"; window_days?: number };
export interface SegmentDefinition {
  id: string;
  name?: string;
  priority?: number;
  /** A GrowthBook condition (MongoDB-style) over traits and `context`. */
  condition: Record<string, unknown>;
  /** Share of members held out of personalization (0 to 1). */
  holdout?: number;
}

/**
 * The segmint client. Recording calls (track, page, identify and the
 * commerce helpers) resolve once the event is queued durably, or reject
 * with a {@link SegmintError} (also heard by `on("error")`). Calls made
 * before the core is ready wait and are replayed in order; in a page the
 * browser prerendered, they wait until the page is shown.
 */
export interface SegmintClient {
  /** Resolves when the core is ready; rejects with `invalid_option` or `load_failed`. */
  readonly ready: Promise<SegmintClient>;
  /**
   * Resolves once segments are evaluated under the rules at start: the
   * later wasm module (the segment engine and delivery's sending; fetched
   * at idle, or as soon as a slot waits or `flush()` is called) is there
   * and the rules in force are known. Until then events are stored but
   * not sent, `segments()` gives the segments the visitor had when last
   * evaluated, and events recorded meanwhile count in the profile once it
   * arrives.
   */
  readonly segmentsReady: Promise<void>;
  /** Records a custom event. */
  track(event: string, properties?: Properties): Promise<void>;
  /** Records a page view; url, path, referrer, search and title are added. */
  page(name?: string, properties?: Properties): Promise<void>;
  page(properties: Properties): Promise<void>;
  /**
   * Sets the user id (null keeps the anonymous id only); traits accumulate
   * for that user. Another user id starts from its own traits alone: call
   * reset() on logout.
   */
  identify(userId?: string | null, traits?: Properties): Promise<void>;
  identify(traits: Properties): Promise<void>;
  /** Segment e-commerce `Product Clicked`; `product_id` is required. */
  productClicked(properties: Product & Properties): Promise<void>;
  /** Segment e-commerce `Products Searched` with `query`. */
  productsSearched(query: string, properties?: Properties): Promise<void>;
  /** Segment e-commerce `Order Completed`; `order_id` and `products[].product_id` are required. */
  orderCompleted(order: Order): Promise<void>;
  /**
   * Sends what is queued; resolves once every event queued now was answered,
   * or its request failed or went unanswered for 30 s (`pending` counts
   * those, which are retried).
   */
  flush(): Promise<{ sent: number; pending: number }>;
  /** New anonymous id; user id, traits, profile and segments forgotten. */
  reset(): void;
  /** Changes consent (remembered in a cookie); without an argument, reports it. */
  consent(state: Consent): Promise<void>;
  consent(): Promise<Consent>;
  /** The anonymous id (null until ready). */
  anonymousId(): string | null;
  /** The user id after identify (null until then). */
  userId(): string | null;
  /** The user's segment ids, computed on the device, highest priority first. */
  segments(): string[];
  /** Whether the user is in segment `id`. */
  inSegment(id: string): boolean;
  /** The user's traits: from identify, and computed from the rules. */
  traits(): Record<string, JsonValue>;
  /**
   * Shows the variant for the user's segment in an element. Called again
   * for the same element, or for a declarative slot's element, it replaces
   * the earlier call or the slot (one exposure per page view); `undo()` of
   * the latest handle restores the original content (and the slot).
   * A missing element or a bad variant is reported as `invalid_argument`
   * through `on("error")`, never thrown; that handle's `undo()` does nothing.
   */
  personalize(target: string | Element, variants: Record<string, Variant>): { undo(): void };
  /** Listens for segment changes (after any call that changes them) and for errors. */
  on(type: "segments", listener: (change: SegmentChange) => void): this;
  on(type: "error", listener: (error: SegmintError) => void): this;
  /** Removes a listener added with on(). */
  off(type: "segments" | "error", listener: (...args: never[]) => void): this;
}

/**
 * Starts segmint; returns at once. In Node (server-side rendering) every call is a no-op;
 * in a browser's Web Worker `ready` rejects with `load_failed` (segmint runs in the page).
 * A page has one client: a later call returns the same one (and reports `already_loaded`
 * if its options differ), unless that client failed to start.
 */
export declare function load(options: LoadOptions): SegmintClient;

/**
 * `window.segmint` before the script-tag embed has run: the stub's queue,
 * with the client's calls, which are queued (up to 1,000) and replayed in
 * order once it loads. Reads answer what is known (null ids, no segments,
 * no traits); the calls that return promises return settled ones, never
 * pending: `flush()` gives nothing sent and the calls queued so far
 * pending, `consent()` without an argument gives undefined.
 */
export type SegmintStub = unknown[] &
  Omit<SegmintClient, "ready" | "segmentsReady" | "consent"> & {
    consent(state: Consent): Promise<void>;
    consent(): Promise<Consent | undefined>;
  };

declare global {
  interface Window {
    /** The script-tag embed's client, or, before it has run, the stub. */
    segmint?: SegmintClient | SegmintStub;
  }
}
