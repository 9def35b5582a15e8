//! Copying client C structs (`Qnn_Tensor_t`, `Qnn_Param_t`, `Qnn_OpConfig_t`) into the emulator's
//! model types, with the checks `tensorCreateGraphTensor` and `graphAddNode` make on them.
//!
//! This is the only module that dereferences client pointers. Each read is guarded by the null
//! and length checks QNN's contract allows the emulator to make; beyond that the emulator has to
//! trust the client, exactly as the real library does.

use core::ffi::{c_char, CStr};

use wisp_qnn_sys::*;

use crate::model::{fail, ParamValue, Res, TensorDesc};
use crate::numeric::{Encoding, Quant};

/// Reads a NUL-terminated string; `None` for NULL.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
pub unsafe fn read_str(p: *const c_char) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// What a `Qnn_Tensor_t` says, before the emulator assigns it an id.
#[derive(Clone, Debug)]
pub struct TensorView {
    /// Id in the struct (meaningful when referring to an existing tensor).
    pub id: u32,
    /// Name, if set.
    pub name: Option<String>,
    /// Tensor type.
    pub ty: Qnn_TensorType_t,
    /// Data format.
    pub data_format: u32,
    /// Type and quantization.
    pub enc: Encoding,
    /// Dimensions.
    pub dims: Vec<u32>,
    /// Memory type.
    pub mem_type: Qnn_TensorMemType_t,
    /// `clientBuf.data` (RAW only).
    pub data: *mut core::ffi::c_void,
    /// `clientBuf.dataSize` (RAW only).
    pub data_size: u32,
}

/// Reads a tensor struct. Fails with `bad` (the caller's error code) on malformed fields.
///
/// # Safety
/// `t` must be NULL or point to a `Qnn_Tensor_t` whose pointers follow the QNN contract.
pub unsafe fn read_tensor(t: *const Qnn_Tensor_t, bad: u64) -> Res<TensorView> {
    if t.is_null() {
        return fail(bad, "tensor pointer is NULL");
    }
    // SAFETY: non-null, per the caller's contract.
    let t = unsafe { &*t };
    if t.version != QNN_TENSOR_VERSION_1 {
        return fail(
            bad,
            format!(
                "tensor version {} unsupported (only v1 exists in API 2.7)",
                t.version
            ),
        );
    }
    // SAFETY: version 1 selects `v1`.
    let v = unsafe { t.u.v1 };
    // SAFETY: a tensor's name is NULL or a C string.
    let name = unsafe { read_str(v.name) };
    if v.rank > 0 && v.dimensions.is_null() {
        return fail(bad, "rank > 0 but dimensions is NULL");
    }
    let dims = if v.rank == 0 {
        Vec::new()
    } else {
        // SAFETY: `dimensions` holds `rank` entries per the contract.
        unsafe { core::slice::from_raw_parts(v.dimensions, v.rank as usize) }.to_vec()
    };
    let quant = if is_fixed_point(v.dataType) {
        // SAFETY: the quantize params are part of the struct; pointers inside follow the contract.
        unsafe { read_quant(&v.quantizeParams, v.dataType, &dims, bad)? }
    } else {
        Quant::None
    };
    let (data, data_size) = if v.memType == QNN_TENSORMEMTYPE_RAW {
        // SAFETY: RAW selects `clientBuf`.
        let buf = unsafe { v.data.clientBuf };
        (buf.data, buf.dataSize)
    } else {
        (core::ptr::null_mut(), 0)
    };
    Ok(TensorView {
        id: v.id,
        name,
        ty: v.type_,
        data_format: v.dataFormat,
        enc: Encoding {
            dtype: v.dataType,
            quant,
        },
        dims,
        mem_type: v.memType,
        data,
        data_size,
    })
}

