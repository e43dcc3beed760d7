//! The dispatcher and the run's shared state.
//!
//! Everything runs on one current-thread tokio runtime: the dispatcher walks the
//! schedule, hands each arrival to an idle keep-alive connection (most recently used
//! first), opens a connection when none is idle (at most `MAX_CONNECTING` at once;
//! further arrivals queue for the next free connection), or drops it when `max_vus`
//! requests are in flight. After the schedule it waits at most `graceful_stop` for
//! in-flight requests; what is still in flight then is counted as a timeout. Counters
//! that Python reads while the run goes on live in [`Shared`] (atomics).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::conn::{spawn_conn, Slot, Slots};
use super::schedule::Arrivals;
use super::timer::{sleep_until, Timer};
use crate::histogram::Histogram;

pub const START_DELAY: Duration = Duration::from_millis(20);
pub const YIELD_EVERY: u32 = 32;
pub const MAX_CONNECTING: usize = 8;
const SPIN: Duration = Duration::from_micros(2);
/// Arrivals due within this window of the one being sent go out in the same wake-up (one
/// timer per window instead of one per arrival at high rates); their latency then runs
/// from the actual send, never from a later intended time.
const COALESCE: Duration = Duration::from_micros(200);
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

pub struct Request {
    pub data: Vec<u8>,
    pub head: bool,
    pub timeout: Duration,
    pub expected: Vec<u16>,
}

pub struct Config {
    pub addrs: Vec<SocketAddr>,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub requests: Vec<Request>,
    pub cycle: Vec<usize>,
    pub segments: Vec<(f64, f64, f64)>,
    pub count: u64,
    pub duration_s: f64,
    pub max_vus: usize,
    pub graceful_stop: Duration,
    pub slo_latency_ms: f64,
    pub warm: usize,
    pub relative_error: f64,
}

/// Live counters, readable from any thread while the run goes on.
#[derive(Default)]
pub struct Shared {
    pub stop: AtomicBool,
    pub t0: OnceLock<Instant>,
    pub planned_so_far: AtomicU64,
    pub sent: AtomicU64,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
    pub in_flight: AtomicU64,
    pub p99_bits: AtomicU64,
    pub has_p99: AtomicBool,
}

/// Counters and latency histogram of one target.
pub struct KeyAcc {
    pub hist: Histogram,
    pub count: u64,
    pub ok: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub transport: u64,
    pub slow: u64,
    pub status: Vec<(u16, u64)>,
}

pub struct Outcome {
    pub wall0: f64,
    pub total_s: f64,
    pub send_s: f64,
    pub planned: u64,
    pub sent: u64,
    pub dropped: u64,
    pub max_send_lag_s: f64,
    pub keys: Vec<KeyAcc>,
}

#[derive(Clone, Copy)]
pub struct Job {
    pub idx: usize,
    pub intended: Instant,
    /// when it was handed out (the request's timeout runs from here)
    pub start: Instant,
}

pub enum Fail {
    Timeout,
    Transport,
}

pub struct State {
    pub cfg: Config,
    pub shared: Arc<Shared>,
    pub in_flight: Cell<usize>,
    pub connecting: Cell<usize>,
    pub warm_done: Cell<usize>,
    pub idle: RefCell<Vec<Rc<Slot>>>,
    pub waiting: RefCell<VecDeque<Job>>,
    pub slots: RefCell<Slots>,
    pub keys: RefCell<Vec<KeyAcc>>,
    drained: Cell<Option<Waker>>,
}

impl State {
    /// Record one finished request; true when its connection may be reused.
    pub fn finish(&self, job: Job, res: Result<(u16, bool), Fail>) -> (bool, Instant) {
        let now = Instant::now();
        let ms = now.saturating_duration_since(job.intended).as_secs_f64() * 1e3;
        let reuse = self.record(job, ms, res);
        let n = self.in_flight.get() - 1;
        self.in_flight.set(n);
        self.shared.in_flight.store(n as u64, Relaxed);
        if n == 0 {
            if let Some(w) = self.drained.take() {
                w.wake();
            }
        }
        (reuse, now)
    }

