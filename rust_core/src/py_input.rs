//! Binding helpers: argument errors, GIL release with panic capture, zero-copy float input.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub fn verr(name: &str, msg: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{name}: {msg}"))
}

/// Run `f` without the GIL; a panic becomes a RuntimeError instead of crossing over.
pub fn run<T: Send, F: FnOnce() -> T + Send>(py: Python<'_>, f: F) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|_| PyRuntimeError::new_err("rust_core: internal error (panic caught)"))
}

/// Float data either borrowed from a Python buffer or converted into a Vec.
pub enum Data {
    Buffer(PyBuffer<f64>),
    Owned(Vec<f64>),
}

impl Data {
    pub fn slice(&self) -> &[f64] {
        match self {
            Data::Owned(v) => v,
            Data::Buffer(b) => {
                if b.item_count() == 0 {
                    &[]
                } else {
                    // SAFETY: C-contiguous, aligned, float64 format and item count were
                    // checked in `data`; the buffer keeps the exporter alive while borrowed.
                    unsafe { std::slice::from_raw_parts(b.buf_ptr() as *const f64, b.item_count()) }
                }
            }
        }
    }
}

pub fn data(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Data> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected a sequence of numbers or a float64 buffer, got {}",
            obj.get_type().name()?
        )));
    }
    if let Ok(buf) = PyBuffer::<f64>::get(obj) {
        let aligned = (buf.buf_ptr() as usize).is_multiple_of(std::mem::align_of::<f64>());
        if buf.is_c_contiguous() && aligned {
            return Ok(Data::Buffer(buf));
        }
    }
    obj.extract::<Vec<f64>>().map(Data::Owned).map_err(|e| {
        PyTypeError::new_err(format!(
            "{name}: expected a sequence of numbers or a float64 buffer ({e})"
        ))
    })
}

pub fn check_finite_nonempty(v: &[f64], name: &str) -> PyResult<()> {
    if v.is_empty() {
        return Err(verr(name, "must not be empty"));
    }
    check_no_nan(v, name)
}

pub fn check_no_nan(v: &[f64], name: &str) -> PyResult<()> {
    if let Some(i) = v.iter().position(|x| x.is_nan()) {
        return Err(verr(name, format!("contains NaN at index {i}")));
    }
    Ok(())
}

pub fn check_confidence(c: f64) -> PyResult<()> {
    if !(c > 0.0 && c < 1.0) {
        return Err(verr("confidence", format!("must be in (0, 1), got {c}")));
    }
    Ok(())
}
