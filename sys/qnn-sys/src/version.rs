//! The pinned QNN API version and the rule for accepting a provider at load time.
//!
//! A QNN backend library reports `apiVersion.coreApiVersion` for each provider it exports. The
//! usual client rule (ONNX Runtime's QNN EP, most samples) is "same major, minor at least the one
//! compiled against". That rule assumes newer minors only append to the function table, which is
//! false for QNN: later SDKs insert entries mid-table. So on top of the usual rule this crate also
//! caps the minor at [`QNN_TABLE_LAST_VERIFIED_MINOR`], the newest minor whose published
//! `QnnInterface.h` has been checked to have the same table as the pinned one. Raising the cap is a
//! one-line change, but only after reading that SDK's header.

use crate::types::Qnn_Version_t;

/// Core API major version of the pinned headers (`QNN_API_VERSION_MAJOR`, SDK 2.13.0).
pub const QNN_API_VERSION_MAJOR: u32 = 2;
/// Core API minor version of the pinned headers (`QNN_API_VERSION_MINOR`, SDK 2.13.0).
pub const QNN_API_VERSION_MINOR: u32 = 7;
/// Core API patch version of the pinned headers (`QNN_API_VERSION_PATCH`, SDK 2.13.0).
pub const QNN_API_VERSION_PATCH: u32 = 2;

/// The QNN SDK release whose headers this crate transcribes. Informational: the SDK version is
/// not reported by the library, only the API version is.
pub const PINNED_SDK_VERSION: &str = "2.13.0";

/// The newest core API minor (with major [`QNN_API_VERSION_MAJOR`]) whose interface table is known
/// to have the pinned layout. Providers reporting a newer minor are refused rather than called
/// through a table whose order may differ.
pub const QNN_TABLE_LAST_VERIFIED_MINOR: u32 = 7;

/// The pinned core API version as a `Qnn_Version_t`, e.g. for an emulator to report.
pub const PINNED_API_VERSION: Qnn_Version_t = Qnn_Version_t {
    major: QNN_API_VERSION_MAJOR,
    minor: QNN_API_VERSION_MINOR,
    patch: QNN_API_VERSION_PATCH,
};

/// Why a provider's reported core API version cannot be used with this crate's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionMismatch {
    /// Different major version: a different API altogether.
    Major,
    /// Same major but an older minor than the pinned headers: entries we call may be missing.
    MinorTooOld,
    /// Same major, newer minor than any whose table layout has been verified to match.
    TableUnverified,
}

impl core::fmt::Display for VersionMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let v = PINNED_API_VERSION;
        match self {
            VersionMismatch::Major => write!(f, "major version differs from pinned {}", v.major),
            VersionMismatch::MinorTooOld => {
                write!(
                    f,
                    "minor version is older than pinned {}.{}",
                    v.major, v.minor
                )
            }
            VersionMismatch::TableUnverified => write!(
                f,
                "minor version is newer than {}.{}, the last whose function-table order was \
                 verified (QNN inserts entries mid-table across minors); re-pin wisp-qnn-sys to \
                 that SDK's headers",
                v.major, QNN_TABLE_LAST_VERIFIED_MINOR
            ),
        }
    }
}

/// Checks a provider's core API version against the pinned one: same major, minor at least the
/// pinned minor and at most [`QNN_TABLE_LAST_VERIFIED_MINOR`]. The patch level is ignored, as patch
/// releases do not change layouts.
pub fn check_core_api_version(found: Qnn_Version_t) -> Result<(), VersionMismatch> {
    if found.major != QNN_API_VERSION_MAJOR {
        Err(VersionMismatch::Major)
    } else if found.minor < QNN_API_VERSION_MINOR {
        Err(VersionMismatch::MinorTooOld)
    } else if found.minor > QNN_TABLE_LAST_VERIFIED_MINOR {
        Err(VersionMismatch::TableUnverified)
    } else {
        Ok(())
    }
}
