//! The tree of nodes, and the paths that name them.
//!
//! Xen's layout, as this project fills it:
//!
//! ```text
//! /
//! ├── local
//! │   └── domain
//! │       ├── 0                      Dom0's home (owned by 0)
//! │       └── 5                      a DomU's home: owned by 5, Dom0 may read
//! │           ├── name = "web"
//! │           ├── domid = "5"
//! │           ├── vm = "/vm/<uuid>"
//! │           └── (anything the guest writes under here)
//! └── vm
//!     └── <uuid>                     the toolstack's record of the VM
//!         ├── name = "web"
//!         └── uuid = "<uuid>"
//! ```
//!
//! A path is absolute (`/local/domain/5/name`) or relative to the caller's
//! home (`name` means `/local/domain/<caller>/name`). Xen allows the
//! characters `A-Z a-z 0-9 - / _ @`, no empty component (`//`), no trailing
//! slash, and bounds the length (`XENSTORE_ABS_PATH_MAX`,
//! `XENSTORE_REL_PATH_MAX`). Names that start with `@` are special watch
//! names, not nodes.
//!
//! Each node keeps its value, its permissions, the names of its children
//! and a *generation*: the store-wide count of changes at the moment it was
//! last changed. Transactions compare generations to find conflicts.
#![forbid(unsafe_code)]

use super::permissions::{Access, Permissions};
use super::XsError;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hypercall_abi::xs_wire::{XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX};

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its value: any bytes (often text, not NUL-terminated).
    pub value: Vec<u8>,
    /// Who may do what.
    pub permissions: Permissions,
    /// The names (last components) of its children.
    pub children: BTreeSet<String>,
    /// When it last changed (see the module comment).
    pub generation: u64,
}

impl Node {
    /// A node with no value and no children.
    pub fn new(permissions: Permissions) -> Self {
        Self {
            value: Vec::new(),
            permissions,
            children: BTreeSet::new(),
            generation: 0,
        }
    }

    /// Bytes the node's own record takes: its value, permissions and list
    /// of children (Xen's "entry size", bounded by a quota).
    pub fn size(&self) -> usize {
        self.value.len()
            + self.permissions.wire_size()
            + self
                .children
                .iter()
                .map(|name| name.len() + 1)
                .sum::<usize>()
    }
}

/// `/local/domain/<domain>`, a domain's home.
pub fn domain_path(domain: u16) -> String {
    format!("/local/domain/{domain}")
}

/// Turns a path a client sent into an absolute, checked path. `EINVAL`
/// when it is not a valid node name (or a special `@` name when
/// `special_allowed`).
pub fn canonical(caller: u16, path: &[u8], special_allowed: bool) -> Result<String, XsError> {
    let text = core::str::from_utf8(path).map_err(|_| XsError::EINVAL)?;
    if let Some(name) = text.strip_prefix('@') {
        return if special_allowed && (name == "introduceDomain" || name == "releaseDomain") {
            Ok(String::from(text))
        } else {
            Err(XsError::EINVAL)
        };
    }
    let valid_characters = text
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"-/_@".contains(&byte));
    if text.is_empty() || !valid_characters || text.contains("//") {
        return Err(XsError::EINVAL);
    }
    if text.starts_with('/') {
        if text.len() > XENSTORE_ABS_PATH_MAX || (text.len() > 1 && text.ends_with('/')) {
            return Err(XsError::EINVAL);
        }
        return Ok(String::from(text));
    }
    if text.len() > XENSTORE_REL_PATH_MAX || text.ends_with('/') {
        return Err(XsError::EINVAL);
    }
    Ok(format!("{}/{text}", domain_path(caller)))
}

/// The parent of an absolute path (`None` for the root).
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(at) => Some(&path[..at]),
        None => None,
    }
}

