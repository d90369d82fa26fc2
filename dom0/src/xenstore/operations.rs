//! What each request does to the tree, with the permission and quota
//! checks, written once for the tree itself and for a transaction's view
//! of it (both are [`Nodes`]).
#![forbid(unsafe_code)]

use super::permissions::{Permissions, Want};
use super::quota::Quotas;
use super::tree::{self, Node, Tree};
use super::XsError;
use alloc::string::String;
use alloc::vec::Vec;

/// The nodes a request works on: the tree, or a transaction's view.
pub trait Nodes {
    /// The node at `path` (a copy), if it exists.
    fn node(&mut self, path: &str) -> Option<Node>;
    /// Stores a node (the caller keeps the parent's list right).
    fn put(&mut self, path: &str, node: Node);
    /// Removes one node.
    fn delete(&mut self, path: &str);
    /// How many nodes `domain` owns, as this view sees it.
    fn owned_by(&self, domain: u16) -> usize;
}

impl Nodes for Tree {
    fn node(&mut self, path: &str) -> Option<Node> {
        self.get(path).cloned()
    }

    fn put(&mut self, path: &str, node: Node) {
        Tree::put(self, path, node)
    }

    fn delete(&mut self, path: &str) {
        Tree::delete(self, path)
    }

    fn owned_by(&self, domain: u16) -> usize {
        Tree::owned_by(self, domain)
    }
}

/// Who asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The domain.
    pub domain: u16,
    /// Whether it is the privileged domain (Dom0): no permission checks, no
    /// quotas.
    pub privileged: bool,
}

/// A change, for the watches: the node, its permissions (who may hear
/// about it), and whether it was removed with everything under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    /// The absolute path (or a special `@` name).
    pub path: String,
    /// Its permissions at the time of the change.
    pub permissions: Permissions,
    /// Removed with its subtree: watches below it fire too.
    pub recursive: bool,
}

/// The error for a node that does not exist: `ENOENT` if the caller may
/// read its nearest existing ancestor, otherwise `EACCES`, so that a
/// guest cannot probe for other domains' keys.
fn missing(nodes: &mut (impl Nodes + ?Sized), caller: Caller, path: &str) -> XsError {
    let mut ancestor = tree::parent(path);
    while let Some(at) = ancestor {
        if let Some(node) = nodes.node(at) {
            return if node
                .permissions
                .allows(caller.domain, caller.privileged, Want::Read)
            {
                XsError::ENOENT
            } else {
                XsError::EACCES
            };
        }
        ancestor = tree::parent(at);
    }
    XsError::ENOENT
}

/// The node at `path` if the caller may do `want` to it.
fn lookup(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    path: &str,
    want: Want,
) -> Result<Node, XsError> {
    match nodes.node(path) {
        Some(node)
            if node
                .permissions
                .allows(caller.domain, caller.privileged, want) =>
        {
            Ok(node)
        }
        Some(_) => Err(XsError::EACCES),
        None => Err(missing(nodes, caller, path)),
    }
}

/// `XS_READ`: the value.
pub fn read(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    path: &str,
) -> Result<Vec<u8>, XsError> {
    lookup(nodes, caller, path, Want::Read).map(|node| node.value)
}

/// `XS_DIRECTORY`: the children's names.
pub fn directory(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    path: &str,
) -> Result<Vec<String>, XsError> {
    lookup(nodes, caller, path, Want::Read).map(|node| node.children.into_iter().collect())
}

/// `XS_GET_PERMS`.
pub fn get_permissions(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    path: &str,
) -> Result<Permissions, XsError> {
    lookup(nodes, caller, path, Want::Read).map(|node| node.permissions)
}

fn check_size(node: &Node, caller: Caller, quotas: &Quotas) -> Result<(), XsError> {
    if !caller.privileged && node.size() > quotas.entry_size {
        return Err(XsError::E2BIG);
    }
    Ok(())
}

/// `XS_WRITE`: sets the value, creating the node and any missing ancestors
/// (each inherits its parent's permissions).
pub fn write(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    quotas: &Quotas,
    path: &str,
    value: &[u8],
) -> Result<Changed, XsError> {
    if let Some(mut node) = nodes.node(path) {
        if !node
            .permissions
            .allows(caller.domain, caller.privileged, Want::Write)
        {
            return Err(XsError::EACCES);
        }
        node.value = Vec::from(value);
        check_size(&node, caller, quotas)?;
        let permissions = node.permissions.clone();
        nodes.put(path, node);
        return Ok(Changed {
            path: String::from(path),
            permissions,
            recursive: false,
        });
    }
    create(nodes, caller, quotas, path, value)
}

