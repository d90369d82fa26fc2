//! Watches: "tell me when this part of the tree changes".
//!
//! A client registers a path and a token (any text it chooses, to tell its
//! watches apart). The store answers at once with one event, then sends an
//! event (`XS_WATCH_EVENT`: the changed path and the token) whenever the
//! watched node or anything under it is written, created or removed, and
//! when an ancestor is removed (then the event names the watched path).
//! A client hears only about nodes it may read.
//!
//! ```text
//!   watch "/local/domain/5" token "t"
//!   write /local/domain/5/data/x   -> event "/local/domain/5/data/x" "t"
//!   rm    /local/domain            -> event "/local/domain/5" "t"
//!   write /local/domain/6/x        -> (nothing: not under the path)
//! ```
//!
//! Two special names are not nodes: `@introduceDomain` fires when the store
//! starts serving a domain, `@releaseDomain` when a domain is gone. Only
//! Dom0 hears them (their permissions are Dom0's, as in Xen's defaults).
//! A watch registered with a relative path gets relative paths in its
//! events.
#![forbid(unsafe_code)]

use super::operations::Changed;
use super::permissions::Want;
use super::tree::{self, domain_path};
use alloc::string::String;
use alloc::vec::Vec;

/// One registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// Who registered it.
    pub domain: u16,
    /// The absolute path watched, or a special `@` name.
    pub path: String,
    /// The client's token, given back in every event.
    pub token: Vec<u8>,
    /// Registered with a relative path: events say paths relative to the
    /// domain's home.
    pub relative: bool,
}

impl Watch {
    /// The payload of an event about `changed_path`: the path as the
    /// client named it, a NUL, the token, a NUL.
    pub fn event(&self, changed_path: &str) -> Vec<u8> {
        let home = domain_path(self.domain);
        let shown = match changed_path.strip_prefix(home.as_str()) {
            Some(rest) if self.relative && rest.starts_with('/') => &rest[1..],
            _ => changed_path,
        };
        let mut payload = Vec::with_capacity(shown.len() + self.token.len() + 2);
        payload.extend_from_slice(shown.as_bytes());
        payload.push(0);
        payload.extend_from_slice(&self.token);
        payload.push(0);
        payload
    }

    /// The path an event about `changed` names for this watch, if it fires.
    pub fn fires_for<'a>(&'a self, changed: &'a Changed) -> Option<&'a str> {
        let special = self.path.starts_with('@') || changed.path.starts_with('@');
        if special {
            return (self.path == changed.path).then_some(self.path.as_str());
        }
        if tree::is_within(&changed.path, &self.path) {
            Some(&changed.path)
        } else if changed.recursive && tree::is_within(&self.path, &changed.path) {
            Some(&self.path)
        } else {
            None
        }
    }
}

/// Every watch in the store.
#[derive(Clone, Debug, Default)]
pub struct Watches(Vec<Watch>);

impl Watches {
    /// How many watches `domain` has.
    pub fn count(&self, domain: u16) -> usize {
        self.0.iter().filter(|watch| watch.domain == domain).count()
    }

    /// Whether `domain` already watches `path` with `token`.
    pub fn contains(&self, domain: u16, path: &str, token: &[u8]) -> bool {
        self.0
            .iter()
            .any(|watch| watch.domain == domain && watch.path == path && watch.token == token)
    }

    /// Adds a watch (the caller checked the quota and duplicates).
    pub fn add(&mut self, watch: Watch) {
        self.0.push(watch);
    }

    /// Removes `domain`'s watch of `path` with `token`; whether there was one.
    pub fn remove(&mut self, domain: u16, path: &str, token: &[u8]) -> bool {
        let before = self.0.len();
        self.0.retain(|watch| {
            !(watch.domain == domain && watch.path == path && watch.token == token)
        });
        self.0.len() != before
    }

    /// Removes every watch of `domain`.
    pub fn remove_domain(&mut self, domain: u16) {
        self.0.retain(|watch| watch.domain != domain);
    }

    /// The events `changed` causes: (domain, payload) pairs, for the
    /// watches whose domain may read the changed node.
    pub fn events(&self, changed: &Changed) -> Vec<(u16, Vec<u8>)> {
        self.0
            .iter()
            .filter(|watch| {
                changed
                    .permissions
                    .allows(watch.domain, watch.domain == 0, Want::Read)
            })
            .filter_map(|watch| {
                watch
                    .fires_for(changed)
                    .map(|path| (watch.domain, watch.event(path)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xenstore::permissions::{Access, Permissions};

    fn watch(domain: u16, path: &str, relative: bool) -> Watch {
        Watch {
            domain,
            path: String::from(path),
            token: Vec::from(&b"tok"[..]),
            relative,
        }
    }

    fn changed(path: &str, owner: u16, recursive: bool) -> Changed {
        Changed {
            path: String::from(path),
            permissions: Permissions::owned_by(owner, Access::None),
            recursive,
        }
    }

    #[test]
    fn watches_fire_for_their_subtree_only() {
        let mut watches = Watches::default();
        watches.add(watch(5, "/local/domain/5", false));
        let events = watches.events(&changed("/local/domain/5/data/x", 5, false));
        assert_eq!(
            events,
            [(5, Vec::from(&b"/local/domain/5/data/x\0tok\0"[..]))]
        );
        assert!(watches
            .events(&changed("/local/domain/50", 5, false))
            .is_empty());
        // Removing an ancestor names the watched path.
        let events = watches.events(&changed("/local", 5, true));
        assert_eq!(events, [(5, Vec::from(&b"/local/domain/5\0tok\0"[..]))]);
    }

    #[test]
    fn relative_watches_get_relative_paths() {
        let mut watches = Watches::default();
        watches.add(watch(5, "/local/domain/5/name", true));
        let events = watches.events(&changed("/local/domain/5/name", 5, false));
        assert_eq!(events, [(5, Vec::from(&b"name\0tok\0"[..]))]);
    }

    #[test]
    fn nobody_hears_about_nodes_they_cannot_read() {
        let mut watches = Watches::default();
        watches.add(watch(6, "/", false));
        watches.add(watch(0, "/", false));
        let events = watches.events(&changed("/local/domain/5/secret", 5, false));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, 0);
    }

    #[test]
    fn special_watches_fire_only_for_their_name() {
        let mut watches = Watches::default();
        watches.add(watch(0, "@releaseDomain", false));
        watches.add(watch(0, "/", false));
        let events = watches.events(&changed("@releaseDomain", 0, false));
        assert_eq!(events, [(0, Vec::from(&b"@releaseDomain\0tok\0"[..]))]);
        assert_eq!(watches.events(&changed("/vm", 0, false)).len(), 1);
        assert!(watches.remove(0, "/", b"tok"));
        assert!(!watches.remove(0, "/", b"tok"));
    }
}
