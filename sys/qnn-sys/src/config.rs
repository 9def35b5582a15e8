//! Types that the interface table mentions but wisp only passes through as pointers: per-component
//! configs, profiling, memory descriptors, device info and property keys.
//!
//! Configs are always handed to QNN as NULL-terminated arrays of pointers, and NULL itself means
//! "all defaults", which is all the emulator and the first backend version need. Binding their
//! full unions (whose members differ per backend, e.g. the HTP graph `PRECISION` custom config)
//! is deferred until a caller needs them, so they are opaque here: you can hold and pass
//! `*const *const QnnGraph_Config_t` but not build one. That keeps every layout this crate asserts
//! one it has checked against the pinned headers.

use core::marker::PhantomData;

/// Declares an opaque, unconstructible FFI type (the pattern recommended by the Rustonomicon:
/// zero-sized, `!Send`, `!Sync`, `!Unpin`).
macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, core::marker::PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// A backend config entry (`backendCreate`), opaque here.
    QnnBackend_Config_t;
    /// A context config entry (`contextCreate`, `contextCreateFromBinary`), opaque here.
    QnnContext_Config_t;
    /// A graph config entry (`graphCreate`, `graphSetConfig`), opaque here.
    QnnGraph_Config_t;
    /// A device config entry (`deviceCreate`), opaque here.
    QnnDevice_Config_t;
    /// A signal config entry (`signalCreate`), opaque here.
    QnnSignal_Config_t;
    /// Device / SoC description returned by `deviceGetPlatformInfo`, opaque here.
    QnnDevice_PlatformInfo_t;
    /// Backend-specific device infrastructure (e.g. HTP power settings), opaque here.
    QnnDevice_Infrastructure_t;
    /// A shared-memory descriptor for `memRegister`, opaque here.
    Qnn_MemDescriptor_t;
    /// One profiling event's data, opaque here.
    QnnProfile_EventData_t;
}

/// Identifier of a profiling event.
pub type QnnProfile_EventId_t = u64;

/// Profiling detail level.
pub type QnnProfile_Level_t = u32;
/// Basic profiling (per-graph times).
pub const QNN_PROFILE_LEVEL_BASIC: QnnProfile_Level_t = 1;
/// Detailed profiling (per-op times).
pub const QNN_PROFILE_LEVEL_DETAILED: QnnProfile_Level_t = 2;

/// A capability key for `propertyHasCapability`.
pub type QnnProperty_Key_t = u32;

/// The fully qualified name of an operation, as listed by `backendGetSupportedOperations`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QnnBackend_OperationName_t {
    /// Op package, e.g. `"qti.aisw"`.
    pub packageName: *const core::ffi::c_char,
    /// Op type, e.g. `"Softmax"`.
    pub name: *const core::ffi::c_char,
    /// Target platform; may be NULL.
    pub target: *const core::ffi::c_char,
}
