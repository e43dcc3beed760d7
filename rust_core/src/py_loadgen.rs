//! Binding of the native load engine: `LoadEngine(...)`, `.run()` (blocks with the GIL
//! released), `.progress()` and `.stop()` (callable from any thread during the run).

use std::net::ToSocketAddrs;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustls::pki_types::ServerName;

use crate::loadgen::engine::{self, Config, Request, Shared};
use crate::loadgen::tls;
use crate::py_input::{run, verr};

type KeyTuple = (u64, u64, u64, u64, u64, u64, Vec<(u16, u64)>, Py<PyBytes>);
type RunTuple = (f64, f64, f64, u64, u64, u64, f64, Vec<KeyTuple>);
type ProgressTuple = (f64, u64, u64, u64, u64, u64, u64, Option<f64>);

#[pyclass(frozen, name = "LoadEngine", module = "rust_core._native")]
pub struct PyLoadEngine {
    cfg: Mutex<Option<Config>>,
    shared: Arc<Shared>,
}

fn secs(v: f64, name: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| verr(name, format!("must be >= 0 (got {v})")))
}

#[pymethods]
impl PyLoadEngine {
    #[new]
    #[pyo3(signature = (host, port, requests, cycle, segments, count, duration_s, max_vus,
        graceful_stop_s, warm, slo_latency_ms = None, relative_error = 0.01, tls = false,
        ca_file = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: &str,
        port: u16,
        requests: Vec<(Vec<u8>, bool, f64, Vec<u16>)>,
        cycle: Vec<usize>,
        segments: Vec<(f64, f64, f64)>,
        count: u64,
        duration_s: f64,
        max_vus: usize,
        graceful_stop_s: f64,
        warm: usize,
        slo_latency_ms: Option<f64>,
        relative_error: f64,
        tls: bool,
        ca_file: Option<&str>,
    ) -> PyResult<Self> {
        if requests.is_empty() {
            return Err(verr("requests", "must not be empty"));
        }
        if cycle.is_empty() || cycle.iter().any(|i| *i >= requests.len()) {
            return Err(verr("cycle", "must be non-empty indexes into requests"));
        }
        if max_vus == 0 {
            return Err(verr("max_vus", "must be >= 1"));
        }
        if segments
            .iter()
            .any(|(d, a, b)| !(*d > 0.0 && *a >= 0.0 && *b >= 0.0))
        {
            return Err(verr("segments", "durations must be > 0 and rates >= 0"));
        }
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| verr("host", format!("cannot resolve {host}: {e}")))?
            .collect();
        let tls = if tls {
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| verr("host", format!("not a TLS server name: {e}")))?;
            Some((
                tls::connector(ca_file).map_err(|e| verr("ca_file", e))?,
                name,
            ))
        } else {
            None
        };
        let mut reqs = Vec::with_capacity(requests.len());
        for (i, (data, head, timeout, expected)) in requests.into_iter().enumerate() {
            let timeout = secs(timeout, &format!("requests[{i}].timeout"))?;
            reqs.push(Request {
                data,
                head,
                timeout,
                expected,
            });
        }
        let cfg = Config {
            addrs,
            tls,
            requests: reqs,
            cycle,
            segments,
            count,
            duration_s: duration_s.max(0.0),
            max_vus,
            graceful_stop: secs(graceful_stop_s, "graceful_stop_s")?,
            slo_latency_ms: slo_latency_ms.filter(|v| *v > 0.0).unwrap_or(f64::INFINITY),
            warm,
            relative_error,
        };
        crate::histogram::Histogram::new(relative_error).map_err(|e| verr("relative_error", e))?;
        Ok(PyLoadEngine {
            cfg: Mutex::new(Some(cfg)),
            shared: Arc::new(Shared::default()),
        })
    }

    /// Run the schedule to the end (or `stop()`), with the GIL released throughout.
    fn run(&self, py: Python<'_>) -> PyResult<RunTuple> {
        let cfg = self
            .cfg
            .lock()
            .map_err(|_| PyRuntimeError::new_err("LoadEngine: poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("LoadEngine: a run happens once"))?;
        let shared = self.shared.clone();
        let out = run(py, move || engine::run(cfg, shared))?.map_err(PyRuntimeError::new_err)?;
        let keys = out
            .keys
            .into_iter()
            .map(|k| {
                let mut status = k.status;
                status.sort_unstable();
                let b = PyBytes::new(py, &k.hist.to_bytes()).unbind();
                (
                    k.count,
                    k.ok,
                    k.errors,
                    k.timeouts,
                    k.transport,
                    k.slow,
                    status,
                    b,
                )
            })
            .collect();
        Ok((
            out.wall0,
            out.total_s,
            out.send_s,
            out.planned,
            out.sent,
            out.dropped,
            out.max_send_lag_s,
            keys,
        ))
    }

    /// `(elapsed_s, planned_so_far, sent, completed, errors, dropped, in_flight, p99_ms)`.
    fn progress(&self) -> ProgressTuple {
        let s = &self.shared;
        let elapsed = s.t0.get().map_or(0.0, |t0| {
            Instant::now().saturating_duration_since(*t0).as_secs_f64()
        });
        let p99 = s
            .has_p99
            .load(Relaxed)
            .then(|| f64::from_bits(s.p99_bits.load(Relaxed)));
        (
            elapsed,
            s.planned_so_far.load(Relaxed),
            s.sent.load(Relaxed),
            s.completed.load(Relaxed),
            s.errors.load(Relaxed),
            s.dropped.load(Relaxed),
            s.in_flight.load(Relaxed),
            p99,
        )
    }

    /// Stop scheduling new arrivals (in-flight requests still finish).
    fn stop(&self) {
        self.shared.stop.store(true, Relaxed);
    }
}
