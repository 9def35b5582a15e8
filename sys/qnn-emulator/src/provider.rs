//! The exported `QnnInterface_getProviders` and the provider struct it returns: backend id 6
//! (HTP), the pinned API version, and a function table of the pinned generation pointing at
//! [`crate::api`].
//!
//! Entries the emulator does not implement (profiling, devices, shared memory, signals, async
//! execute, context tensors, set-config calls, property queries) are NULL, which the header allows
//! and which exercises the backend's "entry missing" handling.
//!
//! For testing version checks, `WISP_QNN_EMU_API_VERSION=MAJOR.MINOR.PATCH` makes the provider
//! report another core API version (the table is unchanged, so only use it to test refusal).

use core::ffi::c_char;
use std::sync::Mutex;

use wisp_qnn_sys::*;

use crate::api::*;

/// Environment variable overriding the reported core API version.
pub const API_VERSION_ENV: &str = "WISP_QNN_EMU_API_VERSION";

/// Provider name reported in the struct.
pub const PROVIDER_NAME: &core::ffi::CStr = c"wisp_qnn_emulator_htp (TEST DOUBLE)";

/// The function table: the API 2.7 generation, in header order.
const TABLE: QnnInterface_ImplementationV2_7_t = QnnInterface_ImplementationV2_7_t {
    propertyHasCapability: None,
    backendCreate: Some(backend_create),
    backendGetApiVersion: Some(backend_get_api_version),
    backendGetBuildId: Some(backend_get_build_id),
    backendRegisterOpPackage: None,
    backendGetSupportedOperations: Some(backend_get_supported_operations),
    backendValidateOpConfig: Some(backend_validate_op_config),
    backendFree: Some(backend_free),
    contextCreate: Some(context_create),
    contextSetConfig: None,
    contextGetBinarySize: Some(context_get_binary_size),
    contextGetBinary: Some(context_get_binary),
    contextCreateFromBinary: Some(context_create_from_binary),
    contextFree: Some(context_free),
    graphCreate: Some(graph_create),
    graphSetConfig: None,
    graphAddNode: Some(graph_add_node),
    graphFinalize: Some(graph_finalize),
    graphRetrieve: Some(graph_retrieve),
    graphExecute: Some(graph_execute),
    graphExecuteAsync: None,
    tensorCreateContextTensor: None,
    tensorCreateGraphTensor: Some(tensor_create_graph_tensor),
    logCreate: Some(log_create),
    logSetLogLevel: Some(log_set_log_level),
    logFree: Some(log_free),
    profileCreate: None,
    profileGetEvents: None,
    profileGetSubEvents: None,
    profileGetEventData: None,
    profileFree: None,
    memRegister: None,
    memDeRegister: None,
    deviceGetPlatformInfo: None,
    deviceFreePlatformInfo: None,
    deviceGetInfrastructure: None,
    deviceCreate: None,
    deviceSetConfig: None,
    deviceGetInfo: None,
    deviceFree: None,
    signalCreate: None,
    signalSetConfig: None,
    signalTrigger: None,
    signalFree: None,
};

/// The core API version to report: the pinned one unless overridden for a test.
pub fn reported_api_version() -> Qnn_ApiVersion_t {
    let core = std::env::var(API_VERSION_ENV)
        .ok()
        .and_then(|s| {
            let mut it = s.trim().split('.').map(|p| p.parse::<u32>().ok());
            let v = Qnn_Version_t {
                major: it.next()??,
                minor: it.next()??,
                patch: it.next().flatten().unwrap_or(0),
            };
            Some(v)
        })
        .unwrap_or(PINNED_API_VERSION);
    // The emulator has no backend-specific API, so that version is 0.0.0.
    Qnn_ApiVersion_t {
        coreApiVersion: core,
        backendApiVersion: Qnn_Version_t::default(),
    }
}

/// A leaked provider and the one-element list pointing at it; both live for the process.
struct Published {
    version: Qnn_ApiVersion_t,
    list: *mut *const QnnInterface_t,
}

// SAFETY: the pointed-to data is leaked, never mutated after creation, and only read by clients.
unsafe impl Send for Published {}

static PUBLISHED: Mutex<Vec<Published>> = Mutex::new(Vec::new());

/// The provider list for the current reported version, created once per distinct version.
fn provider_list() -> *mut *const QnnInterface_t {
    let version = reported_api_version();
    let mut published = PUBLISHED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = published.iter().find(|p| p.version == version) {
        return p.list;
    }
    let provider: &'static QnnInterface_t = Box::leak(Box::new(QnnInterface_t {
        backendId: QNN_BACKEND_ID_HTP,
        providerName: PROVIDER_NAME.as_ptr() as *const c_char,
        apiVersion: version,
        u: QnnInterface_Versions_t { v2_7: TABLE },
    }));
    let list: &'static mut [*const QnnInterface_t; 1] = Box::leak(Box::new([provider as *const _]));
    let list = list.as_mut_ptr();
    published.push(Published { version, list });
    list
}

/// The one exported symbol, as in every QNN backend library.
///
/// # Safety
/// Both pointers must be NULL (rejected with `QNN_INTERFACE_ERROR_INVALID_PARAMETER`) or valid
/// for writes.
#[no_mangle]
pub unsafe extern "C" fn QnnInterface_getProviders(
    provider_list_out: *mut *mut *const QnnInterface_t,
    num_providers: *mut u32,
) -> Qnn_ErrorHandle_t {
    crate::api::traced_get_providers(|| {
        if provider_list_out.is_null() || num_providers.is_null() {
            return Err(QNN_INTERFACE_ERROR_INVALID_PARAMETER);
        }
        let list = provider_list();
        // SAFETY: both checked non-null; the list is leaked for the life of the process.
        unsafe {
            *provider_list_out = list;
            *num_providers = 1;
        }
        Ok(())
    })
}