/// Creates `path` and its missing ancestors. Everything is checked before
/// anything is stored, so a refused request changes nothing.
fn create(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    quotas: &Quotas,
    path: &str,
    value: &[u8],
) -> Result<Changed, XsError> {
    // Walk up to the nearest node that exists.
    let mut missing_paths = alloc::vec![path];
    let mut ancestor_path = tree::parent(path).ok_or(XsError::EINVAL)?;
    let mut ancestor = loop {
        if let Some(node) = nodes.node(ancestor_path) {
            break node;
        }
        missing_paths.push(ancestor_path);
        ancestor_path = tree::parent(ancestor_path).ok_or(XsError::EINVAL)?;
    };
    if !ancestor
        .permissions
        .allows(caller.domain, caller.privileged, Want::Write)
    {
        return Err(XsError::EACCES);
    }
    if !caller.privileged
        && nodes.owned_by(caller.domain) + missing_paths.len() > quotas.nodes_per_domain
    {
        return Err(XsError::EQUOTA);
    }
    // Build the chain top-down, then store it.
    let mut built: Vec<(&str, Node)> = Vec::with_capacity(missing_paths.len() + 1);
    for &child in missing_paths.iter().rev() {
        let mut node = Node::new(
            ancestor
                .permissions
                .inherited(caller.domain, caller.privileged),
        );
        ancestor
            .children
            .insert(String::from(tree::base_name(child)));
        check_size(&ancestor, caller, quotas)?;
        built.push((ancestor_path, ancestor));
        if child == path {
            node.value = Vec::from(value);
            check_size(&node, caller, quotas)?;
        }
        ancestor = node;
        ancestor_path = child;
    }
    let permissions = ancestor.permissions.clone();
    built.push((ancestor_path, ancestor));
    for (at, node) in built {
        nodes.put(at, node);
    }
    Ok(Changed {
        path: String::from(path),
        permissions,
        recursive: false,
    })
}

/// `XS_MKDIR`: creates an empty node; nothing to do if it exists and the
/// caller may write it. `None` when nothing changed.
pub fn mkdir(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    quotas: &Quotas,
    path: &str,
) -> Result<Option<Changed>, XsError> {
    match nodes.node(path) {
        Some(node)
            if node
                .permissions
                .allows(caller.domain, caller.privileged, Want::Write) =>
        {
            Ok(None)
        }
        Some(_) => Err(XsError::EACCES),
        None => create(nodes, caller, quotas, path, b"").map(Some),
    }
}

/// `XS_RM`: removes the node and everything under it.
pub fn remove(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    path: &str,
) -> Result<Changed, XsError> {
    let parent_path = tree::parent(path).ok_or(XsError::EINVAL)?;
    let node = lookup(nodes, caller, path, Want::Write)?;
    let permissions = node.permissions.clone();
    // Depth-first, with an explicit stack: a deep tree must not overflow
    // Dom0's stack.
    let mut stack = alloc::vec![(String::from(path), node)];
    while let Some((at, node)) = stack.pop() {
        for child in &node.children {
            let child_path = tree::child_path(&at, child);
            if let Some(child_node) = nodes.node(&child_path) {
                stack.push((child_path, child_node));
            }
        }
        nodes.delete(&at);
    }
    if let Some(mut parent) = nodes.node(parent_path) {
        parent.children.remove(tree::base_name(path));
        nodes.put(parent_path, parent);
    }
    Ok(Changed {
        path: String::from(path),
        permissions,
        recursive: true,
    })
}

/// `XS_SET_PERMS`: only the owner (or Dom0) may, and an unprivileged owner
/// may not give the node away (it would leave its quota).
pub fn set_permissions(
    nodes: &mut (impl Nodes + ?Sized),
    caller: Caller,
    quotas: &Quotas,
    path: &str,
    permissions: Permissions,
) -> Result<Changed, XsError> {
    let mut node = lookup(nodes, caller, path, Want::Write)?;
    if !caller.privileged {
        if node.permissions.owner() != caller.domain || permissions.owner() != caller.domain {
            return Err(XsError::EACCES);
        }
        if permissions.entries().len() > quotas.permissions_per_node {
            return Err(XsError::EQUOTA);
        }
    }
    node.permissions = permissions;
    check_size(&node, caller, quotas)?;
    let changed = Changed {
        path: String::from(path),
        permissions: node.permissions.clone(),
        recursive: false,
    };
    nodes.put(path, node);
    Ok(changed)
}
