//! Bindings of manifest validation and the audit chain.

use crate::py_input::{run, verr};
use crate::{audit, manifest};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

pub type ViolationTuple = (
    &'static str,
    &'static str,
    usize,
    String,
    String,
    String,
    String,
    String,
);

#[pyfunction]
#[pyo3(signature = (yaml_text, required_labels = Vec::new(), rules = None))]
pub fn validate_manifests(
    py: Python<'_>,
    yaml_text: &str,
    required_labels: Vec<String>,
    rules: Option<Vec<String>>,
) -> PyResult<Vec<ViolationTuple>> {
    let mask = manifest::resolve_rules(rules.as_deref()).map_err(|e| verr("rules", e))?;
    let vs = run(py, || manifest::validate(yaml_text, &required_labels, mask))?;
    Ok(vs
        .into_iter()
        .map(|v| {
            (
                v.rule_id,
                v.rule,
                v.document,
                v.kind,
                v.name,
                v.namespace,
                v.path,
                v.message,
            )
        })
        .collect())
}

pub fn payload_bytes(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(buf) = PyBuffer::<u8>::get(obj) {
        return buf.to_vec(obj.py());
    }
    Err(PyTypeError::new_err(format!(
        "{name}: expected bytes or str, got {}",
        obj.get_type().name()?
    )))
}

#[pyfunction]
pub fn chain_hash(prev_hash: &Bound<'_, PyAny>, payload: &Bound<'_, PyAny>) -> PyResult<String> {
    let prev: String = prev_hash
        .extract()
        .map_err(|_| PyTypeError::new_err("prev_hash: expected str"))?;
    let p = payload_bytes(payload, "payload")?;
    Ok(audit::chain_hash(&prev, &p))
}

/// Borrowed bytes of a str (UTF-8) or bytes payload; other buffers are copied.
pub enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(v) => v,
        }
    }
}

pub fn payload_ref<'a>(
    obj: &'a Bound<'_, PyAny>,
    name: impl Fn() -> String,
) -> PyResult<Payload<'a>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Payload::Borrowed(s.to_str()?.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Payload::Borrowed(b.as_bytes()));
    }
    payload_bytes(obj, &name()).map(Payload::Owned)
}

/// Borrowed str; the argument name is only formatted on error.
pub fn str_ref<'a>(obj: &'a Bound<'_, PyAny>, name: impl Fn() -> String) -> PyResult<&'a str> {
    obj.cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{}: expected str", name())))?
        .to_str()
}

#[pyfunction]
#[pyo3(signature = (records, genesis = "0000000000000000000000000000000000000000000000000000000000000000"))]
pub fn verify_chain(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    genesis: &str,
) -> PyResult<Option<usize>> {
    if let Some(out) = crate::py_chain::verify_list(py, records, genesis) {
        return out;
    }
    // keep the items alive, then borrow their strings/bytes without copying
    let mut items: Vec<[Bound<'_, PyAny>; 3]> = Vec::with_capacity(records.len().unwrap_or(0));
    for (i, item) in records.try_iter()?.enumerate() {
        let item = item?;
        let bad = || {
            PyTypeError::new_err(format!(
                "records[{i}]: expected a (prev_hash, payload, hash) tuple"
            ))
        };
        if item.is_instance_of::<PyString>() || item.is_instance_of::<PyBytes>() {
            return Err(bad());
        }
        if let Ok(t) = item.cast::<PyTuple>() {
            if t.len() != 3 {
                return Err(bad());
            }
            items.push([t.get_item(0)?, t.get_item(1)?, t.get_item(2)?]);
            continue;
        }
        let n = item.len().map_err(|_| bad())?;
        if n != 3 {
            return Err(bad());
        }
        items.push([item.get_item(0)?, item.get_item(1)?, item.get_item(2)?]);
    }
    let mut recs: Vec<(&str, Payload<'_>, &str)> = Vec::with_capacity(items.len());
    for (i, [p, payload, h]) in items.iter().enumerate() {
        recs.push((
            str_ref(p, || format!("records[{i}][0]"))?,
            payload_ref(payload, || format!("records[{i}][1]"))?,
            str_ref(h, || format!("records[{i}][2]"))?,
        ));
    }
    let view: Vec<(&str, &[u8], &str)> = recs.iter().map(|(p, b, h)| (*p, b.bytes(), *h)).collect();
    run(py, || audit::verify_chain_ref(&view, genesis))
}
