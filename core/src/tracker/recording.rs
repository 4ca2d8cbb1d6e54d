//! The calls that record: `track()` and the commerce helpers, `page()`,
//! `identify()`. A call becomes a message (its head, the page's context
//! apart), joins the queue, and feeds the profile, whose traits may move
//! the visitor's segments.

use std::borrow::Cow;

use super::identity::Identity;
use super::{Tracker, IDENTIFY_EVENT, PAGE_EVENT, TRAITS_KEY, UID_KEY};
use crate::config::Consent;
use crate::error::Error;
use crate::json::Value;
use crate::message::{
    check_event_name, check_object, check_order_completed, check_product_clicked, commerce,
    message_head, parse_object, wire_len, Ids, Kind, MAX_EVENT_BYTES,
};
use crate::store::Store;

impl<S: Store> Tracker<S> {
    /// `track(event, properties)`; `properties` is JSON object text.
    pub fn track(&mut self, event: &str, properties: &str, now: f64) -> Result<(), Error> {
        self.track_parsed(event, properties, None, "track(properties)", now)
    }

    /// `track()` with the properties already parsed, when the caller had
    /// to (commerce checks): each text is read once on the hot path,
    /// parsed only where the profile needs its values.
    fn track_parsed(
        &mut self,
        event: &str,
        properties: &str,
        parsed: Option<Value>,
        argument: &str,
        now: f64,
    ) -> Result<(), Error> {
        check_event_name(event)?;
        let parsed = match parsed {
            Some(v) => Some(v),
            None if self.wants_values(event) => Some(parse_object(properties, argument)?),
            None => {
                check_object(properties, argument)?;
                None
            }
        };
        self.record(
            Kind::Track { event, properties },
            event,
            properties,
            parsed,
            now,
        )
    }

    /// A commerce event whose properties `check` validates. Amounts
    /// given as text ("9.99") are sent as the numbers they are, so totals
    /// and averages count them: the check rewrites them, and the
    /// properties then go out as rewritten.
    fn track_checked(
        &mut self,
        event: &str,
        properties: &str,
        argument: &str,
        check: fn(&mut Value) -> Result<bool, Error>,
        now: f64,
    ) -> Result<(), Error> {
        let mut v = parse_object(properties, argument)?;
        let text = if check(&mut v)? {
            Cow::Owned(v.to_json())
        } else {
            Cow::Borrowed(properties)
        };
        self.track_parsed(event, &text, Some(v), argument, now)
    }

    /// `productClicked(properties)`
    pub fn product_clicked(&mut self, properties: &str, now: f64) -> Result<(), Error> {
        self.track_checked(
            commerce::PRODUCT_CLICKED,
            properties,
            "productClicked(properties)",
            check_product_clicked,
            now,
        )
    }

    /// `productsSearched(query, properties)`
    pub fn products_searched(
        &mut self,
        query: &str,
        properties: &str,
        now: f64,
    ) -> Result<(), Error> {
        if query.trim().is_empty() {
            return Err(Error::MissingField {
                event: commerce::PRODUCTS_SEARCHED,
                field: "query".into(),
                reason: "is required (a non-empty string)",
            });
        }
        let argument = "productsSearched(properties)";
        let mut v = parse_object(properties, argument)?;
        v.insert("query", Value::String(query.to_string()));
        let text = v.to_json();
        self.track_parsed(commerce::PRODUCTS_SEARCHED, &text, Some(v), argument, now)
    }

    /// `orderCompleted(order)`
    pub fn order_completed(&mut self, order: &str, now: f64) -> Result<(), Error> {
        self.track_checked(
            commerce::ORDER_COMPLETED,
            order,
            "orderCompleted(order)",
            check_order_completed,
            now,
        )
    }

