//! Traffic generators and checkers: deterministic pseudo-random payloads, a cheap 64-bit hash,
//! a TCP bulk transfer (optionally paced) and a UDP burst, each between two namespaces.

use super::netns::in_netns;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Payload and hash

/// xorshift64* — deterministic, fast, good enough to defeat any accidental pattern matching.
pub struct PatternGen {
    state: u64,
}

impl PatternGen {
    pub fn new(seed: u64) -> Self {
        PatternGen {
            state: seed ^ 0x9E37_79B9_7F4A_7C15 | 1,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with the next bytes of the stream (whole words; a partial last word is cut).
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let w = self.next_u64().to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&w[..n]);
        }
    }
}

/// FNV-1a over 64-bit little-endian words (trailing bytes folded in one by one). Independent of
/// how the stream is split into reads, so sender and receiver can compare results.
#[derive(Clone)]
pub struct Fnv64 {
    h: u64,
    tail: [u8; 8],
    tail_len: usize,
    total: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64 {
            h: FNV_OFFSET,
            tail: [0; 8],
            tail_len: 0,
            total: 0,
        }
    }
}

impl Fnv64 {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(FNV_PRIME);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < 8 {
                return;
            }
            let w = u64::from_le_bytes(self.tail);
            self.mix(w);
            self.tail_len = 0;
        }
        // SAFETY: any bit pattern is a valid u64.
        let (pre, words, post) = unsafe { data.align_to::<u64>() };
        let rest = if pre.is_empty() {
            // Fast path (matters in unoptimised test builds): whole words read in place.
            let mut h = self.h;
            for &w in words {
                h = (h ^ u64::from_le(w)).wrapping_mul(FNV_PRIME);
            }
            self.h = h;
            post
        } else {
            let mut chunks = data.chunks_exact(8);
            for c in &mut chunks {
                let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                self.mix(w);
            }
            chunks.remainder()
        };
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// `(hash, byte count)`.
    pub fn finish(&self) -> (u64, u64) {
        let mut h = self.h;
        for &b in &self.tail[..self.tail_len] {
            h = (h ^ b as u64).wrapping_mul(FNV_PRIME);
        }
        (h, self.total)
    }
}

/// A byte buffer aligned to 8 bytes, so hashing it takes the fast path.
pub struct WordBuf {
    words: Vec<u64>,
}

impl WordBuf {
    pub fn new(bytes: usize) -> Self {
        WordBuf {
            words: vec![0; bytes.div_ceil(8)],
        }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: a u64 slice viewed as its bytes.
        unsafe {
            std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.words.len() * 8)
        }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; every byte pattern is a valid u64.
        unsafe {
            std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.words.len() * 8)
        }
    }
}

/// The TCP payload: chunk `i` of the stream is a window of a 1 MiB pseudo-random block starting
/// at a different word offset each time (generating fresh bytes costs too much in debug builds).
pub struct StreamSource {
    block: WordBuf,
    seed: u64,
    index: u64,
}

const BLOCK: usize = 1 << 20;

impl StreamSource {
    pub fn new(seed: u64) -> Self {
        let mut block = WordBuf::new(BLOCK + CHUNK);
        PatternGen::new(seed).fill(block.bytes_mut());
        StreamSource {
            block,
            seed,
            index: 0,
        }
    }

    /// The next chunk of the stream (`CHUNK` bytes).
    pub fn next_chunk(&mut self) -> &[u8] {
        let words = (BLOCK / 8) as u64;
        // 40503 is odd, so consecutive chunks get distinct offsets (mod 2^17).
        let off = (self.index.wrapping_mul(40503).wrapping_add(self.seed) % words) as usize * 8;
        self.index += 1;
        &self.block.bytes()[off..off + CHUNK]
    }
}

// ---------------------------------------------------------------------------------------------
// TCP

const CHUNK: usize = 64 * 1024;
/// A read or write blocked this long fails the transfer (tests detect stalls sooner themselves).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One side's view of a finished transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub bytes: u64,
    pub hash: u64,
}

#[derive(Debug)]
pub struct TcpResult {
    pub sent: Digest,
    pub received: Digest,
    pub elapsed: Duration,
}

