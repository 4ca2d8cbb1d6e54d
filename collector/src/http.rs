//! The collector's HTTP routes (DESIGN.md "Collector").

use crate::dashboard;
use crate::db::Db;
use crate::ingest::{
    decode_body, parse_request, too_large, Refusal, Shape, StoredEvent, MAX_REQUEST_BYTES,
};
use crate::now_ms;
use crate::rules::RulesState;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use http_body_util::BodyExt;
use segmint_core::condition::Native;
use segmint_core::json::{write_number, write_string, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, PathBuf};
use std::sync::Arc;

/// Settings of a running collector.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Origins answered with CORS headers (`*` for any).
    pub allow_origins: Vec<String>,
    /// When set, batches must carry this writeKey.
    pub write_key: Option<String>,
    /// The demo storefront, served at `/`.
    pub www: Option<PathBuf>,
    /// The built SDK package, served at `/pkg/`.
    pub pkg: Option<PathBuf>,
    /// Unlocks the dashboard and the per-user API from other machines
    /// (HTTP Basic, any user name). Without it they answer only requests
    /// from this machine.
    pub dashboard_password: Option<String>,
    /// Tracking requests a client address may make per second, on
    /// average (0: no limit).
    pub rate_limit: u32,
    /// How many it may make at once above that.
    pub rate_burst: u32,
}

/// Shared state of the handlers.
pub struct App {
    /// Where events go.
    pub db: Db,
    /// The rules in force.
    pub rules: RulesState,
    /// Flags.
    pub settings: Settings,
    /// Retention and bounce by segment, as last computed.
    pub kpis: crate::kpis::Latest,
    /// Held while a discovery runs: one at a time.
    pub discovering: tokio::sync::Mutex<()>,
}

type RateLimit = tower_governor::GovernorLayer<
    tower_governor::key_extractor::PeerIpKeyExtractor,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
    Body,
>;

/// The per-address limit on tracking requests, as a layer (none when
/// `rate_limit` is 0): over it, 429 with `Retry-After` and a JSON error,
/// which segmint's SDK and Segment's retry after the time given.
fn rate_limit(settings: &Settings) -> Option<RateLimit> {
    if settings.rate_limit == 0 {
        return None;
    }
    let config = tower_governor::governor::GovernorConfigBuilder::default()
        .per_millisecond((1000 / u64::from(settings.rate_limit)).max(1))
        .burst_size(settings.rate_burst.max(1))
        .finish()?;
    Some(
        tower_governor::GovernorLayer::new(config).error_handler(|e| {
            let wait = match e {
                tower_governor::GovernorError::TooManyRequests { wait_time, .. } => wait_time,
                _ => 1,
            };
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from this address; retry after the time given",
            );
            if let Ok(v) = HeaderValue::from_str(&wait.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }),
    )
}

/// The router for `app`.
pub fn router(app: Arc<App>) -> Router {
    // What shoppers' data the dashboard reads: not for every visitor of
    // the storefront the collector serves.
    let private = Router::new()
        .route("/api/summary", get(summary))
        .route("/api/users/{id}/segments", get(user_segments))
        .route("/dashboard", get(dashboard_page))
        .route("/dashboard/charts/{name}", get(chart))
        .route("/dashboard/discover", get(discover_page))
        .route("/api/discover", get(discover))
        .route_layer(middleware::from_fn_with_state(app.clone(), dashboard_guard));
    let mut tracking_routes = Router::new();
    for &(path, shape) in TRACKING_PATHS {
        tracking_routes = tracking_routes.route(path, tracking(shape));
    }
    if let Some(limit) = rate_limit(&app.settings) {
        tracking_routes = tracking_routes.route_layer(limit);
    }
    Router::new()
        .merge(tracking_routes)
        // analytics.js posts its own delivery counters to `<apiHost>/m`;
        // they are not shoppers' events, so they are acknowledged and
        // dropped rather than answered 404 in every shop's console.
        .route("/v1/m", post(sdk_metrics).options(preflight))
        .route("/v1/rules", get(rules).options(preflight))
        // The storefront's own panel: a visitor's event names, by the
        // anonymous id only that visitor has.
        .route("/api/recent", get(recent))
        .route("/favicon.ico", get(favicon))
        .merge(private)
        .fallback(get(files))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(app)
}

