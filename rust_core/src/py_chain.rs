//! Fast path of `verify_chain` for the common input: a list of `(str, str | bytes, str)`
//! tuples. The records are read in one pass over the list through the C API (a private
//! shallow copy of the list keeps every tuple alive; the strings' UTF-8 buffers are
//! borrowed, never copied), then hashed with the GIL released and no Python object
//! touched. Any other shape goes through the generic path, which names the bad record.

use pyo3::ffi;
use pyo3::prelude::*;

use crate::audit;
use crate::py_input::run;

/// Borrowed UTF-8 (str) or raw (bytes) contents of `o`, or None for other types.
///
/// SAFETY: `o` must be a valid object; the GIL must be held; the returned slice lives as
/// long as `o` (CPython caches a str's UTF-8 form in the object).
unsafe fn contents<'a>(o: *mut ffi::PyObject, allow_bytes: bool) -> Option<&'a [u8]> {
    let mut n: ffi::Py_ssize_t = 0;
    if ffi::PyUnicode_Check(o) != 0 {
        let p = ffi::PyUnicode_AsUTF8AndSize(o, &mut n);
        if p.is_null() {
            ffi::PyErr_Clear(); // e.g. lone surrogates: the generic path reports it
            return None;
        }
        return Some(std::slice::from_raw_parts(p.cast::<u8>(), n as usize));
    }
    if allow_bytes && ffi::PyBytes_Check(o) != 0 {
        let p = ffi::PyBytes_AsString(o);
        n = ffi::PyBytes_Size(o);
        if p.is_null() || n < 0 {
            ffi::PyErr_Clear();
            return None;
        }
        return Some(std::slice::from_raw_parts(p.cast::<u8>(), n as usize));
    }
    None
}

/// A private shallow copy of the records list (it owns a reference to every record, and
/// nobody else can mutate it), released with the GIL on drop.
struct Held(*mut ffi::PyObject);

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: we own this reference; `verify_list` holds the GIL while dropping.
        unsafe { ffi::Py_DECREF(self.0) };
    }
}

struct View<'a>(Vec<(&'a str, &'a [u8], &'a str)>);
// SAFETY: the slices point into immutable str/bytes objects kept alive by `Held` (and the
// tuples it owns) for
// the whole (GIL-released) verification; nothing mutates them meanwhile.
unsafe impl Send for View<'_> {}
unsafe impl Sync for View<'_> {}

/// `Some(result)` when `records` is a list of well-formed record tuples, else `None`.
pub fn verify_list(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    genesis: &str,
) -> Option<PyResult<Option<usize>>> {
    let list = records.as_ptr();
    // SAFETY: GIL held (we have `py`); every object pointer below comes from the list or
    // its tuples, which are checked before use and kept alive by `held`.
    unsafe {
        if ffi::PyList_Check(list) == 0 {
            return None;
        }
        let n = ffi::PyList_Size(list);
        if n < 0 {
            ffi::PyErr_Clear();
            return None;
        }
        let copy = ffi::PyList_GetSlice(list, 0, n);
        if copy.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let held = Held(copy);
        let mut view = Vec::with_capacity(n as usize);
        for i in 0..n {
            let t = ffi::PyList_GetItem(held.0, i);
            if t.is_null() || ffi::PyTuple_Check(t) == 0 || ffi::PyTuple_Size(t) != 3 {
                ffi::PyErr_Clear();
                return None;
            }
            let prev = contents(ffi::PyTuple_GetItem(t, 0), false)?;
            let payload = contents(ffi::PyTuple_GetItem(t, 1), true)?;
            let hash = contents(ffi::PyTuple_GetItem(t, 2), false)?;
            // str contents are UTF-8 by construction
            view.push((
                std::str::from_utf8_unchecked(prev),
                payload,
                std::str::from_utf8_unchecked(hash),
            ));
        }
        let view = View(view);
        let out = run(py, || audit::verify_chain_ref(&view.0, genesis));
        drop(held);
        Some(out)
    }
}
