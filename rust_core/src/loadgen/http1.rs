//! Streaming HTTP/1.1 response parser, just enough for load generation.
//!
//! It reads the status, `Content-Length`, `Transfer-Encoding: chunked` and
//! `Connection: close` (HTTP/1.0 never keeps the connection), and skips bodies without
//! copying them. A response without a length is read to the end of the connection.
//! Responses to HEAD, 1xx, 204 and 304 have no body. Same rules as `loadtest.http1`.

const MAX_HEAD: usize = 65536;
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    Trailer,
    UntilClose,
}

/// What the bytes fed so far amount to.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// More bytes are needed.
    Pending,
    /// The response is complete.
    Done { status: u16, keep_alive: bool },
    /// Not an HTTP/1.x response (or an oversized head): the connection is unusable.
    Bad,
}

pub struct Parser {
    state: St,
    status: u16,
    keep_alive: bool,
    head_request: bool,
    scanned: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e.max(s)]
}

fn parse_u64(b: &[u8], radix: u32) -> Option<u64> {
    let s = std::str::from_utf8(trim(b)).ok()?;
    u64::from_str_radix(s, radix).ok()
}

impl Parser {
    pub fn new(head_request: bool) -> Self {
        Parser {
            state: St::Head,
            status: 0,
            keep_alive: true,
            head_request,
            scanned: 0,
        }
    }

    /// Status of a response that ends with the connection (read-to-close), if any.
    pub fn at_eof(&self) -> Option<u16> {
        (self.state == St::UntilClose).then_some(self.status)
    }

    /// Feed the unconsumed bytes `buf`; returns how many were consumed and the event.
    /// Unconsumed bytes (a partial head or chunk line) must be fed again with more.
    pub fn feed(&mut self, buf: &[u8]) -> (usize, Event) {
        let mut pos = 0usize;
        loop {
            let rest = &buf[pos..];
            match self.state {
                St::Head => {
                    let from = self.scanned.saturating_sub(3);
                    let Some(end) = find(&buf[from..], b"\r\n\r\n").map(|e| e + from) else {
                        self.scanned = buf.len();
                        let ev = if buf.len() > MAX_HEAD {
                            Event::Bad
                        } else {
                            Event::Pending
                        };
                        return (0, ev);
                    };
                    if !self.head(&buf[..end]) {
                        return (0, Event::Bad);
                    }
                    pos = end + 4;
                    if self.state == St::Head {
                        return (pos, self.done());
                    }
                }
                St::Body(n) => {
                    let avail = rest.len() as u64;
                    if avail >= n {
                        return (pos + n as usize, self.done());
                    }
                    self.state = St::Body(n - avail);
                    return (buf.len(), Event::Pending);
                }
                St::ChunkData(n) => {
                    let avail = rest.len() as u64;
                    if avail < n {
                        self.state = St::ChunkData(n - avail);
                        return (buf.len(), Event::Pending);
                    }
                    pos += n as usize;
                    self.state = St::ChunkSize;
                }
                St::ChunkSize | St::Trailer => {
                    let Some(eol) = find(rest, b"\r\n") else {
                        let ev = if rest.len() > MAX_CHUNK_LINE {
                            Event::Bad
                        } else {
                            Event::Pending
                        };
                        return (pos, ev);
                    };
                    let line = &rest[..eol];
                    pos += eol + 2;
                    if self.state == St::Trailer {
                        if line.is_empty() {
                            return (pos, self.done());
                        }
                        continue;
                    }
                    let size = line.split(|c| *c == b';').next().unwrap_or(line);
                    match parse_u64(size, 16) {
                        Some(0) => self.state = St::Trailer,
                        Some(n) => self.state = St::ChunkData(n.saturating_add(2)),
                        None => return (pos, Event::Bad),
                    }
                }
                St::UntilClose => return (buf.len(), Event::Pending),
            }
        }
    }

    fn done(&mut self) -> Event {
        Event::Done {
            status: self.status,
            keep_alive: self.keep_alive,
        }
    }

    /// Parse the head (without the final CRLFCRLF) and pick the body state.
    fn head(&mut self, head: &[u8]) -> bool {
        if head.len() < 12 || !head[..7].eq_ignore_ascii_case(b"HTTP/1.") {
            return false;
        }
        let Some(status) = parse_u64(&head[9..12], 10) else {
            return false;
        };
        self.status = status.min(999) as u16;
        if head[..8].eq_ignore_ascii_case(b"HTTP/1.0") {
            self.keep_alive = false;
        }
        let mut length = None;
        let mut chunked = false;
        for line in head.split(|c| *c == b'\n').skip(1) {
            let Some(colon) = line.iter().position(|c| *c == b':') else {
                continue;
            };
            let (name, value) = (trim(&line[..colon]), trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                length = parse_u64(value, 10);
                if length.is_none() {
                    return false;
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.to_ascii_lowercase().ends_with(b"chunked");
            } else if name.eq_ignore_ascii_case(b"connection")
                && value.eq_ignore_ascii_case(b"close")
            {
                self.keep_alive = false;
            }
        }
        let s = self.status;
        self.state = if self.head_request || s == 204 || s == 304 || (100..200).contains(&s) {
            St::Head
        } else if let Some(n) = length {
            if n == 0 {
                St::Head
            } else {
                St::Body(n)
            }
        } else if chunked {
            St::ChunkSize
        } else {
            self.keep_alive = false;
            St::UntilClose
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(resp: &[u8], head: bool) -> (usize, Event) {
        Parser::new(head).feed(resp)
    }

    #[test]
    fn content_length_and_keep_alive() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
        assert_eq!(
            whole(r, false),
            (
                r.len(),
                Event::Done {
                    status: 200,
                    keep_alive: true
                }
            )
        );
        let r = b"HTTP/1.1 500 X\r\ncontent-length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(
            whole(r, false).1,
            Event::Done {
                status: 500,
                keep_alive: false
            }
        );
        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            whole(r, false).1,
            Event::Done {
                status: 200,
                keep_alive: false
            }
        );
    }

    #[test]
    fn byte_by_byte_chunked_with_trailer() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5;x=1\r\ndefgh\r\n0\r\nX-T: 1\r\n\r\n";
        let mut p = Parser::new(false);
        let mut pending: Vec<u8> = Vec::new();
        let mut done = None;
        for &b in r.iter() {
            pending.push(b);
            let (used, ev) = p.feed(&pending);
            pending.drain(..used);
            if ev != Event::Pending {
                done = Some(ev);
            }
        }
        assert_eq!(
            done,
            Some(Event::Done {
                status: 200,
                keep_alive: true
            })
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn no_body_cases_and_read_to_close() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(
            whole(r, true).1,
            Event::Done {
                status: 200,
                keep_alive: true
            }
        );
        let r = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            whole(r, false).1,
            Event::Done {
                status: 204,
                keep_alive: true
            }
        );
        let mut p = Parser::new(false);
        assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\n\r\nbody").1, Event::Pending);
        assert_eq!(p.at_eof(), Some(200));
        assert_eq!(whole(b"SSH-2.0-OpenSSH\r\n\r\n", false).1, Event::Bad);
        assert_eq!(
            whole(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).1,
            Event::Bad
        );
    }
}
