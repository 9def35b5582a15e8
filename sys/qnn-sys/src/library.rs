//! [`QnnLibrary`]: open a QNN backend library at run time and pick a compatible interface provider.
//!
//! Qualcomm's guidance is to `dlopen` the HTP backend rather than link it (one copy per process,
//! SDK-matched stub/skel libraries found at run time), and wisp must start on machines with no QNN
//! at all. So the library is never a link-time dependency: [`QnnLibrary::load`] opens it,
//! resolves `QnnInterface_getProviders`, and keeps the first provider whose API version matches
//! the pinned header generation. Every way this can fail is a [`QnnLoadError`] whose message starts
//! with `unavailable:` so callers can fall back to the CPU and report why.

use core::ffi::CStr;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::common::{error_code, error_name, Qnn_ErrorHandle_t, QNN_SUCCESS};
use crate::interface::{
    QnnInterface_ImplementationV2_7_t, QnnInterface_getProvidersFn_t, QnnInterface_t,
    QNN_INTERFACE_GET_PROVIDERS_SYMBOL,
};
use crate::types::{Qnn_ApiVersion_t, Qnn_Version_t};
use crate::version::{check_core_api_version, VersionMismatch, PINNED_API_VERSION};

/// Environment variable that overrides the library path used by [`default_library_path`].
pub const LIBRARY_ENV: &str = "WISP_QNN_LIB";

/// The provider-query symbol, NUL-terminated for `dlsym`.
pub const PROVIDER_SYMBOL: &CStr = c"QnnInterface_getProviders";

/// The library to open when no path is given: `$WISP_QNN_LIB` if set, else the platform name of
/// the HTP backend (`libQnnHtp.so`, `QnnHtp.dll` on Windows), found by the loader's search path.
pub fn default_library_path() -> OsString {
    match std::env::var_os(LIBRARY_ENV) {
        Some(path) if !path.is_empty() => path,
        _ => OsString::from(if cfg!(windows) {
            "QnnHtp.dll"
        } else {
            "libQnnHtp.so"
        }),
    }
}

/// One provider seen while looking for a compatible one, kept for the error message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Backend identifier reported by the provider.
    pub backend_id: u32,
    /// Provider name, if any.
    pub name: Option<String>,
    /// Core API version reported by the provider.
    pub core_api_version: Qnn_Version_t,
}

/// Why a QNN library could not be used. Every variant's message starts with `unavailable:`.
#[derive(Debug)]
pub enum QnnLoadError {
    /// The shared library could not be opened (missing file, missing dependency, wrong arch).
    LibraryNotFound {
        /// What was opened.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// The library does not export `QnnInterface_getProviders` (not a QNN backend).
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The missing symbol.
        symbol: &'static str,
        /// The loader's message.
        reason: String,
    },
    /// `QnnInterface_getProviders` returned an error.
    ProviderQueryFailed {
        /// The library.
        path: PathBuf,
        /// The returned error handle.
        code: Qnn_ErrorHandle_t,
    },
    /// The library reported no providers.
    NoProviders {
        /// The library.
        path: PathBuf,
    },
    /// No provider reports a core API version usable with the pinned table.
    IncompatibleVersion {
        /// The library.
        path: PathBuf,
        /// Every provider seen, with the reason it was refused.
        providers: Vec<(ProviderInfo, VersionMismatch)>,
    },
}