    fn record(&self, job: Job, ms: f64, res: Result<(u16, bool), Fail>) -> bool {
        let mut keys = self.keys.borrow_mut();
        let k = &mut keys[job.idx];
        let _ = k.hist.record(ms, 1);
        k.count += 1;
        self.shared.completed.fetch_add(1, Relaxed);
        let mut failed = true;
        let reuse = match res {
            Ok((status, keep_alive)) => {
                match k.status.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, n)) => *n += 1,
                    None => k.status.push((status, 1)),
                }
                if self.cfg.requests[job.idx].expected.contains(&status) {
                    failed = false;
                    k.ok += 1;
                    if ms > self.cfg.slo_latency_ms {
                        k.slow += 1;
                    }
                }
                keep_alive
            }
            Err(Fail::Timeout) => {
                k.timeouts += 1;
                false
            }
            Err(Fail::Transport) => {
                k.transport += 1;
                false
            }
        };
        if failed {
            k.errors += 1;
            self.shared.errors.fetch_add(1, Relaxed);
        }
        reuse
    }

    /// Hand an arrival to an idle connection, a new one, or the queue for the next free one.
    fn dispatch(self: &Rc<Self>, job: Job) {
        loop {
            let slot = self.idle.borrow_mut().pop();
            match slot {
                Some(s) if s.closed.get() => continue,
                Some(s) => {
                    s.give(job);
                    return;
                }
                None => break,
            }
        }
        if self.connecting.get() < MAX_CONNECTING {
            spawn_conn(self.clone(), Some(job));
        } else {
            self.waiting.borrow_mut().push_back(job);
        }
    }

    /// A connection went away: a queued arrival gets a new one.
    pub fn conn_closed(self: &Rc<Self>) {
        if self.connecting.get() < MAX_CONNECTING {
            let next = self.waiting.borrow_mut().pop_front();
            if let Some(job) = next {
                spawn_conn(self.clone(), Some(job));
            }
        }
    }

    fn publish_p99(&self) {
        let keys = self.keys.borrow();
        let mut merged: Option<Histogram> = None;
        for k in keys.iter().filter(|k| k.hist.count() > 0) {
            match merged.as_mut() {
                None => merged = Some(k.hist.clone()),
                Some(m) => {
                    let _ = m.merge(&k.hist);
                }
            }
        }
        if let Some(m) = merged {
            self.shared
                .p99_bits
                .store(m.quantile(0.99).to_bits(), Relaxed);
            self.shared.has_p99.store(true, Relaxed);
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Run the whole schedule on the calling thread; returns when the run is over.
pub fn run(cfg: Config, shared: Arc<Shared>) -> Result<Outcome, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    let keys = cfg
        .requests
        .iter()
        .map(|_| {
            Ok(KeyAcc {
                hist: Histogram::new(cfg.relative_error).map_err(|e| e.to_string())?,
                count: 0,
                ok: 0,
                errors: 0,
                timeouts: 0,
                transport: 0,
                slow: 0,
                status: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let st = Rc::new(State {
        cfg,
        shared,
        in_flight: Cell::new(0),
        connecting: Cell::new(0),
        warm_done: Cell::new(0),
        idle: RefCell::new(Vec::new()),
        waiting: RefCell::new(VecDeque::new()),
        slots: RefCell::new(Slots::default()),
        keys: RefCell::new(keys),
        drained: Cell::new(None),
    });
    let out = local.block_on(&rt, main(st.clone()));
    drop(local); // drops every connection task (and its socket)
    let keys = std::mem::take(&mut *st.keys.borrow_mut());
    Ok(Outcome { keys, ..out })
}

async fn main(st: Rc<State>) -> Outcome {
    let timer = Timer::new().ok();
    // pre-open keep-alive connections before the clock starts (like k6's pre-allocated VUs)
    let warm = st.cfg.warm.min(st.cfg.max_vus);
    for _ in 0..warm {
        spawn_conn(st.clone(), None);
    }
    let warm_deadline = Instant::now() + Duration::from_secs(2);
    while st.warm_done.get() < warm && Instant::now() < warm_deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let reporter = {
        let st = st.clone();
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                st.publish_p99();
            }
        })
    };
    let wall0 = unix_now() + START_DELAY.as_secs_f64();
    let t0 = Instant::now() + START_DELAY;
    let _ = st.shared.t0.set(t0);
    let hard_end = t0 + Duration::from_secs_f64(st.cfg.duration_s + 1.0);
    let stop = || st.shared.stop.load(Relaxed);
    let (cycle, max_vus) = (&st.cfg.cycle, st.cfg.max_vus);
    let (mut k, mut late_skipped, mut sent, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    let mut since_yield = 0u32;
    let mut max_lag = Duration::ZERO;
    let mut now = Instant::now();
    for off in Arrivals::new(st.cfg.segments.clone(), st.cfg.count) {
        let intended = t0 + Duration::from_secs_f64(off);
        now = Instant::now();
        if intended > now + COALESCE {
            sleep_until(&timer, intended, SPIN, stop).await;
            now = Instant::now();
            since_yield = 0;
        } else if since_yield >= YIELD_EVERY {
            // behind schedule: let finished responses free their slots before dropping
            tokio::task::yield_now().await;
            now = Instant::now();
            since_yield = 0;
        }
        since_yield += 1;
        if stop() {
            break;
        }
        if now > hard_end {
            late_skipped = st.cfg.count - k; // the generator could not keep up
            break;
        }
        st.shared.planned_so_far.store(k + 1, Relaxed);
        let idx = cycle[(k % cycle.len() as u64) as usize];
        k += 1;
        if st.in_flight.get() >= max_vus {
            dropped += 1;
            st.shared.dropped.store(dropped, Relaxed);
            continue;
        }
        max_lag = max_lag.max(now.saturating_duration_since(intended));
        st.in_flight.set(st.in_flight.get() + 1);
        st.shared
            .in_flight
            .store(st.in_flight.get() as u64, Relaxed);
        sent += 1;
        st.shared.sent.store(sent, Relaxed);
        // sent up to COALESCE early (with the arrivals due meanwhile): measured from the send
        st.dispatch(Job {
            idx,
            intended: intended.min(now),
            start: now,
        });
    }
    let send_end = now.max(t0);
    drain(&st, st.cfg.graceful_stop).await;
    reporter.abort();
    close_all(&st);
    st.publish_p99();
    dropped += late_skipped;
    st.shared.dropped.store(dropped, Relaxed);
    let end = Instant::now();
    Outcome {
        wall0,
        total_s: end.saturating_duration_since(t0).as_secs_f64(),
        send_s: if k > 0 {
            send_end
                .saturating_duration_since(t0)
                .as_secs_f64()
                .max(st.cfg.duration_s)
        } else {
            st.cfg.duration_s
        },
        planned: k + late_skipped,
        sent,
        dropped,
        max_send_lag_s: max_lag.as_secs_f64(),
        keys: Vec::new(),
    }
}

async fn drain(st: &Rc<State>, grace: Duration) {
    let wait = std::future::poll_fn(|cx| {
        if st.in_flight.get() == 0 {
            std::task::Poll::Ready(())
        } else {
            st.drained.set(Some(cx.waker().clone()));
            std::task::Poll::Pending
        }
    });
    let _ = tokio::time::timeout(grace, wait).await;
}

/// What never got a connection or is still in flight after the grace period: timeouts.
fn close_all(st: &Rc<State>) {
    let waiting: Vec<Job> = st.waiting.borrow_mut().drain(..).collect();
    for job in waiting {
        st.finish(job, Err(Fail::Timeout));
    }
    for job in st.slots.borrow_mut().take_current() {
        st.finish(job, Err(Fail::Timeout));
    }
}
