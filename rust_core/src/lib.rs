//! `rust_core._native`: PyO3 bindings of the CODE verdict engine.
//!
//! Numeric inputs are read in place from any C-contiguous float64 buffer (numpy
//! arrays, `array('d')`, memoryviews) and converted otherwise (lists, other dtypes).
//! Heavy work runs with the GIL released and inside `catch_unwind`, so no panic
//! reaches Python; bad input raises ValueError/TypeError naming the argument.

pub mod audit;
pub mod histogram;
pub mod judge;
pub mod loadgen;
pub mod manifest;
pub mod numeric;
mod py_chain;
mod py_histogram;
mod py_input;
mod py_loadgen;
mod py_policy;
mod py_stats;
pub mod slo;
pub mod stats;
pub mod trend;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RULES", PyTuple::new(m.py(), manifest::RULES)?)?;
    m.add_function(wrap_pyfunction!(py_stats::version, m)?)?;
    m.add_function(wrap_pyfunction!(py_stats::percentiles, m)?)?;
    m.add_class::<py_histogram::PyHistogram>()?;
    m.add_class::<py_loadgen::PyLoadEngine>()?;
    m.add_function(wrap_pyfunction!(py_stats::mann_whitney_u, m)?)?;
    m.add_function(wrap_pyfunction!(py_stats::hodges_lehmann, m)?)?;
    m.add_function(wrap_pyfunction!(py_stats::judge_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(py_stats::burn_rates, m)?)?;
    m.add_function(wrap_pyfunction!(py_stats::theil_sen, m)?)?;
    m.add_function(wrap_pyfunction!(py_stats::mann_kendall, m)?)?;
    m.add_function(wrap_pyfunction!(py_policy::validate_manifests, m)?)?;
    m.add_function(wrap_pyfunction!(py_policy::chain_hash, m)?)?;
    m.add_function(wrap_pyfunction!(py_policy::verify_chain, m)?)?;
    Ok(())
}
