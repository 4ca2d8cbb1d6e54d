// Turning page values into JSON text for the wasm core, with errors for
// what JSON cannot carry. JSON.stringify alone would silently drop
// functions and symbols and turn NaN into null; the replacer refuses them
// and names where they were.

/** An error from segmint, with a stable `code` (see README "Errors"). */
export class SegmintError extends Error {
  constructor(info) {
    super(info.message);
    this.name = "SegmintError";
    Object.assign(this, info);
  }
}

/** An `invalid_argument` error for `argument` (e.g. "track(event)"). */
export function invalid(argument, reason) {
  return new SegmintError({ code: "invalid_argument", message: `${argument}: ${reason}`, argument });
}

/** Whether JSON cannot carry the non-object `v` (of type `t`): JSON.stringify
 * would drop it or write null. */
function unsendable(v, t) {
  return t === "function" || t === "symbol" || t === "bigint" || (t === "number" && !isFinite(v));
}

/** Whether JSON.stringify writes `value`'s members as they are: strings,
 * finite numbers, booleans, null and undefined, in nested objects and
 * arrays without `toJSON`, 256 values at most (so a cycle, or an object
 * that is mostly references to one, stops the walk). Anything else goes
 * through encode's checking replacer, which names what it refuses. */
function plain(value) {
  let budget = 256;
  const walk = (object) => {
    for (const key in object) {
      const v = object[key];
      const t = typeof v;
      if (--budget < 0) return false;
      if (t !== "object") {
        if (unsendable(v, t)) return false;
      } else if (v !== null && (typeof v.toJSON === "function" || !walk(v))) {
        return false;
      }
    }
    return true;
  };
  return typeof value.toJSON !== "function" && walk(value);
}

function describe(v) {
  const t = typeof v;
  if (t === "number") return String(v);
  if (t === "bigint") return "a BigInt";
  return "a " + t;
}

/**
 * JSON text of `value`, a plain object (or undefined/null: `{}`).
 * Throws SegmintError `invalid_argument` for a non-object and
 * `unserializable_value` for functions, symbols, BigInt, NaN, Infinity
 * and cycles.
 */
export function encode(value, what) {
  if (value === undefined || value === null) return "{}";
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalid(what, "expected a plain object");
  }
  // The usual properties, checked without a replacer: JSON.stringify calls
  // a replacer for every value, which took about half of it. (A getter
  // that throws is reported by the checking path below.)
  try {
    if (plain(value)) return JSON.stringify(value);
  } catch {}
  // Paths of nested objects, recorded as they are met, so an error can say
  // where the bad value was.
  let paths;
  try {
    return JSON.stringify(value, function (key, v) {
      const t = typeof v;
      if (t === "object") {
        if (v !== null && key !== "") (paths || (paths = new Map())).set(v, path(this, key));
        return v;
      }
      if (unsendable(v, t)) {
        const where = path(this, key);
        throw new SegmintError({
          code: "unserializable_value",
          message: `${where}: ${describe(v)} cannot be sent as JSON; pass strings, finite numbers, booleans, null, arrays or plain objects`,
          path: where,
        });
      }
      return v;
    });
  } catch (e) {
    if (e instanceof SegmintError) throw e;
    throw new SegmintError({
      code: "unserializable_value",
      message: `${what}: ${e && e.message ? e.message : e} (a cycle, or a value with a failing toJSON)`,
      path: what,
    });
  }

  function path(holder, key) {
    const base = (paths && paths.get(holder)) || what;
    return Array.isArray(holder) ? `${base}[${key}]` : key === "" ? base : `${base}.${key}`;
  }
}