/// The last component of an absolute path.
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `parent/name`, minding the root.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Whether `path` is `ancestor` or lies under it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    ancestor == "/"
        || path == ancestor
        || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// The store's nodes, by absolute path, and how many each domain owns.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    owned: BTreeMap<u16, usize>,
    generation: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// The tree a fresh store starts with: `/`, `/local`, `/local/domain`
    /// and `/vm`, owned by Dom0 and closed to everyone else (Xen's
    /// defaults), and Dom0's home.
    pub fn new() -> Self {
        let mut tree = Self {
            nodes: BTreeMap::new(),
            owned: BTreeMap::new(),
            generation: 0,
        };
        let closed = Permissions::owned_by(0, Access::None);
        tree.put("/", Node::new(closed.clone()));
        for path in ["/local", "/local/domain", "/local/domain/0", "/vm"] {
            tree.put(path, Node::new(closed.clone()));
            let mut parent_node = tree.nodes[parent(path).unwrap_or("/")].clone();
            parent_node.children.insert(String::from(base_name(path)));
            tree.put(parent(path).unwrap_or("/"), parent_node);
        }
        tree
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The store-wide change count.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many nodes `domain` owns.
    pub fn owned_by(&self, domain: u16) -> usize {
        self.owned.get(&domain).copied().unwrap_or(0)
    }

    /// Stores `node` at `path` with a new generation. The caller keeps the
    /// parent's list of children right.
    pub fn put(&mut self, path: &str, mut node: Node) {
        self.generation += 1;
        node.generation = self.generation;
        if let Some(old) = self.nodes.get(path) {
            self.uncount(old.permissions.owner());
        }
        *self.owned.entry(node.permissions.owner()).or_insert(0) += 1;
        self.nodes.insert(String::from(path), node);
    }

    /// Removes the node at `path` alone (not its children; the caller
    /// removes those and fixes the parent's list).
    pub fn delete(&mut self, path: &str) {
        if let Some(old) = self.nodes.remove(path) {
            self.generation += 1;
            self.uncount(old.permissions.owner());
        }
    }

    fn uncount(&mut self, owner: u16) {
        if let Some(count) = self.owned.get_mut(&owner) {
            *count -= 1;
            if *count == 0 {
                self.owned.remove(&owner);
            }
        }
    }

    /// Every path, in order (for `xenstore-ls` and the invariant checks).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// Checks the tree's invariants, for tests: every node but the root
    /// has a parent that lists it, every listed child exists, and the
    /// owner counts match. Returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let mut owned: BTreeMap<u16, usize> = BTreeMap::new();
        for (path, node) in &self.nodes {
            *owned.entry(node.permissions.owner()).or_insert(0) += 1;
            if let Some(parent_path) = parent(path) {
                let listed = self
                    .nodes
                    .get(parent_path)
                    .is_some_and(|parent_node| parent_node.children.contains(base_name(path)));
                if !listed {
                    return Err(format!("{path} is not listed by its parent"));
                }
            }
            for child in &node.children {
                if !self.nodes.contains_key(&child_path(path, child)) {
                    return Err(format!("{path} lists {child}, which does not exist"));
                }
            }
        }
        if owned != self.owned {
            return Err(format!("owner counts {:?} != {:?}", self.owned, owned));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_under_the_callers_home() {
        assert_eq!(
            canonical(5, b"name", false).unwrap(),
            "/local/domain/5/name"
        );
        assert_eq!(canonical(5, b"/vm/x", false).unwrap(), "/vm/x");
        assert_eq!(canonical(0, b"/", false).unwrap(), "/");
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            &b""[..],
            b"/a//b",
            b"/a/",
            b"a/",
            b"/a b",
            b"/a\0b",
            b"/\xff",
            b"/a/..",
            b"@other",
        ] {
            assert_eq!(canonical(1, bad, true), Err(XsError::EINVAL), "{bad:?}");
        }
        assert_eq!(canonical(1, b"@releaseDomain", false), Err(XsError::EINVAL));
        assert!(canonical(1, b"@releaseDomain", true).is_ok());
        let long = alloc::vec![b'a'; XENSTORE_REL_PATH_MAX + 1];
        assert_eq!(canonical(1, &long, false), Err(XsError::EINVAL));
    }

    #[test]
    fn parents_and_children() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(child_path("/", "a"), "/a");
        assert!(is_within("/a/b", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/a", "/"));
    }

    #[test]
    fn a_new_tree_is_consistent_and_counts_generations() {
        let mut tree = Tree::new();
        tree.check().unwrap();
        assert_eq!(tree.owned_by(0), 5);
        let before = tree.generation();
        let node = tree.get("/vm").unwrap().clone();
        tree.put("/vm", node);
        assert!(tree.get("/vm").unwrap().generation > before);
    }
}