    /// `page(name, properties)`: the page's url, path, referrer, search
    /// and title join the properties (the caller's win).
    pub fn page(&mut self, name: Option<&str>, properties: &str, now: f64) -> Result<(), Error> {
        check_object(properties, "page(properties)")?;
        let mut props = Value::Object(Vec::new());
        for (k, v) in [
            ("path", &self.page.path),
            ("referrer", &self.page.referrer),
            ("search", &self.page.search),
            ("title", &self.page.title),
            ("url", &self.page.url),
        ] {
            props.insert(k, Value::String(v.clone()));
        }
        if let Ok(Value::Object(given)) = Value::parse(properties) {
            for (k, v) in given {
                props.insert(&k, v);
            }
        }
        let text = props.to_json();
        let name = name.filter(|n| !n.trim().is_empty());
        self.record(
            Kind::Page {
                name,
                properties: &text,
            },
            PAGE_EVENT,
            &text,
            Some(props),
            now,
        )
    }

    /// `identify(userId, traits)`: traits add to those already known.
    pub fn identify(&mut self, user_id: Option<&str>, traits: &str, now: f64) -> Result<(), Error> {
        check_object(traits, "identify(traits)")?;
        Identity::check_user_id(user_id)?;
        if self.consent == Consent::Denied {
            return Ok(());
        }
        self.identity.identify(user_id, traits);
        self.attrs = None;
        if let Some(id) = user_id {
            self.write(UID_KEY, id);
        }
        let merged = self.identity.user_traits.to_json();
        self.write(TRAITS_KEY, &merged);
        // New traits may change segments: the message carries the result.
        self.reevaluate(now);
        self.record(
            Kind::Identify { traits: &merged },
            IDENTIFY_EVENT,
            &merged,
            None,
            now,
        )
    }

    /// Queues a message. `parsed` is `properties` parsed, when the caller
    /// has it (else it is parsed here if the profile needs it).
    pub(super) fn record(
        &mut self,
        kind: Kind<'_>,
        event: &str,
        properties: &str,
        parsed: Option<Value>,
        now: f64,
    ) -> Result<(), Error> {
        if self.consent == Consent::Denied {
            self.notices
                .debug(|| format!("consent denied: dropped {event}"));
            return Ok(());
        }
        let message_id = self.rng.uuid_v4();
        let ids = Ids {
            anonymous_id: &self.identity.anonymous_id,
            user_id: self.identity.user_id.as_deref(),
        };
        let head = message_head(kind, ids, &message_id, now);
        let bytes = wire_len(&head, &self.context_json);
        if bytes > MAX_EVENT_BYTES {
            return Err(Error::EventTooLarge { bytes });
        }
        self.observe(event, properties, parsed, now);
        let store = self.storage.writable(self.consent);
        let dropped = self.dispatch.push(
            head,
            &self.context_json,
            now,
            self.config.max_queue_events,
            store,
        );
        self.notices.debug(|| format!("event {event} {properties}"));
        if dropped > 0 {
            self.notices.error(Error::QueueOverflow { dropped });
        }
        Ok(())
    }

    /// Whether recording `event` needs its properties' values: the profile
    /// reads them, or they wait for the rules.
    pub(super) fn wants_values(&self, event: &str) -> bool {
        // Rules are on their way with a `rulesUrl`, and inline rules until
        // the engine arrives.
        let coming =
            self.config.rules_url.is_some() || (!self.engine_ready && self.config.rules.is_some());
        self.profile
            .wants_values(self.rules.as_ref(), coming, event)
    }

    /// Feeds an event to the profile and re-evaluates segments when a
    /// trait may have changed.
    pub(super) fn observe(
        &mut self,
        event: &str,
        properties: &str,
        parsed: Option<Value>,
        now: f64,
    ) {
        if self.rules.is_some() {
            self.profile_event(event, properties, parsed, now);
        } else if self.wants_values(event) {
            let props = parsed.or_else(|| Value::parse(properties).ok());
            self.profile.keep_early(event, props, now);
        }
    }
}
