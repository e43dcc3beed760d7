//! `Histogram` Python class.

use crate::histogram;
use crate::py_input::{data, run, verr};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(module = "rust_core._native", name = "Histogram", skip_from_py_object)]
#[derive(Clone)]
pub struct PyHistogram {
    inner: histogram::Histogram,
}

pub fn hist_err(name: &str, e: histogram::HistError) -> PyErr {
    verr(name, e)
}

#[pymethods]
impl PyHistogram {
    #[new]
    #[pyo3(signature = (relative_error = 0.01))]
    fn new(relative_error: f64) -> PyResult<Self> {
        Ok(PyHistogram {
            inner: histogram::Histogram::new(relative_error)
                .map_err(|e| hist_err("relative_error", e))?,
        })
    }

    #[pyo3(signature = (value, count = 1))]
    fn record(&mut self, value: f64, count: u64) -> PyResult<()> {
        self.inner.record(value, count).map_err(|e| match e {
            histogram::HistError::BadValue(_, v) => {
                verr("value", format!("must be finite and >= 0 (got {v})"))
            }
            e => hist_err("value", e),
        })
    }

    fn record_many(&mut self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let d = data(values, "values")?;
        let s = d.slice();
        let inner = &mut self.inner;
        run(py, || inner.record_many(s))?.map_err(|e| hist_err("values", e))
    }

    fn merge(&mut self, other: PyRef<'_, PyHistogram>) -> PyResult<()> {
        let o = other.inner.clone();
        self.inner.merge(&o).map_err(|e| hist_err("other", e))
    }

    fn quantile(&self, q: f64) -> PyResult<f64> {
        if !(0.0..=1.0).contains(&q) {
            return Err(verr("q", format!("must be in [0, 1], got {q}")));
        }
        Ok(self.inner.quantile(q))
    }

    fn quantiles(&self, qs: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
        let d = data(qs, "qs")?;
        let s = d.slice();
        if let Some(bad) = s.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return Err(verr("qs", format!("must be in [0, 1], got {bad}")));
        }
        Ok(s.iter().map(|&q| self.inner.quantile(q)).collect())
    }

    #[getter]
    fn count(&self) -> u64 {
        self.inner.count()
    }
    #[getter]
    fn min(&self) -> f64 {
        self.inner.min()
    }
    #[getter]
    fn max(&self) -> f64 {
        self.inner.max()
    }
    #[getter]
    fn mean(&self) -> f64 {
        self.inner.mean()
    }
    #[getter]
    fn sum(&self) -> f64 {
        self.inner.sum()
    }
    #[getter]
    fn relative_error(&self) -> f64 {
        self.inner.relative_error()
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<PyHistogram> {
        histogram::Histogram::from_bytes(b)
            .map(|inner| PyHistogram { inner })
            .map_err(|e| hist_err("b", e))
    }

    fn copy(&self) -> PyHistogram {
        self.clone()
    }

    /// Pickle/copy support: rebuilt from `to_bytes()` by `Histogram.from_bytes`.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let ctor = py.get_type::<PyHistogram>().getattr("from_bytes")?;
        Ok((ctor, (self.to_bytes(py),)))
    }

    fn __len__(&self) -> usize {
        self.inner.count() as usize
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<PyHistogram>() {
            Ok(o) => self.inner.same(&o.borrow().inner),
            Err(_) => false,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Histogram(relative_error={}, count={}, min={}, max={})",
            self.inner.relative_error(),
            self.inner.count(),
            self.inner.min(),
            self.inner.max()
        )
    }
}