impl TcpResult {
    pub fn mbytes_per_sec(&self) -> f64 {
        self.received.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// A TCP transfer in progress: a sender thread in one namespace's socket, a receiver thread on
/// the other's.
pub struct TcpTransfer {
    pub total: u64,
    pub started: Instant,
    received: Arc<AtomicU64>,
    sender: Option<JoinHandle<Result<Digest, String>>>,
    receiver: Option<JoinHandle<Result<Digest, String>>>,
    // Clones used to unblock the threads if the transfer has to be abandoned.
    tx_sock: TcpStream,
    rx_sock: TcpStream,
}

impl TcpTransfer {
    /// Listens on `dst` inside `rx_ns`, connects from `tx_ns`, then streams `total` pseudo-random
    /// bytes, at most `rate` bytes/s if given.
    pub fn start(
        tx_ns: &str,
        rx_ns: &str,
        dst: SocketAddrV4,
        total: u64,
        rate: Option<f64>,
        seed: u64,
    ) -> TcpTransfer {
        let listener = in_netns(rx_ns, move || TcpListener::bind(dst))
            .unwrap_or_else(|e| panic!("bind {dst} in {rx_ns}: {e}"));
        let tx = in_netns(tx_ns, move || {
            TcpStream::connect_timeout(&SocketAddr::V4(dst), Duration::from_secs(10))
        })
        .unwrap_or_else(|e| panic!("connect from {tx_ns} to {dst}: {e}"));
        // The connection is established, so accept() returns at once.
        let (rx, peer) = listener.accept().expect("accept");
        eprintln!("tcp: {peer} -> {dst} connected, sending {total} bytes");
        for s in [&tx, &rx] {
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        }
        let tx_sock = tx.try_clone().unwrap();
        let rx_sock = rx.try_clone().unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let started = Instant::now();

        // On failure each end shuts the socket down so the other end is not left blocked.
        let sender = thread::Builder::new()
            .name("tcp-tx".into())
            .spawn(move || {
                let guard = tx.try_clone().unwrap();
                let r = send_stream(tx, total, rate, seed, started);
                if r.is_err() {
                    let _ = guard.shutdown(Shutdown::Both);
                }
                r
            })
            .unwrap();
        let progress = received.clone();
        let receiver = thread::Builder::new()
            .name("tcp-rx".into())
            .spawn(move || {
                let guard = rx.try_clone().unwrap();
                let r = recv_stream(rx, progress);
                if r.is_err() {
                    let _ = guard.shutdown(Shutdown::Both);
                }
                r
            })
            .unwrap();
        TcpTransfer {
            total,
            started,
            received,
            sender: Some(sender),
            receiver: Some(receiver),
            tx_sock,
            rx_sock,
        }
    }

    /// Bytes the receiver has read so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn is_finished(&self) -> bool {
        let done = |h: &Option<JoinHandle<_>>| h.as_ref().is_none_or(|h| h.is_finished());
        done(&self.sender) && done(&self.receiver)
    }

    /// Waits for both ends (at most `timeout` from the start) and returns what each saw. Panics
    /// with the progress made if the transfer stalls or fails.
    pub fn finish(mut self, timeout: Duration) -> TcpResult {
        let deadline = self.started + timeout;
        while !self.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if !self.is_finished() {
            let got = self.received();
            panic!(
                "TCP transfer did not finish within {timeout:?}: receiver has {got} of {} bytes",
                self.total
            );
        }
        let elapsed = self.started.elapsed();
        // The receiver's error is the more telling one (the sender's follows from it).
        let received = join(self.receiver.take().unwrap(), "receiver");
        let sent = join(self.sender.take().unwrap(), "sender");
        TcpResult {
            sent,
            received,
            elapsed,
        }
    }
}

impl Drop for TcpTransfer {
    /// Unblocks both threads (a no-op once they are done), so an abandoned transfer does not keep
    /// its sockets, and with them the namespaces' devices, alive.
    fn drop(&mut self) {
        let _ = self.tx_sock.shutdown(Shutdown::Both);
        let _ = self.rx_sock.shutdown(Shutdown::Both);
    }
}

fn join(h: JoinHandle<Result<Digest, String>>, what: &str) -> Digest {
    match h.join() {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => panic!("TCP {what} failed: {e}"),
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn send_stream(
    mut s: TcpStream,
    total: u64,
    rate: Option<f64>,
    seed: u64,
    started: Instant,
) -> Result<Digest, String> {
    let mut src = StreamSource::new(seed);
    let mut hash = Fnv64::new();
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(CHUNK as u64) as usize;
        let buf = &src.next_chunk()[..n];
        s.write_all(buf)
            .map_err(|e| format!("write after {sent} bytes: {e}"))?;
        hash.update(buf);
        sent += n as u64;
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            let el = started.elapsed();
            if due > el {
                thread::sleep(due - el);
            }
        }
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    // Wait for the receiver to close so the whole stream is known to be delivered.
    let mut one = [0u8; 1];
    let _ = s.read(&mut one);
    let (hash, bytes) = hash.finish();
    Ok(Digest { bytes, hash })
}

fn recv_stream(mut s: TcpStream, progress: Arc<AtomicU64>) -> Result<Digest, String> {
    let mut hash = Fnv64::new();
    let mut buf = WordBuf::new(CHUNK + 8);
    let mut got = 0u64;
    loop {
        // Read to the offset matching the stream position mod 8, so whole stream words land on
        // aligned memory and hashing takes the fast path.
        let off = (got % 8) as usize;
        let dst = &mut buf.bytes_mut()[off..off + CHUNK];
        let n = s
            .read(dst)
            .map_err(|e| format!("read after {got} bytes: {e}"))?;
        if n == 0 {
            break;
        }
        hash.update(&buf.bytes()[off..off + n]);
        got += n as u64;
        progress.store(got, Ordering::Relaxed);
    }
    let _ = s.shutdown(Shutdown::Both);
    let (hash, bytes) = hash.finish();
    Ok(Digest { bytes, hash })
}

// ---------------------------------------------------------------------------------------------
// UDP

#[derive(Debug, Clone, Copy)]
pub struct UdpBurst {
    pub count: u32,
    pub size: usize,
    /// Datagrams sent back to back before a pause of `pause`.
    pub burst: u32,
    pub pause: Duration,
}

#[derive(Debug, Default)]
pub struct UdpResult {
    pub sent: u32,
    pub send_errors: u32,
    /// Distinct, intact datagrams received.
    pub received: u32,
    pub duplicates: u32,
    /// Datagrams whose length, header or payload did not match what was sent.
    pub corrupt: u32,
    pub send_time: Duration,
}

const UDP_MAGIC: u64 = 0x5741_5252_454e_5544; // "WARRENUD"

fn udp_payload(seq: u32, size: usize, buf: &mut [u8]) {
    buf[..8].copy_from_slice(&UDP_MAGIC.to_le_bytes());
    buf[8..12].copy_from_slice(&seq.to_le_bytes());
    buf[12..16].copy_from_slice(&(size as u32).to_le_bytes());
    PatternGen::new(UDP_MAGIC ^ seq as u64).fill(&mut buf[16..size]);
}

/// Sends `spec.count` numbered datagrams from `tx_ns` to `dst` (bound inside `rx_ns`) and checks
/// every one that arrives byte for byte.
pub fn udp_burst(tx_ns: &str, rx_ns: &str, dst: SocketAddrV4, spec: UdpBurst) -> UdpResult {
    assert!(spec.size >= 16);
    let rx = in_netns(rx_ns, move || UdpSocket::bind(dst))
        .unwrap_or_else(|e| panic!("bind udp {dst} in {rx_ns}: {e}"));
    set_rcvbuf(&rx, 8 << 20);
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let tx = in_netns(tx_ns, || UdpSocket::bind("0.0.0.0:0")).expect("bind udp sender");

    let done = Arc::new(AtomicBool::new(false));
    let done_rx = done.clone();
    let receiver = thread::Builder::new()
        .name("udp-rx".into())
        .spawn(move || {
            let mut seen = HashSet::new();
            let mut res = UdpResult::default();
            let mut buf = vec![0u8; 65536];
            let mut want = vec![0u8; spec.size];
            let mut quiet_since: Option<Instant> = None;
            let hard_deadline = Instant::now() + Duration::from_secs(30);
            while seen.len() < spec.count as usize && Instant::now() < hard_deadline {
                match rx.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        quiet_since = None;
                        let pkt = &buf[..n];
                        let seq = if n >= 12 {
                            u32::from_le_bytes(pkt[8..12].try_into().unwrap())
                        } else {
                            u32::MAX
                        };
                        if n != spec.size || seq >= spec.count {
                            res.corrupt += 1;
                            continue;
                        }
                        udp_payload(seq, spec.size, &mut want);
                        if pkt != &want[..] {
                            res.corrupt += 1;
                        } else if !seen.insert(seq) {
                            res.duplicates += 1;
                        }
                    }
                    Err(_) => {
                        // Timed out: stop once the sender is done and nothing came for 1 s.
                        if done_rx.load(Ordering::Relaxed) {
                            let since = *quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(1) {
                                break;
                            }
                        }
                    }
                }
            }
            res.received = seen.len() as u32;
            res
        })
        .unwrap();

