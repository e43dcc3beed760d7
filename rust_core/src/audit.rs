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
pub fn verify_chain<P: AsRef<[u8]>>(records: &[(String, P, String)], genesis: &str) -> Option<usize> {
    let mut expected_prev = genesis;
    for (i, (prev, payload, hash)) in records.iter().enumerate() {
        if prev != expected_prev || chain_hash(prev, payload.as_ref()) != *hash {
            return Some(i);
        }
        expected_prev = hash;
    }
    None
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
    }
}
