//! SHA-256 hash chain over ledger records.
//!
//! `chain_hash(prev, payload) = hex(sha256(utf8(prev) || payload))`, lower-case hex.
//! A chain of records `(prev_hash, payload, hash)` is intact when every record's
//! `prev_hash` equals the previous record's `hash` (the genesis value for the first
//! one) and `hash == chain_hash(prev_hash, payload)`.

use sha2::{Digest, Sha256};

const HEX: &[u8; 16] = b"0123456789abcdef";

pub fn chain_hash(prev: &str, payload: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(payload);
    let digest = h.finalize();
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

/// Index of the first broken record, or `None` when the whole chain is intact.
pub fn verify_chain<P: AsRef<[u8]>>(
    records: &[(String, P, String)],
    genesis: &str,
) -> Option<usize> {
    let mut expected_prev = genesis;
    for (i, (prev, payload, hash)) in records.iter().enumerate() {
        if prev != expected_prev || chain_hash(prev, payload.as_ref()) != *hash {
            return Some(i);
        }
        expected_prev = hash;
    }
    None
}

/// Two hex digits of every byte.
const HEX2: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Lower-case hex of `sha256(prev || payload)` into a stack buffer: the compression
/// function runs straight on the input's whole 64-byte blocks (a chain's 64-character
/// `prev` is exactly one), only the padded tail is copied.
fn chain_hash_hex(prev: &[u8], payload: &[u8]) -> [u8; 64] {
    use sha2::digest::generic_array::GenericArray;
    let mut state = H0;
    let total = prev.len() + payload.len();
    let mut tail = [0u8; 192];
    let mut t = 0usize;
    fn feed(data: &[u8], state: &mut [u32; 8], tail: &mut [u8; 192], t: &mut usize) {
        let mut d = data;
        if *t > 0 {
            let take = (64 - *t).min(d.len());
            tail[*t..*t + take].copy_from_slice(&d[..take]);
            *t += take;
            d = &d[take..];
            if *t == 64 {
                sha2::compress256(
                    state,
                    std::slice::from_ref(GenericArray::from_slice(&tail[..64])),
                );
                *t = 0;
            }
        }
        let whole = d.len() / 64 * 64;
        for chunk in d[..whole].chunks_exact(64) {
            sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(chunk)));
        }
        let rest = &d[whole..];
        tail[*t..*t + rest.len()].copy_from_slice(rest);
        *t += rest.len();
    }
    feed(prev, &mut state, &mut tail, &mut t);
    feed(payload, &mut state, &mut tail, &mut t);
    tail[t] = 0x80;
    let end = if t < 56 { 64 } else { 128 };
    tail[t + 1..end].fill(0);
    tail[end - 8..end].copy_from_slice(&((total as u64) * 8).to_be_bytes());
    for chunk in tail[..end].chunks_exact(64) {
        sha2::compress256(
            &mut state,
            std::slice::from_ref(GenericArray::from_slice(chunk)),
        );
    }
    let mut out = [0u8; 64];
    for (i, w) in state.iter().enumerate() {
        for (j, b) in w.to_be_bytes().iter().enumerate() {
            out[8 * i + 2 * j..8 * i + 2 * j + 2].copy_from_slice(&HEX2[*b as usize]);
        }
    }
    out
}

fn first_broken(
    records: &[(&str, &[u8], &str)],
    genesis: &str,
    range: std::ops::Range<usize>,
) -> Option<usize> {
    range.into_iter().find(|&i| {
        let (prev, payload, hash) = records[i];
        let expected_prev = if i == 0 { genesis } else { records[i - 1].2 };
        prev != expected_prev || chain_hash_hex(prev.as_bytes(), payload) != hash.as_bytes()
    })
}

/// Borrowing variant of [`verify_chain`] used by the bindings; long chains are checked
/// in parallel chunks (every link is independent), the earliest break wins.
pub fn verify_chain_ref(records: &[(&str, &[u8], &str)], genesis: &str) -> Option<usize> {
    let n = records.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(8);
    if n < 20_000 || threads < 2 {
        return first_broken(records, genesis, 0..n);
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * chunk).min(n)..((t + 1) * chunk).min(n);
                s.spawn(move || first_broken(records, genesis, range))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .min()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // sha256("abc")
        assert_eq!(
            chain_hash("", b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn block_aligned_hex_matches_the_digest_api() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 7 % 251) as u8).collect();
        for p in [0usize, 1, 55, 56, 63, 64, 65, 128] {
            for n in [0usize, 1, 7, 55, 56, 57, 63, 64, 65, 119, 120, 200, 300] {
                let prev = std::str::from_utf8(&[b'a'; 128][..p]).unwrap().to_string();
                let want = chain_hash(&prev, &data[..n]);
                assert_eq!(chain_hash_hex(prev.as_bytes(), &data[..n]), want.as_bytes());
            }
        }
    }

    #[test]
    fn detects_first_broken_link() {
        let g = "0".repeat(64);
        let h0 = chain_hash(&g, b"a");
        let h1 = chain_hash(&h0, b"b");
        let ok = vec![
            (g.clone(), b"a".to_vec(), h0.clone()),
            (h0.clone(), b"b".to_vec(), h1.clone()),
        ];
        assert_eq!(verify_chain(&ok, &g), None);
        let mut bad = ok.clone();
        bad[1].1 = b"x".to_vec();
        assert_eq!(verify_chain(&bad, &g), Some(1));
        let mut bad2 = ok;
        bad2[0].0 = "1".repeat(64);
        assert_eq!(verify_chain(&bad2, &g), Some(0));
        // long chain: parallel path agrees with the sequential one
        let mut recs: Vec<(String, Vec<u8>, String)> = Vec::new();
        let mut prev = g.clone();
        for i in 0..50_000u32 {
            let p = i.to_le_bytes().to_vec();
            let h = chain_hash(&prev, &p);
            recs.push((prev.clone(), p, h.clone()));
            prev = h;
        }
        let view =
            |r: &[(String, Vec<u8>, String)]| -> Vec<(String, Vec<u8>, String)> { r.to_vec() };
        let mut broken = view(&recs);
        broken[31_337].1 = b"x".to_vec();
        broken[40_000].1 = b"y".to_vec();
        for (rs, want) in [(&recs, None), (&broken, Some(31_337))] {
            let v: Vec<(&str, &[u8], &str)> = rs
                .iter()
                .map(|(a, b, c)| (a.as_str(), b.as_slice(), c.as_str()))
                .collect();
            assert_eq!(verify_chain_ref(&v, &g), want);
            assert_eq!(verify_chain(rs, &g), want);
        }
    }
}
