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

/// Hex digest of `chain_hash` into a stack buffer (no allocation).
fn chain_hash_hex(prev: &str, payload: &[u8]) -> [u8; 64] {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(payload);
    let digest = h.finalize();
    let mut out = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
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
        prev != expected_prev || chain_hash_hex(prev, payload) != hash.as_bytes()
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
