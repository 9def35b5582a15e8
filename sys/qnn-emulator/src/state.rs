//! The emulator's process-wide object registry: every handle it has handed out and what it
//! refers to.
//!
//! Handles are opaque integers (starting at 0x1000, step 0x10, never reused), not pointers to
//! Rust objects. That lets every entry point check a handle before using it and return the real
//! `*_INVALID_HANDLE` code for a stale or foreign one — a use-after-free in the client becomes a
//! clean, testable error instead of memory corruption. One mutex guards the whole registry; the
//! emulator is a test double, so serialising calls is acceptable.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use wisp_qnn_sys::QnnLog_Callback_t;

use crate::model::{Context, Graph};

/// A logger created by `logCreate`.
#[derive(Clone, Copy)]
pub struct Logger {
    /// The client's callback.
    pub callback: QnnLog_Callback_t,
    /// Highest level delivered.
    pub max_level: u32,
}

/// What a handle refers to.
pub enum Object {
    /// `logCreate`.
    Log(Logger),
    /// `backendCreate`; holds its logger handle (0 = none).
    Backend {
        /// Logger handle or 0.
        logger: usize,
    },
    /// `contextCreate` / `contextCreateFromBinary`.
    Context(Context),
    /// A graph: index into its context's `graphs`.
    Graph {
        /// Owning context handle.
        context: usize,
        /// Index in the context's graph list.
        index: usize,
    },
}

/// All live objects.
pub struct State {
    next: usize,
    objects: HashMap<usize, Object>,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| {
    Mutex::new(State {
        next: 0x1000,
        objects: HashMap::new(),
    })
});

/// Locks the registry (recovering from a poisoned lock: a panic was already turned into an
/// error code by the entry point that caught it).
pub fn lock() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    /// Registers an object and returns its new handle.
    pub fn insert(&mut self, object: Object) -> usize {
        let handle = self.next;
        self.next += 0x10;
        self.objects.insert(handle, object);
        handle
    }

    /// Removes an object.
    pub fn remove(&mut self, handle: usize) -> Option<Object> {
        self.objects.remove(&handle)
    }

    /// The object behind a handle.
    pub fn get(&self, handle: usize) -> Option<&Object> {
        self.objects.get(&handle)
    }

    /// The object behind a handle, mutably.
    pub fn get_mut(&mut self, handle: usize) -> Option<&mut Object> {
        self.objects.get_mut(&handle)
    }

    /// Whether `handle` is a live logger.
    pub fn is_logger(&self, handle: usize) -> bool {
        matches!(self.get(handle), Some(Object::Log(_)))
    }

    /// Whether `handle` is a live backend.
    pub fn is_backend(&self, handle: usize) -> bool {
        matches!(self.get(handle), Some(Object::Backend { .. }))
    }

    /// The context behind a handle.
    pub fn context(&self, handle: usize) -> Option<&Context> {
        match self.get(handle) {
            Some(Object::Context(c)) => Some(c),
            _ => None,
        }
    }

    /// The context behind a handle, mutably.
    pub fn context_mut(&mut self, handle: usize) -> Option<&mut Context> {
        match self.objects.get_mut(&handle) {
            Some(Object::Context(c)) => Some(c),
            _ => None,
        }
    }

    /// The (context handle, graph index) a graph handle refers to.
    pub fn graph_location(&self, handle: usize) -> Option<(usize, usize)> {
        match self.get(handle) {
            Some(Object::Graph { context, index }) => Some((*context, *index)),
            _ => None,
        }
    }

    /// The graph behind a handle, with its context.
    pub fn graph_mut(&mut self, handle: usize) -> Option<(&mut Context, usize)> {
        let (context, index) = self.graph_location(handle)?;
        self.context_mut(context).map(|c| (c, index))
    }

    /// The graph behind a handle.
    pub fn graph(&self, handle: usize) -> Option<&Graph> {
        let (context, index) = self.graph_location(handle)?;
        self.context(context).and_then(|c| c.graphs.get(index))
    }

    /// The existing handle of graph `index` of `context`, or a new one.
    pub fn graph_handle(&mut self, context: usize, index: usize) -> usize {
        let existing = self.objects.iter().find_map(|(h, o)| match o {
            Object::Graph {
                context: c,
                index: i,
            } if *c == context && *i == index => Some(*h),
            _ => None,
        });
        existing.unwrap_or_else(|| self.insert(Object::Graph { context, index }))
    }

    /// Removes a context and every graph handle into it.
    pub fn remove_context(&mut self, context: usize) -> bool {
        if self.context(context).is_none() {
            return false;
        }
        self.objects.retain(|h, o| {
            *h != context && !matches!(o, Object::Graph { context: c, .. } if *c == context)
        });
        true
    }

    /// Contexts owned by a backend.
    pub fn contexts_of(&self, backend: usize) -> Vec<usize> {
        self.objects
            .iter()
            .filter_map(|(h, o)| {
                matches!(o, Object::Context(c) if c.backend == backend).then_some(*h)
            })
            .collect()
    }

    /// The logger responsible for messages about `handle` (a log, backend, context or graph).
    pub fn logger_of(&self, handle: usize) -> Option<Logger> {
        let backend = match self.get(handle)? {
            Object::Log(l) => return Some(*l),
            Object::Backend { .. } => handle,
            Object::Context(c) => c.backend,
            Object::Graph { context, .. } => self.context(*context)?.backend,
        };
        match self.get(backend)? {
            Object::Backend { logger } => match self.get(*logger)? {
                Object::Log(l) => Some(*l),
                _ => None,
            },
            _ => None,
        }
    }
}
