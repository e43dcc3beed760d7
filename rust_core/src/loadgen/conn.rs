//! Connection tasks: connect (TCP, then TLS when asked), then one request at a time
//! (no pipelining) for as long as the server keeps the connection alive.
//!
//! An idle connection parks in the state's idle list and watches its socket: a close
//! or unsolicited bytes from the server retire it, so a stale connection is never handed
//! an arrival. A connection is never reused after a failure.

use std::cell::Cell;
use std::future::poll_fn;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::engine::{Fail, Job, Request, State};
use super::http1::{Event, Parser};

const BUF: usize = 16 * 1024;
const WARM_TIMEOUT: Duration = Duration::from_secs(2);

/// One connection's mailbox: the arrival handed to it while idle, and the one in flight.
#[derive(Default)]
pub struct Slot {
    job: Cell<Option<Job>>,
    current: Cell<Option<Job>>,
    waker: Cell<Option<Waker>>,
    pub closed: Cell<bool>,
}

impl Slot {
    pub fn give(&self, job: Job) {
        self.job.set(Some(job));
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Every live connection's slot (to find what is still in flight at the end).
#[derive(Default)]
pub struct Slots {
    items: Vec<Option<Rc<Slot>>>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, s: Rc<Slot>) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.items[i] = Some(s);
                i
            }
            None => {
                self.items.push(Some(s));
                self.items.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) {
        self.items[i] = None;
        self.free.push(i);
    }

    pub fn take_current(&mut self) -> Vec<Job> {
        self.items
            .iter()
            .flatten()
            .filter_map(|s| s.current.take())
            .collect()
    }
}

/// A byte stream we can send requests over.
trait Stream: AsyncRead + AsyncWrite + Unpin {
    /// The response was read in full and the server has nothing more to say: forget the
    /// socket's read readiness so the next read waits for epoll instead of a syscall.
    fn drained(&self) {}
}

impl Stream for TcpStream {
    fn drained(&self) {
        let _ = self.try_io(tokio::io::Interest::READABLE, || {
            Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
        });
    }
}

impl Stream for tokio_rustls::client::TlsStream<TcpStream> {}

pub fn spawn_conn(st: Rc<State>, first: Option<Job>) {
    st.connecting.set(st.connecting.get() + 1);
    tokio::task::spawn_local(conn_task(st, first));
}

async fn connect(st: &State) -> std::io::Result<TcpStream> {
    let mut last = None;
    for a in &st.cfg.addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into()))
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn open(st: &State) -> std::io::Result<Conn> {
    let tcp = connect(st).await?;
    match &st.cfg.tls {
        None => Ok(Conn::Plain(tcp)),
        Some((connector, name)) => {
            let tls = connector.connect(name.clone(), tcp).await?;
            Ok(Conn::Tls(Box::new(tls)))
        }
    }
}

async fn conn_task(st: Rc<State>, first: Option<Job>) {
    let limit = first.map_or(WARM_TIMEOUT, |j| st.cfg.requests[j.idx].timeout);
    let opened = tokio::time::timeout(limit, open(&st)).await;
    st.connecting.set(st.connecting.get() - 1);
    if first.is_none() {
        st.warm_done.set(st.warm_done.get() + 1);
    }
    // the first request's timeout runs from the end of the connect (its own timeout)
    let ready = first.map(|j| Job {
        start: std::time::Instant::now(),
        ..j
    });
    match opened {
        Ok(Ok(Conn::Plain(s))) => serve(&st, s, ready).await,
        Ok(Ok(Conn::Tls(s))) => serve(&st, *s, ready).await,
        Ok(Err(_)) | Err(_) => {
            if let Some(job) = first {
                let f = if opened.is_err() {
                    Fail::Timeout
                } else {
                    Fail::Transport
                };
                st.finish(job, Err(f));
            }
        }
    }
    st.conn_closed();
}

async fn serve<S: Stream>(st: &Rc<State>, mut s: S, mut job: Option<Job>) {
    let slot = Rc::new(Slot::default());
    let id = st.slots.borrow_mut().insert(slot.clone());
    let mut buf = vec![0u8; BUF];
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let mut sleep = pin!(tokio::time::sleep_until(far));
    loop {
        let j = match job.take() {
            Some(j) => j,
            None => match idle(st, &slot, &mut s, &mut buf).await {
                Some(j) => j,
                None => break,
            },
        };
        slot.current.set(Some(j));
        let req = &st.cfg.requests[j.idx];
        // the timer is re-armed lazily: only when it fires before this request's deadline
        let deadline = tokio::time::Instant::from_std(j.start + req.timeout);
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        let res = {
            let mut ex = pin!(exchange(&mut s, &mut buf, req));
            loop {
                tokio::select! {
                    biased;
                    r = &mut ex => break r,
                    _ = &mut sleep => {
                        if tokio::time::Instant::now() >= deadline {
                            break Err(Fail::Timeout);
                        }
                        sleep.as_mut().reset(deadline);
                    }
                }
            }
        };
        if slot.current.take().is_none() {
            break; // counted as a timeout at the end of the run already
        }
        let clean = matches!(res, Ok((_, true)));
        let (reuse, now) = st.finish(j, res);
        if !reuse {
            break;
        }
        if clean {
            s.drained();
        }
        job = st
            .waiting
            .borrow_mut()
            .pop_front()
            .map(|w| Job { start: now, ..w });
    }
    slot.closed.set(true);
    st.slots.borrow_mut().remove(id);
}

/// Park until an arrival is handed over; None when the server closed the connection.
async fn idle<S: Stream>(st: &State, slot: &Rc<Slot>, s: &mut S, buf: &mut [u8]) -> Option<Job> {
    st.idle.borrow_mut().push(slot.clone());
    let handed = poll_fn(|cx| match slot.job.take() {
        Some(j) => Poll::Ready(j),
        None => {
            slot.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    });
    tokio::select! {
        biased;
        j = handed => Some(j),
        _ = s.read(buf) => {
            slot.closed.set(true); // closed, failed or unsolicited bytes: unusable
            None
        }
    }
}

/// Send one request and read its response; `(status, keep_alive)`.
async fn exchange<S: Stream>(
    s: &mut S,
    buf: &mut Vec<u8>,
    req: &Request,
) -> Result<(u16, bool), Fail> {
    s.write_all(&req.data).await.map_err(|_| Fail::Transport)?;
    s.flush().await.map_err(|_| Fail::Transport)?;
    let mut p = Parser::new(req.head);
    let mut len = 0usize;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = s.read(&mut buf[len..]).await.map_err(|_| Fail::Transport)?;
        if n == 0 {
            return p.at_eof().map(|st| (st, false)).ok_or(Fail::Transport);
        }
        len += n;
        let (used, ev) = p.feed(&buf[..len]);
        match ev {
            Event::Pending => {
                buf.copy_within(used..len, 0);
                len -= used;
            }
            // bytes beyond the response were not asked for: do not reuse the connection
            Event::Done { status, keep_alive } => return Ok((status, keep_alive && used == len)),
            Event::Bad => return Err(Fail::Transport),
        }
    }
}