/// Lets a request read the dashboard: with the dashboard password when one
/// is set, else only from this machine (the demo's case).
async fn dashboard_guard(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let password = app.settings.dashboard_password.as_deref();
    match dashboard_refusal(password, request.headers(), peer.ip()) {
        None => next.run(request).await,
        Some(refusal) => refusal,
    }
}

/// The answer to a request from `peer` that may not read the dashboard
/// (see [`Settings::dashboard_password`]); `None` when it may.
fn dashboard_refusal(
    password: Option<&str>,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
) -> Option<Response> {
    match password {
        Some(password) => {
            if basic_password(headers).is_some_and(|given| same_secret(&given, password)) {
                return None;
            }
            let mut response = error(StatusCode::UNAUTHORIZED, "the dashboard password is required");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"segmint dashboard\", charset=\"UTF-8\""),
            );
            Some(response)
        }
        // A dual-stack listener sees 127.0.0.1 as ::ffff:127.0.0.1.
        None if peer.to_canonical().is_loopback() => None,
        None => Some(error(
            StatusCode::FORBIDDEN,
            "the dashboard answers only on this machine: start the collector with --dashboard-password (or SEGMINT_DASHBOARD_PASSWORD) to read it from elsewhere",
        ))
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    let mut body = String::from("{\"error\":");
    write_string(&mut body, message);
    body.push('}');
    json(status, body)
}

/// The CORS headers for a request's Origin, if it may have them.
fn cors(
    settings: &Settings,
    headers: &HeaderMap,
) -> Option<Vec<(header::HeaderName, HeaderValue)>> {
    let origin = headers.get(header::ORIGIN)?;
    let allowed = settings
        .allow_origins
        .iter()
        .any(|o| o == "*" || o.as_bytes() == origin.as_bytes());
    allowed.then(|| {
        vec![
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
            (
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ),
            (
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After, Accept-Encoding, ETag"),
            ),
            (header::VARY, HeaderValue::from_static("Origin")),
        ]
    })
}

/// Whether a request's Origin is this server (same origin needs no CORS).
fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = host.to_str().unwrap_or_default();
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        == Some(host)
}

