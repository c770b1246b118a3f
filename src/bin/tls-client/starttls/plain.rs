//! The plaintext side of the socket before TLS: bounded, timed reads of lines and replies.

use super::*;

pub(super) fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.join(&b'\n')
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The plaintext side of the socket, before TLS.
pub(super) struct Plain<'a> {
    pub(super) stream: &'a mut TcpStream,
    pub(super) protocol: Protocol,
    /// Received and not yet taken.
    pub(super) buf: Vec<u8>,
    /// All received so far.
    pub(super) total: usize,
    pub(super) eof: bool,
    pub(super) timeout: Duration,
    pub(super) trace: bool,
}

impl Plain<'_> {
    pub(super) fn socket_error(&self, err: &io::Error) -> String {
        format!(
            "socket error during the {} STARTTLS exchange: {err}",
            self.protocol.name()
        )
    }

    pub(super) fn send(&mut self, data: &[u8]) -> Result<(), String> {
        if self.trace {
            eprintln!("[starttls] C: {}", excerpt(data));
        }
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        let mut rest = data;
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return Err(self.socket_error(&io::ErrorKind::WriteZero.into())),
                Ok(n) => rest = &rest[n..],
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "timed out sending to the server ({} STARTTLS)",
                            self.protocol.name()
                        ));
                    }
                    backoff.wait();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.socket_error(&err)),
            }
        }
        Ok(())
    }

    /// Receives more of the server's `what` into the buffer, by `deadline`.
    pub(super) fn fill(&mut self, deadline: Instant, what: &str) -> Result<(), String> {
        let mut chunk = [0; 4096];
        let mut backoff = Backoff::new();
        loop {
            let room = MAX_TOTAL.saturating_sub(self.total);
            if room == 0 {
                return Err(format!(
                    "the server sent more than {MAX_TOTAL} bytes before the TLS handshake \
                     ({} STARTTLS, waiting for its {what})",
                    self.protocol.name()
                ));
            }
            if self.eof {
                return Err(self.closed(what));
            }
            let want = room.min(chunk.len());
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => {
                    self.eof = true;
                    return Err(self.closed(what));
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.total += n;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let mut msg = format!(
                            "timed out after {:.1} s waiting for the server's {what} ({} STARTTLS)",
                            self.timeout.as_secs_f64(),
                            self.protocol.name()
                        );
                        if !self.buf.is_empty() {
                            let _ = write!(msg, "; it sent {}", excerpt(&self.buf));
                        }
                        return Err(msg);
                    }
                    backoff.wait();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.socket_error(&err)),
            }
        }
    }

    pub(super) fn closed(&self, what: &str) -> String {
        let mut msg = format!(
            "the server closed the connection instead of sending its {what} ({} STARTTLS)",
            self.protocol.name()
        );
        if !self.buf.is_empty() {
            let _ = write!(msg, "; it sent {}", excerpt(&self.buf));
        }
        msg
    }

    pub(super) fn trace_received(&self, data: &[u8]) {
        if self.trace {
            eprintln!("[starttls] S: {}", excerpt(data));
        }
    }

    /// Takes the first `n` bytes of the buffer.
    pub(super) fn take(&mut self, n: usize) -> Vec<u8> {
        let taken: Vec<u8> = self.buf.drain(..n).collect();
        self.trace_received(&taken);
        taken
    }

    /// One line, without its CRLF (or LF).
    pub(super) fn line(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                if end > MAX_LINE {
                    break;
                }
                let mut line = self.take(end + 1);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > MAX_LINE {
                break;
            }
            self.fill(deadline, what)?;
        }
        Err(format!(
            "the server's {what} has a line longer than {MAX_LINE} bytes: {}",
            excerpt(&self.buf)
        ))
    }

    /// Exactly `n` bytes.
    pub(super) fn exact(&mut self, n: usize, what: &str) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        while self.buf.len() < n {
            self.fill(deadline, what)?;
        }
        Ok(self.take(n))
    }

    /// The buffer up to the end `complete` finds in it (at most [`MAX_TOTAL`] bytes).
    pub(super) fn until(
        &mut self,
        what: &str,
        complete: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(end) = complete(&self.buf) {
                return Ok(self.take(end));
            }
            self.fill(deadline, what)?;
        }
    }

    /// What the server sends until it closes, at most `max` bytes, within the timeout;
    /// for the explanation that comes with a refusal.
    pub(super) fn rest(&mut self, max: usize) -> Vec<u8> {
        let deadline = Instant::now() + self.timeout;
        while self.buf.len() < max && self.fill(deadline, "explanation").is_ok() {}
        let n = self.buf.len().min(max);
        self.take(n)
    }

    /// Numbered lines (SMTP, FTP): `CODE-text` lines (FTP allows others between them)
    /// until one that is `CODE text` or just `CODE`. Returns the code and the lines.
    pub(super) fn numbered_reply(&mut self, what: &str) -> Result<(u16, Vec<Vec<u8>>), String> {
        let first = self.line(what)?;
        let Some(code) = reply_code(&first) else {
            return Err(format!(
                "the server's {what} is not an {} reply: {}",
                self.protocol.name(),
                excerpt(&first)
            ));
        };
        let continued = first.get(3) == Some(&b'-');
        let mut lines = vec![first];
        if continued {
            loop {
                let line = self.line(what)?;
                let end = reply_code(&line) == Some(code) && line.get(3) != Some(&b'-');
                lines.push(line);
                if end {
                    break;
                }
            }
        }
        Ok((code, lines))
    }

    /// Refuses what the server sent after its last answer, and returns the socket to
    /// the pump.
    pub(super) fn finish(mut self) -> Result<(), String> {
        // Bytes in the same segment as the answer, or right behind it.
        let mut chunk = [0; 512];
        if let Ok(n) = self.stream.read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the server sent data after accepting STARTTLS, before the TLS handshake: {}; \
             refusing it, as it could be injected plaintext",
            excerpt(&self.buf)
        ))
    }
}
