//! Who the visitor is: the anonymous id, the user id after `identify()`
//! and the user's traits; what consent a page view starts with; and what
//! another tab's changes to them mean here.

use crate::config::{Config, Consent};
use crate::error::Error;
use crate::id::{is_uuid, uuid_v4_from_bytes};
use crate::json::Value;
use crate::store::Store;

/// localStorage mirror of the anonymous-id cookie.
pub const AID_KEY: &str = "sgm_aid";
/// The user id after `identify`.
pub const UID_KEY: &str = "sgm_uid";
/// The user's traits from `identify`.
pub const TRAITS_KEY: &str = "sgm_traits";

/// The consent a page view starts with: the shopper's remembered choice,
/// else the site's explicit option, else denied under Global Privacy
/// Control (unless `respectGpc` is off), else the site's default.
pub fn consent_at_start(config: &Config, remembered: Option<Consent>, gpc: bool) -> Consent {
    if let Some(choice) = remembered {
        choice
    } else if config.consent_explicit {
        config.consent
    } else if gpc && config.respect_gpc {
        Consent::Denied
    } else {
        config.consent
    }
}

/// Stored user traits (`sgm_traits`), if they are a JSON object.
pub fn traits_object(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| Value::parse(t).ok())
        .filter(|v| v.as_object().is_some())
}

fn no_traits() -> Value {
    Value::Object(Vec::new())
}

/// The visitor's ids and traits.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The anonymous id (a UUID v4).
    pub anonymous_id: String,
    /// The user id, after `identify`.
    pub user_id: Option<String>,
    /// Traits from `identify`, accumulated for this user.
    pub user_traits: Value,
}

/// What another tab's write of an identity key changed here.
#[derive(Debug, PartialEq)]
pub enum Heard {
    /// Nothing.
    Nothing,
    /// The user id or traits: segments may change.
    Changed,
    /// Traits this tab set meanwhile that the other tab's copy lacks:
    /// kept, and this text written back for the tabs that follow.
    WriteBack(String),
    /// Another anonymous id: `reset()` in that tab, so the profile goes
    /// with the old id here too.
    NewVisitor,
}

impl Identity {
    /// The identity of an earlier page view: the anonymous id from the
    /// cookie or its storage mirror (a fresh one if neither holds one),
    /// the user id and traits from storage.
    pub fn restore(cookie: Option<String>, store: &dyn Store, fresh: [u8; 16]) -> Identity {
        let anonymous_id = [cookie, store.get(AID_KEY)]
            .into_iter()
            .flatten()
            .find(|id| is_uuid(id))
            .unwrap_or_else(|| uuid_v4_from_bytes(fresh));
        Identity {
            anonymous_id,
            user_id: store.get(UID_KEY).filter(|u| !u.is_empty()),
            user_traits: traits_object(store.get(TRAITS_KEY).as_deref()).unwrap_or_else(no_traits),
        }
    }

    /// Checks `identify()`'s user id.
    pub fn check_user_id(user_id: Option<&str>) -> Result<(), Error> {
        match user_id {
            Some(id) if id.trim().is_empty() || id.len() > 256 => Err(Error::InvalidArgument {
                argument: "identify(userId)".into(),
                reason: "expected a non-empty string of at most 256 characters".into(),
            }),
            _ => Ok(()),
        }
    }

    /// `identify(userId, traits)`: traits add to those already known;
    /// another user id starts afresh.
    pub fn identify(&mut self, user_id: Option<&str>, traits: &str) {
        if let Some(id) = user_id {
            if self.user_id.as_deref().is_some_and(|current| current != id) {
                // Another user signed in without reset() (a shared
                // computer): the traits are the new user's alone, as in
                // Segment's analytics.js, not merged into the last user's
                // (whose email would otherwise go out with theirs).
                self.user_traits = no_traits();
            }
            self.user_id = Some(id.to_string());
        }
        if let Ok(Value::Object(given)) = Value::parse(traits) {
            for (k, v) in given {
                self.user_traits.insert(&k, v);
            }
        }
    }

    /// `reset()`: a new anonymous id; user id and traits forgotten.
    pub fn reset(&mut self, fresh: [u8; 16]) {
        self.anonymous_id = uuid_v4_from_bytes(fresh);
        self.user_id = None;
        self.user_traits = no_traits();
    }

