//! Key heads: the first eight bytes of every key suffix of a page, as big-endian integers
//! in one array built while the page is validated. A binary search compares heads and
//! reads a suffix from the page only where two heads tie, so it touches a short array of
//! the page's size over a hundred rather than a line of the page at every probe: on a
//! cached read, most of a search was those lines.

use std::cmp::Ordering;

/// The first eight bytes of `suffix`, zero-padded, as a big-endian integer. If one head
/// is below another, its suffix is below the other's; equal heads say nothing.
pub(crate) fn key_head(suffix: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let len = suffix.len().min(8);
    bytes[..len].copy_from_slice(&suffix[..len]);
    u64::from_be_bytes(bytes)
}

/// Binary search over sorted suffixes that all follow `local_prefix`, given their heads:
/// `Ok(index)` if `key` is present, `Err(insertion point)` otherwise.
pub(crate) fn search_split<'a>(
    local_prefix: &[u8],
    key: &[u8],
    heads: &[u64],
    suffix: impl Fn(usize) -> &'a [u8],
) -> Result<usize, usize> {
    let count = heads.len();
    let head = key.len().min(local_prefix.len());
    match local_prefix[..head].cmp(&key[..head]) {
        Ordering::Less => Err(count),
        Ordering::Greater => Err(0),
        Ordering::Equal if key.len() < local_prefix.len() => Err(0),
        Ordering::Equal => {
            let rest = &key[local_prefix.len()..];
            let rest_head = key_head(rest);
            let (mut low, mut high) = (0, count);
            while low < high {
                let middle = low + (high - low) / 2;
                let order = heads[middle]
                    .cmp(&rest_head)
                    .then_with(|| suffix(middle).cmp(rest));
                match order {
                    Ordering::Less => low = middle + 1,
                    Ordering::Greater => high = middle,
                    Ordering::Equal => return Ok(middle),
                }
            }
            Err(low)
        }
    }
}

/// The first suffix at or above `key` (which follows `local_prefix`), given that none
/// before `from` is: a gallop forward from `from`, then a binary search of the window it
/// found. The next of a sorted run of keys finds its place near the last one's, so this
/// reads a few neighbouring heads where a whole search would probe across the array.
pub(crate) fn lower_bound_split_from<'a>(
    local_prefix: &[u8],
    key: &[u8],
    heads: &[u64],
    from: usize,
    suffix: impl Fn(usize) -> &'a [u8],
) -> usize {
    let count = heads.len();
    let from = from.min(count);
    let head = key.len().min(local_prefix.len());
    let rest = match local_prefix[..head].cmp(&key[..head]) {
        Ordering::Less => return count,
        Ordering::Greater => return from,
        Ordering::Equal if key.len() < local_prefix.len() => return from,
        Ordering::Equal => &key[local_prefix.len()..],
    };
    let rest_head = key_head(rest);
    let below = |index: usize| {
        heads[index]
            .cmp(&rest_head)
            .then_with(|| suffix(index).cmp(rest))
            .is_lt()
    };
    let (mut low, mut step) = (from, 1);
    let mut high = from;
    while high < count && below(high) {
        low = high + 1;
        high = low + step;
        step *= 2;
    }
    let mut high = high.min(count);
    while low < high {
        let middle = low + (high - low) / 2;
        if below(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Head order never contradicts byte order, including short keys, zero bytes and
    /// keys that share their first eight bytes.
    #[test]
    fn heads_agree_with_byte_order() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"\0",
            b"\0\0",
            b"a",
            b"a\0",
            b"a\0\x01",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"abcdefgi",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for a in &keys {
            for b in &keys {
                if key_head(a) < key_head(b) {
                    assert!(a < b, "{a:?} {b:?}");
                }
            }
        }
        let heads: Vec<u64> = keys.iter().map(|key| key_head(key)).collect();
        for (index, key) in keys.iter().enumerate() {
            assert_eq!(search_split(b"", key, &heads, |at| keys[at]), Ok(index));
        }
        assert_eq!(
            search_split(b"", b"abcdefgh\0\0", &heads, |at| keys[at]),
            Err(9)
        );
        assert_eq!(search_split(b"x", b"abc", &heads, |at| keys[at]), Err(0));
        assert_eq!(
            search_split(b"a", b"b", &heads, |at| keys[at]),
            Err(keys.len())
        );
    }

    /// A gallop from any start at or before the answer finds what a whole search finds,
    /// under any local prefix.
    #[test]
    fn gallop_agrees_with_search() {
        // Groups of four suffixes share their heads, so ties are broken by the bytes after.
        let rest = |group: u32, last: u8| {
            let mut rest = group.to_be_bytes().to_vec();
            rest.extend_from_slice(&[0, 0, 0, 0, last]);
            rest
        };
        let suffixes: Vec<Vec<u8>> = (0u32..300)
            .map(|n| rest(n / 4 * 7, (n % 4) as u8))
            .collect();
        let heads: Vec<u64> = suffixes.iter().map(|suffix| key_head(suffix)).collect();
        let prefix = b"pre";
        for group in 0..(300 / 4 * 7 + 9) {
            for last in 0..6 {
                let key = [&prefix[..], &rest(group, last)].concat();
                let answer = search_split(prefix, &key, &heads, |at| &suffixes[at])
                    .unwrap_or_else(|index| index);
                for from in [0, answer / 2, answer.saturating_sub(1), answer] {
                    let found =
                        lower_bound_split_from(prefix, &key, &heads, from, |at| &suffixes[at]);
                    assert_eq!(found, answer, "key {group}/{last} from {from}");
                }
            }
        }
        for key in [&b"pra"[..], b"pre", b"pr", b"prf", b""] {
            let answer =
                search_split(prefix, key, &heads, |at| &suffixes[at]).unwrap_or_else(|index| index);
            assert_eq!(
                lower_bound_split_from(prefix, key, &heads, 0, |at| &suffixes[at]),
                answer,
                "{key:?}"
            );
        }
    }
}