/// Reads and validates quantization params of a fixed-point tensor.
///
/// # Safety
/// Pointers inside `q` must follow the QNN contract for the selected encoding.
unsafe fn read_quant(
    q: &Qnn_QuantizeParams_t,
    dtype: Qnn_DataType_t,
    dims: &[u32],
    bad: u64,
) -> Res<Quant> {
    let full_bits = data_type_size(dtype).unwrap_or(4) as u32 * 8;
    if q.encodingDefinition != QNN_DEFINITION_DEFINED {
        return fail(
            bad,
            "fixed-point tensor without DEFINED quantization parameters",
        );
    }
    let check_scale = |s: f32| {
        if s.is_finite() && s > 0.0 {
            Ok(())
        } else {
            fail(bad, format!("quantization scale {s} must be > 0"))
        }
    };
    let check_axis = |axis: i32, n: u32| -> Res<usize> {
        if axis < 0 || axis as usize >= dims.len() {
            return fail(
                bad,
                format!(
                    "quantization axis {axis} out of range for rank {}",
                    dims.len()
                ),
            );
        }
        if dims[axis as usize] != n {
            return fail(
                bad,
                format!(
                    "{n} per-channel encodings for axis of size {}",
                    dims[axis as usize]
                ),
            );
        }
        Ok(axis as usize)
    };
    let check_bits = |b: u32| {
        if b == 0 || b > full_bits {
            fail(
                bad,
                format!("bitwidth {b} invalid for a {full_bits}-bit type"),
            )
        } else {
            Ok(b)
        }
    };
    match q.quantizationEncoding {
        QNN_QUANTIZATION_ENCODING_SCALE_OFFSET => {
            // SAFETY: the encoding selects this member.
            let so = unsafe { q.encoding.scaleOffsetEncoding };
            check_scale(so.scale)?;
            Ok(Quant::PerTensor {
                scale: so.scale,
                offset: so.offset,
                bits: full_bits,
            })
        }
        QNN_QUANTIZATION_ENCODING_BW_SCALE_OFFSET => {
            // SAFETY: the encoding selects this member.
            let so = unsafe { q.encoding.bwScaleOffsetEncoding };
            check_scale(so.scale)?;
            Ok(Quant::PerTensor {
                scale: so.scale,
                offset: so.offset,
                bits: check_bits(so.bitwidth)?,
            })
        }
        QNN_QUANTIZATION_ENCODING_AXIS_SCALE_OFFSET => {
            // SAFETY: the encoding selects this member.
            let a = unsafe { q.encoding.axisScaleOffsetEncoding };
            let axis = check_axis(a.axis, a.numScaleOffsets)?;
            if a.scaleOffset.is_null() {
                return fail(bad, "axis-scale-offset encoding with NULL scaleOffset");
            }
            // SAFETY: `scaleOffset` holds `numScaleOffsets` entries per the contract.
            let list =
                unsafe { core::slice::from_raw_parts(a.scaleOffset, a.numScaleOffsets as usize) };
            let mut params = Vec::with_capacity(list.len());
            for so in list {
                check_scale(so.scale)?;
                params.push((so.scale, so.offset));
            }
            Ok(Quant::PerAxis {
                axis,
                params,
                bits: full_bits,
            })
        }
        QNN_QUANTIZATION_ENCODING_BW_AXIS_SCALE_OFFSET => {
            // SAFETY: the encoding selects this member.
            let a = unsafe { q.encoding.bwAxisScaleOffsetEncoding };
            let axis = check_axis(a.axis, a.numElements)?;
            if a.scales.is_null() {
                return fail(bad, "bw-axis-scale-offset encoding with NULL scales");
            }
            // SAFETY: `scales` (and `offsets` when non-null) hold `numElements` entries.
            let scales = unsafe { core::slice::from_raw_parts(a.scales, a.numElements as usize) };
            let offsets = (!a.offsets.is_null())
                // SAFETY: as above.
                .then(|| unsafe { core::slice::from_raw_parts(a.offsets, a.numElements as usize) });
            let mut params = Vec::with_capacity(scales.len());
            for (i, &s) in scales.iter().enumerate() {
                check_scale(s)?;
                params.push((s, offsets.map_or(0, |o| o[i])));
            }
            Ok(Quant::PerAxis {
                axis,
                params,
                bits: check_bits(a.bitwidth)?,
            })
        }
        other => fail(bad, format!("quantization encoding {other} unsupported")),
    }
}

/// Reads one `Qnn_Param_t`; tensor params are resolved by `lookup` (id → STATIC tensor).
///
/// # Safety
/// `p` must point to a `Qnn_Param_t` following the QNN contract.
pub unsafe fn read_param(
    p: &Qnn_Param_t,
    lookup: &dyn Fn(&TensorView) -> Res<TensorDesc>,
) -> Res<(String, ParamValue)> {
    // SAFETY: a param name is NULL or a C string.
    let Some(name) = (unsafe { read_str(p.name) }) else {
        return fail(QNN_GRAPH_ERROR_INVALID_OP_CONFIG, "param with NULL name");
    };
    match p.paramType {
        QNN_PARAMTYPE_SCALAR => {
            // SAFETY: SCALAR selects `scalarParam`.
            let s = unsafe { p.value.scalarParam };
            let bits = match data_type_size(s.dataType) {
                // SAFETY: every union member is plain data of at most 4 bytes; read by width.
                Some(1) => (unsafe { s.value.uint8Value }) as u32,
                // SAFETY: as above.
                Some(2) => (unsafe { s.value.uint16Value }) as u32,
                // SAFETY: as above.
                Some(4) => unsafe { s.value.uint32Value },
                _ => {
                    return fail(
                        QNN_GRAPH_ERROR_INVALID_OP_CONFIG,
                        format!("param {name}: scalar type {:#x} unsupported", s.dataType),
                    )
                }
            };
            Ok((
                name,
                ParamValue::Scalar {
                    dtype: s.dataType,
                    bits,
                },
            ))
        }
        QNN_PARAMTYPE_TENSOR => {
            // SAFETY: TENSOR selects `tensorParam`; `read_tensor` checks its fields.
            let view =
                unsafe { read_tensor(&p.value.tensorParam, QNN_GRAPH_ERROR_INVALID_OP_CONFIG)? };
            Ok((name, ParamValue::Tensor(lookup(&view)?)))
        }
        other => fail(
            QNN_GRAPH_ERROR_INVALID_OP_CONFIG,
            format!("param {name}: param type {other} invalid"),
        ),
    }
}