    /// Consent granted in another tab: the id, user id and traits that tab
    /// stored are the visitor's. Returns the anonymous id this page view
    /// held, if it changed.
    pub fn take_stored(&mut self, store: &dyn Store) -> Option<String> {
        let mut before = None;
        if let Some(id) = store
            .get(AID_KEY)
            .filter(|id| is_uuid(id) && *id != self.anonymous_id)
        {
            before = Some(std::mem::replace(&mut self.anonymous_id, id));
        }
        if self.user_id.is_none() {
            self.user_id = store.get(UID_KEY).filter(|u| !u.is_empty());
        }
        if self.user_traits.as_object().is_none_or(|t| t.is_empty()) {
            if let Some(traits) = traits_object(store.get(TRAITS_KEY).as_deref()) {
                self.user_traits = traits;
            }
        }
        before
    }

    /// Another tab of this site changed identity key `key` to `value`
    /// (`None`: removed).
    pub fn heard(&mut self, key: &str, value: Option<&str>) -> Heard {
        match key {
            UID_KEY => {
                let user = value.filter(|u| !u.is_empty()).map(str::to_string);
                if self.user_id.is_some() && user != self.user_id {
                    // Another user (or none): the traits were the last
                    // user's, as identify() treats them.
                    self.user_traits = no_traits();
                }
                self.user_id = user;
                Heard::Changed
            }
            TRAITS_KEY => {
                let mut traits = traits_object(value).unwrap_or_else(no_traits);
                // identify() only adds and changes a user's traits (another
                // user's come after the user id, which clears these): keys
                // the other tab's copy lacks were set here meanwhile, by an
                // identify() of the same few milliseconds. Kept, and
                // written back for the tabs that follow.
                let mut lacked = false;
                if value.is_some() {
                    for (k, v) in self.user_traits.as_object().into_iter().flatten() {
                        if traits.get(k).is_none() {
                            traits.insert(k, v.clone());
                            lacked = true;
                        }
                    }
                }
                self.user_traits = traits;
                if lacked {
                    Heard::WriteBack(self.user_traits.to_json())
                } else {
                    Heard::Changed
                }
            }
            // reset() in another tab (the events queued here keep the old
            // id, as after a reset here).
            AID_KEY => match value.filter(|id| is_uuid(id)) {
                Some(id) if id != self.anonymous_id => {
                    self.anonymous_id = id.to_string();
                    Heard::NewVisitor
                }
                _ => Heard::Nothing,
            },
            _ => Heard::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const A: &str = "00000000-0000-4000-8000-00000000000a";
    const B: &str = "00000000-0000-4000-8000-00000000000b";

    #[test]
    fn the_cookie_wins_then_its_mirror_then_a_fresh_id() {
        let mut store = MemoryStore::default();
        store.set(AID_KEY, B).unwrap();
        let id = |cookie: Option<&str>, store: &MemoryStore| {
            Identity::restore(cookie.map(str::to_string), store, [7; 16]).anonymous_id
        };
        assert_eq!(id(Some(A), &store), A);
        assert_eq!(id(Some("not-a-uuid"), &store), B);
        assert_eq!(
            id(None, &MemoryStore::default()),
            uuid_v4_from_bytes([7; 16])
        );
    }

    #[test]
    fn another_user_starts_afresh_and_the_same_one_accumulates() {
        let mut who = Identity::restore(None, &MemoryStore::default(), [1; 16]);
        who.identify(Some("u1"), r#"{"email":"a@x","plan":"pro"}"#);
        who.identify(None, r#"{"plan":"max"}"#);
        assert_eq!(who.user_traits.to_json(), r#"{"email":"a@x","plan":"max"}"#);
        who.identify(Some("u2"), r#"{"plan":"free"}"#);
        assert_eq!(who.user_traits.to_json(), r#"{"plan":"free"}"#);
        assert!(Identity::check_user_id(Some(" ")).is_err());
    }

    #[test]
    fn what_another_tab_wrote() {
        let mut who = Identity::restore(Some(A.into()), &MemoryStore::default(), [1; 16]);
        who.identify(Some("u1"), r#"{"mine":1}"#);
        // That tab's traits lack this tab's: kept and written back.
        assert_eq!(
            who.heard(TRAITS_KEY, Some(r#"{"theirs":2}"#)),
            Heard::WriteBack(r#"{"theirs":2,"mine":1}"#.into())
        );
        assert_eq!(who.heard(UID_KEY, Some("u2")), Heard::Changed);
        assert_eq!(who.user_traits.to_json(), "{}", "another user's traits go");
        assert_eq!(who.heard(AID_KEY, Some(A)), Heard::Nothing);
        assert_eq!(who.heard(AID_KEY, Some("garbage")), Heard::Nothing);
        assert_eq!(who.heard(AID_KEY, Some(B)), Heard::NewVisitor);
        assert_eq!(who.anonymous_id, B);
    }
}
