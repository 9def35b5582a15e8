//! **TEST DOUBLE** of Qualcomm's QNN HTP backend library (`libQnnHtp.so`), for CI machines that
//! have neither a Snapdragon NPU nor the licence-gated QNN SDK.
//!
//! It is a `cdylib` exporting the same single symbol a real backend exports,
//! `QnnInterface_getProviders`, with the ABI that [`wisp_qnn_sys`] pins (SDK 2.13, core API
//! 2.7.2, backend id 6 = HTP). Wisp's QNN backend therefore loads it through exactly the code path
//! it uses for the vendor library (`wisp_qnn_sys::QnnLibrary::load`), and everything above the
//! `dlopen` — graph construction, quantization parameters, caching, error mapping, CPU fallback —
//! can be tested without hardware. It is **not** a performance or bit-exactness model of the HTP:
//! it interprets graphs with plain `f32` reference arithmetic, rounding every tensor through its
//! declared type (fixed point or fp16) between ops.
//!
//! What it implements, with the error codes the headers document:
//! - `logCreate` / `logSetLogLevel` / `logFree`, `backendCreate` / `backendFree`,
//!   `backendGetApiVersion`, `backendGetBuildId`, `backendGetSupportedOperations`,
//!   `backendValidateOpConfig`;
//! - `contextCreate` / `contextFree`, `contextGetBinarySize` / `contextGetBinary` /
//!   `contextCreateFromBinary` (format in [`binary`]);
//! - `graphCreate`, `tensorCreateGraphTensor` (ids written back, names unique per context, static
//!   non-zero shapes), `graphAddNode` (checks in [`validate`]), `graphFinalize` (required before
//!   execute), `graphRetrieve`, `graphExecute` (interpreter in [`interp`]).
//!
//! Test hooks, all read from the environment at each call:
//! - `WISP_QNN_EMU_FAIL`: fault injection, syntax in [`faults`];
//! - `WISP_QNN_EMU_TRACE`: JSON-lines call trace, format in [`trace`];
//! - `WISP_QNN_EMU_API_VERSION`: report another core API version, see [`provider`].
//!
//! To load it, find the built library with [`locate_cdylib`].

#![warn(missing_docs)]

pub mod api;
pub mod binary;
pub mod faults;
pub mod ffi_read;
pub mod interp;
pub mod model;
pub mod numeric;
pub mod provider;
pub mod state;
pub mod trace;
pub mod validate;

use std::path::PathBuf;

/// Returned by `backendGetBuildId`; says plainly that this is not the vendor library.
pub static BUILD_ID: &core::ffi::CStr = c"wisp-qnn-emulator (test double, QNN API 2.7.2)";

/// Environment variable that overrides where [`locate_cdylib`] looks.
pub const LIB_ENV: &str = "WISP_QNN_EMU_LIB";

/// The platform file name of the emulator cdylib, e.g. `libwisp_qnn_emulator.so`.
pub fn cdylib_file_name() -> String {
    format!(
        "{}wisp_qnn_emulator{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Finds the built emulator library for a test to `dlopen`.
///
/// Order: `$WISP_QNN_EMU_LIB` if set; else next to the running executable, then in its parent
/// directory. That covers Cargo's layout: integration-test binaries run from `target/<profile>/deps/`,
/// where Cargo also writes `libwisp_qnn_emulator.so` when it builds this crate's `cdylib` (any
/// test that depends on this crate causes that build), and the same file is linked up into
/// `target/<profile>/`. Returns `None` if no file exists in those places.
pub fn locate_cdylib() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(LIB_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let name = cdylib_file_name();
    [Some(dir.join(&name)), dir.parent().map(|p| p.join(&name))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}