impl fmt::Display for QnnLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QnnLoadError::LibraryNotFound { path, reason } => write!(
                f,
                "unavailable: cannot open QNN library {} ({reason}); set {LIBRARY_ENV} to its path",
                path.display()
            ),
            QnnLoadError::MissingSymbol { path, symbol, reason } => write!(
                f,
                "unavailable: {} is not a QNN backend library: symbol {symbol} not found ({reason})",
                path.display()
            ),
            QnnLoadError::ProviderQueryFailed { path, code } => write!(
                f,
                "unavailable: QnnInterface_getProviders in {} failed with error {} ({})",
                path.display(),
                error_code(*code),
                error_name(*code).unwrap_or("unknown code")
            ),
            QnnLoadError::NoProviders { path } => {
                write!(f, "unavailable: {} reports no QNN interface providers", path.display())
            }
            QnnLoadError::IncompatibleVersion { path, providers } => {
                let p = PINNED_API_VERSION;
                write!(
                    f,
                    "unavailable: no provider in {} matches the pinned QNN API {}.{}.{} (SDK {}):",
                    path.display(),
                    p.major,
                    p.minor,
                    p.patch,
                    crate::version::PINNED_SDK_VERSION
                )?;
                for (info, why) in providers {
                    let v = info.core_api_version;
                    write!(
                        f,
                        " [backend {} {:?} reports {}.{}.{}: {why}]",
                        info.backend_id,
                        info.name.as_deref().unwrap_or("(unnamed)"),
                        v.major,
                        v.minor,
                        v.patch
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for QnnLoadError {}

/// An opened QNN backend library and its chosen interface provider.
///
/// The provider struct and its function table live inside the library's memory, so they are only
/// reachable through `&self`: the borrow checker keeps every use inside the library's lifetime.
/// Calling a table entry is still `unsafe` (it is foreign code with C preconditions).
pub struct QnnLibrary {
    /// Points into `_library`'s memory; valid while `_library` is loaded.
    provider: *const QnnInterface_t,
    path: PathBuf,
    /// Declared last so it is dropped (unloaded) after everything else.
    _library: libloading::Library,
}

// SAFETY: the provider struct is immutable data owned by the loaded library, and QNN documents its
// entry points as callable from any thread (per-handle synchronization is the caller's concern, as
// every call is `unsafe`). Sharing the read-only pointer across threads is therefore sound.
unsafe impl Send for QnnLibrary {}
// SAFETY: as for `Send`: `&QnnLibrary` only gives read access to immutable data.
unsafe impl Sync for QnnLibrary {}

impl fmt::Debug for QnnLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QnnLibrary")
            .field("path", &self.path)
            .field("backend_id", &self.backend_id())
            .field("provider_name", &self.provider_name())
            .field("api_version", &self.api_version())
            .finish()
    }
}

impl QnnLibrary {
    /// Opens the library at `path` (a bare file name goes through the loader's search path),
    /// queries its providers and keeps the first one compatible with the pinned API version
    /// (see [`crate::version::check_core_api_version`]).
    pub fn load(path: impl AsRef<Path>) -> Result<QnnLibrary, QnnLoadError> {
        let path = path.as_ref().to_path_buf();
        // SAFETY: opening a shared library runs its initialisers. That is inherent to using a
        // vendor runtime; the path is chosen by the operator (argument or WISP_QNN_LIB).
        let library = unsafe { libloading::Library::new(&path) }.map_err(|e| {
            QnnLoadError::LibraryNotFound {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;

        // SAFETY: the symbol type is the documented signature of QnnInterface_getProviders.
        let get_providers: QnnInterface_getProvidersFn_t = unsafe {
            library.get::<QnnInterface_getProvidersFn_t>(PROVIDER_SYMBOL.to_bytes_with_nul())
        }
        .map(|symbol| *symbol)
        .map_err(|e| QnnLoadError::MissingSymbol {
            path: path.clone(),
            symbol: QNN_INTERFACE_GET_PROVIDERS_SYMBOL,
            reason: e.to_string(),
        })?;

        let mut list: *mut *const QnnInterface_t = core::ptr::null_mut();
        let mut count: u32 = 0;
        // SAFETY: both out-pointers are valid for writes; the library stays loaded while we read.
        let code = unsafe { get_providers(&mut list, &mut count) };
        if error_code(code) != QNN_SUCCESS {
            return Err(QnnLoadError::ProviderQueryFailed { path, code });
        }
        if list.is_null() || count == 0 {
            return Err(QnnLoadError::NoProviders { path });
        }

        let mut refused = Vec::new();
        for index in 0..count as usize {
            // SAFETY: the library returned an array of `count` provider pointers.
            let provider = unsafe { *list.add(index) };
            if provider.is_null() {
                continue;
            }
            // SAFETY: non-null provider pointers point at provider structs inside the library.
            let info = unsafe { provider_info(provider) };
            match check_core_api_version(info.core_api_version) {
                Ok(()) => {
                    return Ok(QnnLibrary {
                        provider,
                        path,
                        _library: library,
                    })
                }
                Err(why) => refused.push((info, why)),
            }
        }
        if refused.is_empty() {
            return Err(QnnLoadError::NoProviders { path });
        }
        Err(QnnLoadError::IncompatibleVersion {
            path,
            providers: refused,
        })
    }

    /// Opens [`default_library_path`]: `$WISP_QNN_LIB`, else `libQnnHtp.so`.
    pub fn load_default() -> Result<QnnLibrary, QnnLoadError> {
        QnnLibrary::load(default_library_path())
    }

    /// The chosen provider's function table. Entries may be `None` (not implemented by the
    /// backend); calling one is `unsafe` and must follow the QNN API's C contract.
    pub fn functions(&self) -> &QnnInterface_ImplementationV2_7_t {
        // SAFETY: `provider` is valid while the library is loaded, which `&self` guarantees, and
        // its version was checked to carry the API 2.7 table in the union.
        unsafe { &(*self.provider).u.v2_7 }
    }

    /// The raw provider struct, e.g. for diagnostics.
    pub fn provider(&self) -> &QnnInterface_t {
        // SAFETY: valid while the library is loaded, which `&self` guarantees.
        unsafe { &*self.provider }
    }

    /// Backend identifier reported by the provider ([`crate::common::QNN_BACKEND_ID_HTP`] = 6).
    pub fn backend_id(&self) -> u32 {
        self.provider().backendId
    }

    /// Provider name, if the provider reports one.
    pub fn provider_name(&self) -> Option<String> {
        let name = self.provider().providerName;
        // SAFETY: a non-null provider name is a NUL-terminated string owned by the library.
        (!name.is_null()).then(|| {
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        })
    }

    /// API versions reported by the provider.
    pub fn api_version(&self) -> Qnn_ApiVersion_t {
        self.provider().apiVersion
    }

    /// The path the library was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the identifying fields of a provider.
///
/// # Safety
/// `provider` must point at a live `QnnInterface_t`.
unsafe fn provider_info(provider: *const QnnInterface_t) -> ProviderInfo {
    // SAFETY: guaranteed by the caller.
    let p = unsafe { &*provider };
    let name = (!p.providerName.is_null())
        // SAFETY: a non-null provider name is a NUL-terminated string owned by the library.
        .then(|| {
            unsafe { CStr::from_ptr(p.providerName) }
                .to_string_lossy()
                .into_owned()
        });
    ProviderInfo {
        backend_id: p.backendId,
        name,
        core_api_version: p.apiVersion.coreApiVersion,
    }
}
