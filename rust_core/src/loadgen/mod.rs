//! Native open-model HTTP/1.1 load engine (the twin of the Python engine in `loadtest.engine`).
//!
//! One run = one single-threaded tokio runtime on the calling thread (the GIL is released
//! by the binding). Arrivals follow the profile's schedule whatever the target does; an
//! arrival finding `max_vus` requests in flight is dropped and counted. Latency is measured
//! from the arrival's intended send time (no coordinated omission). Connections are kept
//! alive and reused (most recently used first); HTTPS through rustls.
//!
//! * [`schedule`]: the arrival times (same formula as `loadtest.scenario.arrival_offsets`).
//! * [`http1`]: a streaming response parser (status, Content-Length, chunked, read-to-close).
//! * [`engine`]: dispatcher, connection tasks, per-target counters and histograms.
//! * [`timer`]: a microsecond timer (timerfd) for sends between the runtime's 1 ms ticks.
//! * [`tls`]: the rustls client configuration (a CA file, or the system roots).

mod conn;
pub mod engine;
pub mod http1;
pub mod schedule;
mod timer;
pub mod tls;
