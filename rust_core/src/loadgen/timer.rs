//! A microsecond-resolution sleep for the dispatcher.
//!
//! tokio's timer wheel has 1 ms ticks, so a send due 300 us from now would leave up to
//! 1 ms late and the lateness would show in every latency. On Linux a `timerfd` armed
//! for the exact remaining time wakes the runtime's epoll instead; elsewhere this falls
//! back to tokio's sleep.

use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    pub struct Timer {
        fd: AsyncFd<OwnedFd>,
    }

    impl Timer {
        pub fn new() -> io::Result<Timer> {
            // SAFETY: plain syscall; the returned descriptor is owned below.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: the OwnedFd stays open, and the same descriptor, for the AsyncFd's life.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(|e| io::Error::other(e.to_string()))?;
            Ok(Timer { fd })
        }

        pub async fn sleep(&self, d: Duration) -> io::Result<()> {
            let d = d.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                },
            };
            let fd = self.fd.get_ref().as_raw_fd();
            // SAFETY: valid descriptor and a fully initialised itimerspec.
            if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            loop {
                let mut guard = self.fd.readable().await?;
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes into an 8-byte buffer.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 8) };
                if n == 8 {
                    return Ok(());
                }
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::WouldBlock {
                    return Err(err);
                }
                guard.clear_ready();
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::time::Duration;

    pub struct Timer;

    impl Timer {
        pub fn new() -> io::Result<Timer> {
            Ok(Timer)
        }
        pub async fn sleep(&self, d: Duration) -> io::Result<()> {
            tokio::time::sleep(d).await;
            Ok(())
        }
    }
}

pub use imp::Timer;

/// Sleep until `deadline`; waits shorter than `spin` are spent yielding to the runtime
/// (I/O keeps running) rather than arming a timer; returns early when `stop()` says so.
pub async fn sleep_until(
    timer: &Option<Timer>,
    deadline: Instant,
    spin: Duration,
    stop: impl Fn() -> bool,
) {
    const SLICE: Duration = Duration::from_millis(100);
    loop {
        let now = Instant::now();
        if now >= deadline || stop() {
            return;
        }
        let left = deadline - now;
        if left <= spin {
            tokio::task::yield_now().await;
            continue;
        }
        let d = left.min(SLICE);
        match timer {
            Some(t) if t.sleep(d).await.is_ok() => {}
            _ => tokio::time::sleep(d).await,
        }
    }
}