    let mut buf = vec![0u8; spec.size];
    let mut sent = 0;
    let mut errors = 0;
    let t0 = Instant::now();
    for seq in 0..spec.count {
        udp_payload(seq, spec.size, &mut buf);
        match tx.send_to(&buf, dst) {
            Ok(_) => sent += 1,
            Err(_) => errors += 1,
        }
        if spec.burst > 0 && (seq + 1) % spec.burst == 0 {
            thread::sleep(spec.pause);
        }
    }
    let send_time = t0.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut res = receiver.join().expect("udp receiver panicked");
    res.sent = sent;
    res.send_errors = errors;
    res.send_time = send_time;
    res
}

fn set_rcvbuf(s: &UdpSocket, bytes: libc::c_int) {
    let fd = s.as_raw_fd();
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: valid fd, pointer to a c_int of the stated size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &bytes as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_read_boundaries() {
        let mut data = vec![0u8; 1001];
        PatternGen::new(7).fill(&mut data);
        let mut whole = Fnv64::new();
        whole.update(&data);
        for step in [1, 3, 8, 13, 64] {
            let mut pieces = Fnv64::new();
            for c in data[..1].chunks(step).chain(data[1..].chunks(step)) {
                pieces.update(c);
            }
            assert_eq!(whole.finish(), pieces.finish(), "step {step}");
        }
        // Misaligned memory gives the same result as aligned.
        let mut shifted = vec![0u8; 1002];
        shifted[1..].copy_from_slice(&data);
        let mut mis = Fnv64::new();
        mis.update(&shifted[1..]);
        assert_eq!(whole.finish(), mis.finish());
        let mut other = Fnv64::new();
        data[500] ^= 1;
        other.update(&data);
        assert_ne!(whole.finish(), other.finish());
    }
}