fn with_cors(mut response: Response, settings: &Settings, headers: &HeaderMap) -> Response {
    if let Some(extra) = cors(settings, headers) {
        for (k, v) in extra {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

async fn preflight(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if cors(&app.settings, &headers).is_some() {
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Content-Type, If-None-Match, Authorization, Content-Encoding, X-Retry-Count",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    with_cors(response, &app.settings, &headers)
}

/// `user:password` of `Authorization: Basic`.
fn basic_credentials(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    String::from_utf8(base64_decode(encoded.trim())?).ok()
}

/// The user name of `Authorization: Basic` (Segment's way to send the
/// write key).
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let text = basic_credentials(headers)?;
    Some(text.split(':').next().unwrap_or_default().to_string())
}

/// The password of `Authorization: Basic`.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let text = basic_credentials(headers)?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Segment's HTTP Tracking API: where its clients post, and what each
/// path's body holds. `/v1/batch` is segmint's own; the short paths are
/// analytics.js's (the type's first letter; `b` for its batches).
const TRACKING_PATHS: &[(&str, Shape)] = &[
    ("/v1/batch", Shape::Batch),
    ("/v1/import", Shape::Batch),
    ("/v1/b", Shape::Batch),
    ("/v1/track", Shape::One("track")),
    ("/v1/t", Shape::One("track")),
    ("/v1/page", Shape::One("page")),
    ("/v1/p", Shape::One("page")),
    ("/v1/screen", Shape::One("screen")),
    ("/v1/s", Shape::One("screen")),
    ("/v1/identify", Shape::One("identify")),
    ("/v1/i", Shape::One("identify")),
    ("/v1/group", Shape::One("group")),
    ("/v1/g", Shape::One("group")),
    ("/v1/alias", Shape::One("alias")),
    ("/v1/a", Shape::One("alias")),
];

async fn sdk_metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    with_cors(
        StatusCode::NO_CONTENT.into_response(),
        &app.settings,
        &headers,
    )
}

/// How long a client may take to send a request's body.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bytes of an oversized body read and thrown away before answering 413:
/// a server that answers before the client finished sending, and closes,
/// makes the client's network stack report a reset instead of the 413
/// (and the SDK would retry rather than split the batch).
const DRAINED_AT_MOST: usize = 8 * 1024 * 1024;

/// A tracking request's body, at most [`MAX_REQUEST_BYTES`], refused with
/// a JSON error (413 when too large, 408 when too slow) rather than
/// kept whole.
async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    let read = async move {
        let mut body = body;
        let mut kept: Vec<u8> = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Refusal {
                status: 400,
                message: format!("the body could not be read: {e}"),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen += data.len();
            if seen <= MAX_REQUEST_BYTES {
                kept.extend_from_slice(&data);
            } else if seen > DRAINED_AT_MOST {
                break;
            }
        }
        if seen > MAX_REQUEST_BYTES {
            Err(too_large())
        } else {
            Ok(Bytes::from(kept))
        }
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(result) => result,
        Err(_) => Err(Refusal {
            status: 408,
            message: format!(
                "the body took over {} s to arrive",
                BODY_READ_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// The route of a tracking path whose body holds `shape`.
fn tracking(shape: Shape) -> MethodRouter<Arc<App>> {
    post(
        move |State(app): State<Arc<App>>,
              Query(query): Query<HashMap<String, String>>,
              headers: HeaderMap,
              body: Body| async move {
            let raw = match read_body(body).await {
                Ok(raw) => raw,
                Err(Refusal { status, message }) => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                    return with_cors(error(status, &message), &app.settings, &headers);
                }
            };
            receive(&app, shape, &query, &headers, &raw).await
        },
    )
    .options(preflight)
}

async fn receive(
    app: &App,
    shape: Shape,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    raw: &[u8],
) -> Response {
    let response = ingest(app, shape, query, headers, raw).await;
    let mut response = with_cors(response, &app.settings, headers);
    // Tells the SDK it may gzip its batches (`?compression=gzip`).
    response
        .headers_mut()
        .insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    response
}

async fn ingest(
    app: &App,
    shape: Shape,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    raw: &[u8],
) -> Response {
    if !same_origin(headers) && cors(&app.settings, headers).is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "this origin may not send events here (see --allow-origin)",
        );
    }
    let gzip = query.get("compression").map(String::as_str) == Some("gzip")
        || headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes() == b"gzip");
    let received_at = now_ms();
    let parsed = decode_body(raw, gzip).and_then(|body| {
        parse_request(
            &body,
            shape,
            received_at,
            app.settings.write_key.as_deref(),
            basic_user(headers).as_deref(),
        )
    });
    let events: Vec<StoredEvent> = match parsed {
        Ok(events) => events,
        Err(Refusal { status, message }) => {
            return error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                &message,
            )
        }
    };
    match app.db.insert(events, app.rules.defined()).await {
        Ok(_) => json(StatusCode::OK, "{\"success\":true}".into()),
        Err(e) => {
            eprintln!("segmint-collector: storing a batch failed: {e}");
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage is unavailable; retry",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

async fn rules(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let response = match app.rules.get() {
        None => error(
            StatusCode::NOT_FOUND,
            "no rules document is configured (--rules)",
        ),
        Some(loaded) => {
            let fresh = headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == loaded.etag.as_bytes());
            let status = if fresh {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::OK
            };
            let body = if fresh {
                String::new()
            } else {
                loaded.text.clone()
            };
            (
                status,
                [
                    (header::CONTENT_TYPE, "application/json".to_string()),
                    (header::ETAG, loaded.etag.clone()),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                ],
                body,
            )
                .into_response()
        }
    };
    with_cors(response, &app.settings, &headers)
}

/// Segment (id, name) pairs of the rules in force.
fn named_segments(app: &App) -> Vec<(String, String)> {
    app.rules
        .get()
        .map(|l| {
            l.rules
                .segments
                .iter()
                .map(|s| (s.id.clone(), s.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

async fn summary(State(app): State<Arc<App>>) -> Response {
    let named = named_segments(&app);
    let version = app.rules.get().map(|l| l.rules.version.clone());
    let now = now_ms();
    match app.db.summary(now, &app.rules.defined()).await {
        Ok(s) => {
            let kpis = app.kpis.read().ok().and_then(|k| k.clone());
            json(
                StatusCode::OK,
                s.to_json(&named, version.as_deref(), now, kpis.as_deref()),
            )
        }
        Err(e) => storage_unavailable(&e),
    }
}

/// Events `/api/recent` reads at most.
const RECENT_EVENTS: i64 = 200;

fn storage_unavailable(e: &str) -> Response {
    eprintln!("segmint-collector: reading the database failed: {e}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage is unavailable; retry",
    )
}

/// The demo page's panel: this visitor's latest batches.
async fn recent(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query.get("anonymousId") else {
        return error(StatusCode::BAD_REQUEST, "anonymousId is required");
    };
    // The latest events only, without bodies: what the panel shows,
    // whatever the id's history.
    let events = match app.db.recent_of(id, RECENT_EVENTS).await {
        Ok(e) => e,
        Err(e) => return storage_unavailable(&e),
    };
    let mut batches: Vec<(f64, Vec<String>)> = Vec::new();
    for e in events.into_iter().rev() {
        let name = e.event.unwrap_or(e.kind);
        match batches.last_mut() {
            Some((at, names)) if *at == e.received_at => names.push(name),
            _ => batches.push((e.received_at, vec![name])),
        }
    }
    let mut out = String::from("{\"batches\":[");
    for (i, (at, names)) in batches.iter().rev().take(10).rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"at\":");
        write_number(&mut out, *at);
        out.push_str(",\"events\":[");
        for (j, n) in names.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            write_string(&mut out, n);
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    json(StatusCode::OK, out)
}

/// Server-side evaluation: the user's segments recomputed from their
/// stored events with segmint-core, beside what the browser reported.
async fn user_segments(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(loaded) = app.rules.get() else {
        return error(
            StatusCode::NOT_FOUND,
            "no rules document is configured (--rules)",
        );
    };
    let events = match app.db.events_of(&id).await {
        Ok(e) => e,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let messages: Vec<Value> = events
        .iter()
        .filter_map(|e| Value::parse(&e.body).ok())
        .collect();
    let Some(r) = segmint_core::replay::replay(
        &loaded.rules,
        &messages,
        &Native::default(),
        30.0 * 60_000.0,
    ) else {
        return error(StatusCode::NOT_FOUND, "no events for this user");
    };
    let list = |items: &[String]| {
        Value::Array(items.iter().map(|s| Value::String(s.clone())).collect()).to_json()
    };
    json(
        StatusCode::OK,
        format!(
            "{{\"anonymousId\":{},\"events\":{},\"server\":{},\"browser\":{},\"agree\":{},\"traits\":{}}}",
            Value::String(id).to_json(),
            messages.len(),
            list(&r.segments),
            list(&r.reported),
            r.segments == r.reported,
            r.traits.to_json()
        ),
    )
}

/// segmint's mark, for browsers that ask for `/favicon.ico` (the
/// dashboard and the demo storefront).
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        dashboard::FAVICON,
    )
        .into_response()
}

/// Segment discovery over the stored events under the rules in force:
/// the proposals, and the rules document with all of them adopted.
async fn discover(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(loaded) = app.rules.get() else {
        return error(
            StatusCode::NOT_FOUND,
            "no rules document is configured (--rules)",
        );
    };
    let Ok(_running) = app.discovering.try_lock() else {
        return error(
            StatusCode::CONFLICT,
            "a discovery is running; try again when it ends",
        );
    };
    let seed = query.get("seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let doc = match Value::parse(&loaded.text) {
        Ok(doc) => doc,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    match crate::discover::over(&app.db, &doc, seed).await {
        Ok((d, features, _)) => {
            let all: Vec<&crate::discover::Proposal> = d.proposals.iter().collect();
            let mut out = crate::discover::to_json(&d);
            out.insert("rules", crate::discover::adopt(&doc, &features, &all));
            json(StatusCode::OK, out.to_json())
        }
        // Too few users, say: nothing to propose yet.
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

async fn discover_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        dashboard::DISCOVER_PAGE,
    )
        .into_response()
}

async fn dashboard_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        dashboard::PAGE,
    )
        .into_response()
}

async fn chart(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let named = named_segments(&app);
    let now = now_ms();
    // `?w=`: the width the page wants it drawn at (its card's).
    let width = query.get("w").and_then(|w| w.parse().ok()).unwrap_or(640);
    let svg = match app.db.summary(now, &app.rules.defined()).await {
        Ok(s) => dashboard::chart(&name, &s, &named, now, width),
        Err(e) => return storage_unavailable(&e),
    };
    match svg {
        Some(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "no such chart"),
    }
}

fn content_type(path: &std::path::Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Static files: `/pkg/...` from `--pkg`, everything else from `--www`.
async fn files(State(app): State<Arc<App>>, method: Method, uri: axum::http::Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let path = uri.path();
    let (root, rest) = match path.strip_prefix("/pkg/") {
        Some(rest) => (app.settings.pkg.as_ref(), rest),
        None => (app.settings.www.as_ref(), path.trim_start_matches('/')),
    };
    let Some(root) = root else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let rel = PathBuf::from(percent_decode(rest));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let mut file = root.join(rel);
    if file.is_dir() || path.ends_with('/') {
        file = file.join("index.html");
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => Response::builder()
            .header(header::CONTENT_TYPE, content_type(&file))
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(_) => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn percent_decode(text: &str) -> String {
    segmint_core::url::form_decode(&text.replace('+', "%2B"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> HeaderMap {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut encoded = String::new();
        for chunk in credentials.as_bytes().chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    encoded.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    encoded.push('=');
                }
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    #[test]
    fn the_dashboard_is_for_this_machine_or_the_password() {
        let (local, remote) = ("127.0.0.1".parse().unwrap(), "203.0.113.9".parse().unwrap());
        let none = HeaderMap::new();
        assert!(dashboard_refusal(None, &none, local).is_none());
        assert!(dashboard_refusal(None, &none, "::1".parse().unwrap()).is_none());
        assert!(dashboard_refusal(None, &none, "::ffff:127.0.0.1".parse().unwrap()).is_none());
        assert!(dashboard_refusal(None, &none, "::ffff:203.0.113.9".parse().unwrap()).is_some());
        let refused = dashboard_refusal(None, &none, remote).unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        // With a password, the address does not matter.
        for peer in [local, remote] {
            let asked = dashboard_refusal(Some("s3cret"), &none, peer).unwrap();
            assert_eq!(asked.status(), StatusCode::UNAUTHORIZED);
            assert!(asked.headers().contains_key(header::WWW_AUTHENTICATE));
            for wrong in ["admin:s3cre", "admin:s3cret!", "s3cret", ":"] {
                assert!(
                    dashboard_refusal(Some("s3cret"), &basic(wrong), peer).is_some(),
                    "{wrong}"
                );
            }
            assert!(dashboard_refusal(Some("s3cret"), &basic("admin:s3cret"), peer).is_none());
            assert!(dashboard_refusal(Some("s3cret"), &basic(":s3cret"), peer).is_none());
        }
        assert_eq!(
            basic("admin:s3cret").get(header::AUTHORIZATION).unwrap(),
            "Basic YWRtaW46czNjcmV0"
        );
    }
}
